"""Reads of the ledger read model: balances (now or as of an instant), an account's
entries, the trial balance; also the balance source payouts check against.

Each read is of a book: a tenant's (its legs only, summed from them, its accounts named as
its book names them: engine/ledger/transactions.py ``in_book``) or, for None, the consolidated book of
every tenant and the platform (the accounts' running sums), whose trial balance is the sum
of theirs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.kernel.errors import ValidationFailed
from engine.ledger.transactions import account_type, in_book, stored_account
from projections.database import ReadDatabase
from projections.ledger import ENTRY_COLUMNS, account_key
from projections.projection import iso, key
from projections.runner import ProjectionRunner

SUMS = ("COALESCE(SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN amount < 0 THEN -amount ELSE 0 END), 0)")
ENTRY_FIELDS = tuple("account_id" if c == "account" else c for c in ENTRY_COLUMNS)


def account_row(account: str, currency: str, debits: int, credits: int) -> dict[str, Any]:
    """An account's line as the ledger reads answer it (now, or as of an instant)."""
    try:
        kind = account_type(account)
    except ValidationFailed:  # a name outside the chart, stored by hand: shown, not refused
        kind = "unknown"
    debits, credits = int(debits), int(credits)
    return {"account_id": account, "type": kind, "currency": currency, "debits": debits,
            "credits": credits, "balance": debits - credits}


def trial_balance_of(accounts: list[dict[str, Any]], as_of: datetime | None,
                     currency: str | None = None) -> dict[str, Any]:
    """The trial balance of account rows (``account_row``), in one currency if given."""
    kept = [a for a in accounts if currency is None or a["currency"] == currency]
    return {"accounts": kept,
            "total_debits": sum(max(a["balance"], 0) for a in kept),
            "total_credits": sum(max(-a["balance"], 0) for a in kept), "as_of": as_of}


class LedgerQueries:
    """Balances, entries and the trial balance, from the ledger projection's tables."""

    def __init__(self, db: ReadDatabase, runner: ProjectionRunner) -> None:
        self._db = db
        self._runner = runner

    def accounts(self, as_of: datetime | None = None,
                 book: str | None = None) -> list[dict[str, Any]]:
        """Every account of the book with entries, per currency, by name: debits, credits,
        balance."""
        where, params = _book_filter(book, as_of)
        if book is None and as_of is None:
            sql = ("SELECT account, currency, debits, credits FROM ledger_accounts "
                   "ORDER BY account, currency")
        else:
            sql = (f"SELECT account, currency, {SUMS} FROM ledger_entries WHERE {where} "
                   "GROUP BY account, currency ORDER BY account, currency")
        with self._db.transaction(write=False) as cursor:
            cursor.execute(sql, params)
            rows = [account_row(in_book(account, book), currency, debits, credits)
                    for account, currency, debits, credits in cursor.fetchall()]
        return sorted(rows, key=lambda row: (row["account_id"], row["currency"]))

    def currencies(self, account: str, book: str | None = None) -> list[str]:
        """The currencies an account of the book has entries in (none: it is unknown)."""
        if book is None:
            sql, params = ("SELECT currency FROM ledger_accounts WHERE account = %s "
                           "ORDER BY currency"), (account_key(account),)
        else:
            sql, params = ("SELECT DISTINCT currency FROM ledger_entries WHERE tenant = %s "
                           "AND account = %s ORDER BY currency",
                           (book, account_key(stored_account(account, book))))
        with self._db.transaction(write=False) as cursor:
            cursor.execute(sql, params)
            return [row[0] for row in cursor.fetchall()]

    def balance(self, account: str, currency: str, as_of: datetime | None = None,
                book: str | None = None) -> int:
        """Debits − credits of the account's entries of the book in ``currency`` (at or
        before ``as_of``): in the consolidated book now, the account's running row, not a
        sum over every entry of a busy account."""
        if as_of is None and book is None:
            return self.posted_balance(account, currency, None)
        return self._summed(stored_account(account, book), currency, as_of, book)

    def _summed(self, stored: str, currency: str, as_of: datetime | None,
                book: str | None) -> int:
        """Debits − credits of the legs of the book to the (stored) account."""
        where, params = _book_filter(book, as_of)
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {SUMS} FROM ledger_entries WHERE {where} AND "
                           "account = %s AND currency = %s",
                           (*params, account_key(stored), account_key(currency)))
            debits, credits = cursor.fetchone() or (0, 0)
        return int(debits) - int(credits)

    def entries(self, account: str, limit: int, after: tuple[int, int] | None = None,
                book: str | None = None) -> list[dict[str, Any]]:
        """The account's legs of the book in log order, after (position, leg) when given."""
        position, leg = after or (0, -1)
        where, params = _book_filter(book, None)
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger_entries "
                           f"WHERE {where} AND account = %s AND (position > %s OR "
                           "(position = %s AND leg > %s)) ORDER BY position, leg LIMIT %s",
                           (*params, account_key(stored_account(account, book)), position,
                            position, leg, limit))
            found = [dict(zip(ENTRY_FIELDS, row)) for row in cursor.fetchall()]
        if book is None:
            return found
        return [{**entry, "account_id": account} for entry in found]

    def order_postings(self, order_id: str) -> list[dict[str, Any]]:
        """Every leg of the transactions linked to the order, in log order."""
        return self._postings("order_id = %s", (key(order_id),))

    def code_postings(self, code_id: str, txn_ids: list[str]) -> list[dict[str, Any]]:
        """The code's legs in the given transactions (found from the code's own events:
        no index is kept by code), in log order."""
        if not txn_ids:
            return []
        marks = ", ".join(["%s"] * len(txn_ids))
        return self._postings(f"txn_id IN ({marks}) AND code_id = %s",
                              (*txn_ids, key(code_id)))

    def _postings(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger_entries "
                           f"WHERE {where} ORDER BY position, leg", params)
            return [dict(zip(ENTRY_FIELDS, row)) for row in cursor.fetchall()]

    def trial_balance(self, as_of: datetime | None = None, currency: str | None = None,
                      book: str | None = None) -> dict[str, Any]:
        """Every account's balance in the book (in one currency, if given), in the debit
        column or the credit column, and the two columns' totals: always equal, since every
        transaction balances in every currency and lies in one book."""
        return trial_balance_of(self.accounts(as_of, book), as_of, currency)

    # -- BalanceSource (engine/ledger/payouts.py) ----------------------------------------------

    def posted_balance(self, account: str, currency: str, book: str | None) -> int:
        """The (stored) account's balance in the book as far as the projection has
        applied the log."""
        if book is not None:
            return self._summed(account, currency, None, book)
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT balance FROM ledger_accounts WHERE account = %s "
                           "AND currency = %s",
                           (account_key(account), account_key(currency)))
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def holds(self, account: str, book: str) -> bool:
        """Whether the book has legs to the (stored) account."""
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT 1 FROM ledger_entries WHERE tenant = %s AND account = %s "
                           "LIMIT 1", (book, account_key(account)))
            return cursor.fetchone() is not None

    def wait_for(self, position: int, timeout: float) -> bool:
        return self._runner.wait_for(position, timeout)


def _book_filter(book: str | None, as_of: datetime | None) -> tuple[str, tuple[Any, ...]]:
    """The ``ledger_entries`` condition (and its values) of a book's legs up to ``as_of``."""
    where, params = ["1 = 1"], []
    if book is not None:
        where.append("tenant = %s")
        params.append(book)
    if as_of is not None:
        where.append("at <= %s")
        params.append(iso(as_of))
    return " AND ".join(where), tuple(params)
