"""Ledger transactions: balanced per currency before they exist; ids from their cause."""

import uuid

import pytest

from engine.eventstore.transcoder import OrjsonTranscoder
from engine.topics import VALUE_TYPES
from engine.kernel.errors import UnbalancedTransaction, ValidationFailed
from engine.kernel.money import Money
from engine.ledger.transactions import (
    COST_OF_SALES,
    SALES,
    LedgerTransaction,
    Leg,
    clearing,
    supplier_payable,
    transaction_id,
)


def sale_legs(paid: int = 1990, cost: int = 1500) -> list[Leg]:
    return [Leg(clearing("wechat"), Money(paid, "CNY"), "capture"),
            Leg(SALES, Money(-paid, "CNY"), "revenue"),
            Leg(COST_OF_SALES, Money(cost, "CNY"), "cost", code_id="c-1"),
            Leg(supplier_payable("sup-1"), Money(-cost, "CNY"), "cost", code_id="c-1")]


def test_a_balanced_transaction_is_posted_with_an_id_from_its_cause():
    txn = LedgerTransaction.post(kind="sale", cause="pay-1", legs=sale_legs(),
                                 links={"order_id": "o-1"}, actor="t", tenant=None)
    assert txn.id == transaction_id("sale", "pay-1") != transaction_id("refund", "pay-1")
    assert sum(leg.amount.amount for leg in txn.legs) == 0


def test_an_unbalanced_transaction_never_gets_an_event():
    legs = sale_legs()[:-1]
    with pytest.raises(UnbalancedTransaction):
        LedgerTransaction.post(kind="sale", cause="pay-2", legs=legs, links={}, actor="t",
                               tenant=None)


def test_legs_balance_per_currency_not_in_sum():
    legs = [Leg(clearing(None), Money(100, "CNY"), "capture"),
            Leg(SALES, Money(-100, "USD"), "revenue")]
    with pytest.raises(UnbalancedTransaction):
        LedgerTransaction.post(kind="sale", cause="pay-3", legs=legs, links={}, actor="t",
                               tenant=None)


def test_zero_legs_are_dropped_and_an_empty_transaction_refused():
    with pytest.raises(UnbalancedTransaction):
        LedgerTransaction.post(kind="sale", cause="pay-4", legs=[
            Leg(SALES, Money(0, "CNY"), "revenue")], links={}, actor="t",
                               tenant=None)


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "a:b:c", ":b", "\x00"])
def test_account_parts_are_plain_names(name):
    with pytest.raises(ValidationFailed):
        supplier_payable(name)


def test_an_account_outside_the_chart_is_refused():
    with pytest.raises(ValidationFailed):
        LedgerTransaction.post(kind="sale", cause="pay-5", legs=[
            Leg("things:x", Money(1, "CNY"), "x"), Leg(SALES, Money(-1, "CNY"), "x")],
            links={}, actor="t",
                               tenant=None)


def test_a_posted_event_round_trips_through_the_transcoder():
    txn = LedgerTransaction.post(kind="sale", cause=str(uuid.uuid4()), legs=sale_legs(),
                                 links={"order_id": "o-1"}, actor="t", tenant=None)
    event = txn.collect_events()[0]
    transcoder = OrjsonTranscoder(VALUE_TYPES)
    state = transcoder.decode(transcoder.encode({"legs": event.legs}))
    assert state["legs"] == sale_legs()
