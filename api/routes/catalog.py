"""Products, batches of codes, and inventory."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.problems import ApiProblem
from api.receipt_answers import answers_from_receipt, saved
from api.schemas import (
    BatchIn,
    BatchListOut,
    BatchOut,
    ChannelPriceIn,
    GeneratedOut,
    GenerateIn,
    Instant,
    InventoryOut,
    ProductIn,
    ProductOut,
    QueryMoney,
    Text,
    as_of_query,
)
from engine.codes.generation import CodePattern
from engine.codes.imports import MAX_BATCH, CodeRow
from engine.eventstore.receipts import CommandReceipt
from engine.kernel.tenancy import stock_key
from engine.keys import Principal
from replay.as_of import inventory_at

router = APIRouter(prefix="/v1/products", tags=["catalog"])
BATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/BatchIn"}},
    "text/csv": {"schema": {"type": "string"},
                 "example": "code,pin\nAQZX-7781-KKP0,440921\n"}}}}


def _product_saved(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    return saved(request, receipt, "product").to_dict()


@router.post("", status_code=201, response_model=ProductOut)
@answers_from_receipt(_product_saved)
def define_product(body: ProductIn, request: Request,
                   who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Define a product (SKU): delivery kind, price, limits, commissions, bundle parts."""
    fields = body.model_dump()
    product = request.app.state.runtime.engine.catalog.define_product(
        actor=who.actor, tenant=who.tenant, **fields)
    return product.to_dict()


@router.get("/{sku}", response_model=ProductOut)
def get_product(sku: str, request: Request,
                who: Principal = Depends(require("app", "support", "finance"))) -> dict[str, Any]:
    """A product as defined, with its channel prices."""
    return request.app.state.runtime.engine.catalog.get(stock_key(who.tenant, sku)).to_dict()


@router.put("/{sku}/channel-prices/{channel}", response_model=ProductOut)
@answers_from_receipt(_product_saved)
def set_channel_price(sku: str, channel: Annotated[Text, Path(max_length=64)],
                      body: ChannelPriceIn, request: Request,
                      who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Set the price of a SKU in one sales channel (others keep the list price)."""
    catalog = request.app.state.runtime.engine.catalog
    return catalog.set_channel_price(sku=stock_key(who.tenant, sku), channel=channel, price=body.price,
                                     actor=who.actor).to_dict()


@router.post("/{sku}/batches", status_code=201, response_model=BatchOut,
             openapi_extra=BATCH_BODY)
async def import_batch(sku: str, request: Request,
                       supplier_id: Text | None = Query(None, min_length=1, max_length=64),
                       unit_cost: QueryMoney | None = Query(None),
                       expires_at: Instant | None = Query(None),
                       who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Import a supplier's codes (JSON, or text/csv with a `code,pin` header); duplicates
    anywhere on the platform and malformed rows are reported by index."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("text/csv"):
        batch = _csv_batch(raw, supplier_id, unit_cost, expires_at)
    else:
        batch = _json_batch(raw)
    rows = batch.pop("rows")
    runtime = request.app.state.runtime
    result = await run_in_threadpool(
        lambda: runtime.engine.imports.import_batch(
            sku=stock_key(who.tenant, sku), rows=rows, actor=who.actor,
            batch_key=request.headers.get("idempotency-key"), **batch))
    return {"batch_id": str(result.batch_id), "sku": sku, "imported": result.imported,
            "rejected": result.rejected}


def _json_batch(raw: bytes) -> dict[str, Any]:
    try:
        body = BatchIn.model_validate_json(raw)
    except ValidationError as exc:
        details = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10]]
        raise ApiProblem(422, "validation_error", "; ".join(details)) from None
    rows = [CodeRow(c.code if isinstance(c.code, str) else None,
                    c.pin if isinstance(c.pin, str) else None) for c in body.codes]
    return {"supplier_id": body.supplier_id, "unit_cost": body.unit_cost,
            "expires_at": body.expires_at, "rows": rows}


def _csv_batch(raw: bytes, supplier_id: str | None, unit_cost: int | None,
               expires_at: datetime | None) -> dict[str, Any]:
    if not supplier_id or unit_cost is None:
        raise ApiProblem(422, "validation_error",
                         "a CSV import needs supplier_id and unit_cost query parameters")
    try:
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
        if not reader.fieldnames or "code" not in reader.fieldnames:
            raise ApiProblem(422, "validation_error", "the CSV needs a header line `code,pin`")
        rows = [CodeRow(r.get("code"), r.get("pin")) for r in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ApiProblem(422, "validation_error", f"unreadable CSV: {exc}") from None
    if len(rows) > MAX_BATCH:
        raise ApiProblem(422, "validation_error", f"a batch holds at most {MAX_BATCH} codes")
    return {"supplier_id": supplier_id, "unit_cost": unit_cost,
            "expires_at": expires_at, "rows": rows}


@router.post("/{sku}/batches/generate", status_code=201, response_model=GeneratedOut)
def generate_batch(sku: str, body: GenerateIn, request: Request,
                   who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Generate unguessable redemption codes (兑换码), unique platform-wide."""
    pattern = CodePattern.build(length=body.length, charset=body.charset, prefix=body.prefix,
                                postfix=body.postfix, pattern=body.pattern)
    result = request.app.state.runtime.engine.imports.generate_batch(
        sku=stock_key(who.tenant, sku), count=body.count, pattern=pattern, expires_at=body.expires_at,
        actor=who.actor, batch_key=request.headers.get("idempotency-key"))
    return {"batch_id": str(result.batch_id), "sku": sku, "generated": result.imported}


@router.get("/{sku}/inventory", response_model=InventoryOut)
def inventory(sku: str, request: Request, as_of: Instant | None = as_of_query(),
              who: Principal = Depends(require("app", "support", "finance"))) -> dict[str, Any]:
    """Codes of the SKU by status, now or as the codes' own events made them at `as_of`;
    the parts always sum to the total imported."""
    runtime = request.app.state.runtime
    sku = runtime.engine.catalog.get(stock_key(who.tenant, sku)).sku
    if as_of is not None:
        return inventory_at(runtime.store, sku, as_of)
    runtime.read_your_writes()
    return runtime.codes.inventory(sku)


@router.get("/{sku}/batches", response_model=BatchListOut)
def batches(sku: str, request: Request,
            who: Principal = Depends(require("app", "support", "finance"))) -> dict[str, Any]:
    """Inventory per batch: supplier, unit cost and codes by status."""
    runtime = request.app.state.runtime
    sku = runtime.engine.catalog.get(stock_key(who.tenant, sku)).sku
    runtime.read_your_writes()
    return {"items": runtime.codes.batches(sku), "next_cursor": None}
