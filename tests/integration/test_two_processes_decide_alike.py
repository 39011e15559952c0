"""Two runtimes on one store, as two `quanyi serve` processes are: each keeps copies of what
it saved (engine/eventstore/recent.py), yet no answer depends on which one a request reaches. Runtime
``placer`` places the orders (and so remembers them as reserved); ``payer`` pays them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from engine.kernel.errors import AlreadyRefunded, QuanyiError
from engine.kernel.money import Money
from engine.settings import Settings
from engine.topups.offers import TopupOffer
from engine.topups.supplier_port import AttemptReport, Outcome
from runtime import Runtime
from supplier_sim import SimConfig, SimServer
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


@pytest.fixture
def placer(runtime: Runtime) -> Runtime:
    return runtime


@pytest.fixture
def payer(settings: Settings, placer: Runtime) -> Iterator[Runtime]:
    """A second process on the same store."""
    with closing(Runtime.open(settings)) as rt:
        rt.start()
        yield rt


def placed_there_paid_here(placer: Runtime, payer: Runtime, quantity: int = 1):
    """An order placed on ``placer`` and paid on ``payer``: delivered, as ``payer`` says."""
    sku = define_product(placer)
    import_codes(placer, sku, codes_for(quantity + 1))
    caught_up(placer)
    order = placer.engine.orders.place(buyer_id="buyer-1", actor="key:app",
                                       items=[{"sku": sku, "quantity": quantity}])
    paid = payer.engine.orders.pay(order_id=order.id, payment_ref=f"pay-{order.id}",
                                   amount=order.amount, currency=order.currency,
                                   provider="alipay", actor="key:app")
    assert paid.status == "delivered"
    return paid


def refund(rt: Runtime, order, code_ids=None):
    return rt.engine.orders.refund(order_id=order.id, code_ids=code_ids, reason="buyer asked",
                                   actor="key:app")


def answer(call) -> tuple[str, str]:
    """What a request would be answered: the error's code, or the outcome."""
    try:
        return "ok", str(call())
    except QuanyiError as refusal:
        return "refused", refusal.code


def test_a_refund_on_the_process_that_placed_the_order_is_made_after_a_payment_elsewhere(
        placer, payer):
    order = placed_there_paid_here(placer, payer)
    done = refund(placer, order)
    assert done["code_ids"] == [str(order.code_ids[0])] and done["amount"] == order.amount
    assert placer.engine.orders.get(order.id).status == "refunded"


def test_a_code_refunded_on_one_process_is_already_refunded_on_the_other(placer, payer):
    order = placed_there_paid_here(placer, payer, quantity=2)
    code_id = str(order.code_ids[0])
    refund(payer, order, [code_id])
    with pytest.raises(AlreadyRefunded):
        refund(placer, order, [code_id])
    assert len(payer.engine.orders.get(order.id).refunds) == 1


def test_a_payment_repeated_with_another_amount_is_answered_alike_on_both_processes(
        placer, payer):
    order = placed_there_paid_here(placer, payer)

    def repeat(rt: Runtime):
        return lambda: rt.engine.orders.pay(
            order_id=order.id, payment_ref=f"pay-{order.id}", amount=order.amount + 1,
            currency=order.currency, provider="alipay", actor="key:app").status
    assert answer(repeat(placer)) == answer(repeat(payer))
    assert len(payer.engine.orders.get(order.id).payments) == 1


def test_a_failure_reported_where_a_top_up_was_paid_resumes_it_after_an_escalation_elsewhere(
        quanyi_env):
    settings = Settings.from_env({**quanyi_env, "QUANYI_TOPUP_DEADLINE_SECONDS": "0.001",
                                  "QUANYI_SUPPLIER_ALLOW_PRIVATE_URLS": "true"})
    # every attempt stays pending; the runtimes are not started, so no dispatcher moves the
    # top-up: the test takes each step itself
    with SimServer(SimConfig(pending_rate=1.0)) as sim, \
            closing(Runtime.open(settings)) as paid_here, \
            closing(Runtime.open(settings)) as escalated_here:
        order = paid_top_up(paid_here, sim)
        assert escalated_here.engine.topups.advance(order.id) is None  # pending past deadline
        assert escalated_here.engine.orders.get(order.id).status == "needs_attention"
        attempt = escalated_here.engine.topups.get(order.id).open_attempt
        paid_here.engine.topups.report(supplier_id="sup-a", via="query",
                                       report=AttemptReport(attempt.reference, Outcome.FAILED))
        assert escalated_here.engine.orders.get(order.id).status == "fulfilling"


def test_a_top_up_is_not_given_up_on_offers_read_before_another_process_set_them(
        quanyi_env):
    settings = Settings.from_env({**quanyi_env, "QUANYI_SUPPLIER_ALLOW_PRIVATE_URLS": "true"})
    with SimServer(SimConfig(pending_rate=1.0)) as sim, \
            closing(Runtime.open(settings)) as dispatching, \
            closing(Runtime.open(settings)) as offering:
        order = paid_top_up(dispatching, sim, offered=False)
        sku = order.items[0]["sku"]
        assert dispatching.engine.suppliers.offers_for(sku) == []  # kept for a second
        offer(offering, sku)
        assert dispatching.engine.topups.advance(order.id) is not None  # an attempt, pending
        assert offering.engine.orders.get(order.id).status == "fulfilling"


def offer(rt: Runtime, sku: str) -> None:
    rt.engine.suppliers.set_offers(sku, [TopupOffer("sup-a", "A-100", Money(9_000, "CNY"), 0)],
                                   actor="t")


def paid_top_up(rt: Runtime, sim: SimServer, offered: bool = True):
    """A top-up of ``sim``'s supplier (``offered`` by it, or not yet), placed and paid on
    ``rt`` (which remembers it)."""
    rt.engine.suppliers.register(
        supplier_id="sup-a", name="A", adapter="http-json", endpoint=sim.url, actor="t",
        credentials={"api_key": SimConfig.api_key, "callback_secret": SimConfig.callback_secret})
    sku = define_product(rt, delivery="topup", price=10_000, recharge_account_pattern="mobile_cn")
    if offered:
        offer(rt, sku)
    order = rt.engine.orders.place(buyer_id="b", actor="key:app", recharge_account="13800138000",
                                   items=[{"sku": sku, "quantity": 1}])
    rt.engine.orders.pay(order_id=order.id, payment_ref=f"p-{order.id}", amount=10_000,
                         currency="CNY", provider=None, actor="key:app")
    return order


def test_an_order_at_a_channel_price_raised_elsewhere_is_not_refused_as_below_cost(
        placer, payer):
    sku = define_product(placer, price=1990)  # its codes cost 1200
    import_codes(placer, sku, codes_for(2))
    caught_up(placer)
    payer.engine.catalog.set_channel_price(sku=sku, channel="shop", price=1000, actor="t")

    def place():
        return placer.engine.orders.place(buyer_id="b", actor="key:app", channel="shop",
                                          items=[{"sku": sku, "quantity": 1}]).amount
    assert answer(place) == ("refused", "price_below_cost")  # the placer keeps this product
    payer.engine.catalog.set_channel_price(sku=sku, channel="shop", price=1500, actor="t")
    assert answer(place) == ("ok", "1500")
