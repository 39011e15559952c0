"""A ledger transaction is stored and read back, typed, on both stores."""

import uuid

import pytest

from engine.kernel.errors import ConcurrentUpdate, ValidationFailed
from engine.kernel.money import Money
from engine.ledger.transactions import SALES, LedgerTransaction, Leg, clearing


def sale(cause: str, memo: str = "capture") -> LedgerTransaction:
    return LedgerTransaction.post(kind="sale", cause=cause, legs=[
        Leg(clearing("alipay"), Money(990, "CNY"), memo),
        Leg(SALES, Money(-990, "CNY"), "revenue", code_id=str(uuid.uuid4()))],
        links={"order_id": "o-9"}, actor="t", tenant=None)


def test_a_transaction_is_read_back_with_its_money_and_legs(runtime):
    txn = sale("p-1")
    runtime.engine.writer.save(txn)
    stored = runtime.store.repository.get(txn.id)
    assert stored.legs == txn.legs and stored.links == {"order_id": "o-9"}
    assert isinstance(stored.legs[0].amount, Money)


def test_the_same_cause_posts_once(runtime):
    runtime.engine.writer.save(sale("p-2"))
    with pytest.raises(ConcurrentUpdate):
        runtime.engine.writer.save(sale("p-2"))


def test_a_control_character_in_a_leg_is_refused_before_storing(runtime):
    before = runtime.store.last_position()
    with pytest.raises(ValidationFailed):
        runtime.engine.writer.save(sale("p-3", memo="cap\x00ture"))
    assert runtime.store.last_position() == before
