"""The ledger for finance: accounts and balances (now or as of an instant), an account's
entries, the trial balance. Each read first waits until the read model includes every
event written before it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.schemas import (AccountListOut, BalanceOut, EntryCursor, EntryListOut, Instant,
                         TrialBalanceOut)
from engine.errors import NotFound, ValidationFailed
from engine.keys import Principal

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
FINANCE = require("finance")
CURRENCY = r"^[A-Z]{3}$"


def _ledger(request: Request) -> Any:
    runtime = request.app.state.runtime
    runtime.read_your_writes()
    return runtime.ledger


@router.get("/accounts", response_model=AccountListOut)
def accounts(request: Request, _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """Every account with entries, per currency: debits, credits and balance."""
    return {"items": _ledger(request).accounts(), "next_cursor": None}


@router.get("/trial-balance", response_model=TrialBalanceOut)
def trial_balance(request: Request, as_of: Instant | None = Query(None),
                  currency: str | None = Query(None, pattern=CURRENCY),
                  _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """Every account's balance (as of an instant, in one currency, if given); total debits
    equal total credits."""
    return _ledger(request).trial_balance(as_of, currency)


# `:path` because an account id holds colons (`liabilities:distributors:d-1`); declared
# after the entries route so that `/entries` is never read as part of an account id.
@router.get("/accounts/{account_id:path}/entries", response_model=EntryListOut)
def entries(account_id: str, request: Request, limit: int = Query(100, ge=1, le=1000),
            cursor: EntryCursor | None = Query(None),
            _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """The account's entries in log order, a page at a time."""
    ledger = _ledger(request)
    _known(ledger, account_id)
    after = tuple(int(part) for part in cursor.split(".")) if cursor else None
    items = ledger.entries(account_id, limit, after)
    last = items[-1] if len(items) == limit else None
    return {"items": items, "next_cursor": f"{last['position']}.{last['leg']}" if last else None}


@router.get("/accounts/{account_id:path}", response_model=BalanceOut)
def balance(account_id: str, request: Request, as_of: Instant | None = Query(None),
            currency: str | None = Query(None, pattern=CURRENCY,
                                         description="needed only if the account holds "
                                                     "several currencies"),
            _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """The account's balance now, or as of an instant (the entries at or before it)."""
    ledger = _ledger(request)
    held = _known(ledger, account_id)
    if currency is None and len(held) > 1:
        raise ValidationFailed(f"{account_id} holds {', '.join(held)}: pass currency")
    currency = currency or held[0]
    return {"account_id": account_id, "currency": currency, "as_of": as_of,
            "balance": ledger.balance(account_id, currency, as_of)}


def _known(ledger: Any, account_id: str) -> list[str]:
    held = ledger.currencies(account_id)
    if not held:
        raise NotFound(f"no ledger account {account_id}")
    return held
