from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from engine.codes.codes import Code
from engine.kernel.errors import (
    AlreadyRedeemed,
    AlreadyRolledBack,
    CodeExpired,
    CodeVoided,
    InvalidState,
    NotFound,
)

NOW = datetime.now(timezone.utc)


def new_code(expires_at=None) -> Code:
    return Code(id=uuid4(), sku="SKU", batch_id="b", sealed="s", origin="imported",
                expires_at=expires_at, actor="t")


def sold_code() -> Code:
    code = new_code()
    code.reserve(order_id="o1", holder="buyer", now=NOW, actor="t")
    code.sell(order_id="o1", actor="t")
    return code


def test_code_moves_from_available_through_reserved_and_sold_to_redeemed():
    code = sold_code()
    code.redeem(redemption_id="r1", merchant_id="m1", terminal_id="t1", location="SH",
                now=NOW, actor="t")
    assert code.status == "redeemed"
    assert code.redemption["merchant_id"] == "m1"


def test_second_redemption_reports_first_redeemer():
    code = sold_code()
    code.redeem(redemption_id="r1", merchant_id="m1", terminal_id=None, location=None,
                now=NOW, actor="t")
    with pytest.raises(AlreadyRedeemed) as caught:
        code.redeem(redemption_id="r2", merchant_id="m2", terminal_id=None, location=None,
                    now=NOW, actor="t")
    assert caught.value.extra["merchant_id"] == "m1"
    assert caught.value.extra["redemption_id"] == "r1"


def test_rollback_returns_code_to_sold_and_refuses_a_second_rollback():
    code = sold_code()
    code.redeem(redemption_id="r1", merchant_id="m1", terminal_id=None, location=None,
                now=NOW, actor="t")
    code.roll_back(redemption_id="r1", reason="wrong item", actor="t")
    assert code.status == "sold"
    with pytest.raises(AlreadyRolledBack):
        code.roll_back(redemption_id="r1", reason="again", actor="t")


def test_rollback_of_unknown_redemption_is_not_found():
    code = sold_code()
    with pytest.raises(NotFound):
        code.roll_back(redemption_id="nope", reason="x", actor="t")


def test_reserved_code_cannot_be_reserved_again():
    code = new_code()
    code.reserve(order_id="o1", holder="a", now=NOW, actor="t")
    with pytest.raises(InvalidState):
        code.reserve(order_id="o2", holder="b", now=NOW, actor="t")


def test_only_the_reserving_order_can_buy_or_release_a_code():
    code = new_code()
    code.reserve(order_id="o1", holder="a", now=NOW, actor="t")
    with pytest.raises(InvalidState):
        code.sell(order_id="o2", actor="t")
    with pytest.raises(InvalidState):
        code.release(order_id="o2", reason="x", actor="t")
    code.release(order_id="o1", reason="cancelled", actor="t")
    assert code.status == "available" and code.order_id is None


def test_unsold_code_cannot_be_redeemed():
    with pytest.raises(InvalidState):
        new_code().redeem(redemption_id="r", merchant_id="m", terminal_id=None,
                          location=None, now=NOW, actor="t")


def test_voided_code_answers_voided_everywhere():
    code = new_code()
    code.void(reason="supplier recall", actor="t")
    with pytest.raises(CodeVoided):
        code.reserve(order_id="o", holder="a", now=NOW, actor="t")
    with pytest.raises(CodeVoided):
        code.void(reason="again", actor="t")


def test_code_past_expiry_cannot_be_reserved_or_redeemed():
    code = new_code(expires_at=NOW + timedelta(seconds=1))
    later = NOW + timedelta(seconds=2)
    with pytest.raises(CodeExpired):
        code.reserve(order_id="o", holder="a", now=later, actor="t")
    code.reserve(order_id="o", holder="a", now=NOW, actor="t")
    code.sell(order_id="o", actor="t")
    with pytest.raises(CodeExpired):
        code.redeem(redemption_id="r", merchant_id="m", terminal_id=None, location=None,
                    now=later, actor="t")


def test_expire_refuses_a_code_not_yet_due_and_marks_a_due_one():
    code = new_code(expires_at=NOW + timedelta(seconds=1))
    with pytest.raises(InvalidState):
        code.expire(now=NOW, actor="sweeper")
    code.expire(now=NOW + timedelta(seconds=2), actor="sweeper")
    assert code.status == "expired"
    with pytest.raises(CodeExpired):
        code.expire(now=NOW + timedelta(seconds=3), actor="sweeper")


def test_public_state_never_carries_the_sealed_secret():
    state = new_code().state()
    assert "sealed" not in state and "s" not in state.values()


def test_a_refunded_code_goes_back_on_sale_unless_it_was_revealed():
    unseen = sold_code()
    unseen.refund(order_id="o1", refund_id="r1", actor="t")
    assert (unseen.status, unseen.order_id, unseen.holder) == ("available", None, None)
    seen = sold_code()
    seen.record_reveal(order_id="o1", actor="t", client_address=None)
    seen.refund(order_id="o1", refund_id="r1", actor="t")
    assert seen.status == "voided"
    with pytest.raises(CodeVoided):
        seen.refund(order_id="o1", refund_id="r2", actor="t")


def test_a_redeemed_code_or_another_orders_code_is_not_refunded():
    code = sold_code()
    with pytest.raises(InvalidState):
        code.refund(order_id="o2", refund_id="r1", actor="t")
    code.redeem(redemption_id="x", merchant_id="m-1", terminal_id=None, location=None,
                now=NOW, actor="t")
    with pytest.raises(AlreadyRedeemed) as refused:
        code.refund(order_id="o1", refund_id="r1", actor="t")
    assert refused.value.extra["merchant_id"] == "m-1"
