"""Idempotency-Key on every command (POST and PUT): the same key and request replay the first answer; the same
key with another request is refused. Scoped per API key, kept 48 hours.

A pure ASGI middleware, so that every command route gets it from one place (a PUT stores
a new event each time it is applied, so it needs the key as much as a POST does):

    claim the key ──▶ run the route, holding its answer back ──▶ keep it (sealed) ──▶ send it
      │  (an INSERT: its primary key is the lock)
      ├── answer kept, same request ──────▶ send it again, Idempotent-Replayed: true
      ├── answer kept, another request ───▶ 422 idempotency_key_reused
      ├── still running ──────────────────▶ 409 idempotency_key_in_progress
      └── its holder died (kill -9) ──────▶ claimed again at once: the retry runs

The answer is kept before it leaves, so a client that resends the moment it has the answer
gets the replay, never "in progress". A 5xx answer releases the claim so that a retry runs
again; any other answer is final for that key. A claim names the process holding it, whose
lease (runtime/leases.py) ends when the process dies. An answer the database cannot take at
that moment (a restart) is still sent, and kept by a background retry; meanwhile the live
holder keeps the claim, so a retry is told "in progress", never run twice. What survives the
holder's death between the command's commit and its kept answer is the command's own
idempotency: an import resumes its batch (its id derives from the key), an order placed
under an Idempotency-Key has its id derived from it, payments and payouts have their refs.

A request whose client hung up before its body was read is dropped unclaimed: nothing ran,
and its resend is the first request.

Two requests are the same when path, query, content type and body match, a JSON body being
compared in canonical form (sorted keys, no spacing). The stored request hash is keyed: a
body may hold a code, and an unkeyed hash would confirm guesses offline.

An answer that carries secrets (its route calls `carries_secrets`) is never kept, only its
status (the row's body stays NULL). A replay runs the route again, so that the reveal is
recorded like any other, and refused once the codes can no longer be revealed.
"""

from __future__ import annotations

import logging
import queue
import random
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from api.receipt_answers import answer_from_receipt
from engine.errors import Unavailable
from engine.ids import receipt_id
from engine.receipts import Command, find_receipt, under_key
from projections.projection import iso

COMMANDS = frozenset({"POST", "PUT"})  # the methods that change state
KEEP = timedelta(hours=48)
STALE_CLAIM = timedelta(seconds=60)  # only for claims that name no holder (older code)
TABLE = ("CREATE TABLE IF NOT EXISTS api_idempotency (scope TEXT NOT NULL, key TEXT NOT NULL, "
         "request_hash TEXT NOT NULL, status INTEGER, content_type TEXT, body TEXT, "
         "created_at TEXT NOT NULL, PRIMARY KEY (scope, key))")
SECRETS_FLAG = "answer_carries_secrets"
REPLAYED = (b"idempotent-replayed", b"true")
KEEPER_FIRST_PAUSE, KEEPER_MAX_PAUSE = 0.1, 5.0  # seconds between tries to keep an answer
log = logging.getLogger("quanyi.idempotency")


def carries_secrets(request: Request) -> None:
    """Mark this request's answer as holding secrets: it is never kept, and a replay of its
    Idempotency-Key runs the route again."""
    setattr(request.state, SECRETS_FLAG, True)


class IdempotencyStore:
    """Claims, answers and replays, in the read-side database. A claim names the process
    holding it (runtime/leases.py): one held by a process that died is free at once."""

    def __init__(self, runtime: Any) -> None:
        self._db = runtime.read_db
        self._vault = runtime.engine.vault
        self._lease = runtime.lease
        self._unkept: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._keeper: threading.Thread | None = None
        self._keeper_lock = threading.Lock()
        with self._db.transaction() as cursor:
            cursor.execute(TABLE)
            _add_holder_column(cursor, self._db.kind)

    def claim(self, scope: str, key: str, digest: str) -> tuple[str, Any]:
        """('claimed', None) | ('reused', None) | ('busy', None) | ('done', answer)
        | ('rerun', first status): the answer carried secrets and was not kept."""
        now = datetime.now(timezone.utc)
        with self._db.transaction() as cursor:
            cursor.execute("INSERT INTO api_idempotency (scope, key, request_hash, created_at, "
                           "holder) VALUES (%s, %s, %s, %s, %s) "
                           "ON CONFLICT (scope, key) DO NOTHING",
                           (scope, key, digest, iso(now), self._lease.holder))
            if cursor.rowcount == 1:
                return "claimed", None
            cursor.execute("SELECT request_hash, status, content_type, body, created_at, "
                           "holder FROM api_idempotency WHERE scope = %s AND key = %s",
                           (scope, key))
            row = cursor.fetchone()
        if row is None:
            return "busy", None
        stored_hash, status, content_type, body, created_at, holder = row
        if stored_hash != digest:
            return "reused", None
        if status is not None and body is None:
            return "rerun", status
        if status is not None:
            return "done", (status, content_type, self._open(scope, key, body))
        return self._take_over(scope, key, holder, created_at, now)

    def _take_over(self, scope: str, key: str, holder: str | None, created_at: str,
                   now: datetime) -> tuple[str, Any]:
        """A claim still unanswered: busy while its holder lives; a dead holder's claim
        (or, for a claim made before claims named their holder, a stale one) is taken."""
        if holder is not None and self._lease.is_alive(holder):
            return "busy", None
        if holder is None and created_at >= iso(now - STALE_CLAIM):
            return "busy", None
        with self._db.transaction() as cursor:
            cursor.execute("UPDATE api_idempotency SET created_at = %s, holder = %s "
                           "WHERE scope = %s AND key = %s AND created_at = %s "
                           "AND status IS NULL",
                           (iso(now), self._lease.holder, scope, key, created_at))
            return ("claimed", None) if cursor.rowcount == 1 else ("busy", None)

    def answer(self, scope: str, key: str, status: int, content_type: str,
               body: bytes | None) -> None:
        """Keep the answer sealed; ``body`` None keeps only the status (secrets)."""
        sealed = None if body is None else self._vault.seal(f"{scope}:{key}",
                                                            {"body": body.decode()})
        with self._db.transaction() as cursor:
            cursor.execute("UPDATE api_idempotency SET status = %s, content_type = %s, body = %s "
                           "WHERE scope = %s AND key = %s",
                           (status, content_type, sealed, scope, key))
            if random.random() < 0.01:
                cutoff = iso(datetime.now(timezone.utc) - KEEP)
                cursor.execute("DELETE FROM api_idempotency WHERE created_at < %s", (cutoff,))

    def keep(self, scope: str, key: str, status: int, content_type: str,
             body: bytes | None) -> None:
        """Keep the answer; if the database cannot take it now, keep trying in the
        background. The command has acted: its client gets its answer either way, and
        retries of the key find the claim held by this live process (in progress) until
        the answer is kept, then the replay."""
        try:
            self.answer(scope, key, status, content_type, body)
        except (sqlite3.Error, psycopg.Error, Unavailable):
            log.warning("an Idempotency-Key answer could not be kept yet; retrying")
            self._unkept.put((scope, key, status, content_type, body))
            with self._keeper_lock:
                if self._keeper is None:
                    self._keeper = threading.Thread(target=self._keep_unkept, daemon=True,
                                                    name="quanyi-idempotency-keeper")
                    self._keeper.start()

    def _keep_unkept(self) -> None:
        while True:
            unkept = self._unkept.get()
            pause = KEEPER_FIRST_PAUSE
            while True:
                try:
                    self.answer(*unkept)
                    break
                except (sqlite3.Error, psycopg.Error, Unavailable):
                    time.sleep(pause)
                    pause = min(pause * 2, KEEPER_MAX_PAUSE)

    def release(self, scope: str, key: str) -> None:
        with self._db.transaction() as cursor:
            cursor.execute("DELETE FROM api_idempotency WHERE scope = %s AND key = %s "
                           "AND status IS NULL", (scope, key))

    def _open(self, scope: str, key: str, sealed: str) -> bytes:
        return str(self._vault.open(f"{scope}:{key}", sealed)["body"]).encode()


class HeldAnswer:
    """A route's answer, captured and held back until it has been kept."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.status = 500
        self.content_type = ""
        self.body = b""

    async def capture(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    @classmethod
    async def of(cls, app: ASGIApp, scope: Scope, receive: Receive) -> "HeldAnswer":
        held = cls()
        await app(scope, receive, held.capture)
        return held

    @classmethod
    def made(cls, status: int, content_type: str, body: bytes) -> "HeldAnswer":
        held = cls()
        held.status, held.content_type, held.body = status, content_type, body
        held.messages = [_start(status, content_type, body),
                         {"type": "http.response.body", "body": body}]
        return held

    async def deliver(self, send: Send, *, replayed: bool = False) -> None:
        for message in self.messages:
            if replayed and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), REPLAYED]}
            await send(message)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, runtime: Any) -> None:
        self.app = app
        self.runtime = runtime
        self.store = IdempotencyStore(runtime)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in COMMANDS:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        # AuthMiddleware, which runs first, has refused every /v1/ request without a key.
        principal = scope.get("state", {}).get("principal") if key is not None else None
        if principal is None:
            return await self.app(scope, receive, send)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            return await problem(422, "validation_error",
                                 "Idempotency-Key must be 1-255 printable characters")(
                scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return  # the client hung up before its request was read: nothing to act on
        digest = self.runtime.engine.vault.hash_request(_request_form(scope, headers, body))
        state, stored = await _threaded(self.store.claim, principal.key_id, key, digest)
        if state == "claimed":
            command = Command(receipt_id(principal.key_id, self.runtime.engine.vault.hash_request(
                key.encode())), digest)
            return await self._run_and_keep(scope, body, receive, send, command,
                                            (principal.key_id, key))
        if state == "rerun":
            answer = await self._run(scope, body, receive)
            # A refusal now is a new answer, not the first one replayed.
            return await answer.deliver(send, replayed=answer.status == stored)
        if state == "done":
            return await _replay(stored, send)
        await _refusal(state)(scope, receive, send)

    async def _run(self, scope: Scope, body: bytes, receive: Receive) -> HeldAnswer:
        answer = HeldAnswer()
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # the body is read: only a disconnect can follow
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope.setdefault("state", {})  # shared with the route, which may flag secrets
        await self.app(scope, replay_body, answer.capture)
        return answer

    async def _outcome(self, scope: Scope, body: bytes, receive: Receive,
                       command: Command) -> HeldAnswer:
        """The command's answer: from its receipt when it committed already (its first
        answer was lost), else from running it under its key, its receipt kept by each save."""
        found = await _threaded(find_receipt, self.runtime.store, command.receipt_id)
        if found is not None and found.request_digest != command.request_digest:
            return await HeldAnswer.of(_refusal("reused"), scope, receive)
        if found is not None:
            derived = await answer_from_receipt(scope, found)
            if derived is not None:
                return HeldAnswer.made(*derived)
            command.stored = found  # run again (natural ids make it safe), receipt extended
        with under_key(command):
            return await self._run(scope, body, receive)

    async def _run_and_keep(self, scope: Scope, body: bytes, receive: Receive, send: Send,
                            command: Command, claim: tuple[str, str]) -> None:
        scope_id, key = claim
        try:
            answer = await self._outcome(scope, body, receive, command)
        except BaseException:
            await _threaded(self.store.release, scope_id, key)
            raise
        try:
            if answer.status >= 500:
                await _threaded(self.store.release, scope_id, key)
            else:
                kept = None if scope["state"].get(SECRETS_FLAG) else answer.body
                await _threaded(self.store.keep, scope_id, key, answer.status,
                                answer.content_type, kept)
        except Unavailable:
            pass  # the command's own answer stands (a stored write is never told as failed)
        await answer.deliver(send)


def _add_holder_column(cursor: Any, kind: str) -> None:
    """Claims name their holder; a table made before that gets the column (NULL: a claim of
    the previous code, taken over only once stale)."""
    if kind == "postgres":
        cursor.execute("ALTER TABLE api_idempotency ADD COLUMN IF NOT EXISTS holder TEXT")
        return
    cursor.execute("PRAGMA table_info(api_idempotency)")
    if "holder" not in {row[1] for row in cursor.fetchall()}:
        cursor.execute("ALTER TABLE api_idempotency ADD COLUMN holder TEXT")


def _refusal(state: str) -> ASGIApp:
    if state == "reused":
        return problem(422, "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request")
    return problem(409, "idempotency_key_in_progress",
                   "a request with this Idempotency-Key is still running")


def _request_form(scope: Scope, headers: dict[str, str], body: bytes) -> bytes:
    """What makes two requests the same: path, query, content type and body."""
    content_type = "".join(headers.get("content-type", "").lower().split())
    head = orjson.dumps([scope["path"], scope["query_string"].decode("latin-1"), content_type])
    return head + b"\n" + _canonical(body, content_type.partition(";")[0])


def _canonical(body: bytes, media_type: str) -> bytes:
    """A JSON body re-encoded with sorted keys and no spacing; any other body as it is."""
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        return body
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return body


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client disconnected first. A server that has seen
    the disconnect hands over no more of the body, even one already received: a claim made
    then would hash a request that was never sent, and refuse the resend as another one."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _start(status: int, content_type: str, body: bytes, *extra: tuple[bytes, bytes]
           ) -> Message:
    return {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        *extra]}


async def _replay(stored: tuple[int, str, bytes], send: Send) -> None:
    status, content_type, body = stored
    await send(_start(status, content_type, body, REPLAYED))
    await send({"type": "http.response.body", "body": body})


async def _threaded(fn: Any, *args: Any) -> Any:
    return await run_in_threadpool(fn, *args)
