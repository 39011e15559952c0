"""Onboarding simulators into a running Quanyi, for benchmarks and crash tests: each becomes
a registered supplier, and a new top-up product is offered by them in the given order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from supplier_sim.config import SimConfig
from supplier_sim.server import SimServer


def offer_top_up(api: httpx.Client, sims: Mapping[str, SimServer], *, sku: str, name: str,
                 price: int, costs: Sequence[int]) -> None:
    """Through ``api`` (a client with an admin key), register every simulator as the supplier
    named by its key and define ``sku``, offered by them in order at ``costs``."""
    credentials = {"api_key": SimConfig.api_key, "callback_secret": SimConfig.callback_secret}
    for supplier_id, sim in sims.items():
        api.post("/v1/suppliers", json={
            "supplier_id": supplier_id, "name": supplier_id, "adapter": "http-json",
            "endpoint": sim.url, "credentials": credentials}).raise_for_status()
    api.post("/v1/products", json={"sku": sku, "name": name, "delivery": "topup",
                                   "price": price, "recharge_account_pattern": "mobile_cn"}
             ).raise_for_status()
    api.put(f"/v1/products/{sku}/offers", json={"offers": [
        {"supplier_id": s, "supplier_sku": f"{s}-100", "cost": cost, "priority": n}
        for n, (s, cost) in enumerate(zip(sims, costs, strict=True))]}).raise_for_status()
