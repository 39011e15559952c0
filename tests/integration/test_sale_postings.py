"""The sale a payment posts to the ledger, to the fen, on both stores (docs/ledger.md)."""

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.codes.generation import CodePattern
from engine.kernel.errors import (
    AmountMismatch,
    NotFound,
    PriceBelowCost,
    ValidationFailed,
)
from engine.kernel.ids import payment_id
from engine.ledger.transactions import transaction_id
from engine.sales.paying import LAPSED_BELOW_COST
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes

CLEARING, UNEARNED, SALES = "assets:clearing:", "liabilities:unearned", "income:sales"
COST, COMMISSION = "expenses:cost_of_sales", "expenses:commission"


def stocked(rt, count=3, *, cost=1200, supplier="sup-1", **product):
    sku = define_product(rt, **product)
    import_codes(rt, sku, codes_for(count), unit_cost=cost, supplier_id=supplier)
    return sku


def place(rt, sku, quantity=1, buyer="buyer-1", **extra):
    return rt.engine.orders.place(buyer_id=buyer, items=[{"sku": sku, "quantity": quantity}],
                                  actor="key:app", **extra)


def pay(rt, order, ref="pay-1", amount=None, provider="alipay"):
    return rt.engine.orders.pay(order_id=order.id, payment_ref=ref,
                                amount=order.amount if amount is None else amount,
                                currency=order.currency, provider=provider, actor="key:app")


def posted(rt, ref):
    return rt.store.find(transaction_id("sale", ref))


def legs(txn):
    """(account, amount, memo, code_id) per leg, in CNY."""
    assert {leg.amount.currency for leg in txn.legs} == {"CNY"}
    return [(leg.account, leg.amount.amount, leg.memo, leg.code_id) for leg in txn.legs]


def sold(order, provider, amount):
    """The capture and revenue legs of a sale of ``amount`` (delivered at once: revenue is
    recognised in the same transaction, without passing through unearned)."""
    return [(CLEARING + provider, amount, "capture", None), (SALES, -amount, "revenue", None)]


def costs(order, supplier, cost):
    return [leg for code_id in order.codes for leg in (
        (COST, cost, "cost", code_id["code_id"]),
        (f"liabilities:suppliers:{supplier}", -cost, "cost", code_id["code_id"]))]


def test_a_sale_at_list_price_posts_capture_revenue_and_cost(runtime):
    sku = stocked(runtime, price=1990)
    order = pay(runtime, place(runtime, sku))
    txn = posted(runtime, "pay-1")
    assert txn.kind == "sale"
    assert legs(txn) == sold(order, "alipay", 1990) + costs(order, "sup-1", 1200)
    assert txn.links == {"order_id": str(order.id), "payment_ref": "pay-1",
                         "provider": "alipay"}


def test_a_sale_at_a_channel_price_posts_what_was_paid(runtime):
    sku = stocked(runtime, price=2000, channel_prices={"wechat": 1900})
    order = pay(runtime, place(runtime, sku, channel="wechat"), provider=None)
    assert legs(posted(runtime, "pay-1")) == (sold(order, "default", 1900)
                                              + costs(order, "sup-1", 1200))
    assert posted(runtime, "pay-1").links["provider"] == "default"


def test_two_codes_from_two_suppliers_owe_each_its_batch_cost(runtime):
    sku = define_product(runtime, price=1990)
    first = import_codes(runtime, sku, codes_for(1), unit_cost=1200, supplier_id="sup-a")
    second = import_codes(runtime, sku, codes_for(1), unit_cost=900, supplier_id="sup-b")
    order = pay(runtime, place(runtime, sku, quantity=2))
    owed = {str(first.batch_id): ("sup-a", 1200), str(second.batch_id): ("sup-b", 900)}
    delivered = runtime.engine.orders.codes_of(order)
    assert {code.batch_id for code in delivered} == set(owed)
    expected = []
    for code in delivered:
        supplier, cost = owed[code.batch_id]
        expected += [(COST, cost, "cost", str(code.id)),
                     (f"liabilities:suppliers:{supplier}", -cost, "cost", str(code.id))]
    assert legs(posted(runtime, "pay-1")) == sold(order, "alipay", 3980) + expected


def test_a_generated_code_costs_nothing_and_posts_no_cost_leg(runtime):
    sku = define_product(runtime, price=500, delivery="code")
    pattern = CodePattern.build(pattern="####-####-####-####", charset="0123456789", prefix="G")
    runtime.engine.imports.generate_batch(sku=sku, count=3, pattern=pattern, expires_at=None,
                                          actor="test")
    order = pay(runtime, place(runtime, sku))
    assert legs(posted(runtime, "pay-1")) == sold(order, "alipay", 500)


def test_three_levels_earn_their_rates_floored_and_the_platform_keeps_the_rest(runtime):
    distribution = runtime.engine.distribution
    distribution.register(distributor_id="d-top", name="Top", actor="t")
    distribution.register(distributor_id="d-mid", name="Mid", parent_id="d-top", actor="t")
    distribution.register(distributor_id="d-leaf", name="Leaf", parent_id="d-mid", actor="t")
    sku = stocked(runtime, price=1999, commission_rates_bp=[1000, 500, 250])
    order = pay(runtime, place(runtime, sku, distributor_id="d-leaf"))
    txn = posted(runtime, "pay-1")
    # 1999 × 10 % = 199.9, × 5 % = 99.95, × 2.5 % = 49.975: floored to 199, 99 and 49
    assert legs(txn) == sold(order, "alipay", 1999) + costs(order, "sup-1", 1200) + [
        (COMMISSION, 199 + 99 + 49, "commission", None),
        ("liabilities:distributors:d-leaf", -199, "commission level 1", None),
        ("liabilities:distributors:d-mid", -99, "commission level 2", None),
        ("liabilities:distributors:d-top", -49, "commission level 3", None)]
    assert txn.links["distributor_id"] == "d-leaf"


def test_a_failed_payment_stores_neither_payment_nor_transaction(runtime):
    order = place(runtime, stocked(runtime))
    with pytest.raises(AmountMismatch):
        pay(runtime, order, amount=order.amount - 1)
    assert runtime.store.find(payment_id("pay-1")) is None and posted(runtime, "pay-1") is None


def test_parallel_callbacks_post_one_transaction(runtime):
    order = place(runtime, stocked(runtime), quantity=2)
    before = runtime.store.last_position()
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(lambda _: pay(runtime, order, ref="cb-1"), range(5)))
    assert runtime.store.find(payment_id("cb-1")) is not None
    assert posted(runtime, "cb-1").version == 1
    topics = [n.topic for n in runtime.store.notifications(before, 1000)]
    assert topics.count("quanyi:ledger.posted") == 1
    assert topics.count("quanyi:payment.captured") == 1


def test_an_unknown_distributor_is_refused_at_placement_holding_nothing(runtime):
    sku = stocked(runtime)
    with pytest.raises(NotFound, match="no distributor d-ghost"):
        place(runtime, sku, distributor_id="d-ghost")
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["reserved"] == 0


def test_a_channel_price_below_cost_is_refused_at_placement_holding_nothing(runtime):
    sku = stocked(runtime, price=2000, channel_prices={"promo": 1000})
    with pytest.raises(PriceBelowCost):
        place(runtime, sku, channel="promo")
    caught_up(runtime)
    stock = runtime.codes.inventory(sku)
    assert stock["reserved"] == 0 and stock["available"] == 3
    assert place(runtime, sku).status == "reserved"  # at list price it sells


def test_a_bundle_priced_below_its_components_cost_is_refused(runtime):
    video, music = stocked(runtime, price=1500), stocked(runtime, price=1500)
    bundle = define_product(runtime, price=2300, components=[{"sku": video, "quantity": 1},
                                                             {"sku": music, "quantity": 1}])
    with pytest.raises(PriceBelowCost):
        place(runtime, bundle)
    allowed = define_product(runtime, price=2400, components=[{"sku": video, "quantity": 1},
                                                              {"sku": music, "quantity": 1}])
    assert place(runtime, allowed).status == "reserved"  # 2 × 1200 is not above 2400


def test_selling_below_cost_when_allowed_posts_and_is_flagged(runtime):
    sku = stocked(runtime, price=2000, channel_prices={"promo": 1000}, allow_below_cost=True)
    order = pay(runtime, place(runtime, sku, channel="promo"))
    txn = posted(runtime, "pay-1")
    assert legs(txn) == sold(order, "alipay", 1000) + costs(order, "sup-1", 1200)
    assert txn.links["price_inverted"] == "true"
    pay(runtime, place(runtime, sku, buyer="b2"), ref="pay-2")  # at list price: not inverted
    assert "price_inverted" not in posted(runtime, "pay-2").links


@pytest.fixture
def short_lived(settings):
    """A runtime whose reservations lapse after one second."""
    rt = Runtime.open(dataclasses.replace(settings, reservation_ttl_seconds=1))
    rt.start()
    yield rt
    rt.close()


def lapsed(rt, sku, **extra):
    order = place(rt, sku, **extra)
    time.sleep(1.1)
    rt.engine.orders.expire(order.id)
    return order


def test_a_late_payment_without_stock_posts_capture_and_refund(short_lived):
    rt = short_lived
    sku = stocked(rt, 1, price=1990)
    order = lapsed(rt, sku)
    pay(rt, place(rt, sku, buyer="other"), ref="p-other")
    assert pay(rt, order, ref="late-1").status == "refunded"
    txn = posted(rt, "late-1")
    assert txn.kind == "sale"
    assert legs(txn) == [(CLEARING + "alipay", 1990, "capture", None),
                         (UNEARNED, -1990, "capture", None),
                         (UNEARNED, 1990, "refund paid back", None),
                         (CLEARING + "alipay", -1990, "refund paid back", None)]


def test_a_late_payment_that_redelivers_posts_the_sale(short_lived):
    rt = short_lived
    sku = stocked(rt, 2, price=1990)
    order = lapsed(rt, sku)
    paid = pay(rt, order, ref="late-2")
    assert paid.status == "delivered"
    assert legs(posted(rt, "late-2")) == sold(paid, "alipay", 1990) + costs(paid, "sup-1", 1200)


def test_a_late_payment_finding_only_dearer_codes_is_refunded(short_lived):
    rt = short_lived
    sku = stocked(rt, 1, cost=1200, price=2000, channel_prices={"promo": 1300})
    order = lapsed(rt, sku, channel="promo")  # its code went back to the pool
    pay(rt, place(rt, sku, buyer="other"), ref="p-other")  # and was sold at list price
    import_codes(rt, sku, codes_for(1), unit_cost=1500)  # what is left costs 1500 > 1300
    paid = pay(rt, order, ref="late-3")
    assert paid.status == "refunded" and paid.refunds[0]["reason"] == LAPSED_BELOW_COST
    assert [leg[2] for leg in legs(posted(rt, "late-3"))] == ["capture"] * 2 + [
        "refund paid back"] * 2
    caught_up(rt)
    stock = rt.codes.inventory(sku)
    assert stock["available"] == 1 and stock["reserved"] == 0


def test_lines_of_products_with_other_rates_earn_each_their_own(runtime):
    runtime.engine.distribution.register(distributor_id="d-one", name="One", actor="t")
    ten = stocked(runtime, price=1999, commission_rates_bp=[1000])
    five = stocked(runtime, price=1999, commission_rates_bp=[500])
    order = runtime.engine.orders.place(buyer_id="b", distributor_id="d-one", actor="key:app",
                                        items=[{"sku": ten, "quantity": 1},
                                               {"sku": five, "quantity": 1}])
    pay(runtime, order)
    commission = [leg for leg in legs(posted(runtime, "pay-1"))
                  if leg[0] in (COMMISSION, "liabilities:distributors:d-one")]
    assert commission == [(COMMISSION, 199 + 99, "commission", None),
                          ("liabilities:distributors:d-one", -199, "commission level 1", None),
                          ("liabilities:distributors:d-one", -99, "commission level 1", None)]


def test_a_free_order_posts_nothing(runtime):
    sku = define_product(runtime, price=0)
    import_codes(runtime, sku, codes_for(1), unit_cost=0)
    assert pay(runtime, place(runtime, sku)).status == "delivered"
    assert posted(runtime, "pay-1") is None


def test_a_provider_that_cannot_name_an_account_is_refused_before_anything_moves(runtime):
    order = place(runtime, stocked(runtime))
    with pytest.raises(ValidationFailed, match="ledger account"):
        pay(runtime, order, provider="we chat")
    assert runtime.store.find(payment_id("pay-1")) is None
    assert runtime.engine.orders.get(order.id).status == "reserved"


def test_a_supplier_that_cannot_name_an_account_is_refused_at_import(runtime):
    sku = define_product(runtime)
    with pytest.raises(ValidationFailed, match="ledger account"):
        import_codes(runtime, sku, codes_for(1), supplier_id="sup:1")
