"""The account a direct top-up (直充) credits: how a product says what one looks like, and how
the platform keeps it.

A top-up product carries a ``recharge_account_pattern``: the name of a preset (``mobile_cn``,
``game_id``) or a regular expression the whole account must match. A pattern is user input
that every order then runs, so it is matched by RE2 (the ``google-re2`` package), whose
automata take time linear in the account's length whatever the pattern: no pattern can
backtrack, so none has to be judged for it. The language is RE2's syntax (Python's ``re``
without back-references, look-around, atomic groups or possessive repeats; ``\\z`` rather
than ``\\Z``); a pattern RE2 cannot compile, or one whose automaton would need more than
``MAX_PROGRAM_BYTES``, is refused when the product is defined. A product stored before
patterns were RE2's keeps its pattern; where RE2 cannot compile it, that product's orders
are refused (422) rather than matched by a backtracking engine. A pattern is at most
``MAX_PATTERN`` characters, an account at most ``MAX_ACCOUNT``.

A recharge account is personal data: the order's ``RechargeAccountNamed`` event carries it
sealed (AES-GCM, bound to the order id, like a code secret) and masked; every answer shows
the mask, no projection holds it, and only the fulfilment opens the seal, to hand it to the
supplier.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from engine.kernel.errors import ValidationFailed
from engine.kernel.fields import check_text

PRESETS = {
    "mobile_cn": r"1[3-9][0-9]{9}",  # a mainland China mobile number, 11 digits
    "game_id": r"[A-Za-z0-9_-]{4,32}",  # a game or platform account id
}
DEFAULT_PRESET = "game_id"
MAX_PATTERN = 200
MAX_ACCOUNT = 64
MAX_PROGRAM_BYTES = 1 << 20  # RE2's memory for one compiled pattern and its automata


def check_pattern(pattern: str | None) -> str:
    """The pattern a product keeps (a preset's name or an RE2 regex), or ValidationFailed."""
    pattern = DEFAULT_PRESET if pattern is None else check_text(pattern,
                                                                "recharge_account_pattern")
    if pattern in PRESETS:
        return pattern
    if not 1 <= len(pattern) <= MAX_PATTERN:
        raise ValidationFailed(f"recharge_account_pattern is a preset "
                               f"({', '.join(PRESETS)}) or a regex of 1-{MAX_PATTERN} "
                               "characters")
    _compiled(pattern)
    return pattern


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    """The pattern compiled by RE2, or ValidationFailed saying why RE2 refuses it."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on standard error
    options.max_mem = MAX_PROGRAM_BYTES
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(
            exc.args[0], bytes) else str(exc)
        raise ValidationFailed(f"recharge_account_pattern is not an RE2 regex ({reason}); "
                               "back-references and look-around are not supported") from None


def check_account(account: Any, pattern: str) -> str:
    """The account as given, if the whole of it matches the product's pattern."""
    account = check_text(account, "recharge_account")
    if not 1 <= len(account) <= MAX_ACCOUNT:
        raise ValidationFailed(f"recharge_account must be 1-{MAX_ACCOUNT} characters")
    try:
        compiled = _compiled(PRESETS.get(pattern, pattern))
    except ValidationFailed as exc:  # a pattern stored before patterns were RE2's
        raise ValidationFailed(f"the product's {exc.detail}: it takes no orders; define a "
                               "new product with an RE2 pattern") from None
    if compiled.fullmatch(account) is None:
        raise ValidationFailed("recharge_account does not match the product's "
                               "recharge_account_pattern")
    return account


def mask(account: str) -> str:
    """A quarter of the account at each end at most, four stars between: ``13********78``
    style, enough for a buyer to recognise theirs, never the whole."""
    shown = len(account) // 4
    return f"{account[:shown]}****{account[len(account) - shown:] if shown else ''}"
