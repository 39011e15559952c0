"""A payment provider's statement against the ledger: each (payment_ref, type) the statement
lists is matched with the same on the provider's clearing account over the statement's
period (its earliest to its latest ``at``, both included).

Amounts are summed per (payment_ref, type) on both sides, so two partial refunds of one
payment match one statement line of their sum, or two lines of one each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.ledger_reads import Entry

CAPTURE, REFUND = "capture", "refund"


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of a provider's statement (``at``: an aware UTC instant)."""

    payment_ref: str
    amount: int
    type: str  # capture | refund
    at: datetime


def period(lines: Sequence[StatementLine]) -> tuple[datetime, datetime]:
    """The statement's first and last instants."""
    moments = [line.at for line in lines]
    return min(moments), max(moments)


def match(lines: Iterable[StatementLine], clearing_legs: Iterable[Entry]) -> dict[str, Any]:
    """Matched lines, lines only one side has, and lines whose amounts differ."""
    stated = _summed((line.payment_ref, line.type, line.amount) for line in lines)
    booked = _summed((leg.payment_ref, CAPTURE if leg.amount > 0 else REFUND, abs(leg.amount))
                     for leg in clearing_legs)
    both = stated.keys() & booked.keys()
    return {
        "matched": sum(1 for k in both if stated[k] == booked[k]),
        "missing_in_ledger": [_line(k, stated[k]) for k in sorted(stated.keys() - both)],
        "missing_in_statement": [_line(k, booked[k]) for k in sorted(booked.keys() - both,
                                                                      key=_sortable)],
        "amount_differences": [
            {"payment_ref": ref, "type": kind, "statement": stated[(ref, kind)],
             "ledger": booked[(ref, kind)]}
            for ref, kind in sorted(k for k in both if stated[k] != booked[k])]}


def _summed(rows: Iterable[tuple[str | None, str, int]]) -> dict[tuple[Any, str], int]:
    sums: dict[tuple[Any, str], int] = defaultdict(int)
    for ref, kind, amount in rows:
        sums[(ref, kind)] += amount
    return dict(sums)


def _sortable(k: tuple[str | None, str]) -> tuple[str, str]:
    return (k[0] or "", k[1])


def _line(k: tuple[str | None, str], amount: int) -> dict[str, Any]:
    return {"payment_ref": k[0], "type": k[1], "amount": amount}
