"""The one retry-on-version-clash helper."""

import pytest

from engine.errors import ConcurrentUpdate, NotFound
from engine.retry import retrying


def clashing(times: int, answer: str = "done"):
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise ConcurrentUpdate("another command changed the same record")
        return answer
    return attempt, calls


def test_returns_the_first_success_after_clashes():
    attempt, calls = clashing(2)
    assert retrying(attempt, attempts=5, max_pause=0) == "done"
    assert len(calls) == 3


def test_gives_up_with_concurrent_update_naming_what_kept_changing():
    attempt, calls = clashing(99)
    with pytest.raises(ConcurrentUpdate, match="the code kept changing"):
        retrying(attempt, attempts=4, what="the code", max_pause=0)
    assert len(calls) == 4


def test_any_other_error_ends_the_retries_at_once():
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise NotFound("no order")
    with pytest.raises(NotFound):
        retrying(attempt, attempts=4, max_pause=0)
    assert len(calls) == 1
