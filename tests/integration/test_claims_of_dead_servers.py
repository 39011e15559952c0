"""kill -9 of a server in the middle of a 30,000-code import: the import's Idempotency-Key
claim dies with the process, so its retry - at once, to the other server - is not told
"in progress" for a minute; it resumes the batch (the batch id derives from the key) and
closes it, every code imported once."""

import os
import signal
import threading
import time
import uuid

import httpx

from bench.common import SERVERS, serve_subprocess

CODES = 30_000


def _import(base: str, headers: dict, sku: str, key: str, codes: list) -> httpx.Response:
    return httpx.post(f"{base}/v1/products/{sku}/batches", timeout=300,
                      headers={**headers, "Idempotency-Key": key},
                      json={"supplier_id": "s", "unit_cost": 50, "codes": codes})


def test_a_killed_servers_import_is_resumed_at_once_by_its_retry(quanyi_env):
    with serve_subprocess(quanyi_env) as (doomed, admin), \
            serve_subprocess(quanyi_env) as (survivor, _):
        headers = {"Authorization": f"Bearer {admin}"}
        http = httpx.Client(base_url=survivor, headers=headers, timeout=60)
        sku = f"BIG-{uuid.uuid4().hex[:6]}"
        http.post("/v1/products", json={"sku": sku, "name": "big", "delivery": "card",
                                        "price": 100}).raise_for_status()
        codes = [{"code": f"{sku}-{n:06d}", "pin": f"P{n}"} for n in range(CODES)]
        key = f"import-{uuid.uuid4()}"
        first = threading.Thread(target=lambda: _ignore_errors(
            _import, doomed, headers, sku, key, codes), daemon=True)
        first.start()
        deadline = time.monotonic() + 120
        while http.get(f"/v1/products/{sku}/inventory").json()["total"] == 0:
            assert time.monotonic() < deadline, "the import never started"
            time.sleep(0.02)
        os.kill(SERVERS[doomed], signal.SIGKILL)
        partial = http.get(f"/v1/products/{sku}/inventory").json()["total"]
        first.join(30)

        retried = _import(survivor, headers, sku, key, codes)  # at once: no claim to expire
        assert retried.status_code == 201, retried.text
        again = _import(survivor, headers, sku, key, codes)
        assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true")
        deadline = time.monotonic() + 30
        while (stock := http.get(f"/v1/products/{sku}/inventory").json())["total"] < CODES:
            assert time.monotonic() < deadline, stock
            time.sleep(0.2)
    assert 0 < partial < CODES  # the kill came mid-import
    assert stock["total"] == stock["available"] == CODES
    assert retried.json()["batch_id"] == again.json()["batch_id"]


def _ignore_errors(fn, *args) -> None:
    try:
        fn(*args)
    except httpx.HTTPError:
        pass  # the server was killed under it
