"""The ledger for finance: accounts and balances (now or as of an instant), an account's
entries, the trial balance. Each read first waits until the read model includes every
event written before it.

A tenant's finance key reads its tenant's book (a platform key too, with the tenant's
`Quanyi-Tenant` header); a platform key without it reads the consolidated book."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.schemas import (
    AccountListOut,
    BalanceOut,
    EntryCursor,
    EntryListOut,
    Instant,
    TrialBalanceOut,
    as_of_query,
)
from engine.kernel.errors import NotFound, ValidationFailed
from engine.keys import Principal
from replay.ledger_at import balances_at, trial_balance_at

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
FINANCE = require("finance")
CURRENCY = r"^[A-Z]{3}$"
CURRENCY_EXAMPLES = {"yuan": {"summary": "Chinese yuan", "value": "CNY"}}


def _ledger(request: Request) -> Any:
    runtime = request.app.state.runtime
    runtime.read_your_writes()
    return runtime.ledger


@router.get("/accounts", response_model=AccountListOut)
def accounts(request: Request, who: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """Every account of the book with entries, per currency: debits, credits and
    balance."""
    return {"items": _ledger(request).accounts(None, who.tenant), "next_cursor": None}


@router.get("/trial-balance", response_model=TrialBalanceOut)
def trial_balance(request: Request, as_of: Instant | None = as_of_query(),
                  currency: str | None = Query(None, pattern=CURRENCY,
                                               openapi_examples=CURRENCY_EXAMPLES),
                  who: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """Every account's balance in the book (as the posted transactions made it at `as_of`,
    in one currency, if given); total debits equal total credits, in each tenant's book
    and in the consolidated one, which is their sum."""
    if as_of is not None:
        return trial_balance_at(request.app.state.runtime.store, as_of, currency, who.tenant)
    return _ledger(request).trial_balance(None, currency, who.tenant)


# `:path` because an account id holds colons (`liabilities:distributors:d-1`); declared
# after the entries route so that `/entries` is never read as part of an account id.
@router.get("/accounts/{account_id:path}/entries", response_model=EntryListOut)
def entries(account_id: str, request: Request, limit: int = Query(100, ge=1, le=1000),
            cursor: EntryCursor | None = Query(None),
            who: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """The account's entries in the book, in log order, a page at a time."""
    ledger = _ledger(request)
    _known(ledger, account_id, {}, who.tenant)
    after = tuple(int(part) for part in cursor.split(".")) if cursor else None
    items = ledger.entries(account_id, limit, after, who.tenant)
    last = items[-1] if len(items) == limit else None
    return {"items": items, "next_cursor": f"{last['position']}.{last['leg']}" if last else None}


@router.get("/accounts/{account_id:path}", response_model=BalanceOut)
def balance(account_id: str, request: Request, as_of: Instant | None = as_of_query(),
            currency: str | None = Query(None, pattern=CURRENCY,
                                         openapi_examples=CURRENCY_EXAMPLES,
                                         description="needed only if the account holds "
                                                     "several currencies"),
            who: Principal = Depends(FINANCE)) -> dict[str, Any]:
    """The account's balance in the book now, or as the transactions posted at or before
    `as_of` made it (from the events, not the entries table)."""
    ledger, book = _ledger(request), who.tenant
    then = None if as_of is None else balances_at(request.app.state.runtime.store,
                                                   account_id, as_of, book)
    held = sorted(set(_known(ledger, account_id, then or {}, book)))
    if currency is None and len(held) > 1:
        raise ValidationFailed(f"{account_id} holds {', '.join(held)}: pass currency")
    currency = currency or held[0]
    amount = (ledger.balance(account_id, currency, None, book) if then is None
              else then.get(currency, 0))
    return {"account_id": account_id, "currency": currency, "as_of": as_of, "balance": amount}


def _known(ledger: Any, account_id: str, then: dict[str, int], book: str | None
           ) -> list[str]:
    """The currencies the account holds in the book now or held then; NotFound when
    none (as for an account another tenant's book holds)."""
    held = ledger.currencies(account_id, book) + list(then)
    if not held:
        raise NotFound(f"no ledger account {account_id}")
    return held
