"""Commission arithmetic: floored per leg, never more than was paid, the remainder to the
platform; clawbacks that leave each level the rate applied to the net paid amount."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.kernel.errors import ValidationFailed
from engine.kernel.money import MAX_MINOR, Money
from engine.ledger.distribution import clawback, commission_legs

CHAIN = ["d-1", "d-parent", "d-grand"]


def cny(amount: int) -> Money:
    return Money(amount, "CNY")


def test_each_leg_is_floored_on_its_own():
    legs = commission_legs(cny(1999), [500, 200, 100], CHAIN)
    # 99.95 -> 99, 39.98 -> 39, 19.99 -> 19: three floors, not one floor of the total
    assert legs == [("d-1", 1, cny(99)), ("d-parent", 2, cny(39)), ("d-grand", 3, cny(19))]


def test_the_platform_keeps_what_the_floors_leave_and_the_split_sums_exactly():
    paid = cny(1999)
    legs = commission_legs(paid, [500, 200, 100], CHAIN)
    platform = paid - sum((amount for _, _, amount in legs), cny(0))
    assert platform == cny(1842)  # 1999 - 157; unfloored it would be 1839.08
    assert sum(a.amount for _, _, a in legs) + platform.amount == paid.amount


def test_levels_beyond_the_chain_earn_nothing():
    assert commission_legs(cny(1000), [500, 200, 100], ["d-root"]) == [
        ("d-root", 1, cny(50))]


def test_levels_beyond_the_rates_earn_nothing():
    assert commission_legs(cny(1000), [500], CHAIN) == [("d-1", 1, cny(50))]


def test_zero_amounts_are_left_out():
    assert commission_legs(cny(19), [500, 0, 100], CHAIN) == []
    assert commission_legs(cny(1000), [0, 300], CHAIN) == [("d-parent", 2, cny(30))]


def test_no_rates_or_no_distributor_earn_nothing():
    assert commission_legs(cny(1000), [], CHAIN) == []
    assert commission_legs(cny(1000), [500], []) == []


def test_rates_summing_beyond_the_whole_are_refused():
    with pytest.raises(ValidationFailed):
        commission_legs(cny(1000), [6000, 5000], CHAIN)


def test_a_negative_amount_paid_is_refused():
    with pytest.raises(ValidationFailed):
        commission_legs(cny(-1), [500], CHAIN)


def _rates():
    return st.lists(st.integers(0, 10_000), max_size=3).filter(lambda r: sum(r) <= 10_000)


@given(paid=st.integers(0, MAX_MINOR), rates=_rates(), depth=st.integers(0, 3))
def test_legs_are_floors_and_never_exceed_the_amount_paid(paid, rates, depth):
    chain = CHAIN[:depth]
    legs = commission_legs(cny(paid), rates, chain)
    expected = [(d, i, paid * r // 10_000) for i, (d, r) in enumerate(zip(chain, rates), 1)]
    assert [(d, i, a.amount) for d, i, a in legs] == [e for e in expected if e[2]]
    total = sum(a.amount for _, _, a in legs)
    assert total <= paid
    # each floor loses less than one minor unit: the platform keeps its exact share plus
    # less than one unit per earning level, never less than its share
    levels = list(zip(chain, rates))
    earned = sum(r for _, r in levels)
    platform = paid - total
    assert 0 <= platform * 10_000 - paid * (10_000 - earned) < 10_000 * max(len(levels), 1)


# -- clawback ------------------------------------------------------------------------------

def test_a_full_refund_claws_back_exactly_what_was_accrued():
    paid = cny(1999)
    accrued = cny(99)  # floor(1999 x 5%)
    assert clawback(paid, paid, accrued, 500) == accrued


def test_a_partial_refund_leaves_the_rate_on_the_net_paid_amount():
    # paid 1999 at 5% accrued 99; 999 refunded leaves 1000 paid, which earns 50
    assert clawback(cny(1999), cny(999), cny(99), 500) == cny(49)


def test_no_refund_claws_back_nothing():
    assert clawback(cny(1999), cny(0), cny(99), 500) == cny(0)


def test_a_refund_beyond_the_amount_paid_is_refused():
    with pytest.raises(ValidationFailed):
        clawback(cny(1000), cny(1001), cny(50), 500)


@given(paid=st.integers(1, 10**12), rate=st.integers(0, 10_000),
       cuts=st.lists(st.integers(0, 10**12), max_size=6))
def test_successive_partial_refunds_leave_the_commission_on_the_net(paid, rate, cuts):
    held = cny(paid).share_bp(rate)
    refunded = 0
    for cut in cuts:
        refunded = min(paid, refunded + cut)
        back = clawback(cny(paid), cny(refunded), held, rate)
        assert back.amount >= 0
        held -= back
        assert held.amount == (paid - refunded) * rate // 10_000
    back = clawback(cny(paid), cny(paid), held, rate)
    assert held - back == cny(0)
