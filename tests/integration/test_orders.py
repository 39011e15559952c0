"""The sales path on both stores: placement, payment, expiry, late payment, reveal."""

import dataclasses
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.kernel.errors import (
    AmountMismatch,
    InvalidState,
    OrderExpired,
    PaymentRefReused,
    PurchaseLimitExceeded,
    SoldOut,
)
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def stocked(rt, count=10, **product):
    sku = define_product(rt, **product)
    import_codes(rt, sku, codes_for(count))
    caught_up(rt)
    return sku


def place(rt, sku, quantity=1, buyer="buyer-1", **extra):
    return rt.engine.orders.place(buyer_id=buyer, items=[{"sku": sku, "quantity": quantity}],
                                  actor="key:app", **extra)


def pay(rt, order, ref="pay-1", amount=None):
    return rt.engine.orders.pay(order_id=order.id, payment_ref=ref,
                                amount=order.amount if amount is None else amount,
                                currency=order.currency, provider="alipay", actor="key:app")


def test_paid_order_is_delivered_with_its_reserved_codes(runtime):
    sku = stocked(runtime, price=1990)
    order = place(runtime, sku, quantity=2)
    assert order.status == "reserved" and order.amount == 3980 and len(order.codes) == 2
    delivered = pay(runtime, order)
    assert delivered.status == "delivered"
    assert {c.status for c in runtime.engine.orders.codes_of(delivered)} == {"sold"}


def test_sold_out_order_holds_nothing(runtime):
    first, second = stocked(runtime, 3), stocked(runtime, 1)
    with pytest.raises(SoldOut):
        runtime.engine.orders.place(buyer_id="b", actor="key:app", items=[
            {"sku": first, "quantity": 2}, {"sku": second, "quantity": 2}])
    caught_up(runtime)
    assert runtime.codes.inventory(first)["available"] == 3
    assert runtime.codes.inventory(second)["available"] == 1


def test_channel_price_applies_and_list_price_is_the_fallback(runtime):
    sku = stocked(runtime, price=2000, channel_prices={"wechat": 1900})
    assert place(runtime, sku, channel="wechat").amount == 1900
    assert place(runtime, sku, channel="web").amount == 2000


def test_purchase_limit_counts_reserved_and_delivered_units(runtime):
    sku = stocked(runtime, purchase_limit={"quantity": 2, "window_seconds": 3600})
    pay(runtime, place(runtime, sku))
    place(runtime, sku)
    with pytest.raises(PurchaseLimitExceeded):
        place(runtime, sku)
    assert place(runtime, sku, buyer="someone-else").status == "reserved"


def test_cancelled_order_frees_its_purchase_limit(runtime):
    sku = stocked(runtime, purchase_limit={"quantity": 1})
    order = place(runtime, sku)
    runtime.engine.orders.cancel(order_id=order.id, reason="changed mind", actor="key:app")
    assert place(runtime, sku).status == "reserved"


def test_concurrent_orders_of_one_buyer_respect_the_limit(runtime):
    sku = stocked(runtime, 20, purchase_limit={"quantity": 3})

    def attempt(_):
        try:
            return len(place(runtime, sku).codes)
        except PurchaseLimitExceeded:
            return 0

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(attempt, range(12))) == 3


def test_external_ref_places_an_order_once(runtime):
    sku = stocked(runtime)
    first = place(runtime, sku, external_ref="shop-42")
    again = place(runtime, sku, external_ref="shop-42")
    assert again.id == first.id
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["reserved"] == 1


def test_parallel_callbacks_of_one_payment_deliver_once(runtime):
    sku = stocked(runtime)
    order = place(runtime, sku, quantity=2)
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: pay(runtime, order, ref="cb-1"), range(5)))
    assert {a.status for a in answers} == {"delivered"}
    final = runtime.engine.orders.get(order.id)
    assert len(final.payments) == 1 and final.code_ids == order.code_ids
    caught_up(runtime)
    stock = runtime.codes.inventory(sku)
    assert stock["sold"] == 2 and stock["reserved"] == 0


def test_wrong_amount_changes_nothing(runtime):
    sku = stocked(runtime)
    order = place(runtime, sku)
    with pytest.raises(AmountMismatch):
        pay(runtime, order, amount=order.amount - 1)
    after = runtime.engine.orders.get(order.id)
    assert after.status == "reserved" and after.version == order.version


def test_payment_ref_of_another_order_is_refused(runtime):
    sku = stocked(runtime)
    pay(runtime, place(runtime, sku), ref="shared-ref")
    with pytest.raises(PaymentRefReused):
        pay(runtime, place(runtime, sku), ref="shared-ref")


@pytest.fixture
def short_lived(settings):
    """A runtime whose reservations lapse after one second."""
    rt = Runtime.open(dataclasses.replace(settings, reservation_ttl_seconds=1))
    rt.start()
    yield rt
    rt.close()


def test_expired_reservation_releases_its_codes(short_lived):
    rt = short_lived
    sku = stocked(rt, 1)
    order = place(rt, sku)
    time.sleep(1.1)
    caught_up(rt)
    assert rt.sweep_expired_orders() == 1
    assert rt.sweep_expired_orders() == 0
    assert rt.engine.orders.get(order.id).status == "expired"
    caught_up(rt)
    assert rt.codes.inventory(sku)["available"] == 1
    with pytest.raises(OrderExpired):
        rt.engine.orders.cancel(order_id=order.id, reason="late", actor="key:app")


def test_late_payment_redelivers_when_stock_allows(short_lived):
    rt = short_lived
    sku = stocked(rt, 2)
    order = place(rt, sku)
    time.sleep(1.1)
    rt.engine.orders.expire(order.id)
    paid = pay(rt, order, ref="late-1")
    assert paid.status == "delivered" and paid.payments[0]["late"]
    assert [c.status for c in rt.engine.orders.codes_of(paid)] == ["sold"]


def test_late_payment_without_stock_is_refunded_automatically(short_lived):
    rt = short_lived
    sku = stocked(rt, 1)
    order = place(rt, sku)
    time.sleep(1.1)
    rt.engine.orders.expire(order.id)
    pay(rt, place(rt, sku, buyer="other"), ref="p-other")
    paid = pay(rt, order, ref="late-2")
    assert paid.status == "refunded"
    assert paid.refunds[0]["automatic"] and paid.refunds[0]["amount"] == order.amount


def test_sweeper_racing_a_payment_loses_nothing(short_lived):
    rt = short_lived
    sku = stocked(rt, 20)
    orders = [place(rt, sku, buyer=f"b{n}") for n in range(10)]
    time.sleep(1.1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        sweeps = [pool.submit(rt.engine.orders.expire, o.id) for o in orders]
        pays = [pool.submit(pay, rt, o, f"race-{n}") for n, o in enumerate(orders)]
        [s.result() for s in sweeps]
        finals = [p.result() for p in pays]
    assert {o.status for o in finals} == {"delivered"}
    owners = Counter(c for o in finals for c in o.code_ids)
    assert len(owners) == 10 and max(owners.values()) == 1


def test_reveal_shows_codes_and_is_recorded_in_each_code_history(runtime):
    sku = define_product(runtime)
    rows = codes_for(1)
    import_codes(runtime, sku, rows)
    caught_up(runtime)
    order = pay(runtime, place(runtime, sku))
    shown = runtime.engine.orders.reveal(order_id=order.id, actor="key:app",
                                         client_address="203.0.113.9")
    assert shown[0]["code"] == rows[0].code and shown[0]["pin"] == rows[0].pin
    caught_up(runtime)
    history = runtime.codes.history(order.code_ids[0])
    reveal = [h for h in history if h["type"] == "code.revealed"]
    assert reveal[0]["actor"] == "key:app" and reveal[0]["client_address"] == "203.0.113.9"
    assert [h["type"] for h in history][:3] == ["code.imported", "code.reserved", "code.sold"]


def test_unpaid_order_cannot_be_revealed(runtime):
    order = place(runtime, stocked(runtime))
    with pytest.raises(InvalidState):
        runtime.engine.orders.reveal(order_id=order.id, actor="key:app", client_address=None)


def test_masked_codes_hide_the_middle_of_each_code(runtime):
    sku = define_product(runtime)
    rows = codes_for(1)
    import_codes(runtime, sku, rows)
    caught_up(runtime)
    order = pay(runtime, place(runtime, sku))
    [masked] = runtime.engine.orders.masked_codes(order)
    code = rows[0].code
    assert masked["masked"] != code and masked["masked"][:2] == code[:2]
    assert masked["masked"][-2:] == code[-2:] and "*" in masked["masked"]


def test_bundle_delivers_one_code_of_each_component_or_nothing(runtime):
    video, music = stocked(runtime, 2), stocked(runtime, 1)
    bundle = define_product(runtime, price=2500, components=[{"sku": video, "quantity": 1},
                                                             {"sku": music, "quantity": 1}])
    order = pay(runtime, place(runtime, bundle))
    assert sorted(c["sku"] for c in order.codes) == sorted([video, music])
    with pytest.raises(SoldOut):
        place(runtime, bundle, buyer="b2")
    caught_up(runtime)
    assert runtime.codes.inventory(video)["available"] == 1


def test_bulk_order_takes_a_thousand_distinct_codes(runtime):
    sku = stocked(runtime, 1000)
    order = pay(runtime, place(runtime, sku, quantity=1000, buyer="b2b-partner"))
    assert order.status == "delivered" and len(set(order.code_ids)) == 1000
