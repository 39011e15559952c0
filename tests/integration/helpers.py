"""Building blocks for integration tests: products and batches made through the engine."""

from __future__ import annotations

import threading
import time
import uuid

from engine.codes.imports import BatchResult, CodeRow
from runtime import Runtime


def new_sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:8]}"


def define_product(rt: Runtime, sku: str | None = None, **overrides) -> str:
    sku = sku or new_sku()
    fields = {"name": "Video VIP 1 month", "delivery": "card", "price": 1990,
              "actor": "test", **overrides}
    rt.engine.catalog.define_product(sku=sku, **fields)
    return sku


def codes_for(count: int, tag: str | None = None) -> list[CodeRow]:
    tag = tag or uuid.uuid4().hex[:10]
    return [CodeRow(f"{tag}-{i:06d}", f"P{i:04d}") for i in range(count)]


def import_codes(rt: Runtime, sku: str, rows: list[CodeRow], **overrides) -> BatchResult:
    fields = {"supplier_id": "sup-1", "unit_cost": 1200, "expires_at": None,
              "actor": "test", **overrides}
    return rt.engine.imports.import_batch(sku=sku, rows=rows, **fields)


def stocked_over_http(http, codes: int, prefix: str = "HTTP") -> str:
    """A card product with ``codes`` codes, made through a server's API (an httpx client
    with an admin key); its SKU."""
    sku = f"{prefix}-{uuid.uuid4().hex[:6]}"
    http.post("/v1/products", json={"sku": sku, "name": prefix.lower(), "delivery": "card",
                                    "price": 100}).raise_for_status()
    http.post(f"/v1/products/{sku}/batches", json={
        "supplier_id": "s", "unit_cost": 50,
        "codes": [{"code": f"{sku}-{n:05d}"} for n in range(codes)]}).raise_for_status()
    return sku


def set_up_beside_a_writer(db, claim: str, write: str, set_up) -> list[Exception]:
    """Run ``set_up`` (a server starting) while another transaction, as a running server's
    follower does, runs ``claim`` (its tracking row) and then ``write`` (its tables) 1.5 s
    later; the errors either met (a deadlock, on PostgreSQL, if they lock in other orders)."""
    started, failures = threading.Event(), []

    def follow() -> None:
        try:
            with db.transaction() as cursor:
                cursor.execute(claim)
                started.set()
                time.sleep(1.5)
                cursor.execute(write)
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            failures.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    started.wait(10)
    try:
        set_up()
    except Exception as exc:  # noqa: BLE001
        failures.append(exc)
    follower.join(30)
    return failures
