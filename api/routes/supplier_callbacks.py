"""Suppliers' callbacks on top-up attempts. No API key: the supplier's adapter checks its
signature (an unsigned, wrongly signed or stale callback is refused before anything is
read from it). A callback for an attempt already decided is acknowledged and recorded, and
changes nothing (engine/topups/desk.py); a signed one naming no attempt of this supplier is
answered 200 ``ignored``, so that the supplier stops sending it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.schemas import SupplierCallbackOut

router = APIRouter(tags=["suppliers"])


@router.post("/v1/suppliers/{supplier_id}/callbacks", response_model=SupplierCallbackOut,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {
                     "$ref": "#/components/schemas/SupplierCallbackIn"}}}}})
async def supplier_callback(supplier_id: str, request: Request) -> dict[str, Any]:
    """A supplier reports a top-up attempt's outcome, signed (docs/suppliers.md)."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    topups = request.app.state.runtime.engine.topups
    report, fulfilment = await run_in_threadpool(
        lambda: topups.take_callback(supplier_id=supplier_id, headers=headers, body=body))
    return {"reference": report.reference, "outcome": str(report.outcome),
            "result": "ignored" if fulfilment is None else "recorded",
            "topup_status": None if fulfilment is None else fulfilment.status}
