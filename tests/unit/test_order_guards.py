"""The order guards its own transitions, on an order built in memory (no store)."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from engine.kernel.errors import (
    AlreadyRefunded,
    AmountMismatch,
    InvalidState,
    OrderExpired,
    ValidationFailed,
)
from engine.kernel.money import Money
from engine.sales.lines import OrderLine
from engine.sales.orders import CANCELLED, DELIVERED, EXPIRED, REFUNDED, Order

NOW = datetime(2026, 11, 11, 0, 0, tzinfo=timezone.utc)
HELD = [{"code_id": str(uuid.uuid4()), "sku": "GIFT-100"}]


def reserved(expires_at: datetime = NOW + timedelta(minutes=15)) -> Order:
    return Order(id=uuid.uuid4(), buyer_id="buyer-1",
                 items=[{"sku": "GIFT-100", "quantity": 2, "unit_price": 9500}],
                 needs=[{"sku": "GIFT-100", "quantity": 2}], amount=19000, currency="CNY",
                 channel=None, distributor_id=None, external_ref=None, expires_at=expires_at,
                 codes=HELD, actor="key:app", owner="key:app")


def pay(order: Order, ref: str = "pay-1", amount: int = 19000, **more) -> None:
    order.pay(payment_ref=ref, amount=amount, currency="CNY", provider="alipay",
              actor="key:app", **more)


def delivered() -> Order:
    order = reserved()
    pay(order)
    return order


def test_paying_a_reserved_order_delivers_the_codes_it_holds():
    order = delivered()
    assert order.status == DELIVERED and order.codes == HELD
    assert order.payments[0]["late"] is False


def test_wrong_amount_is_refused_by_the_order():
    with pytest.raises(AmountMismatch):
        pay(reserved(), amount=18999)


def test_wrong_currency_is_refused_by_the_order():
    order = reserved()
    with pytest.raises(AmountMismatch):
        order.pay(payment_ref="pay-1", amount=19000, currency="USD", provider=None,
                  actor="key:app")


def test_second_payment_with_another_ref_on_a_delivered_order_is_refused():
    order = delivered()
    with pytest.raises(InvalidState):
        pay(order, ref="pay-2")
    assert len(order.payments) == 1


def test_the_same_payment_ref_is_not_taken_twice():
    order = delivered()
    assert order.accepts_payment("pay-1", 19000, "CNY") is False
    with pytest.raises(InvalidState):
        pay(order, ref="pay-1")


def test_late_payment_needs_codes_taken_afresh():
    order = reserved()
    order.cancel(reason="changed mind", actor="key:app")
    with pytest.raises(InvalidState):
        pay(order)
    fresh = [{"code_id": str(uuid.uuid4()), "sku": "GIFT-100"}]
    pay(order, codes=fresh)
    assert order.status == DELIVERED and order.codes == fresh
    assert order.payments[0]["late"] is True


def test_payment_on_time_takes_no_other_codes():
    with pytest.raises(InvalidState):
        pay(reserved(), codes=[])


def test_only_a_late_payment_is_refunded_on_arrival():
    with pytest.raises(InvalidState):
        reserved().refund_payment(payment_ref="pay-1", amount=19000, currency="CNY",
                                  provider=None, reason="no stock", actor="key:app")
    order = reserved(expires_at=NOW)
    order.expire(actor="system:expiry", now=NOW)
    order.refund_payment(payment_ref="pay-1", amount=19000, currency="CNY", provider=None,
                         reason="no stock", actor="key:app")
    assert order.status == REFUNDED


def test_cancel_of_a_delivered_order_is_refused():
    with pytest.raises(InvalidState):
        delivered().cancel(reason="too late", actor="key:app")


def test_cancel_of_an_expired_order_says_it_expired():
    order = reserved(expires_at=NOW)
    order.expire(actor="system:expiry", now=NOW)
    with pytest.raises(OrderExpired):
        order.cancel(reason="", actor="key:app")


def test_cancel_without_a_reason_records_one():
    order = reserved()
    order.cancel(reason="", actor="key:app")
    assert order.status == CANCELLED
    assert order.collect_events()[-1].reason == "cancelled"


def test_an_order_not_yet_due_does_not_expire():
    order = reserved()
    assert not order.is_due(NOW)
    with pytest.raises(InvalidState):
        order.expire(actor="system:expiry", now=NOW)


def test_a_paid_order_does_not_expire():
    order = delivered()
    with pytest.raises(InvalidState):
        order.expire(actor="system:expiry", now=NOW + timedelta(days=1))


def test_a_due_order_expires():
    order = reserved(expires_at=NOW)
    order.expire(actor="system:expiry", now=NOW)
    assert order.status == EXPIRED


def test_reveal_of_an_undelivered_order_is_refused():
    with pytest.raises(InvalidState):
        reserved().record_reveal(actor="key:app", client_address=None)


def test_reveal_records_the_delivered_codes():
    order = delivered()
    order.record_reveal(actor="key:app", client_address="203.0.113.9")
    assert order.reveals == 1
    assert order.collect_events()[-1].code_ids == [HELD[0]["code_id"]]


def test_typed_lines_and_total_read_the_stored_items():
    order = reserved()
    assert order.lines == [OrderLine("GIFT-100", 2, Money(9500, "CNY"))]
    assert order.total == Money(19000, "CNY") == order.lines[0].total
    assert order.items == [{"sku": "GIFT-100", "quantity": 2, "unit_price": 9500}]


# -- refunds and the codes an order holds --------------------------------------------------

def test_a_refund_of_some_codes_leaves_the_order_partially_refunded():
    order = reserved()
    order.codes = HELD + [{"code_id": str(uuid.uuid4()), "sku": "GIFT-100"}]
    pay(order)
    first, second = (c["code_id"] for c in order.codes)
    order.refund(refund_id="r1", code_ids=[first], amount=Money(9500, "CNY"), reason="x",
                 actor="key:app")
    assert order.status == "partially_refunded" and order.refunded_code_ids == [first]
    assert [c["code_id"] for c in order.codes] == [second]
    assert order.released == [{"code_id": first, "sku": "GIFT-100", "why": "refunded"}]
    assert order.refunds[0]["amount"] == 9500 and order.refunds[0]["code_ids"] == [first]
    with pytest.raises(AlreadyRefunded):
        order.refund(refund_id="r2", code_ids=[first], amount=Money(9500, "CNY"),
                     reason="x", actor="key:app")
    order.refund(refund_id="r2", code_ids=[second], amount=Money(9500, "CNY"), reason="x",
                 actor="key:app")
    assert order.status == REFUNDED and order.codes == [] and len(order.delivered) == 2


def test_a_refund_is_refused_for_codes_not_delivered_and_orders_not_delivered():
    order = delivered()
    with pytest.raises(ValidationFailed):
        order.refund(refund_id="r", code_ids=[str(uuid.uuid4())], amount=Money(1, "CNY"),
                     reason="x", actor="key:app")
    with pytest.raises(ValidationFailed):
        order.refund(refund_id="r", code_ids=[], amount=Money(1, "CNY"), reason="x",
                     actor="key:app")
    with pytest.raises(ValidationFailed):  # more than the order was paid
        order.refund(refund_id="r", code_ids=[HELD[0]["code_id"]],
                     amount=Money(19001, "CNY"), reason="x", actor="key:app")
    with pytest.raises(InvalidState):
        reserved().refund(refund_id="r", code_ids=[HELD[0]["code_id"]],
                          amount=Money(1, "CNY"), reason="x", actor="key:app")


def test_a_lapsed_order_holds_no_codes_and_names_them_released():
    expired, cancelled = reserved(NOW - timedelta(seconds=1)), reserved()
    expired.expire(actor="system:expiry", now=NOW)
    cancelled.cancel(reason="no", actor="key:app")
    for order, why in ((expired, "expired"), (cancelled, "cancelled")):
        assert order.codes == [] and order.code_ids == []
        assert order.released == [{**HELD[0], "why": why}]
