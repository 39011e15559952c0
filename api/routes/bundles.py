"""Dispute bundles for support and finance: an order's or a code's events with their
inclusion proofs in a freshly signed head, checked offline by `quanyi audit verify-bundle`
(docs/audit.md)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.responses import OrjsonResponse
from api.routes.orders import order_view
from api.schemas import BundleOut
from engine.keys import Principal
from replay.bundles import Bundles

router = APIRouter(prefix="/v1/audit", tags=["audit"])
AUDITORS = require("support", "finance")


def _bundles(request: Request) -> Bundles:
    runtime = request.app.state.runtime
    return Bundles(runtime.store, runtime.audit, runtime.ledger, runtime.read_your_writes)


@router.get("/orders/{order_id}/bundle", response_model=BundleOut)
def order_bundle(order_id: UUID, request: Request,
                 who: Principal = Depends(AUDITORS)) -> OrjsonResponse:
    """The order's dispute bundle: its events, its payments' and ledger transactions'
    events, each with its inclusion proof, a freshly signed head and the order's view."""
    def view(order: Any) -> dict[str, Any]:
        shown = order_view(request, order)
        # a bundle leaves the operator: not even a masked part of a code goes with it
        shown["codes"] = [{k: v for k, v in c.items() if k != "masked"}
                          for c in shown["codes"]]
        return shown
    return OrjsonResponse(_bundles(request).of_order(order_id, who.scope, view))


@router.get("/codes/{code_id}/bundle", response_model=BundleOut)
def code_bundle(code_id: UUID, request: Request,
                who: Principal = Depends(AUDITORS)) -> OrjsonResponse:
    """The code's dispute bundle: its events and its ledger transactions' events, each with
    its inclusion proof, a freshly signed head and the code's state."""
    request.app.state.runtime.engine.codes.get(code_id, who.tenant)
    return OrjsonResponse(_bundles(request).of_code(code_id, lambda code: code.state()))
