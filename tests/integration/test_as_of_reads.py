"""The as-of reads underneath the endpoints, on both stores: the log read by topic, page by
page; the ledger fold as of now equals the live ledger tables; inventory counts the codes of
the SKU's batches only."""

from __future__ import annotations

from datetime import datetime, timezone

import replay.log_reads
from engine.ledger.transactions import LedgerTransaction
from replay.as_of import inventory_at
from replay.ledger_at import accounts_at, balances_at
from replay.log_reads import events_of_topics
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes
from tests.integration.test_ledger_projection import post_sale


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_events_of_topics_reads_only_those_topics_across_pages(runtime, monkeypatch):
    monkeypatch.setattr(replay.log_reads, "PAGE", 2)
    posted = [str(post_sale(runtime).id) for _ in range(5)]
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(3))
    read = list(events_of_topics(runtime.store, (LedgerTransaction.Created.TOPIC,)))
    assert [str(e.originator_id) for _, e in read] == posted
    positions = [p for p, _ in read]
    assert positions == sorted(positions) and len(set(positions)) == 5


def test_the_ledger_fold_as_of_now_equals_the_live_accounts(runtime):
    for commission in (100, 30, 7):
        post_sale(runtime, commission=commission, distributor=f"d-{commission}")
    caught_up(runtime)
    assert accounts_at(runtime.store, now()) == runtime.ledger.accounts()
    assert balances_at(runtime.store, "liabilities:distributors:d-30", now()) == {"CNY": -30}


def test_inventory_counts_only_the_skus_own_batches(runtime):
    mine, other = define_product(runtime), define_product(runtime)
    import_codes(runtime, other, codes_for(4))
    import_codes(runtime, mine, codes_for(2))
    import_codes(runtime, other, codes_for(1))
    caught_up(runtime)
    assert inventory_at(runtime.store, mine, now()) == runtime.codes.inventory(mine)
    assert inventory_at(runtime.store, mine, now())["total"] == 2
    assert inventory_at(runtime.store, other, now())["available"] == 5
