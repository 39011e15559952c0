"""The rules every value obeys before it may enter an event, written once for the engine and
the API: text that every store can hold and every reader can print, instants that every
calendar can convert, and whole numbers written as plain digits.

An event is forever, and the projections replay it forever: a NUL byte (PostgreSQL refuses
it in text), a lone surrogate (not encodable as UTF-8) or a year-9999 instant with a negative
offset (it overflows when turned into UTC) would stop them for good. So the API's request
types check these rules to name the field in a 422, and the writer checks every event against
them again (``check_event``), so that no path - API, CLI or test - can store such a value.

Text: no character of Unicode category Cc (C0 and C1 controls, so also no tab or newline:
ids, names, reasons and locations are single lines) and none of category Cs (surrogates).
Everything else printable is allowed, in any script.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from engine.kernel.errors import ValidationFailed

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2199, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone.utc)
MAX_DIGITS = 19  # 2**63 has 19 digits: any bound below that fits
_UTC = timedelta(0)
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]+")
_PLAIN = frozenset({int, bool, float, type(None), UUID})  # nothing in them to check


def check_text(value: Any, field: str) -> str:
    """The text unchanged, or ValidationFailed if it holds a control character or a
    surrogate. The message never repeats the value: it may be a secret."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text")
    if _FORBIDDEN.search(value):
        raise ValidationFailed(f"{field} must not contain control characters")
    return value


def check_instant(value: Any, field: str) -> datetime:
    """The instant in UTC, or ValidationFailed if it is naive or outside EARLIEST..LATEST."""
    if not isinstance(value, datetime):
        raise ValidationFailed(f"{field} must be an instant")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(f"{field} must carry a timezone")
    if not EARLIEST <= value <= LATEST:  # compared before converting: that could overflow
        raise ValidationFailed(f"{field} must lie between {EARLIEST.isoformat()} and "
                               f"{LATEST.isoformat()}")
    return value.astimezone(timezone.utc)


def check_digits(value: Any, field: str, maximum: int) -> int:
    """A whole number 0..maximum written in ASCII digits only: no sign, space, underscore,
    superscript or other script's digits (``str.isdigit`` admits '²' and '٣')."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise ValidationFailed(f"{field} must be written in digits 0-9 only")
    if len(value) > MAX_DIGITS or int(value) > maximum:  # bounded before int() reads it
        raise ValidationFailed(f"{field} must be at most {maximum}")
    return int(value)


def check_event(event: Any) -> None:
    """The backstop: every text and instant anywhere in the event's fields obeys the rules,
    and every instant is already in UTC. Secret fields (sealed blobs, hashes) are base64 or
    hex and pass. Runs on every save, so it walks the fields without copying them."""
    for name, value in vars(event).items():
        _check_value(value, name)


def _check_value(value: Any, field: str) -> None:
    kind = type(value)
    if kind in _PLAIN:  # the common cases first: this runs for every field of every save
        return
    if kind is str:
        if _FORBIDDEN.search(value):
            raise ValidationFailed(f"{field} must not contain control characters")
    elif isinstance(value, str):
        if _FORBIDDEN.search(value):
            raise ValidationFailed(f"{field} must not contain control characters")
    elif isinstance(value, datetime):
        check_instant(value, field)
        if value.utcoffset() != _UTC:
            raise ValidationFailed(f"{field} must be in UTC")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, field)
            _check_value(item, field)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_value(item, field)
    elif slots := getattr(type(value), "__slots__", None):  # a value object (Money, Leg)
        for name in slots:  # its fields are what is stored (to_json), without the copy
            item = getattr(value, name)
            if type(item) is str:  # the common case inline: a ledger sale has many legs
                if _FORBIDDEN.search(item):
                    raise ValidationFailed(f"{field} must not contain control characters")
            elif item is not None and type(item) is not int:
                _check_value(item, field)
    elif hasattr(value, "to_json"):  # a value object: as it will be stored
        _check_value(value.to_json(), field)
