"""A real kill -9 between a command's commit and its kept answer: a cancel is answered by a
server that cannot keep the answer (every connection that tries is cut), and the server is
killed before it could. The retry of the key, at once to the other server, finds the
command's receipt (committed with its events) and answers the cancelled order, instead of
cancelling again and answering "order is cancelled"."""

import os
import signal
import time
import uuid

import httpx
import pytest

from bench.common import SERVERS, serve_subprocess
from tests.conftest import postgres_url
from tests.integration.cutting_proxy import CommitCuttingProxy

KEEPING = b"UPDATE api_idempotency SET status"


@pytest.mark.parametrize("store_kind", ["postgres"])  # a proxy cuts the answer's keeping
def test_a_cancel_whose_server_died_before_keeping_its_answer_is_found_by_its_retry(
        quanyi_env):
    proxy = CommitCuttingProxy(postgres_url())
    doomed_env = {**quanyi_env, "QUANYI_DATABASE_URL": proxy.url}
    try:
        with serve_subprocess(quanyi_env) as (survivor, admin), \
                serve_subprocess(doomed_env) as (doomed, _):
            headers = {"Authorization": f"Bearer {admin}"}
            order_id = _reserved_order(httpx.Client(base_url=survivor, headers=headers,
                                                    timeout=30))
            key = {"Idempotency-Key": f"cancel-{uuid.uuid4()}"}
            proxy.drop_connection_sending(KEEPING, every=True)
            first = httpx.post(f"{doomed}/v1/orders/{order_id}/cancel", timeout=30,
                               headers={**headers, **key}, json={"reason": "changed mind"})
            os.kill(SERVERS[doomed], signal.SIGKILL)
            proxy.stop_dropping()
            versions = _versions(survivor, headers, order_id)
            retried = httpx.post(f"{survivor}/v1/orders/{order_id}/cancel", timeout=30,
                                 headers={**headers, **key}, json={"reason": "changed mind"})
            after = _versions(survivor, headers, order_id)
    finally:
        proxy.close()
    assert proxy.cuts >= 1  # the answer's keeping was really cut
    assert (first.status_code, first.json()["status"]) == (200, "cancelled"), first.text
    assert (retried.status_code, retried.headers.get("idempotent-replayed")) == (200, "true")
    assert retried.json()["status"] == "cancelled"
    assert retried.json()["order_id"] == order_id
    assert after == versions  # the retry acted no more


def _reserved_order(http: httpx.Client) -> str:
    sku = f"KILL-{uuid.uuid4().hex[:6]}"
    http.post("/v1/products", json={"sku": sku, "name": "k", "delivery": "card",
                                    "price": 100}).raise_for_status()
    http.post(f"/v1/products/{sku}/batches", json={
        "supplier_id": "s", "unit_cost": 50,
        "codes": [{"code": f"{sku}-1"}]}).raise_for_status()
    placed = http.post("/v1/orders", json={"buyer_id": "b-kill",
                                           "items": [{"sku": sku, "quantity": 1}]})
    placed.raise_for_status()
    return placed.json()["order_id"]


def _versions(base: str, headers: dict, order_id: str) -> list:
    """The order's stream as the feed shows it (a cancel adds one event)."""
    deadline = time.monotonic() + 10
    while True:
        feed = httpx.get(f"{base}/v1/events", params={"limit": 1000}, headers=headers,
                         timeout=30).json()["items"]
        mine = [e["version"] for e in feed if e["stream_id"] == order_id]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.1)
