"""Reading part of the event log by topic, so that an as-of question reads only the events
that can bear on it rather than every event of the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from engine.eventstore.store import EventStore

PAGE = 1000


def events_of_topics(store: EventStore, topics: Sequence[str], after: int = 0,
                     stop: int | None = None) -> Iterator[tuple[int, Any]]:
    """(position, domain event) of the given topics, in log order, after position ``after``
    up to ``stop`` (default: the log's end when the read begins, so that the answer is of
    one moment and does not chase writers)."""
    stop = store.last_position() if stop is None else stop
    while after < stop:
        page = store.recorder.select_notifications(start=after, limit=PAGE, stop=stop,
                                                   topics=topics, inclusive_of_start=False)
        if not page:
            return
        for notification in page:
            yield notification.id, store.mapper.to_domain_event(notification)
        after = page[-1].id
