"""Many webhook endpoints, one bounded process: deliveries run on a fixed pool of workers
whatever the number of endpoints, an owner's enabled endpoints are capped, and a real
`quanyi serve` holding 500 endpoints at a receiver that never answers keeps answering
requests and stops on SIGTERM within seconds. On both stores."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bench.common import ROOT, free_port, quanyi, wait_until_up
from engine.settings import Settings
from tests.conftest import caught_up
from tests.e2e.test_webhooks_api import FAST, buy, register
from tests.e2e.webhook_receiver import Receiver

WORKERS = 3
CAP = 30


@pytest.fixture
def settings(quanyi_env: dict[str, str]) -> Settings:
    return Settings.from_env({**quanyi_env, **FAST, "QUANYI_WEBHOOK_WORKERS": str(WORKERS),
                              "QUANYI_WEBHOOK_MAX_ENDPOINTS": str(CAP)})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.down()


def webhook_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("quanyi-webhook")]


def test_many_endpoints_are_served_by_a_bounded_pool_each_in_its_own_order(
        client, keys, runtime, product, receiver):
    endpoints = [register(client, keys["app"], receiver.url)["endpoint_id"]
                 for _ in range(CAP)]
    caught_up(runtime)
    orders = [buy(client, keys, product)[1]["order_id"] for _ in range(2)]
    told = receiver.wait_for(2 * CAP, timeout=60)
    assert len(webhook_threads()) <= WORKERS + 1  # the workers and their scheduler
    assert len({r.headers["webhook-id"] for r in told}) == 2 * CAP  # one each, no copy
    for endpoint_id in endpoints:  # each endpoint heard the two orders in log order
        deliveries = client.get(f"/v1/webhooks/{endpoint_id}/deliveries",
                                headers=keys["app"]).json()["items"]
        assert [d["payload"]["data"]["order_id"] for d in reversed(deliveries)] == orders
        assert {d["status"] for d in deliveries} == {"delivered"}


def test_an_owner_may_have_at_most_the_cap_of_enabled_endpoints(client, keys, runtime,
                                                                 receiver):
    made = [register(client, keys["app"], receiver.url)["endpoint_id"] for _ in range(CAP)]
    beyond = client.post("/v1/webhooks", headers=keys["app"], json={
        "url": receiver.url, "event_types": ["order.delivered"]})
    assert beyond.status_code == 429, beyond.text
    assert beyond.headers["content-type"].startswith("application/problem+json")
    assert beyond.json()["code"] == "too_many_webhooks"
    assert client.post(f"/v1/webhooks/{made[0]}/disable", headers=keys["app"]).status_code \
        == 200
    again = register(client, keys["app"], receiver.url)  # a disabled one frees its place
    enabled = client.post(f"/v1/webhooks/{made[0]}/enable", headers=keys["app"])
    assert enabled.status_code == 429 and enabled.json()["code"] == "too_many_webhooks"
    assert client.get(f"/v1/webhooks/{made[0]}", headers=keys["app"]).json()["status"] \
        == "disabled"
    other = runtime.engine.keys.issue(role="app", name="another-shop")
    register(client, {"Authorization": f"Bearer {other.secret}"}, receiver.url)
    assert again["status"] == "enabled"


class SilentReceiver:
    """Accepts connections on 127.0.0.1 and never answers: every attempt runs to its
    timeout."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/hooks"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._held.append(self._sock.accept()[0])

    def close(self) -> None:
        self._sock.close()
        for conn in self._held:
            conn.close()


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, str]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env={**os.environ, **env})
    try:
        wait_until_up(f"http://127.0.0.1:{port}")
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_a_server_with_500_endpoints_at_a_silent_receiver_answers_and_stops_at_once(
        quanyi_env):
    env = {**quanyi_env, "QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
           "QUANYI_WEBHOOK_MAX_ENDPOINTS": "1000", "QUANYI_WEBHOOK_TIMEOUT_SECONDS": "60",
           "QUANYI_WEBHOOK_POLL_SECONDS": "0.2"}
    key = quanyi("--init", "keys", "create", "--role", "app", "--name", "shop",
                 env=env).split()[0]
    silent = SilentReceiver()
    try:
        with serving(env) as (proc, base), httpx.Client(
                base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}) as api:
            hook = {"url": silent.url, "event_types": ["order.delivered"]}
            with ThreadPoolExecutor(8) as pool:
                made = list(pool.map(lambda _: api.post("/v1/webhooks", json=hook).status_code,
                                     range(500)))
            assert made == [201] * 500
            sku = _paid_order(api)
            time.sleep(2)  # every worker now waits on the silent receiver
            answers = [_answer(api, f"/v1/products/{sku}") for _ in range(60)]
            assert answers == [200] * 60
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            assert time.monotonic() - started < 5
    finally:
        silent.close()


def _answer(api: httpx.Client, path: str) -> int | str:
    try:
        return api.get(path).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def _paid_order(api: httpx.Client) -> str:
    sku = f"POOL-{uuid.uuid4().hex[:6]}"
    assert api.post("/v1/products", json={"sku": sku, "name": "VIP", "delivery": "card",
                                          "price": 1990}).status_code == 201
    assert api.post(f"/v1/products/{sku}/batches", json={
        "supplier_id": "sup-1", "unit_cost": 1000,
        "codes": [{"code": f"POOL-{uuid.uuid4().hex}"}]}).status_code == 201
    placed = api.post("/v1/orders", json={"buyer_id": "b-1",
                                          "items": [{"sku": sku, "quantity": 1}]}).json()
    paid = api.post(f"/v1/orders/{placed['order_id']}/payments", json={
        "payment_ref": f"pay-{uuid.uuid4().hex[:8]}", "amount": placed["amount"],
        "currency": "CNY"})
    assert paid.status_code == 200, paid.text
    return sku
