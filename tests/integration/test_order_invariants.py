"""A Hypothesis state machine over the order and code operations (reserve, pay, expire,
cancel, late pay), checking the sales invariants after every step on the real store."""

import dataclasses
from collections import Counter

from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.kernel.errors import QuanyiError
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes

STOCK = 8


class OrderLifecycle(RuleBasedStateMachine):
    rt: Runtime
    checks = 0

    @initialize()
    def stock(self):
        self.sku = define_product(self.rt)
        import_codes(self.rt, self.sku, codes_for(STOCK))
        caught_up(self.rt)
        self.orders = []
        self.paid: dict = {}
        self.serial = 0

    @rule(quantity=st.integers(1, 3))
    def place(self, quantity):
        try:
            order = self.rt.engine.orders.place(
                buyer_id=f"b{len(self.orders)}", items=[{"sku": self.sku, "quantity": quantity}],
                actor="key:app")
        except QuanyiError:
            return
        self.orders.append(order.id)

    @rule(data=st.data(), repeat=st.booleans())
    def pay(self, data, repeat):
        if not self.orders:
            return
        order_id = data.draw(st.sampled_from(self.orders))
        order = self.rt.engine.orders.get(order_id)
        self.serial += 1
        ref = self.paid.get(order_id) if repeat and order_id in self.paid else f"p{self.serial}"
        try:
            self.rt.engine.orders.pay(order_id=order_id, payment_ref=ref, amount=order.amount,
                                      currency=order.currency, provider="x", actor="key:app")
        except QuanyiError:
            return
        self.paid.setdefault(order_id, ref)

    @rule(data=st.data())
    def expire(self, data):
        if self.orders:
            self.rt.engine.orders.expire(data.draw(st.sampled_from(self.orders)))

    @rule(data=st.data())
    def cancel(self, data):
        if self.orders:
            try:
                self.rt.engine.orders.cancel(order_id=data.draw(st.sampled_from(self.orders)),
                                             reason="r", actor="key:app")
            except QuanyiError:
                pass

    @invariant()
    def sales_invariants_hold(self):
        OrderLifecycle.checks += 1
        owners = Counter()
        for order_id in self.orders:
            order = self.rt.engine.orders.get(order_id)
            codes = self.rt.engine.orders.codes_of(order)
            units = sum(n["quantity"] for n in order.needs)
            if order.status in ("reserved", "delivered"):
                wanted = "reserved" if order.status == "reserved" else "sold"
                assert len(codes) == units
                assert all(c.status == wanted and c.order_id == str(order_id) for c in codes)
                owners.update(c.id for c in codes)
            assert len(order.payments) == (1 if order_id in self.paid else 0)
            if order.payments:
                assert order.status in ("delivered", "refunded")
        assert all(n == 1 for n in owners.values())
        caught_up(self.rt)
        stock = self.rt.codes.inventory(self.sku)
        assert stock["total"] == STOCK == sum(stock[s] for s in (
            "available", "reserved", "sold", "redeemed", "voided", "expired"))
        assert stock["reserved"] + stock["sold"] == len(owners)


def test_order_invariants_hold_under_random_operations(settings):
    rt = Runtime.open(dataclasses.replace(settings, reservation_ttl_seconds=0))
    rt.start()
    try:
        OrderLifecycle.rt = rt
        OrderLifecycle.checks = 0
        case = OrderLifecycle.TestCase
        case.settings = hsettings(max_examples=10, stateful_step_count=15, deadline=None,
                                  suppress_health_check=list(HealthCheck))
        case().runTest()
        assert OrderLifecycle.checks >= 50
    finally:
        rt.close()
