"""State at a past instant, computed from the events themselves, never from a read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from engine.errors import NotFound
from engine.store import EventStore


def aggregate_at(store: EventStore, aggregate_id: UUID, when: datetime) -> Any:
    """The aggregate as its events up to ``when`` (inclusive) made it."""
    aggregate = None
    for event in store.events.get(aggregate_id):
        if event.timestamp > when:
            break
        aggregate = event.mutate(aggregate)
    if aggregate is None:
        raise NotFound(f"{aggregate_id} did not exist at {when.isoformat()}")
    return aggregate


def code_state_at(store: EventStore, code_id: UUID, when: datetime) -> dict[str, Any]:
    """A code's public state (as ``Code.state()``) at an instant."""
    return aggregate_at(store, code_id, when).state()
