"""Top-up rules that need no store: recharge-account patterns, masks, references, and the
suppliers' circuit breakers."""

from __future__ import annotations

import time
import uuid

import pytest

from engine.catalog.accounts import MAX_ACCOUNT, check_account, check_pattern, mask
from engine.kernel.errors import NotFound, ValidationFailed
from engine.topups.breakers import CircuitBreakers
from engine.topups.fulfilment import order_of, reference_for


@pytest.mark.parametrize("pattern", [r"(\w)\1", r"(?=a)a", r"(?!a)b", r"(?<=a)b", r"(?>ab)",
                                     r"a++", r"[0-9]{4}\Z", "(", r"(?:\p{L}{1,100}){1,10}",
                                     "x" * 201])
def test_a_pattern_re2_cannot_run_is_refused_saying_so(pattern):
    with pytest.raises(ValidationFailed) as refused:
        check_pattern(pattern)
    assert "RE2" in refused.value.detail or len(pattern) > 200


# Patterns that take a backtracking matcher exponential (or high polynomial) time, each with
# accounts that trigger it: the near misses of its repeats.
CATASTROPHIC = [r"(a+)+$", r"(a|aa)+$", r"(?:a?){27}a{27}", r"(.*a){20}", r"(a*)*b",
                r"(\d|\d\d)*x", r"(a|a?)+b", r"([a-z]+)*[0-9]", r"(?:(?:a?){27}){2}a{27}",
                r"(\w+\s?)*$", r"\d*\d*\d*\d*\d*\d*x"]
HOSTILE = ["a" * 26, "a" * 27, "a" * 40 + "!", "a" * 63 + "!", "1" * 63 + "!",
           "ab" * 31 + "!", "a " * 31 + "!"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_matches_hostile_accounts_in_linear_time(pattern):
    check_pattern(pattern)  # RE2 runs it in linear time: nothing to refuse
    for account in HOSTILE:
        started = time.perf_counter()
        try:
            check_account(account, pattern)
        except ValidationFailed:
            pass  # no match: refused, as quickly
        assert time.perf_counter() - started < 0.1, (pattern, account)


@pytest.mark.parametrize("pattern", [None, "mobile_cn", "game_id", r"[0-9]{6,12}",
                                     r"[a-z0-9._-]+@[a-z]+\.[a-z]{2,}", r"\d*\d*\d*\d*"])
def test_presets_and_plain_patterns_are_kept(pattern):
    assert check_pattern(pattern) == (pattern or "game_id")


def test_an_account_must_match_the_whole_pattern_and_stay_short():
    assert check_account("13812345678", "mobile_cn") == "13812345678"
    for bad in ("1381234567", "138123456789", "23812345678", "x" * (MAX_ACCOUNT + 1)):
        with pytest.raises(ValidationFailed) as refused:
            check_account(bad, "mobile_cn" if len(bad) < 20 else r".*")
        assert bad not in str(refused.value)


def test_a_mask_shows_at_most_a_quarter_at_each_end():
    assert mask("13812345678") == "13****78"
    assert mask("abc") == "****"


def test_a_reference_names_its_order_and_nothing_else_parses():
    order = uuid.uuid4()
    assert order_of(reference_for(order, 3)) == order
    for foreign in ("x-1", f"{order}-x", f"{order}-01", str(order)):
        with pytest.raises(NotFound):
            order_of(foreign)


def test_a_breaker_opens_after_repeated_failures_and_closes_after_the_cool_down():
    now = [0.0]
    breakers = CircuitBreakers(3, 30.0, clock=lambda: now[0])
    for _ in range(2):
        breakers.failed("s")
    assert breakers.wait("s") == 0
    breakers.failed("s")
    assert breakers.wait("s") == 30.0
    now[0] = 31.0
    assert breakers.wait("s") == 0  # half open: one more chance
    breakers.failed("s")
    assert breakers.wait("s") == 30.0  # failed again: open again at once
    breakers.succeeded("s")
    assert breakers.wait("s") == 0
