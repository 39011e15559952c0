"""State at a past instant, computed from the aggregate's own events, never from a read model
(which holds only the latest state, and could itself be wrong)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from engine.codes import Code
from engine.errors import NotFound, ValidationFailed
from engine.store import EventStore


def aggregate_at(store: EventStore, aggregate_id: UUID, when: datetime) -> Any:
    """The aggregate as its events stamped up to ``when`` (inclusive) made it."""
    if when.tzinfo is None:
        raise ValidationFailed("an instant must carry a timezone")
    aggregate = None
    for event in store.events.get(aggregate_id):
        if event.timestamp > when:
            break  # versions apply in order: a later one cannot come before an earlier one
        aggregate = event.mutate(aggregate)
    if aggregate is None:
        raise NotFound(f"{aggregate_id} did not exist at {when.isoformat()}")
    return aggregate


def code_state_at(store: EventStore, code_id: UUID, when: datetime) -> dict[str, Any]:
    """A code's public state (as ``Code.state()``) at an instant."""
    code = aggregate_at(store, code_id, when)
    if not isinstance(code, Code):
        raise NotFound(f"{code_id} is not a code")
    return code.state()
