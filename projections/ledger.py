"""The ledger read model: one row per leg (``ledger_entries``) and each account's running
totals (``ledger_accounts``), both built from ``LedgerTransaction.Created`` only.

A leg's amount is signed as in the event (+ debit, − credit); an account's balance is its
debits less its credits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from engine.ledger import LedgerTransaction
from projections.database import Cursor
from projections.projection import Projection, Table, bigint, iso, key

ENTRY_COLUMNS = ("txn_id", "leg", "position", "kind", "account", "amount", "currency", "memo",
                 "code_id", "order_id", "refund_id", "payout_id", "settlement_id",
                 "payment_ref", "provider", "at")
LINKED = ("order_id", "refund_id", "payout_id", "settlement_id", "payment_ref", "provider")

LEDGER_ENTRIES = Table("ledger_entries", (
    "CREATE TABLE IF NOT EXISTS ledger_entries (txn_id TEXT NOT NULL, leg INTEGER NOT NULL, "
    "position BIGINT NOT NULL, kind TEXT NOT NULL, account TEXT NOT NULL, "
    "amount BIGINT NOT NULL, currency TEXT NOT NULL, memo TEXT, code_id TEXT, order_id TEXT, "
    "refund_id TEXT, payout_id TEXT, settlement_id TEXT, payment_ref TEXT, provider TEXT, "
    "at TEXT NOT NULL, PRIMARY KEY (txn_id, leg))",
    "CREATE INDEX IF NOT EXISTS ledger_entries_order ON ledger_entries (order_id)",
    "CREATE INDEX IF NOT EXISTS ledger_entries_at ON ledger_entries (at)",
), "txn_id, leg")

LEDGER_ACCOUNTS = Table("ledger_accounts", (
    "CREATE TABLE IF NOT EXISTS ledger_accounts (account TEXT NOT NULL, currency TEXT NOT NULL, "
    "debits BIGINT NOT NULL, credits BIGINT NOT NULL, balance BIGINT NOT NULL, "
    "entries BIGINT NOT NULL, PRIMARY KEY (account, currency))",
), "account, currency")


class LedgerProjection(Projection):
    name = "ledger"
    tables = (LEDGER_ENTRIES, LEDGER_ACCOUNTS)

    def apply(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> None:
        entries: list[tuple[Any, ...]] = []
        totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for position, event in events:
            if isinstance(event, LedgerTransaction.Created):
                for number, leg in enumerate(event.legs):
                    entries.append(self._entry(position, event, number, leg))
                    total = totals[(leg.account, leg.amount.currency)]
                    total[0 if leg.amount.amount > 0 else 1] += abs(leg.amount.amount)
                    total[2] += 1
        if entries:
            cursor.executemany(
                f"INSERT INTO ledger_entries ({', '.join(ENTRY_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(ENTRY_COLUMNS))})", entries)
        for (account, currency), (debits, credits, count) in totals.items():
            cursor.execute(
                "INSERT INTO ledger_accounts (account, currency, debits, credits, balance, "
                "entries) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account, currency) DO "
                "UPDATE SET debits = ledger_accounts.debits + excluded.debits, "
                "credits = ledger_accounts.credits + excluded.credits, "
                "balance = ledger_accounts.balance + excluded.balance, "
                "entries = ledger_accounts.entries + excluded.entries",
                (account, currency, debits, credits, debits - credits, count))

    @staticmethod
    def _entry(position: int, event: Any, number: int, leg: Any) -> tuple[Any, ...]:
        links = event.links
        return (str(event.originator_id), number, position, event.kind, leg.account,
                bigint(leg.amount.amount), leg.amount.currency, leg.memo, leg.code_id,
                *(key(links.get(name)) for name in LINKED), iso(event.timestamp))
