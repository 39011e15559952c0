"""The ledger as a journal for an accounting system: rows for a spreadsheet, or a Beancount
file (open directives, then one transaction per ledger transaction) that ``bean-check``
accepts.

Beancount account names: each component starts with an upper-case letter or a digit and
holds letters, digits and '-'. The chart's fixed names have fixed spellings
(``expenses:cost_of_sales`` is ``Expenses:CostOfSales``); any other part is *plain* when it
starts with a lower-case letter or a digit and holds only letters, digits and single '-',
and is then only capitalised (``sup-1`` is ``Sup-1``). A part that is not plain is
sanitised and gets ``--`` and a digest of the original, which no plain part can contain, so
two different accounts never share a name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from itertools import groupby

from projections.ledger_reads import ENTRY_COLUMNS, Entry

FIXED = {"assets": "Assets", "liabilities": "Liabilities", "equity": "Equity",
         "income": "Income", "expenses": "Expenses", "clearing": "Clearing", "bank": "Bank",
         "unearned": "Unearned", "suppliers": "Suppliers", "distributors": "Distributors",
         "sales": "Sales", "cost_of_sales": "CostOfSales", "commission": "Commission",
         "write_offs": "WriteOffs"}
PLAIN = re.compile(r"^[a-z0-9](?:-?[A-Za-z0-9])*$")
NOT_ALLOWED = re.compile(r"[^A-Za-z0-9-]")
EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3,
             "OMR": 3, "JOD": 3, "TND": 3}  # ISO 4217 minor units; any other: 2
DEFAULT_EXPONENT = 2
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
JOURNAL_COLUMNS = ENTRY_COLUMNS


def journal_rows(entries: Sequence[Entry]) -> Iterator[tuple[object, ...]]:
    """One row per leg, in the columns of ``JOURNAL_COLUMNS``."""
    for entry in entries:
        yield tuple(getattr(entry, column) for column in JOURNAL_COLUMNS)


def beancount_account(account: str) -> str:
    """The account's Beancount name (see the module docstring)."""
    parts = account.split(":")
    named = [FIXED.get(part) if n < 2 else None for n, part in enumerate(parts)]
    return ":".join(name or _component(part) for name, part in zip(named, parts))


def _component(part: str) -> str:
    if PLAIN.match(part):
        return part[0].upper() + part[1:]
    cleaned = NOT_ALLOWED.sub("-", part).strip("-") or "X"
    if not cleaned[0].isupper() and not cleaned[0].isdigit():
        cleaned = "X" + cleaned if not cleaned[0].isalpha() else cleaned[0].upper() + cleaned[1:]
    digest = hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned}--{digest}"


def decimal(amount: int, currency: str) -> str:
    """Minor units as a decimal in the currency's exponent: 1990 CNY is 19.90."""
    exponent = EXPONENTS.get(currency, DEFAULT_EXPONENT)
    sign, digits = ("-" if amount < 0 else ""), str(abs(amount))
    if exponent == 0:
        return sign + digits
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def beancount(entries: Sequence[Entry], opened_on: str | None = None) -> str:
    """The legs as a Beancount file: every account opened (on ``opened_on``, a date, or the
    day it is first used), then the transactions in the order they were posted."""
    first_use: dict[str, str] = {}
    for entry in entries:  # the earliest day, not the first posted: two writers' clocks
        name = beancount_account(entry.account)  # may order them the other way round
        first_use[name] = min(first_use.get(name, entry.at[:10]), entry.at[:10])
    lines = [f"{opened_on or day} open {name}" for name, day in
             sorted(first_use.items(), key=lambda item: (opened_on or item[1], item[0]))]
    for txn_id, legs in groupby(entries, key=lambda e: e.txn_id):
        lines.append("")
        lines.extend(_transaction(txn_id, list(legs)))
    return "\n".join(lines) + "\n"


def _transaction(txn_id: str, legs: list[Entry]) -> list[str]:
    head = legs[0]
    lines = [f'{head.at[:10]} * "{head.kind}" "{_text(_narration(head))}"',
             f'  txn_id: "{txn_id}"']
    if head.order_id:
        lines.append(f'  order_id: "{_text(head.order_id)}"')
    for leg in legs:
        lines.append(f"  {beancount_account(leg.account)}  "
                     f"{decimal(leg.amount, leg.currency)} {leg.currency}")
        if leg.memo:
            lines.append(f'    memo: "{_text(leg.memo)}"')
        if leg.code_id:
            lines.append(f'    code_id: "{_text(leg.code_id)}"')
    return lines


def _narration(head: Entry) -> str:
    links = [f"{name} {value}" for name, value in (
        ("order", head.order_id), ("payment", head.payment_ref), ("refund", head.refund_id),
        ("payout", head.payout_id), ("settlement", head.settlement_id)) if value]
    return f"{head.kind}: {', '.join(links)}" if links else head.kind


def _text(value: str) -> str:
    """A Beancount string's content: quotes and backslashes escaped, control characters as
    spaces (a string may not span what a reader takes for a new directive)."""
    return CONTROL.sub(" ", value).replace("\\", "\\\\").replace('"', '\\"')
