"""Money: integer minor units with a currency; checked arithmetic; floor shares."""

import pytest

from engine.kernel.errors import ValidationFailed
from engine.kernel.money import MAX_MINOR, Money


def test_amounts_of_one_currency_add_and_subtract():
    assert Money(1990, "CNY") + Money(10, "CNY") - Money(1000, "CNY") == Money(1000, "CNY")


def test_currencies_never_mix():
    with pytest.raises(ValidationFailed):
        Money(1, "CNY") + Money(1, "USD")


@pytest.mark.parametrize("amount", [True, 1.0, "1", None, MAX_MINOR + 1, -MAX_MINOR - 1])
def test_only_whole_minor_units_in_range_are_money(amount):
    with pytest.raises(ValidationFailed):
        Money(amount, "CNY")


@pytest.mark.parametrize("currency", ["cny", "CN", "", "CNYY", None])
def test_currency_is_an_iso_code(currency):
    with pytest.raises(ValidationFailed):
        Money(1, currency)


@pytest.mark.parametrize("amount,bp,share", [(1999, 500, 99), (1999, 10_000, 1999),
                                             (1, 9_999, 0), (-1999, 500, -99), (0, 500, 0)])
def test_a_share_is_rounded_toward_zero(amount, bp, share):
    assert Money(amount, "CNY").share_bp(bp) == Money(share, "CNY")


def test_multiplying_by_a_count_keeps_the_currency():
    assert 3 * Money(1990, "CNY") == Money(5970, "CNY")
