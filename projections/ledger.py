"""The ledger read model: one row per leg of every ledger transaction, and per account (and
currency) its running debits, credits and balance (docs/ledger.md).

Each leg carries the tenant whose book its transaction is in (NULL: the platform's). The
accounts' running sums are the consolidated book; a tenant's book is summed from its legs
(projections/ledger_queries.py).

Balances are debits − credits, so a liability or income account that is owed or has earned
shows a negative balance. Running sums are added in Python and kept within a BIGINT: a debit
or credit total only grows, so clamping it at each chunk gives the same result however the
log is cut into chunks (a rebuild equals the live tables).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.ledger.transactions import LedgerTransaction
from projections.database import Cursor, storable
from projections.projection import (
    Chunk,
    Projection,
    Table,
    bigint,
    event_handlers,
    iso,
    key,
)

LINKS = ("order_id", "refund_id", "payout_id", "settlement_id", "payment_ref", "provider")
ENTRY_COLUMNS = ("txn_id", "leg", "position", "kind", "account", "amount", "currency", "memo",
                 "code_id") + LINKS + ("at", "tenant")
ACCOUNTS_A_READ = 500
ACCOUNT_COLUMNS = ("account", "currency", "debits", "credits", "balance", "entries")

LEDGER_ENTRIES = Table("ledger_entries", (
    "CREATE TABLE IF NOT EXISTS ledger_entries (txn_id TEXT NOT NULL, leg INTEGER NOT NULL, "
    "position BIGINT NOT NULL, kind TEXT, account TEXT NOT NULL, amount BIGINT NOT NULL, "
    "currency TEXT NOT NULL, memo TEXT, code_id TEXT, order_id TEXT, refund_id TEXT, "
    "payout_id TEXT, settlement_id TEXT, payment_ref TEXT, provider TEXT, at TEXT NOT NULL, "
    "tenant TEXT, PRIMARY KEY (txn_id, leg))",
    "CREATE INDEX IF NOT EXISTS ledger_entries_account "
    "ON ledger_entries (account, position, leg)",
    "CREATE INDEX IF NOT EXISTS ledger_entries_account_at ON ledger_entries (account, at)",
    "CREATE INDEX IF NOT EXISTS ledger_entries_at ON ledger_entries (at)",
    "CREATE INDEX IF NOT EXISTS ledger_entries_order ON ledger_entries (order_id)",
    # Partial: most legs name no code, and the replay pays for every indexed row.
    "CREATE INDEX IF NOT EXISTS ledger_entries_code ON ledger_entries (code_id) "
    "WHERE code_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ledger_entries_tenant ON ledger_entries (tenant, account, at) "
    "WHERE tenant IS NOT NULL",
), "txn_id, leg")

LEDGER_ACCOUNTS = Table("ledger_accounts", (
    "CREATE TABLE IF NOT EXISTS ledger_accounts (account TEXT NOT NULL, "
    "currency TEXT NOT NULL, debits BIGINT NOT NULL, credits BIGINT NOT NULL, "
    "balance BIGINT NOT NULL, entries BIGINT NOT NULL, PRIMARY KEY (account, currency))",
), "account, currency")


@dataclass
class LedgerChunk(Chunk):
    """The entries a chunk posts, written (and added to their accounts) at its end."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)


class LedgerProjection(Projection):
    name = "ledger"
    tables = (LEDGER_ENTRIES, LEDGER_ACCOUNTS)
    project = event_handlers()

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(LEDGER_ENTRIES.create[0])
        _add_tenant_column(cursor)
        super().create_tables(cursor)

    def open_chunk(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> LedgerChunk:
        return LedgerChunk(cursor)

    def close_chunk(self, chunk: LedgerChunk) -> None:
        if chunk.entries:
            chunk.cursor.executemany(
                f"INSERT INTO ledger_entries ({', '.join(ENTRY_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(ENTRY_COLUMNS))})", chunk.entries)
            _add_to_accounts(chunk.cursor, chunk.entries)

    @project.register
    def _posted(self, event: LedgerTransaction.Created, position: int,
                chunk: LedgerChunk) -> None:
        chunk.entries += entry_rows(position, event)


def entry_rows(position: int, event: Any) -> list[tuple[Any, ...]]:
    """The ``ledger_entries`` rows (ENTRY_COLUMNS) of one posted transaction."""
    links = event.links if isinstance(event.links, dict) else {}
    linked = tuple(key(_text(links.get(name))) for name in LINKS)
    at, txn_id = iso(event.timestamp), str(event.originator_id)
    tenant = key(_text(getattr(event, "tenant", None)))
    return [(txn_id, number, position, event.kind, account_key(leg.account),
             bigint(leg.amount.amount), account_key(leg.amount.currency), leg.memo,
             key(_text(leg.code_id))) + linked + (at, tenant)
            for number, leg in enumerate(event.legs)]


def _add_tenant_column(cursor: Cursor) -> None:
    """A table made before legs carried their tenant gains the column, NULL in every row:
    the platform's, as a rebuild makes them (those transactions' events are upcast to no
    tenant, engine/ledger/transactions.py), so the migrated table equals a rebuilt one."""
    cursor.execute("SELECT * FROM ledger_entries WHERE 1 = 0")
    if "tenant" not in {column[0] for column in cursor.description or ()}:
        cursor.execute("ALTER TABLE ledger_entries ADD COLUMN tenant TEXT")


def account_key(text: str) -> str:
    """An account or currency as both stores hold it (PostgreSQL cannot hold NUL), so the
    accounts' sums are read back by the very text they were written under; queries pass
    their look-up values through it too."""
    return storable(key(text))


def _known_sums(cursor: Cursor, accounts: list[str]) -> dict[tuple[str, str], Sequence[Any]]:
    """The stored sums of the given accounts, a few hundred accounts a query."""
    known: dict[tuple[str, str], Sequence[Any]] = {}
    for start in range(0, len(accounts), ACCOUNTS_A_READ):
        some = accounts[start:start + ACCOUNTS_A_READ]
        cursor.execute("SELECT account, currency, debits, credits, entries FROM "
                       f"ledger_accounts WHERE account IN ({', '.join(['%s'] * len(some))})",
                       some)
        known.update({(row[0], row[1]): row[2:] for row in cursor.fetchall()})
    return known


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


Sums = dict[tuple[str, str], list[int]]


def add_up(entries: Sequence[tuple[Any, ...]], into: Sums | None = None) -> Sums:
    """Per (account, currency), ``[debits, credits, entries]`` of the entry rows, added to
    ``into`` when given: the one fold of legs into balances, which the live tables and the
    as-of answers (replay/ledger_at.py) both use."""
    added: Sums = into if into is not None else defaultdict(lambda: [0, 0, 0])
    for entry in entries:
        account, amount, currency = entry[4], entry[5], entry[6]
        sums = added[(account, currency)]
        sums[0 if amount > 0 else 1] += abs(amount)
        sums[2] += 1
    return added


def _add_to_accounts(cursor: Cursor, entries: list[tuple[Any, ...]]) -> None:
    """Add the entries' debits and credits to their accounts' running sums."""
    added = add_up(entries)
    known = _known_sums(cursor, sorted({account for account, _ in added}))
    rows = []
    for (account, currency), (debits, credits, count) in added.items():
        was = known.get((account, currency), (0, 0, 0))
        debits, credits = bigint(int(was[0]) + debits), bigint(int(was[1]) + credits)
        rows.append((account, currency, debits, credits, debits - credits,
                     bigint(int(was[2]) + count)))
    cursor.executemany(
        f"INSERT INTO ledger_accounts ({', '.join(ACCOUNT_COLUMNS)}) VALUES "
        f"({', '.join(['%s'] * len(ACCOUNT_COLUMNS))}) ON CONFLICT (account, currency) DO "
        "UPDATE SET debits = excluded.debits, credits = excluded.credits, "
        "balance = excluded.balance, entries = excluded.entries", rows)
