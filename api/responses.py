"""JSON answers encoded with orjson, every timestamp in one form: RFC 3339 in UTC with `Z`."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any

import orjson
from starlette.responses import JSONResponse

# Datetimes pass through to `_encode` so that an offset other than UTC (a client's
# `+08:00` kept in an event) is converted too, not only spelled `Z`.
OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def rfc3339(moment: datetime) -> str:
    """`2026-11-23T10:22:23.123456Z`: in UTC, microseconds unless zero; the form pydantic
    gives a UTC datetime, so answers built by a response model read the same."""
    if moment.tzinfo is None:  # the engine keeps aware times; never guess a local zone
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    raise TypeError(f"cannot encode a {type(value).__name__} as JSON")


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_encode, option=OPTIONS)
