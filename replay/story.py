"""A code's whole story for support, oldest first: its own events (import, reservations and
releases, sale, each reveal with actor and client address, redemption and rollbacks, refund,
void, expiry), what its batch and order say about them (supplier, unit cost, buyer, payment),
and the ledger legs that name it. Never a secret: the sealed code is not read, let alone
opened, and the order's and batch's fields shown are their public ones."""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import Any
from uuid import UUID

from engine.codes.codes import Batch, Code
from engine.eventstore.store import EventStore
from engine.sales.orders import Order
from projections.ledger_reads import Entry, LedgerReads
from projections.projection import iso


@dataclass(frozen=True, slots=True)
class StoryLine:
    """One row of the story: when (ISO 8601 UTC), what happened, who did it, and how."""

    at: str
    what: str
    actor: str
    details: str


@dataclass(frozen=True, slots=True)
class Story:
    code_id: str
    sku: str
    status: str
    lines: list[StoryLine]


def code_story(store: EventStore, reads: LedgerReads, code_id: UUID) -> Story:
    """The code's story from its events (read from the store) and its postings (from the
    ledger read model), merged by time; events first where they tie."""
    code: Code = store.get(code_id, f"code {code_id}")
    told = [(iso(e.timestamp), 0, n, _line(e, store)) for n, e in
            enumerate(store.events.get(code_id))]
    told += [(entry.at, 1, n, _posting(entry)) for n, entry in
             enumerate(reads.of_code(str(code_id)))]
    return Story(str(code.id), code.sku, code.status, [line for *_, line in sorted(told)])


def _line(event: Any, store: EventStore) -> StoryLine:
    what, details = _told(event, store)
    return StoryLine(iso(event.timestamp) or "", what, getattr(event, "actor", "") or "",
                     details)


def _posting(entry: Entry) -> StoryLine:
    links = [f"{name} {value}" for name, value in (
        ("order", entry.order_id), ("refund", entry.refund_id),
        ("payment", entry.payment_ref), ("provider", entry.provider)) if value]
    return StoryLine(entry.at, f"posting ({entry.kind})", "",
                     _joined(f"{entry.account} {entry.amount:+d} {entry.currency}",
                             entry.memo, *links))


def _joined(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


# -- one telling per event type -----------------------------------------------------------

@singledispatch
def _told(event: Any, store: EventStore) -> tuple[str, str]:
    return type(event).__name__.lower(), ""


@_told.register
def _(event: Code.Created, store: EventStore) -> tuple[str, str]:
    batch = _found(store, event.batch_id, Batch)
    supplier = cost = None
    if batch is not None:
        supplier = f"supplier {batch.supplier_id or '(generated)'}"
        cost = f"unit cost {batch.unit_cost} {batch.currency}"
    return "imported", _joined(f"sku {event.sku}", f"batch {event.batch_id}", supplier, cost,
                               f"origin {event.origin}")


@_told.register
def _(event: Code.Reserved, store: EventStore) -> tuple[str, str]:
    return "reserved", _joined(f"order {event.order_id}", f"holder {event.holder}")


@_told.register
def _(event: Code.Released, store: EventStore) -> tuple[str, str]:
    return "released", _joined(f"order {event.order_id}", event.reason)


@_told.register
def _(event: Code.Sold, store: EventStore) -> tuple[str, str]:
    order = _found(store, event.order_id, Order)
    paid = None
    if order is not None:
        refs = ", ".join(f"{p['payment_ref']} ({p.get('provider') or 'default'})"
                         for p in order.payments)
        paid = _joined(f"buyer {order.buyer_id}", f"{order.amount} {order.currency}",
                       f"paid {refs}" if refs else None)
    return "sold", _joined(f"order {event.order_id}", paid)


@_told.register
def _(event: Code.Revealed, store: EventStore) -> tuple[str, str]:
    return "revealed", _joined(f"order {event.order_id}",
                               f"client {event.client_address or 'unknown'}")


@_told.register
def _(event: Code.Redeemed, store: EventStore) -> tuple[str, str]:
    return "redeemed", _joined(f"redemption {event.redemption_id}",
                               f"merchant {event.merchant_id}",
                               event.terminal_id and f"terminal {event.terminal_id}",
                               event.location and f"location {event.location}")


@_told.register
def _(event: Code.RedemptionRolledBack, store: EventStore) -> tuple[str, str]:
    return "redemption rolled back", _joined(f"redemption {event.redemption_id}", event.reason)


@_told.register
def _(event: Code.Returned, store: EventStore) -> tuple[str, str]:
    return "refunded", _joined(f"refund {event.refund_id}", f"order {event.order_id}",
                               "never revealed: back on sale")


@_told.register
def _(event: Code.WrittenOff, store: EventStore) -> tuple[str, str]:
    return "refunded", _joined(f"refund {event.refund_id}", f"order {event.order_id}",
                               f"{event.reason}: voided, written off")


@_told.register
def _(event: Code.Voided, store: EventStore) -> tuple[str, str]:
    return "voided", event.reason


@_told.register
def _(event: Code.Expired, store: EventStore) -> tuple[str, str]:
    return "expired", ""


def _found(store: EventStore, text: str | None, kind: type) -> Any:
    """The aggregate an event names by id, or None (an id that is not a UUID, or of no
    aggregate of that kind)."""
    try:
        found = store.find(UUID(str(text)))
    except ValueError:
        return None
    return found if isinstance(found, kind) else None
