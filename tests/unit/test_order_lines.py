"""Order lines as values, and their place in stored events."""

from datetime import datetime, timezone

import pytest

from engine.eventstore.transcoder import OrjsonTranscoder
from engine.topics import VALUE_TYPES
from engine.kernel.errors import ValidationFailed
from engine.kernel.money import Money
from engine.sales.lines import OrderLine

LINE = OrderLine("GIFT-100", 3, Money(9500, "CNY"))


def test_total_is_unit_price_times_quantity():
    assert LINE.total == Money(28500, "CNY")


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5, "2"])
def test_quantity_is_a_positive_whole_number(quantity):
    with pytest.raises(ValidationFailed):
        OrderLine("GIFT-100", quantity, Money(9500, "CNY"))


def test_unit_price_is_money_not_a_bare_number():
    with pytest.raises(ValidationFailed):
        OrderLine("GIFT-100", 1, 9500)


def test_sku_is_named():
    with pytest.raises(ValidationFailed):
        OrderLine("", 1, Money(9500, "CNY"))


def test_a_line_is_immutable():
    with pytest.raises(AttributeError):
        LINE.quantity = 4  # type: ignore[misc]


def test_json_round_trip():
    assert OrderLine.from_json(LINE.to_json()) == LINE


def test_a_stored_item_reads_as_a_line_in_the_orders_currency():
    item = {"sku": "GIFT-100", "quantity": 3, "unit_price": 9500}
    assert OrderLine.from_item(item, "CNY") == LINE


def test_lines_round_trip_through_the_transcoder_in_an_envelope():
    transcoder = OrjsonTranscoder(VALUE_TYPES)
    state = {"lines": [LINE], "at": datetime(2026, 11, 11, tzinfo=timezone.utc)}
    data = transcoder.encode(state)
    assert b'"_type_":"order_line"' in data
    assert transcoder.decode(data) == state
