"""The global event feed, in log order, never with a secret. A tenant's key reads only the
events of its tenant's things (engine/kernel/tenancy.py); a platform key reads them all. Command
receipts (engine/eventstore/receipts.py) are bookkeeping of the Idempotency-Key, not business facts: the
feed shows none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.schemas import Cursor, EventFeedOut, Position
from engine.eventstore.receipts import is_receipt
from engine.eventstore.transcoder import event_type, public_fields
from engine.keys import Principal

router = APIRouter(tags=["audit"])


@router.get("/v1/events", response_model=EventFeedOut)
def events(request: Request, after: Position | None = Query(None),
           cursor: Cursor | None = Query(None),
           limit: int = Query(100, ge=1, le=1000),
           who: Principal = Depends(require("app", "finance", "admin"))) -> dict[str, Any]:
    """Events after a position (or cursor), oldest first; a tenant's key sees only its
    tenant's (a page may then hold fewer than `limit`: follow `next_cursor`)."""
    start = cursor if cursor is not None else after or 0
    store = request.app.state.runtime.store
    notes = store.notifications(start, limit)
    items = []
    for note in _of_tenant(store, [n for n in notes if not is_receipt(n.topic)], who.tenant):
        event = store.mapper.to_domain_event(note)
        items.append({"position": note.id, "type": event_type(event), "at": event.timestamp,
                      "stream_id": str(note.originator_id),
                      "version": note.originator_version, "data": public_fields(event)})
    next_cursor = str(notes[-1].id) if len(notes) == limit else None
    return {"items": items, "next_cursor": next_cursor}


def _of_tenant(store: Any, notes: Sequence[Any], tenant: str | None) -> list[Any]:
    """The notifications of streams that belong to ``tenant`` (all of them for the
    platform). A stream whose aggregate has no tenant (a payment, a ledger transaction) is
    the platform's."""
    if tenant is None:
        return list(notes)
    streams = store.get_many(list({note.originator_id for note in notes}))
    theirs = {aggregate.id for aggregate in streams
              if getattr(aggregate, "tenant", None) == tenant}
    return [note for note in notes if note.originator_id in theirs]
