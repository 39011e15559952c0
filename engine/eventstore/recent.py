"""Aggregates this process saved lately, so the next step of the same sale (pay right after
place) need not read them back from the store.

A remembered aggregate may be stale if another process changed it since; that is safe.
A decision that acts on one ends in a save of that aggregate, which then clashes on its
version; a refusal decided on one is checked against the store's version before it is given
(engine/kernel/reads.py). Either way the decision runs again on the store's state, and the copy is
let go.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from typing import Any
from uuid import UUID

MAX_REMEMBERED = 20_000


class RecentAggregates:
    def __init__(self, maxsize: int = MAX_REMEMBERED) -> None:
        self._items: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._maxsize = maxsize

    def remember(self, aggregates: list[Any]) -> None:
        """Keep the aggregates just saved as they are, not copies: the caller hands them over
        and changes them no more (``Writer.save``), and every ``recall`` copies."""
        kept = [a for a in aggregates if getattr(a, "REMEMBER", True)]
        with self._lock:
            for aggregate in kept:
                self._items[aggregate.id] = aggregate
                self._items.move_to_end(aggregate.id)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def forget(self, ids: list[UUID]) -> None:
        with self._lock:
            for aggregate_id in ids:
                self._items.pop(aggregate_id, None)

    def recall(self, aggregate_id: UUID) -> Any | None:
        """A private copy of the remembered aggregate, or None."""
        with self._lock:
            aggregate = self._items.get(aggregate_id)
        return None if aggregate is None else _copy(aggregate)


def _copy(aggregate: Any) -> Any:
    """A private deep copy. A pickle round trip gives the same as ``copy.deepcopy`` for an
    aggregate (plain data: dicts, lists, strings, datetimes, value objects) at a fraction of
    its cost, which counts: every pay recalls the order and codes its place saved."""
    return pickle.loads(pickle.dumps(aggregate, pickle.HIGHEST_PROTOCOL))
