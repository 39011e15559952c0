"""The ledger as of an instant, folded from the posted transactions themselves, never from
the ``ledger_entries`` read model (which could lag, or be wrong).

Only events of the ledger's topic are read (the log's topic filter), and each is turned into
legs and added up by the very functions the live projection uses (projections/ledger.py:
``entry_rows`` and ``add_up``), so an account's balance and the trial balance come from one
fold and obey one set of rules. A transaction counts when its timestamp is at or before the
instant. Each answer is of a book: a tenant's (the transactions it posted, its accounts
named as its book names them) or, for None, the consolidated book."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.eventstore.store import EventStore
from engine.kernel.fields import check_instant
from engine.ledger.transactions import LedgerTransaction, in_book, stored_account
from projections.ledger import Sums, account_key, add_up, entry_rows
from projections.ledger_queries import account_row, trial_balance_of
from replay.log_reads import events_of_topics

TOPICS = (LedgerTransaction.Created.TOPIC,)


def sums_at(store: EventStore, when: datetime, book: str | None = None) -> Sums:
    """Per (account, currency), ``[debits, credits, entries]`` of every leg of the book
    posted at or before ``when``: the one fold both answers below read."""
    when = check_instant(when, "as_of")
    sums: Sums | None = None
    for position, event in events_of_topics(store, TOPICS):
        # positions follow commits, not stamps: read them all
        if event.timestamp <= when and book in (None, event.tenant):
            sums = add_up(entry_rows(position, event), sums)
    return sums if sums is not None else add_up(())


def accounts_at(store: EventStore, when: datetime,
                book: str | None = None) -> list[dict[str, Any]]:
    """Every account of the book with entries then, per currency, by name (as
    ``LedgerQueries``)."""
    sums = sums_at(store, when, book)
    rows = [account_row(in_book(account, book), currency, debits, credits)
            for (account, currency), (debits, credits, _) in sums.items()]
    return sorted(rows, key=lambda row: (row["account_id"], row["currency"]))


def trial_balance_at(store: EventStore, when: datetime, currency: str | None = None,
                     book: str | None = None) -> dict[str, Any]:
    """The book's trial balance as it stood at ``when``."""
    return trial_balance_of(accounts_at(store, when, book), when, currency)


def balances_at(store: EventStore, account: str, when: datetime,
                book: str | None = None) -> dict[str, int]:
    """The account's balance (debits − credits) in the book per currency it had entries in
    at ``when``."""
    account = account_key(stored_account(account, book))
    return {currency: debits - credits
            for (name, currency), (debits, credits, _)
            in sorted(sums_at(store, when, book).items()) if name == account}
