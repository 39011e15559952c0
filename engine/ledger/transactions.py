"""The ledger: double-entry transactions over a chart of accounts (docs/ledger.md).

Money and codes are separate books. A ``LedgerTransaction`` is its own aggregate, created
once, with one event, in the same atomic save as the business event that caused it (a
payment, a refund, a payout, a settlement), so the two are never seen apart. Its id derives
from that cause, so a retried command cannot post twice. Its legs sum to zero per currency,
checked before the event exists: an unbalanced transaction cannot be stored.

No aggregate per account: platform revenue and each provider's clearing account are touched
by every sale, and a per-account aggregate would make them a serialisation point. Balances
are projections (projections/ledger.py).

Sign convention: a leg's amount is positive for a debit and negative for a credit.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from engine.kernel.errors import UnbalancedTransaction, ValidationFailed
from engine.kernel.ids import NAMESPACE
from engine.kernel.money import Money

# -- the chart of accounts ----------------------------------------------------------------

BANK = "assets:bank"
UNEARNED = "liabilities:unearned"
SALES = "income:sales"
COST_OF_SALES = "expenses:cost_of_sales"
COMMISSION = "expenses:commission"
WRITE_OFFS = "expenses:write_offs"
DISTRIBUTORS = "liabilities:distributors"
DEFAULT_PROVIDER = "default"
TYPES = ("assets", "liabilities", "equity", "income", "expenses")
PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def clearing(provider: str | None) -> str:
    """What a payment provider holds for the platform until it settles."""
    return _account("assets:clearing", provider or DEFAULT_PROVIDER)


def supplier_payable(supplier_id: str) -> str:
    """What the platform owes a supplier for codes it delivered."""
    return _account("liabilities:suppliers", supplier_id)


def distributor_payable(distributor_id: str) -> str:
    """Commission the platform owes a distributor."""
    return _account(DISTRIBUTORS, distributor_id)


def _account(parent: str, part: str) -> str:
    """``parent:part``; a tenant's distributor or supplier (``<tenant>:<id>``,
    engine/kernel/tenancy.py) names one part more: its tenant's."""
    if not all(PART.match(p) for p in part.split(":", 1)):
        raise ValidationFailed(f"{part!r} cannot name a ledger account: use letters, digits, "
                               "'.', '_' or '-' (at most 64)")
    return f"{parent}:{part}"


def in_book(account: str, tenant: str | None) -> str:
    """The account as ``tenant``'s book names it: its distributors without the tenant
    part their ids are stored under (``liabilities:distributors:acme:d-1`` is
    ``liabilities:distributors:d-1`` to acme), as its SKUs are shown; every other account
    as it is. The consolidated book (None) names every account as stored."""
    prefix = f"{DISTRIBUTORS}:{tenant}:"
    if tenant is not None and account.startswith(prefix):
        return f"{DISTRIBUTORS}:{account.removeprefix(prefix)}"
    return account


def stored_account(account: str, tenant: str | None) -> str:
    """The account a name of ``tenant``'s book stands for (``in_book`` undone)."""
    prefix = f"{DISTRIBUTORS}:"
    if tenant is not None and account.startswith(prefix):
        return f"{prefix}{tenant}:{account.removeprefix(prefix)}"
    return account


def account_type(account: str) -> str:
    """assets, liabilities, equity, income or expenses: the account's first part."""
    kind = account.split(":", 1)[0]
    if kind not in TYPES:
        raise ValidationFailed(f"{account!r} is not an account of the chart")
    return kind


# -- transactions -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Leg:
    """One posting: an amount to an account (+ debit, − credit), what it is, and the code it
    concerns when it concerns one."""

    account: str
    amount: Money
    memo: str
    code_id: str | None = None

    def to_json(self) -> list[Any]:
        """``[account, minor units, currency, memo]`` and the code id when there is one: a
        flat form, since a sale carries a dozen legs and every byte of it is written, kept
        and read again by every follower of the log."""
        data = [self.account, self.amount.amount, self.amount.currency, self.memo]
        if self.code_id is not None:
            data.append(self.code_id)
        return data

    @classmethod
    def from_json(cls, data: list[Any]) -> "Leg":
        account, amount, currency, memo, *code = data
        return cls(account, Money(amount, currency), memo, code[0] if code else None)


def check_balanced(legs: list[Leg]) -> None:
    """Refuse legs that do not sum to zero in every currency, or that post nothing."""
    if not legs:
        raise UnbalancedTransaction("a transaction needs legs")
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        account_type(leg.account)
        totals[leg.amount.currency] += leg.amount.amount
    unbalanced = {currency: total for currency, total in totals.items() if total}
    if unbalanced:
        raise UnbalancedTransaction(f"legs do not balance: {unbalanced}")


def transaction_id(kind: str, cause: str) -> UUID:
    """The one transaction a cause (``kind`` + its natural key) may post."""
    return uuid5(NAMESPACE, f"ledger:{kind}:{cause}")


class LedgerTransaction(Aggregate):
    """A balanced set of legs and what caused it (order, payment, refund, payout,
    settlement ids in ``links``), in the book of the tenant whose order, payout or
    settlement moved the money (None: the platform's). Created once; corrections are new
    transactions."""

    TOPIC = "quanyi:ledger_transaction"
    REMEMBER = False  # never loaded to decide on: the writer need not keep a copy (recent.py)

    class Created(Aggregate.Created):
        TOPIC = "quanyi:ledger.posted"
        class_version = 2
        kind: str
        legs: list[Leg]
        links: dict[str, str]
        actor: str
        tenant: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Transactions posted before tenants kept books are in the platform's book."""
            state["tenant"] = None

    def __init__(self, *, id: UUID, kind: str, legs: list[Leg], links: dict[str, str],
                 actor: str, tenant: str | None) -> None:
        self.kind = kind
        self.legs = list(legs)
        self.links = dict(links)
        self.tenant = tenant

    @classmethod
    def post(cls, *, kind: str, cause: str, legs: list[Leg], links: dict[str, str],
             actor: str, tenant: str | None) -> "LedgerTransaction":
        """A new transaction in ``tenant``'s book, refused before any event exists unless
        it balances."""
        legs = [leg for leg in legs if leg.amount.amount != 0]
        check_balanced(legs)
        return cls(id=transaction_id(kind, cause), kind=kind, legs=legs, links=links,
                   actor=actor, tenant=tenant)
