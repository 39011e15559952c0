"""Idempotency-Key on every command (POST and PUT): the same key and request replay the first answer; the same
key with another request is refused. Scoped per API key, kept 48 hours.

A pure ASGI middleware, so that every command route gets it from one place (a PUT stores
a new event each time it is applied, so it needs the key as much as a POST does):

    claim the key ──▶ its receipt? ──▶ run the route, holding its answer back ──▶ keep it
      │  (an INSERT: its      │  (none)     (its saves commit the receipt)       (sealed)
      │   primary key is      │                                                ──▶ send it
      │   the lock)           ├── same request ──▶ answer from it (the route's declaration)
      │                       └── another ───────▶ 422 idempotency_key_reused
      ├── answer kept, same request ──────▶ send it again, Idempotent-Replayed: true
      ├── answer kept, another request ───▶ 422 idempotency_key_reused
      ├── still running ──────────────────▶ 409 idempotency_key_in_progress
      └── its holder died (kill -9) ──────▶ claimed again at once, receipt first

The answer is kept before it leaves, so a client that resends the moment it has the answer
gets the replay, never "in progress". A 5xx answer releases the claim so that a retry runs
again; any other answer is final for that key. A claim names the process holding it, whose
lease (runtime/leases.py) ends when the process dies. An answer the database cannot take at
that moment (a restart) is still sent, and kept by a background retry; meanwhile the live
holder keeps the claim, so a retry is told "in progress", never run twice. What survives the
holder's death between the command's commit and its kept answer (and a 5xx after the commit,
and the 48 hours an answer is kept) is the command's receipt (engine/eventstore/receipts.py), which
commits with its events: the command runs under its key (``under_key``), and a claimed key
reads its receipt before it runs. A route declares how it answers from a receipt
(api/receipt_answers.py); one that declares none runs again, which its natural ids make
safe: an import resumes its batch (its id derives from the key), an order placed under an
Idempotency-Key has its id derived from it, payments and payouts have their refs.

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

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.idempotency_claims import IdempotencyStore
from api.problems import problem
from api.receipt_answers import answer_from_receipt
from engine.eventstore.receipts import Command, find_receipt, under_key
from engine.kernel.errors import Unavailable
from engine.kernel.ids import receipt_id

COMMANDS = frozenset({"POST", "PUT"})  # the methods that change state
SECRETS_FLAG = "answer_carries_secrets"
REPLAYED = (b"idempotent-replayed", b"true")


def carries_secrets(request: Request) -> None:
    """Mark this request's answer as holding secrets: it is never kept, and a replay of its
    Idempotency-Key runs the route again."""
    setattr(request.state, SECRETS_FLAG, True)


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
    async def of(cls, app: ASGIApp, scope: Scope, receive: Receive) -> HeldAnswer:
        held = cls()
        await app(scope, receive, held.capture)
        return held

    @classmethod
    def made(cls, status: int, content_type: str, body: bytes) -> HeldAnswer:
        """An answer made from a command's receipt: a replay of the command's outcome."""
        held = cls()
        held.status, held.content_type, held.body = status, content_type, body
        held.messages = [_start(status, content_type, body, REPLAYED),
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
            return await self._run_and_keep(scope, body, receive, send,
                                            self._command(principal.key_id, key, digest),
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

    def _command(self, scope_id: str, key: str, digest: str) -> Command:
        """The command sent under this key; its receipt's id derives from the key's keyed
        hash, never from the key itself."""
        key_digest = self.runtime.engine.vault.hash_request(key.encode())
        return Command(receipt_id(scope_id, key_digest), digest)

    async def _outcome(self, scope: Scope, body: bytes, receive: Receive,
                       command: Command) -> HeldAnswer:
        """The command's answer: from its receipt when it committed already (its first
        answer was lost), else from running it under its key, its receipt kept by each save.
        A refusal of a run that saved nothing may be the work of another run of the same
        key, which committed after this one looked for the receipt (a claim taken over
        while its live holder's lease was lost to a database restart): that run's receipt,
        which this run's save clashed with, then answers."""
        found, answer = await self._from_receipt(scope, receive, command)
        if answer is not None:
            return answer
        command.stored = found  # run again (natural ids make it safe), receipt extended
        with under_key(command):
            answer = await self._run(scope, body, receive)
        if answer.status < 400 or command.stored is not None:
            return answer
        found, again = await self._from_receipt(scope, receive, command)
        same = found is not None and found.request_digest == command.request_digest
        return again if same and again is not None else answer

    async def _from_receipt(self, scope: Scope, receive: Receive, command: Command
                            ) -> tuple[Any, HeldAnswer | None]:
        """The key's receipt, and the answer it gives: ``idempotency_key_reused`` for
        another request, the route's declared answer for this one (None when the route
        declares none, or when nothing committed)."""
        found = await _threaded(find_receipt, self.runtime.store, command.receipt_id)
        if found is None:
            return None, None
        if found.request_digest != command.request_digest:
            return found, await HeldAnswer.of(_refusal("reused"), scope, receive)
        derived = await answer_from_receipt(scope, found)
        return found, None if derived is None else HeldAnswer.made(*derived)

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
