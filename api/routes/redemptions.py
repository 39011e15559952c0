"""Redemption (核销) at the merchant's counter, and its rollback."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.limits import subjects
from api.schemas import CodeOut, ReasonIn, RedeemIn, RedemptionOut
from engine.errors import NotFound
from engine.keys import Principal

router = APIRouter(prefix="/v1/redemptions", tags=["redemption"])


@router.post("", status_code=201, response_model=RedemptionOut)
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
def roll_back(redemption_id: UUID, body: ReasonIn, request: Request,
              who: Principal = Depends(require("merchant"))) -> dict[str, Any]:
    """Undo a redemption with a reason; a merchant key may undo only its own."""
    code = request.app.state.runtime.engine.redemptions.roll_back(
        redemption_id=redemption_id, reason=body.reason, actor=who.actor,
        any_actor=who.role == "admin", tenant=who.tenant)
    return code.state()
