"""The ledger read model the reconciliation reads: one row per leg, balances per account."""

from __future__ import annotations

from engine.kernel.money import Money
from engine.ledger.transactions import SALES, UNEARNED, LedgerTransaction, Leg, clearing
from tests.conftest import caught_up


def test_a_posted_transaction_lands_one_row_per_leg_and_account_totals(runtime):
    runtime.engine.writer.save(LedgerTransaction.post(
        kind="sale", cause="p-1", actor="t", tenant=None,
        links={"order_id": "o-1", "payment_ref": "p-1", "provider": "alipay"},
        legs=[Leg(clearing("alipay"), Money(990, "CNY"), "capture"),
              Leg(UNEARNED, Money(-990, "CNY"), "capture"),
              Leg(UNEARNED, Money(990, "CNY"), "revenue"),
              Leg(SALES, Money(-990, "CNY"), "revenue")]))
    caught_up(runtime)
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT leg, account, amount, order_id, provider FROM ledger_entries "
                       "ORDER BY leg")
        entries = [tuple(r) for r in cursor.fetchall()]
        cursor.execute("SELECT account, debits, credits, balance, entries FROM ledger_accounts "
                       "ORDER BY account")
        accounts = [tuple(r) for r in cursor.fetchall()]
    assert entries == [(0, "assets:clearing:alipay", 990, "o-1", "alipay"),
                       (1, UNEARNED, -990, "o-1", "alipay"), (2, UNEARNED, 990, "o-1", "alipay"),
                       (3, SALES, -990, "o-1", "alipay")]
    assert accounts == [("assets:clearing:alipay", 990, 0, 990, 1), (SALES, 0, 990, -990, 1),
                        (UNEARNED, 990, 990, 0, 2)]
