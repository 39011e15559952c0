"""The one retry-on-version-clash helper."""

from uuid import uuid4

import pytest

from engine.kernel import reads
from engine.kernel.errors import ConcurrentUpdate, InvalidState, NotFound
from engine.kernel.retry import retrying

ID = uuid4()


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


class Versions:
    """A version source whose aggregate moves to version 2 after the first look."""

    def __init__(self, moves: bool) -> None:
        self.moves = moves
        self.asked = 0

    def versions(self, ids):
        self.asked += 1
        return {i: 2 if self.moves else 1 for i in ids}


def refusing_on(source: Versions):
    seen = []

    def attempt() -> None:
        seen.append(reads.fresh())
        reads.note(source, ID, 1)
        raise InvalidState("decided on version 1")
    return attempt, seen


def test_a_refusal_on_reads_still_current_stands_at_once():
    source = Versions(moves=False)
    attempt, seen = refusing_on(source)
    with pytest.raises(InvalidState):
        retrying(attempt, attempts=4, max_pause=0)
    assert seen == [False] and source.asked == 1


def test_a_refusal_on_a_read_changed_since_runs_again_on_the_store():
    source = Versions(moves=True)
    attempt, seen = refusing_on(source)
    with pytest.raises(ConcurrentUpdate, match="kept changing"):
        retrying(attempt, attempts=3, max_pause=0)
    assert seen == [False, True, True]

