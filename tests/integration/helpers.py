"""Building blocks for integration tests: products and batches made through the engine."""

from __future__ import annotations

import uuid

from engine.imports import BatchResult, CodeRow
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
