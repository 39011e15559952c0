"""The account a direct top-up (直充) credits: how a product says what one looks like, and how
the platform keeps it.

A top-up product carries a ``recharge_account_pattern``: the name of a preset (``mobile_cn``,
``game_id``) or a regular expression the whole account must match. A pattern is user input
that every order then runs, so a catastrophic one (exponential backtracking) is refused when
the product is defined: at most ``MAX_PATTERN`` characters, at most ``MAX_REPEATS``
quantifiers that repeat more than once, none of them nested in another or wrapped around an
alternation, and no back-references. An account is at most ``MAX_ACCOUNT`` characters, so
even a polynomial pattern stays small.

A recharge account is personal data: the order's ``RechargeAccountNamed`` event carries it
sealed (AES-GCM, bound to the order id, like a code secret) and masked; every answer shows
the mask, no projection holds it, and only the fulfilment opens the seal, to hand it to the
supplier.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from engine.errors import ValidationFailed
from engine.fields import check_text

PRESETS = {
    "mobile_cn": r"1[3-9][0-9]{9}",  # a mainland China mobile number, 11 digits
    "game_id": r"[A-Za-z0-9_-]{4,32}",  # a game or platform account id
}
DEFAULT_PRESET = "game_id"
MAX_PATTERN = 200
MAX_REPEATS = 3
MAX_ACCOUNT = 64
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None))
_REFUSED = (sre.GROUPREF, sre.GROUPREF_EXISTS, sre.ASSERT, sre.ASSERT_NOT)


def check_pattern(pattern: str | None) -> str:
    """The pattern a product keeps (a preset's name or a safe regex), or ValidationFailed."""
    pattern = DEFAULT_PRESET if pattern is None else check_text(pattern,
                                                                "recharge_account_pattern")
    if pattern in PRESETS:
        return pattern
    if not 1 <= len(pattern) <= MAX_PATTERN:
        raise ValidationFailed(f"recharge_account_pattern is a preset "
                               f"({', '.join(PRESETS)}) or a regex of 1-{MAX_PATTERN} "
                               "characters")
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValidationFailed(f"recharge_account_pattern is not a regex: {exc}") from None
    if _repeats(parsed, nested=False) > MAX_REPEATS:
        raise ValidationFailed(f"recharge_account_pattern may repeat at most {MAX_REPEATS} "
                               "times")
    return pattern


def _repeats(items: Any, *, nested: bool) -> int:
    """How many quantifiers that repeat more than once ``items`` holds; ValidationFailed
    for the shapes that backtrack without bound."""
    count = 0
    for op, value in items:
        if op in _REFUSED:
            raise ValidationFailed("recharge_account_pattern may not use back-references "
                                   "or look-around")
        if op in _REPEATS:
            _, high, body = value
            repeats = high is sre.MAXREPEAT or high > 1
            if repeats and (nested or _has_branch(body)):
                raise ValidationFailed("recharge_account_pattern may not nest a repeat in "
                                       "a repeat, or repeat an alternation")
            count += int(repeats) + _repeats(body, nested=nested or repeats)
        elif op is sre.SUBPATTERN:
            count += _repeats(value[-1], nested=nested)
        elif op is sre.BRANCH:
            count += sum(_repeats(branch, nested=nested) for branch in value[1])
    return count


def _has_branch(items: Any) -> bool:
    for op, value in items:
        if op is sre.BRANCH:
            return True
        if op is sre.SUBPATTERN and _has_branch(value[-1]):
            return True
    return False


def check_account(account: Any, pattern: str) -> str:
    """The account as given, if the whole of it matches the product's pattern."""
    account = check_text(account, "recharge_account")
    if not 1 <= len(account) <= MAX_ACCOUNT:
        raise ValidationFailed(f"recharge_account must be 1-{MAX_ACCOUNT} characters")
    if re.fullmatch(PRESETS.get(pattern, pattern), account) is None:
        raise ValidationFailed("recharge_account does not match the product's "
                               "recharge_account_pattern")
    return account


def mask(account: str) -> str:
    """A quarter of the account at each end at most, four stars between: ``13********78``
    style, enough for a buyer to recognise theirs, never the whole."""
    shown = len(account) // 4
    return f"{account[:shown]}****{account[len(account) - shown:] if shown else ''}"
