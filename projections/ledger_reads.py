"""Reads of the ledger read model (``ledger_entries``) and of the code index beside it, for
reconciliation, statements and the journal. Only the documented columns are read.

Reads by time take a book: a tenant's (only its legs, its accounts named as its book names
them, engine/ledger/transactions.py ``in_book``) or, for None, the consolidated book of every tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from engine.ledger.transactions import in_book
from projections.database import ReadDatabase
from projections.projection import key

ENTRY_COLUMNS = ("txn_id", "leg", "position", "kind", "account", "amount", "currency", "memo",
                 "code_id", "order_id", "refund_id", "payout_id", "settlement_id",
                 "payment_ref", "provider", "at", "tenant")
SELECT = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger_entries"
ORDERED = "ORDER BY position, txn_id, leg"
KEPT = ("sold", "redeemed", "expired")  # a delivered code the buyer still holds
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Entry:
    """One leg as the ledger read model holds it (amount: + debit, − credit)."""

    txn_id: str
    leg: int
    position: int
    kind: str
    account: str
    amount: int
    currency: str
    memo: str | None
    code_id: str | None
    order_id: str | None
    refund_id: str | None
    payout_id: str | None
    settlement_id: str | None
    payment_ref: str | None
    provider: str | None
    at: str
    tenant: str | None = None  # the book it is in (None: the platform's)

    def under(self, parent: str) -> str | None:
        """The account's part below ``parent`` when it is ``parent:<part>`` (a tenant's
        distributor in the consolidated book: ``<tenant>:<id>``), else None."""
        head, found, part = self.account.partition(f"{parent}:")
        return part if found and not head else None


class LedgerReads:
    """Legs by order, by time and by account; codes of the index by id."""

    def __init__(self, db: ReadDatabase) -> None:
        self._db = db

    def of_order(self, order_id: str) -> list[Entry]:
        return self._entries(f"{SELECT} WHERE order_id = %s {ORDERED}", (key(order_id),))

    def of_code(self, code_id: str) -> list[Entry]:
        """The legs that name the code (its cost, reversal or write-off), in log order."""
        return self._entries(f"{SELECT} WHERE code_id = %s {ORDERED}", (key(code_id),))

    def between(self, start: str | None, end: str | None, account: str | None = None,
                book: str | None = None) -> list[Entry]:
        """Legs of ``book`` (None: every book) posted at ``start`` <= at < ``end`` (either
        open), of one account (as stored) or all."""
        where, params = ["1 = 1"], []
        for clause, value in (("at >= %s", start), ("at < %s", end), ("account = %s", account),
                              ("tenant = %s", book)):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self.in_book(self._entries(f"{SELECT} WHERE {' AND '.join(where)} {ORDERED}",
                                          params), book)

    @staticmethod
    def in_book(entries: list[Entry], book: str | None) -> list[Entry]:
        """The entries with their accounts named as ``book`` names them."""
        if book is None:
            return entries
        return [replace(entry, account=in_book(entry.account, book)) for entry in entries]

    def codes(self, code_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{code_id: {sku, status, order_id}}`` from the code index."""
        found: dict[str, dict[str, Any]] = {}
        ids = sorted(set(code_ids))
        with self._db.transaction(write=False) as cursor:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                cursor.execute("SELECT code_id, sku, status, order_id FROM code_index WHERE "
                               f"code_id IN ({', '.join(['%s'] * len(chunk))})", chunk)
                for code_id, sku, status, order_id in cursor.fetchall():
                    found[code_id] = {"sku": sku, "status": status, "order_id": order_id}
        return found

    def units_kept(self, order_id: str) -> int:
        """Codes the index shows the order's buyer still holds."""
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT COUNT(*) FROM code_index WHERE order_id = %s AND status IN "
                           f"({', '.join(['%s'] * len(KEPT))})", (key(order_id), *KEPT))
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _entries(self, sql: str, params: Sequence[Any]) -> list[Entry]:
        with self._db.transaction(write=False) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [Entry(*row) for row in rows]
