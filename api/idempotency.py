"""Idempotency-Key on every POST: the same key and body replay the first answer; the same
key with another body is refused. Scoped per API key, kept 48 hours.

A pure ASGI middleware, so that every POST route gets it from one place. The key is claimed
with an INSERT (its primary key is the lock), the route runs, and its answer is stored
sealed (a reveal answer carries code secrets). A 5xx answer releases the claim so that a
retry runs again; any other answer is final for that key.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from projections.projection import iso

KEEP = timedelta(hours=48)
STALE_CLAIM = timedelta(seconds=60)
TABLE = ("CREATE TABLE IF NOT EXISTS api_idempotency (scope TEXT NOT NULL, key TEXT NOT NULL, "
         "request_hash TEXT NOT NULL, status INTEGER, content_type TEXT, body TEXT, "
         "created_at TEXT NOT NULL, PRIMARY KEY (scope, key))")


class IdempotencyStore:
    """Claims, answers and replays, in the read-side database."""

    def __init__(self, runtime: Any) -> None:
        self._db = runtime.read_db
        self._vault = runtime.engine.vault
        with self._db.transaction() as cursor:
            cursor.execute(TABLE)

    def claim(self, scope: str, key: str, digest: str) -> tuple[str, Any]:
        """('claimed', None) | ('reused', None) | ('busy', None) | ('done', answer)."""
        now = datetime.now(timezone.utc)
        with self._db.transaction() as cursor:
            cursor.execute("INSERT INTO api_idempotency (scope, key, request_hash, created_at) "
                           "VALUES (%s, %s, %s, %s) ON CONFLICT (scope, key) DO NOTHING",
                           (scope, key, digest, iso(now)))
            if cursor.rowcount == 1:
                return "claimed", None
            cursor.execute("SELECT request_hash, status, content_type, body, created_at "
                           "FROM api_idempotency WHERE scope = %s AND key = %s", (scope, key))
            row = cursor.fetchone()
            if row is None:
                return "busy", None
            stored_hash, status, content_type, body, created_at = row
            if stored_hash != digest:
                return "reused", None
            if status is not None:
                return "done", (status, content_type, self._open(scope, key, body))
            if created_at < iso(now - STALE_CLAIM):
                cursor.execute("UPDATE api_idempotency SET created_at = %s "
                               "WHERE scope = %s AND key = %s AND created_at = %s",
                               (iso(now), scope, key, created_at))
                return ("claimed", None) if cursor.rowcount == 1 else ("busy", None)
            return "busy", None

    def answer(self, scope: str, key: str, status: int, content_type: str, body: bytes) -> None:
        sealed = self._vault.seal(f"{scope}:{key}", {"body": body.decode()})
        with self._db.transaction() as cursor:
            cursor.execute("UPDATE api_idempotency SET status = %s, content_type = %s, body = %s "
                           "WHERE scope = %s AND key = %s",
                           (status, content_type, sealed, scope, key))
            if random.random() < 0.01:
                cutoff = iso(datetime.now(timezone.utc) - KEEP)
                cursor.execute("DELETE FROM api_idempotency WHERE created_at < %s", (cutoff,))

    def release(self, scope: str, key: str) -> None:
        with self._db.transaction() as cursor:
            cursor.execute("DELETE FROM api_idempotency WHERE scope = %s AND key = %s "
                           "AND status IS NULL", (scope, key))

    def _open(self, scope: str, key: str, sealed: str) -> bytes:
        return str(self._vault.open(f"{scope}:{key}", sealed)["body"]).encode()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, runtime: Any) -> None:
        self.app = app
        self.runtime = runtime
        self.store = IdempotencyStore(runtime)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        principal = self._principal(headers) if key is not None else None
        if principal is None:
            return await self.app(scope, receive, send)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            return await problem(422, "validation_error",
                                 "Idempotency-Key must be 1-255 printable characters")(
                scope, receive, send)
        body = await _read_body(receive)
        digest = hashlib.sha256(b"\n".join([scope["path"].encode(), scope["query_string"],
                                            body])).hexdigest()
        state, stored = await _threaded(self.store.claim, principal.key_id, key, digest)
        if state == "reused":
            return await problem(422, "idempotency_key_reused", "this Idempotency-Key was "
                                 "used with a different request")(scope, receive, send)
        if state == "busy":
            return await problem(409, "idempotency_key_in_progress", "a request with this "
                                 "Idempotency-Key is still running")(scope, receive, send)
        if state == "done":
            return await _replay(stored, send)
        await self._run_and_keep(scope, body, send, principal.key_id, key)

    def _principal(self, headers: dict[str, str]) -> Any:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.runtime.engine.keys.authenticate(token.strip())

    async def _run_and_keep(self, scope: Scope, body: bytes, send: Send, scope_id: str,
                            key: str) -> None:
        answer: dict[str, Any] = {"status": 500, "content_type": "", "body": b""}
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        answer["content_type"] = value.decode()
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            if answer["status"] >= 500:
                await _threaded(self.store.release, scope_id, key)
            else:
                await _threaded(self.store.answer, scope_id, key, answer["status"],
                                answer["content_type"], answer["body"])


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _replay(stored: tuple[int, str, bytes], send: Send) -> None:
    status, content_type, body = stored
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        (b"idempotent-replayed", b"true")]})
    await send({"type": "http.response.body", "body": body})


async def _threaded(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
