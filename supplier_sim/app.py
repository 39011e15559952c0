"""The simulated supplier: the http-json protocol (docs/suppliers.md) as a Starlette app.

It keeps its own books: every reference it took, how often it was placed, and every credit
to a recharge account, so a test can ask how many times an account was really topped up.
Everything runs on the server's one event loop, so the books need no lock.

    POST /topups               place (idempotent per reference)
    GET  /topups/{reference}   query (an unknown reference is closed: later placed, it fails)
    GET  /_sim/accounts/{a}    the credits to an account       (admin: no key, for tests)
    GET  /_sim/topups/{ref}    the simulator's record of a reference
    GET  /_sim/callbacks       every callback sent, and what our side answered
    GET|PUT /_sim/config       the behaviour (secrets never shown); POST /_sim/reset
"""

from __future__ import annotations

import asyncio
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supplier_sim.callbacks import CallbackSender
from supplier_sim.config import SimConfig

REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
HANG_POLL_SECONDS = 0.05


@dataclass
class Topup:
    """The simulator's record of one reference."""

    reference: str
    product: str
    account: str
    amount: int
    currency: str
    status: str  # pending, succeeded, failed
    txn_id: str
    placed: int = 1  # how many times this reference was placed
    queried: int = 0  # how many times it was asked about
    sequence: int = 1  # bumped on every change of status, carried in callbacks
    message: str | None = None
    closed: bool = False  # asked about before it was ever placed: it can only fail

    def answer(self) -> dict[str, Any]:
        return {"reference": self.reference, "status": self.status,
                "supplier_txn_id": self.txn_id, "message": self.message,
                "sequence": self.sequence}

    def same_request(self, body: dict[str, Any]) -> bool:
        return (body["product"], body["account"], body["amount"], body["currency"]) == \
            (self.product, self.account, self.amount, self.currency)


@dataclass
class Books:
    config: SimConfig
    topups: dict[str, Topup] = field(default_factory=dict)
    credits: dict[str, list[str]] = field(default_factory=dict)  # account -> references

    def credit(self, topup: Topup) -> None:
        """The one place an account is credited: once per reference, on success."""
        topup.status, topup.sequence = "succeeded", topup.sequence + 1
        self.credits.setdefault(topup.account, []).append(topup.reference)

    def refuse(self, topup: Topup, message: str) -> None:
        topup.status, topup.sequence, topup.message = "failed", topup.sequence + 1, message


def create_app(config: SimConfig) -> Starlette:
    """The simulator over fresh books."""
    config.check()
    return SupplierSim(config).app()


class SupplierSim:
    """The handlers, over one set of books and one callback sender."""

    def __init__(self, config: SimConfig) -> None:
        self.books = Books(config)
        self.sender = CallbackSender(lambda: self.books.config)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/topups", self.place, methods=["POST"]),
            Route("/topups/{reference}", self.query, methods=["GET"]),
            Route("/_sim/accounts/{account}", self.account, methods=["GET"]),
            Route("/_sim/topups/{reference}", self.record, methods=["GET"]),
            Route("/_sim/callbacks", self.callbacks, methods=["GET"]),
            Route("/_sim/config", self.settings, methods=["GET", "PUT"]),
            Route("/_sim/reset", self.reset, methods=["POST"]),
        ], lifespan=self.sender.lifespan)

    async def place(self, request: Request) -> Response:
        """Take a new reference, or answer a known one's state without acting again."""
        if not _authorised(request, self.books.config):
            return _error(401, "unauthorized", "a valid api key is required")
        body = await _read_order(request)
        if isinstance(body, str):
            return _error(422, "invalid_request", body)
        await _pause(self.books.config.latency_ms)
        existing = self.books.topups.get(body["reference"])
        if existing is None:
            return await _take(request, self.books, self.sender, body)
        if not existing.closed and not existing.same_request(body):
            return _error(409, "reference_conflict",
                          "this reference was placed with other details")
        existing.placed += 1
        return JSONResponse(existing.answer())

    async def query(self, request: Request) -> Response:
        """A reference's state; an unknown one is closed, so that it can only fail."""
        if not _authorised(request, self.books.config):
            return _error(401, "unauthorized", "a valid api key is required")
        await _pause(self.books.config.latency_ms)
        reference = request.path_params["reference"]
        found = self.books.topups.get(reference)
        if found is not None:
            found.queried += 1
            return JSONResponse(found.answer())
        if REFERENCE.match(reference):
            self.books.topups[reference] = Topup(
                reference, "", "", 0, "", "failed", f"sim-{len(self.books.topups) + 1}",
                placed=0, message="not_received", closed=True)
        return _error(404, "not_found", "no top-up with this reference")

    async def account(self, request: Request) -> Response:
        name = request.path_params["account"]
        references = self.books.credits.get(name, [])
        total = sum(self.books.topups[r].amount for r in references)
        return JSONResponse({"account": name, "credits": len(references),
                             "amount": total, "references": references})

    async def record(self, request: Request) -> Response:
        found = self.books.topups.get(request.path_params["reference"])
        if found is None:
            return _error(404, "not_found", "no top-up with this reference")
        return JSONResponse({**found.answer(), "product": found.product,
                             "account": found.account, "amount": found.amount,
                             "currency": found.currency, "placed": found.placed,
                             "queried": found.queried})

    async def callbacks(self, _: Request) -> Response:
        return JSONResponse({"callbacks": self.sender.sent})

    async def settings(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                self.books.config = self.books.config.changed(await request.json())
            except (ValueError, TypeError, AttributeError) as exc:
                return _error(422, "invalid_request", str(exc))
        return JSONResponse(self.books.config.public())

    async def reset(self, _: Request) -> Response:
        self.books.topups.clear()
        self.books.credits.clear()
        self.sender.sent.clear()
        return Response(status_code=204)


async def _take(request: Request, books: Books, sender: CallbackSender,
                body: dict[str, Any]) -> Response:
    """A new reference: decide its behaviour, keep the books, answer (or hang)."""
    behaviour = books.config.behaviour(body["reference"], body["account"])
    if behaviour == "error":
        return _error(503, "unavailable", "try again later")
    if behaviour == "timeout" and not books.config.timeout_credits:
        await _hang(request, books.config.hang_seconds)  # lost: never taken nor answered
        return _error(503, "unavailable", "try again later")
    topup = Topup(body["reference"], body["product"], body["account"], body["amount"],
                  body["currency"], "pending", f"sim-{len(books.topups) + 1}")
    books.topups[topup.reference] = topup
    if behaviour == "timeout":
        books.credit(topup)
        sender.later(topup, books.config.callback_always)
        await _hang(request, books.config.hang_seconds)  # the client gives up first
        return JSONResponse(topup.answer())
    if behaviour == "fail":
        books.refuse(topup, "declined: the account cannot be topped up")
    elif behaviour == "succeed":
        books.credit(topup)
    if topup.status != "pending":
        sender.later(topup, books.config.callback_always)
        return JSONResponse(topup.answer())
    sender.resolve_later(topup, books, fails=behaviour == "pending-fail")
    return JSONResponse(topup.answer())


async def _read_order(request: Request) -> dict[str, Any] | str:
    """The body of a placement, or what is wrong with it."""
    try:
        body = await request.json()
    except ValueError:
        return "the body is not JSON"
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    checks = (("reference", lambda v: isinstance(v, str) and REFERENCE.match(v)),
              ("product", lambda v: isinstance(v, str) and 0 < len(v) <= 64),
              ("account", lambda v: isinstance(v, str) and 0 < len(v) <= 128),
              ("amount", lambda v: type(v) is int and v > 0),  # noqa: E721
              ("currency", lambda v: isinstance(v, str) and CURRENCY.match(v)))
    for name, valid in checks:
        if not valid(body.get(name)):
            return f"{name} is missing or invalid"
    return body


def _authorised(request: Request, config: SimConfig) -> bool:
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {config.api_key}".encode())


async def _hang(request: Request, seconds: float) -> None:
    """Hold the answer back for ``seconds``, or until the client has given up waiting."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(HANG_POLL_SECONDS)


async def _pause(milliseconds: int) -> None:
    if milliseconds:
        await asyncio.sleep(milliseconds / 1000)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)
