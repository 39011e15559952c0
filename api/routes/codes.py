"""Codes one at a time: look-up by string, state (now or as of an instant), history, void."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.limits import subjects
from api.receipt_answers import answers_from_receipt, saved
from api.schemas import (
    CodeOut,
    HistoryOut,
    Instant,
    LookupIn,
    MerchantCodeOut,
    ReasonIn,
    as_of_query,
)
from engine.kernel.errors import NotFound
from engine.keys import Principal
from projections.ledger_reads import Entry, LedgerReads
from replay.as_of import code_state_at

router = APIRouter(prefix="/v1/codes", tags=["codes"])


@router.post("/lookup", response_model=CodeOut | MerchantCodeOut,
             responses={404: {"description": "unknown code (for a merchant key, also a code "
                                             "not yet sold)"},
                        429: {"description": "rate_limited: too many misses lately"}})
def look_up(body: LookupIn, request: Request,
            who: Principal = Depends(require("merchant", "support"))) -> CodeOut | MerchantCodeOut:
    """Find a code by its string (sent in the body, never the URL); no secret comes back,
    and a merchant key sees only what redemption needs, of codes already sold."""
    limiter, codes = request.app.state.misses, request.app.state.runtime.engine.codes
    counted = subjects(who.key_id)
    limiter.check(*counted)
    try:
        if who.role == "merchant":
            return MerchantCodeOut(**codes.look_up_for_merchant(body.code, who.tenant))
        return CodeOut(**codes.look_up(body.code, who.tenant).state())
    except NotFound:
        limiter.missed(*counted)
        raise


@router.get("/{code_id}", response_model=CodeOut)
def code_state(code_id: UUID, request: Request, as_of: Instant | None = as_of_query(),
               who: Principal = Depends(require("support", "app"))) -> dict[str, Any]:
    """The code's state now, or as its own events made it at `as_of`."""
    runtime = request.app.state.runtime
    code = runtime.engine.codes.get(code_id, who.tenant)
    if as_of is None:
        return code.state()
    return code_state_at(runtime.store, code.id, as_of)


@router.get("/{code_id}/history", response_model=HistoryOut)
def history(code_id: UUID, request: Request,
            who: Principal = Depends(require("support"))) -> dict[str, Any]:
    """Everything that happened to the code, oldest first: import, reservation, sale,
    reveals, redemptions, rollbacks, voids; and its ledger postings, oldest first."""
    runtime = request.app.state.runtime
    runtime.engine.codes.get(code_id, who.tenant)
    runtime.read_your_writes()
    postings = LedgerReads(runtime.read_db).of_code(str(code_id))
    return {"code_id": str(code_id), "events": runtime.codes.history(code_id),
            "postings": [_posting(p) for p in postings]}


@router.post("/{code_id}/void", response_model=CodeOut)
@answers_from_receipt(lambda request, receipt: saved(request, receipt, "code").state())
def void(code_id: UUID, body: ReasonIn, request: Request,
         who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Take a code not sold out of circulation for good, with a reason (a sold code is
    voided by refunding its order: 409 otherwise)."""
    runtime = request.app.state.runtime
    return runtime.engine.codes.void(code_id=code_id, reason=body.reason, actor=who.actor,
                                     tenant=who.tenant).state()


def _posting(entry: Entry) -> dict[str, Any]:
    fields = asdict(entry)
    fields["account_id"] = fields.pop("account")
    return fields
