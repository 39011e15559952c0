"""PostgreSQL cut off from a running `quanyi serve` (a TCP proxy between them closes every
connection and refuses new ones, then lets them through again): the server says so at once
and honestly, and comes back by itself.

- /healthz answers 503 within 2 s of the cut; every request a 503 `store_unavailable`
  problem with Retry-After within 5 s;
- the server writes one line when the store is lost and one when it is back, no traceback;
- it serves again within 5 s of the database coming back;
- every order answered 201, before, during or after the outage, is there afterwards."""

import os
import tempfile
import threading
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from bench.common import serve_subprocess
from tests.integration.helpers import stocked_over_http
from tests.integration.tcp_proxy import tcp_proxy

CODES = 400
OUTAGE_SECONDS = 6


@pytest.fixture(params=["postgres"])
def store_kind(request):
    return request.param


class Buyers:
    """Threads placing orders all along; the ids of those answered 201, and every other
    answer's status and problem code."""

    def __init__(self, http: httpx.Client, sku: str) -> None:
        self.http, self.sku = http, sku
        self.placed: list[str] = []
        self.refused: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._buy, daemon=True) for _ in range(4)]

    def __enter__(self) -> "Buyers":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _buy(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self.http.post("/v1/orders", json={
                    "buyer_id": f"b-{uuid.uuid4().hex[:8]}",
                    "items": [{"sku": self.sku, "quantity": 1}]})
            except httpx.HTTPError as exc:
                self.refused.append((0, type(exc).__name__))
            else:
                if answer.status_code == 201:
                    self.placed.append(answer.json()["order_id"])
                else:
                    self.refused.append((answer.status_code, answer.json().get("code")))
            self._stop.wait(0.05)


def _within(seconds: float, ask) -> float:
    """Ask until ``ask()`` is true; how long it took (fails past ``seconds``)."""
    started = time.monotonic()
    while not ask():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


def _unavailable(answer: httpx.Response) -> bool:
    return (answer.status_code == 503
            and answer.headers["content-type"].startswith("application/problem+json")
            and answer.json()["code"] == "store_unavailable"
            and int(answer.headers["retry-after"]) > 0)


def test_a_cut_database_is_answered_503_at_once_and_the_server_comes_back(quanyi_env):
    target = urlsplit(quanyi_env["QUANYI_DATABASE_URL"])
    with tcp_proxy((target.hostname, target.port)) as proxy, \
            tempfile.TemporaryFile("w+") as stderr:
        env = {**quanyi_env, "QUANYI_DATABASE_URL": proxy.url_for(
            quanyi_env["QUANYI_DATABASE_URL"])}
        with serve_subprocess(env, stderr=stderr) as (base, key), httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
            sku = stocked_over_http(http, CODES, "OUT")
            with Buyers(http, sku) as buyers:
                time.sleep(1)
                logged_before = os.fstat(stderr.fileno()).st_size
                proxy.cut()
                assert _within(2, lambda: http.get("/healthz").status_code == 503) < 2
                _each_request_is_unavailable_within_5_s(http, sku)
                time.sleep(OUTAGE_SECONDS)
                proxy.restore()
                _within(5, lambda: http.get(f"/v1/products/{sku}").status_code == 200)
                _within(5, lambda: http.get("/healthz").status_code == 200)
                time.sleep(1)
            kept = [http.get(f"/v1/orders/{order_id}").status_code for order_id in buyers.placed]
        stderr.seek(0)
        log = stderr.read()
        since_cut = log[logged_before:]
    assert buyers.placed and kept == [200] * len(kept)
    assert {status for status, _ in buyers.refused} <= {503}, buyers.refused
    assert {code for _, code in buyers.refused} <= {"store_unavailable"}, buyers.refused
    assert "Traceback" not in log, log
    # (before the cut the shared database may have refused a connection too: said then)
    assert since_cut.count("PostgreSQL store unreachable") == 1, since_cut
    assert since_cut.count("PostgreSQL store reachable again") == 1, since_cut


def _each_request_is_unavailable_within_5_s(http: httpx.Client, sku: str) -> None:
    asks = [lambda: http.get(f"/v1/products/{sku}"),
            lambda: http.get(f"/v1/products/{sku}/inventory"),
            lambda: http.get("/v1/orders"),
            lambda: http.post("/v1/orders", json={"buyer_id": "late",
                                                  "items": [{"sku": sku, "quantity": 1}]})]
    for ask in asks:
        started = time.monotonic()
        answer = ask()
        assert time.monotonic() - started < 5
        assert _unavailable(answer), (answer.status_code, answer.text, answer.headers)
