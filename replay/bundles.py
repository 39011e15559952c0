"""Dispute bundles: an order's or a code's stored events with their inclusion proofs, a head
signed at export time, and what the projections claim of it, for a third party to check
offline with replay/bundle_check.py (docs/audit.md describes the format field by field).

    event streams ──stored bytes + position──▶ events ──leaf index + proof──▶ bundle
    audit log ──sign a fresh head (it covers every event read)──────────────▶ bundle
    the API's view + the ledger read model's postings ──────────── claims ──▶ bundle

Which streams make up a subject is decided here, from the subject's own events: an order
is its own stream, its payments' streams and the ledger transactions its payments and
refunds posted (their ids derive from those causes); a code is its own stream and every
ledger transaction with a leg of it. The codes' streams are not part of an order's bundle:
a code refunded and sold again carries another buyer's order, which a dispute over this one
must not hand out. Event states travel as stored: a code's secret stays sealed in them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import orjson

from engine.codes.codes import Code
from engine.eventstore.store import EventStore
from engine.kernel.clock import utc_now
from engine.kernel.errors import ConcurrentUpdate, NotFound
from engine.kernel.ids import payment_id
from engine.ledger.transactions import LedgerTransaction, transaction_id
from engine.sales.orders import Order
from engine.sales.postings import SALE, sale_cause
from replay.bundle_check import FORMAT
from replay.merkle import SignedHead

ATTEMPTS = 3
SOLD = "quanyi:code.sold"


class AuditLog(Protocol):
    """What a bundle needs of the audit log (the tree behind the writer, its signed heads)."""

    public_key: bytes

    def sign_head(self) -> SignedHead: ...
    def leaf_index(self, position: int) -> int: ...
    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]: ...


@dataclass(frozen=True)
class Recorded:
    """One event as the store holds it: its position in the log and its exact bytes."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def order_streams(order: Order) -> list[UUID]:
    """The streams of an order's bundle: the order, its payments, and the ledger
    transactions its payments and refunds may have posted (those that did are found)."""
    return ([order.id] + [payment_id(p["payment_ref"]) for p in order.payments]
            + ledger_streams(order))


def ledger_streams(order: Order) -> list[UUID]:
    """The ledger transactions an order's payments and refunds may have posted (a free
    order or refund posts none): their ids derive from those causes."""
    return ([transaction_id(SALE, sale_cause(p["payment_ref"])) for p in order.payments]
            + [transaction_id("refund", r["refund_id"]) for r in order.refunds
               if not r["automatic"]])


def code_orders(events: Iterable[Recorded]) -> list[UUID]:
    """The orders a code was sold to, oldest first, from its stored events."""
    sold = [orjson.loads(e.state)["order_id"] for e in events if e.topic == SOLD]
    return [UUID(order_id) for order_id in dict.fromkeys(sold)]


def recorded(store: EventStore, streams: Iterable[UUID]) -> list[Recorded]:
    """Every stored event of the streams, in log order."""
    return [Recorded(position, e.originator_id, e.originator_version, e.topic, e.state)
            for position, e in store.recorded(streams)]


def export(store: EventStore, audit: AuditLog, *, kind: str, subject: UUID,
           streams: Iterable[UUID], claims: dict[str, Any]) -> dict[str, Any]:
    """The bundle of ``subject``: its streams' events, each proven in a head signed now."""
    events = recorded(store, streams)
    head, indexes = _covering_head(audit, events)
    return {
        "format": FORMAT,
        "subject": {"kind": kind, "id": str(subject)},
        "exported_at": utc_now(),
        "public_key": _b64(audit.public_key),
        "head": head_json(head),
        "streams": _streams(events),
        "events": [_event(audit, head, event, index) for event, index in zip(events, indexes)],
        "claims": claims,
    }


def _covering_head(audit: AuditLog, events: list[Recorded]) -> tuple[SignedHead, list[int]]:
    """A head signed after the events were read, and each event's leaf in it. The head
    catches the tree up to the log's end; an event the tree does not hold yet (committed
    behind a later one) is waited for by signing again."""
    for _ in range(ATTEMPTS):
        head = audit.sign_head()
        try:
            indexes = [audit.leaf_index(event.position) for event in events]
        except NotFound:
            continue
        if all(index < head.tree_size for index in indexes):
            return head, indexes
    raise ConcurrentUpdate("the audit tree does not hold every event of the bundle yet: "
                           "try again")


def head_json(head: SignedHead) -> dict[str, Any]:
    return {"tree_size": head.tree_size, "root_hash": head.root_hash.hex(),
            "signed_at": head.signed_at, "signature": _b64(head.signature)}


def _streams(events: list[Recorded]) -> list[dict[str, Any]]:
    last: dict[UUID, int] = {}
    for event in events:
        last[event.originator_id] = max(last.get(event.originator_id, 0),
                                        event.originator_version)
    return [{"originator_id": str(stream), "versions": versions}
            for stream, versions in last.items()]


def _event(audit: AuditLog, head: SignedHead, event: Recorded, index: int) -> dict[str, Any]:
    return {
        "position": event.position, "originator_id": str(event.originator_id),
        "originator_version": event.originator_version, "topic": event.topic,
        "state": _b64(event.state), "leaf_index": index,
        "proof": [node.hex() for node in audit.inclusion_proof(index, head.tree_size)],
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Bundles:
    """Builds the bundle of an order or a code whose claims match the events it carries:
    should the subject change while its bundle is made, the bundle is made again."""

    def __init__(self, store: EventStore, audit: AuditLog, ledger: Any,
                 settle: Callable[[], Any]) -> None:
        self._store = store
        self._audit = audit
        self._ledger = ledger  # projections.ledger_queries.LedgerQueries
        self._settle = settle  # waits until the read models include every event written

    def of_order(self, order_id: UUID, owner: str | None,
                 view: Callable[[Order], dict[str, Any]]) -> dict[str, Any]:
        """An order's bundle: order, payments, sales and refunds' transactions; the order
        as ``view`` shows it and its postings as the ledger read model holds them."""
        def attempt() -> tuple[int, dict[str, Any]]:
            order: Order = self._store.get(order_id, f"order {order_id}")
            if not order.belongs_to(owner):
                raise NotFound(f"no order {order_id}")
            self._settle()
            claims = {"order": view(order),
                      "postings": self._ledger.order_postings(str(order_id))}
            return order.version, self._export("order", order.id, order_streams(order),
                                               claims)
        return self._until_still(order_id, attempt)

    def of_code(self, code_id: UUID,
                view: Callable[[Code], dict[str, Any]]) -> dict[str, Any]:
        """A code's bundle: the code and every ledger transaction with a leg of it; the code
        as ``view`` shows it and those legs as the ledger read model holds them."""
        def attempt() -> tuple[int, dict[str, Any]]:
            code: Code = self._store.get(code_id, f"code {code_id}")
            txn_ids = self._code_transactions(code_id)
            self._settle()
            claims = {"code": view(code), "postings": self._ledger.code_postings(
                str(code_id), [str(t) for t in txn_ids])}
            return code.version, self._export("code", code.id, [code.id, *txn_ids], claims)
        return self._until_still(code_id, attempt)

    def _code_transactions(self, code_id: UUID) -> list[UUID]:
        orders = self._store.get_many(code_orders(recorded(self._store, [code_id])))
        candidates = [t for order in orders for t in ledger_streams(order)]
        found: list[LedgerTransaction] = self._store.get_many(candidates)
        mine = {t.id for t in found if any(leg.code_id == str(code_id) for leg in t.legs)}
        return [t for t in candidates if t in mine]

    def _export(self, kind: str, subject: UUID, streams: list[UUID],
                claims: dict[str, Any]) -> dict[str, Any]:
        return export(self._store, self._audit, kind=kind, subject=subject, streams=streams,
                      claims=claims)

    def _until_still(self, subject: UUID,
                     attempt: Callable[[], tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        """The bundle of an attempt during which the subject did not change."""
        for _ in range(ATTEMPTS):
            version, bundle = attempt()
            carried = next((s["versions"] for s in bundle["streams"]
                            if s["originator_id"] == str(subject)), 0)
            if carried == version:
                return bundle
        raise ConcurrentUpdate(f"{subject} kept changing while its bundle was made: try again")
