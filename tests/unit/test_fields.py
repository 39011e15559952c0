"""engine/kernel/fields.py: the rules every value obeys before it may enter an event."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from engine.kernel.errors import ValidationFailed
from engine.kernel.fields import (
    EARLIEST,
    LATEST,
    check_digits,
    check_event,
    check_instant,
    check_text,
)

EAST8 = timezone(timedelta(hours=8))


@pytest.mark.parametrize("text", ["u-1001", "Video VIP 1 month", "北京朝阳门店", "café ☕",
                                  ""])
def test_printable_text_passes_unchanged(text):
    assert check_text(text, "name") is text


@pytest.mark.parametrize("text", ["t\x00", "a\tb", "line\n", "\r", "\x1b[31m", "\x7f",
                                  "\x85next", "\x9f", "lone \ud800 surrogate"])
def test_control_characters_and_surrogates_are_refused(text):
    with pytest.raises(ValidationFailed, match="terminal_id must not contain control"):
        check_text(text, "terminal_id")


def test_refusal_never_repeats_the_value():
    with pytest.raises(ValidationFailed) as caught:
        check_text("SECRET-CODE\x00", "code")
    assert "SECRET" not in caught.value.detail


def test_text_must_be_a_string():
    with pytest.raises(ValidationFailed, match="buyer_id must be text"):
        check_text(42, "buyer_id")


def test_instant_with_an_offset_comes_back_in_utc():
    moment = check_instant(datetime(2030, 1, 1, 8, 0, tzinfo=EAST8), "expires_at")
    assert moment == datetime(2030, 1, 1, 0, 0, tzinfo=timezone.utc)
    assert moment.tzinfo is timezone.utc


@pytest.mark.parametrize("moment", [EARLIEST, LATEST,
                                    datetime(2000, 1, 1, 8, 0, tzinfo=EAST8)])
def test_bounds_are_inclusive(moment):
    assert check_instant(moment, "at") == moment


def test_year_9999_with_a_negative_offset_is_refused_not_overflowing():
    far = datetime.fromisoformat("9999-12-31T23:59:59-01:00")
    with pytest.raises(ValidationFailed, match="expires_at must lie between"):
        check_instant(far, "expires_at")


@pytest.mark.parametrize("moment", [LATEST + timedelta(microseconds=1),
                                    EARLIEST - timedelta(microseconds=1),
                                    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
                                    datetime(2000, 1, 1, 7, 59, tzinfo=EAST8)])
def test_instants_outside_the_range_are_refused(moment):
    with pytest.raises(ValidationFailed, match="must lie between"):
        check_instant(moment, "at")


def test_naive_instant_is_refused():
    with pytest.raises(ValidationFailed, match="must carry a timezone"):
        check_instant(datetime(2030, 1, 1), "expires_at")


@pytest.mark.parametrize("text, number", [("0", 0), ("42", 42), ("007", 7),
                                          ("4611686018427387904", 2**62)])
def test_plain_digits_are_read(text, number):
    assert check_digits(text, "cursor", 2**62) == number


@pytest.mark.parametrize("text", ["²", "٣", "+5", "-1", " 5", "5 ", "5_0", "1e3", "5.0", "",
                                  "0x10", 5])
def test_anything_but_ascii_digits_is_refused(text):
    with pytest.raises(ValidationFailed, match="cursor must be written in digits 0-9"):
        check_digits(text, "cursor", 2**62)


@pytest.mark.parametrize("text", ["4611686018427387905", "9" * 20, "9" * 5000])
def test_digits_above_the_bound_are_refused(text):
    with pytest.raises(ValidationFailed, match="cursor must be at most"):
        check_digits(text, "cursor", 2**62)


def _event(**fields):
    base = {"originator_id": "00000000-0000-0000-0000-000000000001", "originator_version": 1,
            "timestamp": datetime.now(timezone.utc)}
    return SimpleNamespace(**base, **fields)


def test_a_clean_event_passes_the_backstop():
    check_event(_event(buyer_id="u-1", items=[{"sku": "VIP", "quantity": 2}],
                       sealed="q83vEjRWeJA=", expires_at=None, rolled_back={"r-1": "why"}))


@pytest.mark.parametrize("fields", [
    {"terminal_id": "t\x00"},
    {"items": [{"sku": "VIP", "note": "a\x00"}]},
    {"rolled_back": {"r\x00": "reason"}},
    {"codes": ("ok", ["deep", {"deeper": "\ud800"}])},
])
def test_the_backstop_finds_control_characters_anywhere(fields):
    with pytest.raises(ValidationFailed, match="must not contain control characters"):
        check_event(_event(**fields))


@pytest.mark.parametrize("moment, message", [
    (datetime(9999, 12, 31, tzinfo=timezone.utc), "must lie between"),
    (datetime(2030, 1, 1), "must carry a timezone"),
    (datetime(2030, 1, 1, tzinfo=EAST8), "must be in UTC"),
])
def test_the_backstop_refuses_instants_it_could_not_project(moment, message):
    with pytest.raises(ValidationFailed, match=f"expires_at {message}"):
        check_event(_event(expires_at=moment))
