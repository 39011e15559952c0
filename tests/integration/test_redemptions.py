"""Redemption at the counter, with real concurrent terminals."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.kernel.errors import (
    AlreadyRedeemed,
    AlreadyRolledBack,
    Forbidden,
    InvalidState,
    NotFound,
)
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def sold_code_string(rt, order_id: str = "o1") -> str:
    sku = define_product(rt)
    rows = codes_for(1)
    import_codes(rt, sku, rows)
    caught_up(rt)
    [code] = rt.engine.reservations.reserve(sku=sku, quantity=1, order_id=order_id,
                                            holder="buyer", actor="test")
    rt.engine.reservations.sell(code_ids=[code.id], order_id=order_id, actor="test")
    return rows[0].code


def redeem(rt, code: str, merchant: str, actor: str = "key:merchant"):
    return rt.engine.redemptions.redeem(code=code, merchant_id=merchant, terminal_id="T1",
                                        location="Shanghai", actor=actor)


def test_concurrent_terminals_redeem_a_code_exactly_once(runtime):
    code = sold_code_string(runtime)

    def attempt(n: int):
        try:
            redeem(runtime, code, f"merchant-{n}")
            return "redeemed"
        except AlreadyRedeemed as exc:
            return exc.extra["merchant_id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("redeemed") == 1
    winner = outcomes.index("redeemed")
    assert {o for o in outcomes if o != "redeemed"} == {f"merchant-{winner}"}


def test_second_redemption_reports_first_redeemer_and_time(runtime):
    code = sold_code_string(runtime)
    first, _ = redeem(runtime, code, "m-1")
    with pytest.raises(AlreadyRedeemed) as caught:
        redeem(runtime, code, "m-2")
    assert caught.value.extra["merchant_id"] == "m-1"
    assert caught.value.extra["redeemed_at"] == first.redemption["at"]


def test_rollback_lets_the_code_be_redeemed_again_under_a_new_id(runtime):
    code = sold_code_string(runtime)
    _, first = redeem(runtime, code, "m-1")
    runtime.engine.redemptions.roll_back(redemption_id=first.id, reason="till error",
                                         actor="key:merchant")
    with pytest.raises(AlreadyRolledBack):
        runtime.engine.redemptions.roll_back(redemption_id=first.id, reason="again",
                                             actor="key:merchant")
    _, second = redeem(runtime, code, "m-1")
    assert second.id != first.id


def test_only_the_redeeming_key_may_roll_back(runtime):
    code = sold_code_string(runtime)
    _, redemption = redeem(runtime, code, "m-1", actor="key:one")
    with pytest.raises(Forbidden):
        runtime.engine.redemptions.roll_back(redemption_id=redemption.id, reason="x",
                                             actor="key:other")
    runtime.engine.redemptions.roll_back(redemption_id=redemption.id, reason="x",
                                         actor="key:admin", any_actor=True)


def test_unknown_code_is_not_found_and_unsold_code_is_invalid_state(runtime):
    with pytest.raises(NotFound):
        redeem(runtime, "NEVER-ISSUED", "m-1")
    sku = define_product(runtime)
    rows = codes_for(1)
    import_codes(runtime, sku, rows)
    with pytest.raises(InvalidState):
        redeem(runtime, rows[0].code, "m-1")
