"""What a decision read, so that a refusal is only ever given on current state.

A use case decides on aggregates read one after another, some of them copies this process
kept (engine/eventstore/recent.py, the catalog's recent products). A decision that saves is safe: its
save clashes on the version of any aggregate that changed meanwhile, and it runs again
(engine/kernel/retry.py). A refusal saves nothing, so nothing would catch one decided on a copy
another process has changed since, or on two aggregates read either side of another
command's save (an order read before a refund, its code after it). So every aggregate a
decision reads is noted with its version, and a refusal stands only once the store confirms
that none of them has changed (one query, on refusals only); otherwise the decision runs
again, and that time reads everything from the store. Either way a refusal is decided on
what the store holds when it is given, whichever process gives it. (A nested decision, such
as taking codes inside placing an order, notes and checks its own reads.)

    retrying ─▶ decided(attempt): reads noted by the store's repository, the writer's
                remembered copies and the catalog's recent products
                  └─ a refusal? ─▶ every version still current? ─ yes ─▶ it stands
                                                                 └ no ──▶ ConcurrentUpdate:
                                                                          run it again
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar
from uuid import UUID

from engine.kernel.errors import ConcurrentUpdate, QuanyiError

T = TypeVar("T")


class VersionSource(Protocol):
    """Where aggregates are read from, and can be asked their current versions."""

    def versions(self, ids: Iterable[UUID]) -> dict[UUID, int]:
        """The current version of each id that has an event (missing ids are left out)."""
        ...


class Reads:
    """The aggregates one attempt of a decision read, each with the version it saw."""

    def __init__(self, *, fresh: bool) -> None:
        self.fresh = fresh  # read everything from the store: no remembered copy, no cache
        self._seen: dict[VersionSource, set[tuple[UUID, int]]] = {}

    def note(self, source: VersionSource, aggregate_id: UUID, version: int) -> None:
        self._seen.setdefault(source, set()).add((aggregate_id, version))

    def changed(self) -> bool:
        """Whether any aggregate read has another version in the store now (0: none)."""
        for source, seen in self._seen.items():
            current = source.versions({aggregate_id for aggregate_id, _ in seen})
            if any(current.get(aggregate_id, 0) != version for aggregate_id, version in seen):
                return True
        return False


_current: ContextVar[Reads | None] = ContextVar("quanyi_reads", default=None)


def note(source: VersionSource, aggregate_id: UUID, version: int) -> None:
    """Note a read for the decision under way in this thread (if any)."""
    reads = _current.get()
    if reads is not None:
        reads.note(source, aggregate_id, version)


def fresh() -> bool:
    """Whether the decision under way must read the store, not a kept copy."""
    reads = _current.get()
    return reads is not None and reads.fresh


@contextmanager
def _reading(*, fresh: bool) -> Iterator[Reads]:
    outer = _current.get()
    reads = Reads(fresh=fresh or (outer is not None and outer.fresh))
    token = _current.set(reads)
    try:
        yield reads
    finally:
        _current.reset(token)


def decided(attempt: Callable[[], T], *, fresh: bool) -> T:
    """``attempt()``'s answer, or its refusal if everything it read is still current; a
    refusal decided on something changed since is a ConcurrentUpdate (run it again)."""
    with _reading(fresh=fresh) as reads:
        try:
            return attempt()
        except ConcurrentUpdate:
            raise
        except QuanyiError as refusal:
            if reads.changed():
                raise ConcurrentUpdate("decided on a record changed since") from refusal
            raise
