"""Money out: payouts of commission to distributors and settlements with suppliers, each
within what the ledger says the payee is owed. A tenant's finance key pays only its
tenant's distributors and suppliers, in its tenant's book; its refs are its own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.responses import OrjsonResponse
from api.schemas import PayeeId, PayoutIn, PayoutOut, SettlementIn, SettlementOut
from engine.kernel.money import Money
from engine.kernel.tenancy import shown, stock_key
from engine.keys import Principal

router = APIRouter(tags=["payouts"])


@router.post("/v1/payouts", status_code=201, response_model=PayoutOut)
def pay_out(body: PayoutIn, request: Request,
            who: Principal = Depends(require("finance"))) -> OrjsonResponse:
    """Pay a distributor commission it is owed; the same payout_ref again answers the
    same, and pays once."""
    paid = request.app.state.runtime.engine.payouts.pay_distributor(
        distributor_id=stock_key(who.tenant, body.distributor_id),
        amount=Money(body.amount, body.currency), payout_ref=body.payout_ref, actor=who.actor,
        tenant=who.tenant)
    return OrjsonResponse({"payout_id": str(paid.id), "distributor_id": shown(paid.payee_id),
                           **_paid(paid), "payout_ref": paid.ref}, status_code=201)


@router.post("/v1/suppliers/{supplier_id}/settlements", status_code=201,
             response_model=SettlementOut)
def settle(supplier_id: PayeeId, body: SettlementIn, request: Request,
           who: Principal = Depends(require("finance"))) -> OrjsonResponse:
    """Pay a supplier what it is owed for delivered codes; the same settlement_ref again
    answers the same, and pays once."""
    paid = request.app.state.runtime.engine.payouts.settle_supplier(
        supplier_id=supplier_id, amount=Money(body.amount, body.currency),
        settlement_ref=body.settlement_ref, actor=who.actor, tenant=who.tenant)
    return OrjsonResponse({"settlement_id": str(paid.id), "supplier_id": paid.payee_id,
                           **_paid(paid), "settlement_ref": paid.ref}, status_code=201)


def _paid(paid: Any) -> dict[str, Any]:
    return {"amount": paid.amount.amount, "currency": paid.amount.currency,
            "paid_at": paid.created_on}
