"""Recharge-account patterns a store already holds, on both stores: products saved with a
pattern the checker before RE2 let through (it matched with a backtracking engine) keep
taking orders in linear time, and one RE2 cannot compile refuses its orders cleanly."""

from __future__ import annotations

import time

import pytest

from engine.catalog.products import Product
from engine.kernel.errors import ValidationFailed
from engine.kernel.ids import product_id
from tests.integration.helpers import new_sku


def _stored_before_re2(runtime, pattern: str) -> str:
    """A top-up product saved as the previous code saved it, its pattern never judged by
    today's checker."""
    sku = new_sku()
    runtime.engine.writer.save(Product(
        id=product_id(sku), sku=sku, name="Legacy top-up", delivery="topup", price=100,
        currency="CNY", purchase_limit=None, commission_rates_bp=[], allow_below_cost=False,
        channel_prices={}, components=[], actor="test", case_sensitive=True,
        recharge_account_pattern=pattern, tenant=None))
    return sku


def _place(runtime, sku: str, account: str):
    return runtime.engine.orders.place(buyer_id="b-1", items=[{"sku": sku, "quantity": 1}],
                                       actor="test", recharge_account=account)


def test_a_stored_catastrophic_pattern_answers_hostile_accounts_at_once(runtime):
    sku = _stored_before_re2(runtime, r"(?:a?){27}a{27}")  # 5.5 s a match before RE2
    started = time.perf_counter()
    with pytest.raises(ValidationFailed):
        _place(runtime, sku, "a" * 26)
    order = _place(runtime, sku, "a" * 27)
    assert time.perf_counter() - started < 1.0
    assert order.status == "reserved" and order.recharge["masked"] == "a" * 6 + "****" + "a" * 6


def test_a_stored_pattern_re2_cannot_compile_refuses_orders_without_matching(runtime):
    sku = _stored_before_re2(runtime, r"[0-9]{4}\Z")  # Python's end of text; RE2 says \z
    with pytest.raises(ValidationFailed) as refused:
        _place(runtime, sku, "1234")
    assert "RE2" in refused.value.detail and "1234" not in refused.value.detail
    assert runtime.engine.catalog.get(sku).recharge_account_pattern == r"[0-9]{4}\Z"
