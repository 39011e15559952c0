"""The ledger read model: balances, as-of balances, entries by position and the trial
balance, from transactions posted straight through the writer, on both stores."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

from engine.kernel.money import Money
from engine.ledger.transactions import (
    COMMISSION,
    COST_OF_SALES,
    SALES,
    UNEARNED,
    LedgerTransaction,
    Leg,
    clearing,
    distributor_payable,
    supplier_payable,
)
from tests.conftest import caught_up


def cny(amount: int) -> Money:
    return Money(amount, "CNY")


def post_sale(rt, *, paid: int = 1990, cost: int = 1500, commission: int = 99,
              distributor: str = "d-1", supplier: str = "sup-1",
              cause: str | None = None) -> LedgerTransaction:
    """A sale as docs/ledger.md posts it: capture, revenue, one code's cost, commission."""
    code_id = str(uuid.uuid4())
    txn = LedgerTransaction.post(kind="sale", cause=cause or uuid.uuid4().hex, legs=[
        Leg(clearing("wechat"), cny(paid), "capture"), Leg(UNEARNED, cny(-paid), "capture"),
        Leg(UNEARNED, cny(paid), "revenue"), Leg(SALES, cny(-paid), "revenue"),
        Leg(COST_OF_SALES, cny(cost), "cost", code_id),
        Leg(supplier_payable(supplier), cny(-cost), "cost", code_id),
        Leg(COMMISSION, cny(commission), "commission"),
        Leg(distributor_payable(distributor), cny(-commission), "commission")],
        links={"order_id": "o-1", "payment_ref": "wx-1", "provider": "wechat"}, actor="t",
        tenant=None)
    rt.engine.writer.save(txn)
    return txn


def by_account(rt) -> dict[str, dict]:
    return {a["account_id"]: a for a in rt.ledger.accounts()}


def test_a_sale_gives_each_account_its_balance(runtime):
    post_sale(runtime)
    caught_up(runtime)
    accounts = by_account(runtime)
    assert {name: a["balance"] for name, a in accounts.items()} == {
        "assets:clearing:wechat": 1990, "liabilities:unearned": 0, "income:sales": -1990,
        "expenses:cost_of_sales": 1500, "liabilities:suppliers:sup-1": -1500,
        "expenses:commission": 99, "liabilities:distributors:d-1": -99}
    unearned = accounts["liabilities:unearned"]
    assert (unearned["debits"], unearned["credits"], unearned["type"]) == (
        1990, 1990, "liabilities")


def test_the_trial_balance_of_sales_totals_equal_debits_and_credits(runtime):
    post_sale(runtime)
    post_sale(runtime, paid=990, cost=500, commission=49, distributor="d-2")
    caught_up(runtime)
    trial = runtime.ledger.trial_balance()
    assert trial["total_debits"] == trial["total_credits"] == 2980 + 2000 + 148
    assert sum(a["balance"] for a in trial["accounts"]) == 0


def test_the_entries_carry_the_transaction_links(runtime):
    txn = post_sale(runtime)
    caught_up(runtime)
    entries = runtime.ledger.entries("liabilities:unearned", 10)
    assert [(e["leg"], e["amount"], e["memo"]) for e in entries] == [
        (1, -1990, "capture"), (2, 1990, "revenue")]
    assert {(e["txn_id"], e["kind"], e["order_id"], e["payment_ref"], e["provider"])
            for e in entries} == {(str(txn.id), "sale", "o-1", "wx-1", "wechat")}


def test_a_balance_as_of_an_instant_counts_only_entries_up_to_it(runtime):
    post_sale(runtime, commission=100)
    caught_up(runtime)
    between = datetime.now(timezone.utc)
    time.sleep(0.01)
    post_sale(runtime, commission=30)
    caught_up(runtime)
    account = distributor_payable("d-1")
    assert runtime.ledger.balance(account, "CNY", between) == -100
    assert runtime.ledger.balance(account, "CNY") == -130
    assert runtime.ledger.balance(account, "CNY", between - timedelta(days=1)) == 0
    earlier = runtime.ledger.trial_balance(between)
    assert earlier["total_debits"] == earlier["total_credits"] == 1990 + 1500 + 100


def test_entries_page_by_position_without_loss_or_repeat(runtime):
    for _ in range(5):
        post_sale(runtime)  # two unearned legs per transaction: pages split transactions
    caught_up(runtime)
    seen, after = [], None
    while page := runtime.ledger.entries(UNEARNED, 3, after):
        seen += page
        after = (page[-1]["position"], page[-1]["leg"])
    assert len(seen) == 10
    keys = [(e["position"], e["leg"]) for e in seen]
    assert keys == sorted(keys) and len(set(keys)) == 10

