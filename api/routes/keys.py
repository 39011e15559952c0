"""API keys: issue, list and revoke (admin only); a secret is shown once, on issue. A
tenant's admin issues, lists and revokes its own tenant's keys only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.problems import ApiProblem
from api.receipt_answers import answers_from_receipt, saved
from api.schemas import IssuedKeyOut, KeyIn, KeyListOut, KeyOut
from engine.keys import Principal, expiry

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("", response_model=KeyListOut)
def list_keys(request: Request, cursor: str | None = Query(None, pattern=r"^\d{1,18}$"),
              limit: int = Query(100, ge=1, le=1000),
              who: Principal = Depends(require("admin"))) -> dict[str, Any]:
    """Every key in the order issued, without secrets; revoked and expired ones too."""
    keys, more = request.app.state.runtime.engine.keys.listing(int(cursor or 0), limit,
                                                               who.tenant)
    return {"items": [k.view() for k in keys],
            "next_cursor": str(more) if more is not None else None}


@router.post("", status_code=201, response_model=IssuedKeyOut,
             responses={422: {"description": "validation_error: a binding on the wrong "
                                             "role, an expiry in the past"}})
# a key's secret is shown once, on issue: a retry after the answer was lost gets the key
# without it (revoke it and issue another if the secret never arrived)
@answers_from_receipt(lambda request, receipt: saved(request, receipt, "api_key").view(),
                      model=KeyOut)
def issue_key(body: KeyIn, request: Request,
              who: Principal = Depends(require("admin"))) -> dict[str, Any]:
    """Issue a key; the answer carries its secret, which is stored only as a keyed hash."""
    if who.tenant and body.tenant not in (None, who.tenant):
        raise ApiProblem(403, "forbidden", "a tenant's admin issues keys of its tenant only")
    issued = request.app.state.runtime.engine.keys.issue(
        role=body.role, name=body.name, actor=who.actor, merchant_id=body.merchant_id,
        tenant=who.tenant or body.tenant, expires_at=expiry(in_days=body.expires_in_days,
                                              at=body.expires_at))
    return {**issued.key.view(), "secret": issued.secret}


@router.post("/{key_id}/revoke", response_model=KeyOut,
             responses={404: {"description": "not_found"},
                        409: {"description": "invalid_state: already revoked"}})
@answers_from_receipt(lambda request, receipt: saved(request, receipt, "api_key").view())
def revoke_key(key_id: str, request: Request,
               who: Principal = Depends(require("admin"))) -> dict[str, Any]:
    """Revoke a key: every process refuses it from the next request."""
    return request.app.state.runtime.engine.keys.revoke(key_id, who.actor, who.tenant).view()
