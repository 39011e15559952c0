"""Void and expiry, and the inventory that follows them."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from engine.kernel.errors import CodeExpired, CodeVoided
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def test_voided_code_leaves_the_pool_and_is_counted_voided(runtime):
    sku = define_product(runtime)
    rows = codes_for(3)
    import_codes(runtime, sku, rows)
    code = runtime.engine.codes.look_up(rows[0].code)
    runtime.engine.codes.void(code_id=code.id, reason="supplier recall", actor="test")
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["voided"] == 1
    with pytest.raises(CodeVoided):
        runtime.engine.codes.void(code_id=code.id, reason="twice", actor="test")
    reserved = runtime.engine.reservations.reserve(sku=sku, quantity=2, order_id="o",
                                                   holder="b", actor="test")
    assert code.id not in {c.id for c in reserved}


def test_sweep_expires_due_codes_once_and_redemption_then_answers_expired(runtime):
    sku = define_product(runtime)
    rows = codes_for(4)
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    import_codes(runtime, sku, rows, expires_at=soon)
    caught_up(runtime)
    [sold] = runtime.engine.reservations.reserve(sku=sku, quantity=1, order_id="o",
                                                 holder="b", actor="test")
    runtime.engine.reservations.sell(code_ids=[sold.id], order_id="o", actor="test")
    caught_up(runtime)
    time.sleep(1.2)
    assert runtime.sweep_expired() == 4
    assert runtime.sweep_expired() == 0
    caught_up(runtime)
    stock = runtime.codes.inventory(sku)
    assert stock["expired"] == 4 and stock["available"] == stock["sold"] == 0
    plain = runtime.engine.codes.reveal(runtime.engine.codes.get(sold.id))["code"]
    with pytest.raises(CodeExpired):
        runtime.engine.redemptions.redeem(code=plain, merchant_id="m", terminal_id=None,
                                          location=None, actor="test")
