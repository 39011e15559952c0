"""What a webhook says: stored events mapped to webhook types, payloads and signatures.

Payloads follow Standard Webhooks: ``{"type", "timestamp", "data"}``, signed with
HMAC-SHA256 over ``<webhook-id>.<webhook-timestamp>.<body>`` and sent as ``v1,<base64>``.
Each type's ``data`` is built field by field from an allow-list, never by copying an
event, so that no secret (a code, a PIN, a sealed blob, a supplier's credentials) can
ever reach a receiver, whatever fields an event gains later.

The mapping reads stored events by topic and decoded state, not by class, so that the
top-up outcomes (``quanyi:topup.succeeded``, ``quanyi:topup.failed``) map the same way as
the rest whichever module comes to define them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import uuid5

import orjson

from engine.kernel.ids import NAMESPACE
from engine.webhooks.endpoints import SECRET_PREFIX

STOCK_LOW = "stock.low"


class Context(Protocol):
    """What a payload needs beyond its event: an order's owner and reference, a code's
    SKU and order (read from the store, never from a secret)."""

    def order(self, order_id: str) -> dict[str, Any] | None: ...

    def code(self, code_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Message:
    """One thing that happened, as webhooks tell it: its type, when, its data, and the
    owner whose order it concerns (None: it concerns everyone, such as low stock)."""

    position: int
    type: str
    timestamp: datetime
    data: dict[str, Any]
    owner: str | None

    def payload(self) -> bytes:
        return orjson.dumps({"type": self.type, "timestamp": _rfc3339(self.timestamp),
                             "data": self.data})


def message_id(endpoint_id: str, position: int, event_type: str) -> str:
    """The ``webhook-id`` of an event to an endpoint: the same on every attempt and every
    redelivery, so that a receiver can drop duplicates."""
    return "msg_" + uuid5(NAMESPACE, f"webhook:{endpoint_id}:{position}:{event_type}").hex


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# -- stored events to messages --------------------------------------------------------

Builder = Callable[[dict[str, Any], Context], Any]


def _order_part(order_id: str, context: Context) -> tuple[dict[str, Any], str | None]:
    order = context.order(order_id) or {}
    return {"order_id": order_id, "external_ref": order.get("external_ref")}, order.get("owner")


def _delivered(state: dict[str, Any], context: Context) -> Any:
    if not state.get("codes"):  # a payment that delivered no code (a top-up's) is no delivery
        return None
    data, owner = _order_part(str(state["originator_id"]), context)
    data.update(payment_ref=state["payment_ref"], amount=state["amount"],
                currency=state["currency"], late=bool(state.get("late")),
                codes=[{"code_id": c["code_id"], "sku": c["sku"]} for c in state["codes"]])
    return data, owner


def _refunded(state: dict[str, Any], context: Context) -> Any:
    data, owner = _order_part(str(state["originator_id"]), context)
    amount = state["amount"]
    data.update(refund_id=state["refund_id"], amount=amount.amount, currency=amount.currency,
                code_ids=list(state["code_ids"]), reason=state["reason"],
                status=state["status"])
    return data, owner


def _payment_refunded(state: dict[str, Any], context: Context) -> Any:
    data, owner = _order_part(str(state["originator_id"]), context)
    data.update(refund_id=f"auto-{state['payment_ref']}", payment_ref=state["payment_ref"],
                amount=state["amount"], currency=state["currency"], code_ids=[],
                reason=state["reason"], status="refunded")
    return data, owner


def _topup_refunded(state: dict[str, Any], context: Context) -> Any:
    data, owner = _order_part(str(state["originator_id"]), context)
    amount = state["amount"]
    data.update(refund_id=state["refund_id"], amount=amount.amount, currency=amount.currency,
                code_ids=[], reason=state["reason"], status="refunded")
    return data, owner


def _expired(state: dict[str, Any], context: Context) -> Any:
    return _order_part(str(state["originator_id"]), context)


def _topup(state: dict[str, Any], context: Context) -> Any:
    data, owner = _order_part(str(state["order_id"]), context)
    data["supplier_id"] = _text(state.get("supplier_id"))
    return data, owner


def _code_part(state: dict[str, Any], context: Context) -> tuple[dict[str, Any], str | None]:
    code_id = str(state["originator_id"])
    code = context.code(code_id) or {}
    order_id = code.get("order_id")
    owner = (context.order(order_id) or {}).get("owner") if order_id else None
    return {"code_id": code_id, "sku": code.get("sku"), "order_id": order_id,
            "redemption_id": state["redemption_id"]}, owner


def _redeemed(state: dict[str, Any], context: Context) -> Any:
    data, owner = _code_part(state, context)
    data.update(merchant_id=state["merchant_id"], terminal_id=state.get("terminal_id"),
                location=state.get("location"))
    return data, owner


def _rolled_back(state: dict[str, Any], context: Context) -> Any:
    data, owner = _code_part(state, context)
    data["reason"] = state["reason"]
    return data, owner


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# Each stored topic that tells something, and the webhook type it tells.
BUILDERS: dict[str, tuple[str, Builder]] = {
    "quanyi:order.paid": ("order.delivered", _delivered),
    "quanyi:order.refunded": ("order.refunded", _refunded),
    "quanyi:order.payment_refunded": ("order.refunded", _payment_refunded),
    "quanyi:order.topup_refunded": ("order.refunded", _topup_refunded),
    "quanyi:order.expired": ("order.expired", _expired),
    "quanyi:topup.succeeded": ("topup.succeeded", _topup),
    "quanyi:topup.failed": ("topup.failed", _topup),
    "quanyi:code.redeemed": ("code.redeemed", _redeemed),
    "quanyi:code.redemption_rolled_back": ("code.redemption_rolled_back", _rolled_back),
}


def topics_for(event_types: list[str]) -> list[str]:
    """The stored topics whose events can become the given webhook types."""
    return sorted(topic for topic, (kind, _) in BUILDERS.items() if kind in event_types)


def message_of(topic: str, state: dict[str, Any], position: int,
               context: Context) -> Message | None:
    """The message a stored event (its topic and decoded state) tells, if it tells one."""
    if topic not in BUILDERS:
        return None
    kind, build = BUILDERS[topic]
    built = build(state, context)
    if built is None:
        return None
    data, owner = built
    return Message(position, kind, state["timestamp"], data, owner)


def stock_message(alert: dict[str, Any]) -> Message:
    """A crossing below a SKU's threshold (projections/stock.py) as a message."""
    return Message(alert["position"], STOCK_LOW, datetime.fromisoformat(alert["at"]),
                   {"sku": alert["sku"], "threshold": alert["threshold"],
                    "available": alert["available"]}, None)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
