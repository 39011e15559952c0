"""Redemption (核销) at the merchant's counter, and its rollback."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.limits import subjects
from api.receipt_answers import answers_from_receipt, saved
from api.schemas import CodeOut, ReasonIn, RedeemIn, RedemptionOut
from engine.eventstore.receipts import CommandReceipt
from engine.kernel.errors import NotFound
from engine.keys import Principal

router = APIRouter(prefix="/v1/redemptions", tags=["redemption"])


def _redemption_made(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    """The redemption as its code recorded it (the code's redemption until rolled back)."""
    redemption, code = saved(request, receipt, "redemption"), saved(request, receipt, "code")
    done = code.redemption if code.redemption and \
        code.redemption["redemption_id"] == str(redemption.id) else {
            "merchant_id": redemption.merchant_id, "terminal_id": None, "location": None,
            "at": redemption.created_on}
    return {"redemption_id": str(redemption.id), "code_id": str(code.id), "sku": code.sku,
            "redeemed_at": done["at"], "merchant_id": done["merchant_id"],
            "terminal_id": done["terminal_id"], "location": done["location"]}


@router.post("", status_code=201, response_model=RedemptionOut)
@answers_from_receipt(_redemption_made)
def redeem(body: RedeemIn, request: Request,
           who: Principal = Depends(require("merchant"))) -> dict[str, Any]:
    """Redeem a sold code; a second redemption answers who redeemed it first, and when."""
    who.check_redeems_as(body.merchant_id)
    limiter = request.app.state.misses
    counted = subjects(who.key_id, body.merchant_id)
    limiter.check(*counted)
    try:
        code, redemption = request.app.state.runtime.engine.redemptions.redeem(
            code=body.code, merchant_id=body.merchant_id, terminal_id=body.terminal_id,
            location=body.location, actor=who.actor, tenant=who.tenant)
    except NotFound:
        limiter.missed(*counted)
        raise
    return {"redemption_id": str(redemption.id), "code_id": str(code.id), "sku": code.sku,
            "redeemed_at": code.redemption["at"], "merchant_id": body.merchant_id,
            "terminal_id": body.terminal_id, "location": body.location}


@router.post("/{redemption_id}/rollback", response_model=CodeOut)
@answers_from_receipt(lambda request, receipt: saved(request, receipt, "code").state())
def roll_back(redemption_id: UUID, body: ReasonIn, request: Request,
              who: Principal = Depends(require("merchant"))) -> dict[str, Any]:
    """Undo a redemption with a reason; a merchant key may undo only its own."""
    code = request.app.state.runtime.engine.redemptions.roll_back(
        redemption_id=redemption_id, reason=body.reason, actor=who.actor,
        any_actor=who.role == "admin", tenant=who.tenant)
    return code.state()
