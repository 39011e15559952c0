"""A ceiling on request bodies (QUANYI_MAX_BODY_BYTES), enforced before a body is read into
memory: a declared Content-Length over it is answered 413 at once, and a body sent without
one (chunked) is cut off with 413 as soon as it grows past it.

A path may have a lower ceiling of its own (supplier callbacks: anyone may send one, and
the signature is checked only once the body is read), held the same way before the body is.

A pure ASGI middleware, outermost but for metrics, so that no layer inside - idempotency's
hashing, a route's JSON parsing, the CSV import - ever holds more than the ceiling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from api.responses import OrjsonResponse


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body grows past the ceiling. An HTTPException, so that
    if a route's body parsing meets it, the app's handler answers 413 rather than 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class BodyLimitMiddleware:
    """Answers 413 to a body over ``max_bytes`` (or over the lower ceiling of the first of
    ``lower`` whose path pattern matches the whole path), declared or as it arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 lower: Mapping[re.Pattern[str], int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.lower = dict(lower or {})

    def ceiling(self, path: str) -> int:
        for pattern, limit in self.lower.items():
            if pattern.fullmatch(path):
                return min(limit, self.max_bytes)
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.ceiling(scope["path"])
        if _declared_length(scope) > limit:
            return await _too_large(limit)(scope, receive, send)
        started = False
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The Content-Length header's value, or 0 if there is none (or the server let through
    one that is not a number: the count in ``receive`` still holds the line)."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() else 0
    return 0


def _too_large(limit: int) -> OrjsonResponse:
    return problem(413, "too_large", f"the request body exceeds {limit} bytes")
