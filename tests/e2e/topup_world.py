"""A world for top-up tests: the API served over real HTTP on 127.0.0.1 (suppliers call it
back), two simulated suppliers (supplier_sim) and a top-up product offered by both."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from api.app import create_app
from supplier_sim import SimAdmin, SimConfig, SimServer
from supplier_sim.server import AppThread

PRICE, COST_A, COST_B = 10_000, 9_700, 9_800


def api_server(runtime: Any) -> AppThread:
    """``create_app(runtime)`` on a free port of 127.0.0.1, in a daemon thread."""
    return AppThread(create_app(runtime), name="quanyi-api", lifespan="off")


class World:
    """The API client, its keys, the suppliers' simulators and one top-up SKU."""

    def __init__(self, api_url: str, keys: dict[str, dict[str, str]]) -> None:
        self.http = httpx.Client(base_url=api_url, timeout=30)
        self.keys = keys
        self.api_url = api_url
        self.sims: dict[str, SimServer] = {}
        self.admins: dict[str, SimAdmin] = {}
        self.sku = f"MOBILE-{uuid.uuid4().hex[:6]}"

    def supplier(self, supplier_id: str, **config: Any) -> SimAdmin:
        """Start a simulator for ``supplier_id`` and register it."""
        callback = f"{self.api_url}/v1/suppliers/{supplier_id}/callbacks"
        config = {"callback_delay_ms": 100, "hang_seconds": 5, **config}
        sim = SimServer(SimConfig(callback_url=callback, **config)).start()
        self.sims[supplier_id] = sim
        self.admins[supplier_id] = sim.admin()
        answer = self.http.post("/v1/suppliers", headers=self.keys["admin"], json={
            "supplier_id": supplier_id, "name": f"Supplier {supplier_id}",
            "adapter": "http-json", "endpoint": sim.url,
            "credentials": {"api_key": "sim-api-key",
                            "callback_secret": "sim-callback-secret"}})
        assert answer.status_code == 201, answer.text
        return self.admins[supplier_id]

    def product(self, offers: list[tuple[str, int]], **extra: Any) -> None:
        answer = self.http.post("/v1/products", headers=self.keys["app"], json={
            "sku": self.sku, "name": "Mobile ¥100", "delivery": "topup", "price": PRICE,
            "recharge_account_pattern": "mobile_cn", **extra})
        assert answer.status_code == 201, answer.text
        answer = self.http.put(f"/v1/products/{self.sku}/offers", headers=self.keys["app"],
                               json={"offers": [
                                   {"supplier_id": s, "supplier_sku": f"{s}-100", "cost": c,
                                    "priority": p} for p, (s, c) in enumerate(offers)]})
        assert answer.status_code == 200, answer.text

    def paid_order(self, account: str) -> dict[str, Any]:
        placed = self.http.post("/v1/orders", headers=self.keys["app"], json={
            "buyer_id": "b-1", "items": [{"sku": self.sku, "quantity": 1}],
            "recharge_account": account})
        assert placed.status_code == 201, placed.text
        paid = self.http.post(f"/v1/orders/{placed.json()['order_id']}/payments",
                              headers=self.keys["app"],
                              json={"payment_ref": f"pay-{uuid.uuid4().hex[:8]}",
                                    "amount": PRICE, "currency": "CNY",
                                    "provider": "wechat"})
        assert paid.status_code == 200, paid.text
        return paid.json()

    def order(self, order_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/orders/{order_id}", headers=self.keys["support"])
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self, order_id: str, done: Callable[[dict[str, Any]], bool],
             timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            order = self.order(order_id)
            if done(order):
                return order
            if time.monotonic() > deadline:
                raise AssertionError(f"order did not get there: {order}")
            time.sleep(0.05)

    def settled(self, order_id: str, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait(order_id, lambda o: o["status"] in ("delivered", "refunded",
                                                             "needs_attention"), timeout)

    def balance(self, account_id: str) -> int:
        """An account's balance once the ledger has caught up (0 when it has no entry)."""
        answer = self.http.get(f"/v1/ledger/accounts/{account_id}",
                               headers=self.keys["finance"])
        if answer.status_code == 404:
            return 0
        assert answer.status_code == 200, answer.text
        return answer.json()["balance"]

    def trial_balance(self) -> dict[str, Any]:
        answer = self.http.get("/v1/ledger/trial-balance", headers=self.keys["finance"])
        assert answer.status_code == 200, answer.text
        return answer.json()

    def reconciliation(self, order_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/reconciliation/orders/{order_id}",
                               headers=self.keys["finance"])
        assert answer.status_code == 200, answer.text
        return answer.json()

    def close(self) -> None:
        for admin in self.admins.values():
            admin.close()
        for sim in self.sims.values():
            sim.stop()
        self.http.close()


def account() -> str:
    """A fresh mainland mobile number, so each test's sim books start empty for it."""
    return "139" + str(uuid.uuid4().int)[:8]
