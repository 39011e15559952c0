"""The ledger for finance: accounts and balances (now or as of an instant), an account's
entries, the trial balance. Each read first waits until the read model includes every
event written before it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require_platform
from api.schemas import (AccountListOut, BalanceOut, EntryCursor, EntryListOut, Instant,
                         TrialBalanceOut, as_of_query)
from engine.errors import NotFound, ValidationFailed
from engine.keys import Principal
from replay.ledger_at import balances_at, trial_balance_at

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
FINANCE = require_platform("finance")
CURRENCY = r"^[A-Z]{3}$"
CURRENCY_EXAMPLES = {"yuan": {"summary": "Chinese yuan", "value": "CNY"}}


def _ledger(request: Request) -> Any:
    runtime = request.app.state.runtime
    runtime.read_your_writes()
    return runtime.ledger


@router.get("/accounts", response_model=AccountListOut)
def accounts(request: Request, _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """Every account with entries, per currency: debits, credits and balance."""
    return {"items": _ledger(request).accounts(), "next_cursor": None}


@router.get("/trial-balance", response_model=TrialBalanceOut)
def trial_balance(request: Request, as_of: Instant | None = as_of_query(),
                  currency: str | None = Query(None, pattern=CURRENCY,
                                               openapi_examples=CURRENCY_EXAMPLES),
                  _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """Every account's balance (as the posted transactions made it at `as_of`, in one
    currency, if given); total debits equal total credits."""
    if as_of is not None:
        return trial_balance_at(request.app.state.runtime.store, as_of, currency)
    return _ledger(request).trial_balance(None, currency)


# `:path` because an account id holds colons (`liabilities:distributors:d-1`); declared
# after the entries route so that `/entries` is never read as part of an account id.
@router.get("/accounts/{account_id:path}/entries", response_model=EntryListOut)
def entries(account_id: str, request: Request, limit: int = Query(100, ge=1, le=1000),
            cursor: EntryCursor | None = Query(None),
            _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """The account's entries in log order, a page at a time."""
    ledger = _ledger(request)
    _known(ledger, account_id, {})
    after = tuple(int(part) for part in cursor.split(".")) if cursor else None
    items = ledger.entries(account_id, limit, after)
    last = items[-1] if len(items) == limit else None
    return {"items": items, "next_cursor": f"{last['position']}.{last['leg']}" if last else None}


@router.get("/accounts/{account_id:path}", response_model=BalanceOut)
def balance(account_id: str, request: Request, as_of: Instant | None = as_of_query(),
            currency: str | None = Query(None, pattern=CURRENCY,
                                         openapi_examples=CURRENCY_EXAMPLES,
                                         description="needed only if the account holds "
                                                     "several currencies"),
            _: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """The account's balance now, or as the transactions posted at or before `as_of` made
    it (from the events, not the entries table)."""
    ledger = _ledger(request)
    then = None if as_of is None else balances_at(request.app.state.runtime.store,
                                                   account_id, as_of)
    held = sorted(set(_known(ledger, account_id, then or {})))
    if currency is None and len(held) > 1:
        raise ValidationFailed(f"{account_id} holds {', '.join(held)}: pass currency")
    currency = currency or held[0]
    amount = ledger.balance(account_id, currency) if then is None else then.get(currency, 0)
    return {"account_id": account_id, "currency": currency, "as_of": as_of, "balance": amount}


def _known(ledger: Any, account_id: str, then: dict[str, int]) -> list[str]:
    """The currencies the account holds now or held then; NotFound when none."""
    held = ledger.currencies(account_id) + list(then)
    if not held:
        raise NotFound(f"no ledger account {account_id}")
    return held
