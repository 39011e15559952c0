"""The global event feed, in log order, never with a secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.problems import ApiProblem
from api.schemas import EventFeedOut
from engine.keys import Principal
from engine.serialization import event_type, public_fields

router = APIRouter(tags=["audit"])
MAX_POSITION = 2**62


@router.get("/v1/events", response_model=EventFeedOut)
def events(request: Request, after: int | None = Query(None, ge=0, le=MAX_POSITION),
           cursor: str | None = Query(None, max_length=20),
           limit: int = Query(100, ge=1, le=1000),
           _: Principal = Depends(require("app", "finance", "admin"))) -> dict[str, Any]:
    """Events after a position (or cursor), oldest first."""
    start = after or 0
    if cursor is not None:
        if not cursor.isdigit() or int(cursor) > MAX_POSITION:
            raise ApiProblem(422, "validation_error", "cursor is not one this API gave out")
        start = int(cursor)
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
