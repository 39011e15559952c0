"""The global event feed, in log order, never with a secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.schemas import Cursor, EventFeedOut, Position
from engine.keys import Principal
from engine.serialization import event_type, public_fields

router = APIRouter(tags=["audit"])


@router.get("/v1/events", response_model=EventFeedOut)
def events(request: Request, after: Position | None = Query(None),
           cursor: Cursor | None = Query(None),
           limit: int = Query(100, ge=1, le=1000),
           _: Principal = Depends(require("app", "finance", "admin"))) -> dict[str, Any]:
    """Events after a position (or cursor), oldest first."""
    start = cursor if cursor is not None else after or 0
    store = request.app.state.runtime.store
    notes = store.notifications(start, limit)
    items = []
    for note in notes:
        event = store.mapper.to_domain_event(note)
        items.append({"position": note.id, "type": event_type(event), "at": event.timestamp,
                      "stream_id": str(note.originator_id),
                      "version": note.originator_version, "data": public_fields(event)})
    next_cursor = str(notes[-1].id) if len(notes) == limit else None
    return {"items": items, "next_cursor": next_cursor}
