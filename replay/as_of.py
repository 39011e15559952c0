"""State at a past instant, computed from the events, never from a read model (which holds
only the latest state, and could itself be wrong).

The instant's meaning, the same on every endpoint: an event counts when its timestamp (the
moment its aggregate decided it, in UTC) is at or before ``as_of``. The instant must carry a
timezone and lie within the years engine/kernel/fields.py admits.

Each question reads only the events that can bear on it: one aggregate's own stream (a code,
an order and the codes it names), or the log's topic filter (the batches, then the codes
imported while a SKU's batches were open). The ledger is in replay/ledger_at.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.codes.codes import STATUSES, Batch, Code
from engine.eventstore.store import EventStore
from engine.kernel.errors import NotFound
from engine.kernel.fields import check_instant
from engine.sales.orders import Order
from replay.log_reads import events_of_topics

BATCH_TOPICS = (Batch.Created.TOPIC, Batch.Completed.TOPIC)
IMPORTED_TOPICS = (Code.Created.TOPIC,)


def aggregate_at(store: EventStore, aggregate_id: UUID, when: datetime) -> Any:
    """The aggregate as its events stamped up to ``when`` (inclusive) made it."""
    when = check_instant(when, "as_of")
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


def order_at(store: EventStore, order_id: UUID, when: datetime) -> tuple[Order, list[Code]]:
    """The order at an instant, and its codes each as its own events then made it."""
    order = aggregate_at(store, order_id, when)
    if not isinstance(order, Order):
        raise NotFound(f"no order {order_id}")
    codes = {c.id: c for c in store.get_many(order.code_ids, until=check_instant(when, "as_of"))}
    return order, [codes[i] for i in order.code_ids if i in codes]


# -- inventory ------------------------------------------------------------------------------

@dataclass
class _Window:
    """A batch of the SKU: its codes were stored between its opening and its completion."""

    batch_id: str
    opened: int
    completed: int | None = None


def inventory_at(store: EventStore, sku: str, when: datetime) -> dict[str, Any]:
    """The SKU's codes by status at an instant (as ``GET .../inventory`` answers now): each
    code's status folded from its own events, by the engine's own rules."""
    when = check_instant(when, "as_of")
    counts = Counter(code.status for code in store.get_many(
        sorted(_codes_of(store, _batches_of(store, sku, when))), until=when))
    return {"sku": sku, "total": sum(counts.values()),
            **{status: counts[status] for status in STATUSES}}


def _batches_of(store: EventStore, sku: str, when: datetime) -> list[_Window]:
    """The SKU's batches opened by ``when``, with the log positions that bound their codes."""
    windows: dict[str, _Window] = {}
    for position, event in events_of_topics(store, BATCH_TOPICS):
        batch_id = str(event.originator_id)
        if isinstance(event, Batch.Created):
            if event.sku == sku and event.timestamp <= when:
                windows[batch_id] = _Window(batch_id, position)
        elif batch_id in windows:
            windows[batch_id].completed = position
    return list(windows.values())


def _codes_of(store: EventStore, windows: Iterable[_Window]) -> set[UUID]:
    """Ids of the codes imported into the batches: a code is saved after its batch opens and
    before it completes (an interrupted batch: any time later), so only the imports within
    each batch's window are read."""
    found: set[UUID] = set()
    for window in windows:
        for _, event in events_of_topics(store, IMPORTED_TOPICS, after=window.opened,
                                         stop=window.completed):
            if event.batch_id == window.batch_id:
                found.add(event.originator_id)
    return found
