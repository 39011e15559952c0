"""Check a dispute bundle offline: with the bundle file and the audit public key only.

A third party (a customer, an auditor, a payment provider) runs this module with nothing of
the operator's server: it needs the standard library, ``cryptography`` and merkle.py, and
works from those two files side by side (``python bundle_check.py BUNDLE --public-key B64``).

Five checks, in this order; the first that fails refuses the bundle with its reason:

    format     the bundle is a quanyi-dispute-bundle/1 with every field in its place
    authentic  the head is signed by the trusted key; every event's bytes and position are
               a leaf of that head's tree (its inclusion proof leads to the signed root)
    complete   every stream the bundle lists holds exactly its versions 1..n; the order's
               payments, refunds and sales each come with their stream
    state      the order or code, re-derived from its events alone, is the one the bundle
               claims, field by field (status, buyer, items, money, channel, distributor,
               external reference, expiry, codes, payments, refunds, redemption, ...)
    postings   every ledger transaction balances per currency; its legs are the postings the
               bundle claims, field by field; an order's clearing accounts hold what its
               events say was paid less refunded

Every claimed field is compared with what the events make, or named on the last line,
``not checked: <field> (why)``: the few the bundled events cannot settle (NOT_CHECKED) and
any this verifier does not know. Nothing claimed passes unchecked without being named.

Event states are the store's orjson bytes: a datetime travels as ``{"_type_": "datetime",
"_data_": ISO}``, money as ``{"_type_": "money", "_data_": {"amount", "currency"}}``, a ledger
leg as ``{"_type_": "leg", "_data_": [account, amount, currency, memo, code_id?]}``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any
from uuid import UUID

try:
    from replay import merkle
except ImportError:  # run beside merkle.py, outside the Quanyi repository
    import merkle  # type: ignore[no-redef]

FORMAT = "quanyi-dispute-bundle/1"
LEDGER_TOPIC = "quanyi:ledger.posted"
PAYMENT_TOPIC = "quanyi:payment.captured"
CLEARING = "assets:clearing:"


class Refused(Exception):
    """The bundle does not prove what it claims: ``check`` says which check, the message why."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason


@dataclass(frozen=True)
class Event:
    """One stored event as the bundle carries it, its state decoded."""

    position: int
    originator_id: UUID
    version: int
    topic: str
    stored: bytes
    leaf_index: int
    proof: list[bytes]
    state: dict[str, Any]

    @property
    def at(self) -> datetime:
        return self.state["timestamp"]

    def name(self) -> str:
        return f"event {self.originator_id} v{self.version} (position {self.position})"


@dataclass
class Verified:
    """What a bundle proved, line by line for a reader."""

    kind: str
    subject: str
    lines: list[str] = field(default_factory=list)


# -- reading the file ---------------------------------------------------------------------

def _b64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Refused("format", f"{what} is not base64") from None


def _hex(text: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except (TypeError, ValueError):
        raise Refused("format", f"{what} is not hexadecimal") from None


def revive(value: Any) -> Any:
    """Stored JSON with its typed envelopes as plain values: datetimes, money as
    ``{"amount", "currency"}``, legs as dicts."""
    if isinstance(value, list):
        return [revive(item) for item in value]
    if not isinstance(value, dict):
        return value
    kind, data = value.get("_type_"), value.get("_data_")
    if kind == "datetime":
        return datetime.fromisoformat(data)
    if kind == "leg":
        account, amount, currency, memo, *code = data
        return {"account": account, "amount": amount, "currency": currency, "memo": memo,
                "code_id": code[0] if code else None}
    if kind in ("money", "order_line"):
        return data
    return {key: revive(item) for key, item in value.items()}


def _event(raw: dict[str, Any]) -> Event:
    try:
        stored = _b64(raw["state"], "an event's state")
        event = Event(int(raw["position"]), UUID(raw["originator_id"]),
                      int(raw["originator_version"]), str(raw["topic"]), stored,
                      int(raw["leaf_index"]), [_hex(h, "a proof hash") for h in raw["proof"]],
                      {})
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused("format", f"an event lacks or misspells a field ({exc})") from None
    try:
        state = revive(json.loads(stored))
    except (ValueError, TypeError, KeyError) as exc:
        raise Refused("authentic", f"{event.name()}: its stored bytes are not an event's "
                                   f"JSON ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("timestamp"), datetime):
        raise Refused("authentic", f"{event.name()}: its stored state has no timestamp")
    object.__setattr__(event, "state", state)
    return event


def _head(raw: dict[str, Any]) -> merkle.SignedHead:
    try:
        return merkle.SignedHead(int(raw["tree_size"]), _hex(raw["root_hash"], "the root hash"),
                                 str(raw["signed_at"]), _b64(raw["signature"], "the signature"))
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused("format", f"the head lacks or misspells a field ({exc})") from None


# -- the checks -----------------------------------------------------------------------------

def check_bundle(bundle: Any, public_key: bytes | None = None) -> Verified:
    """Every check of the bundle, against ``public_key`` (raw 32 bytes) when given, else
    against the key the bundle names; raises Refused at the first that fails."""
    try:
        return _check(bundle, public_key)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # a field of the wrong shape somewhere the checks above did not look first
        raise Refused("format", f"the bundle is malformed ({type(exc).__name__}: {exc})") \
            from None


def _check(bundle: Any, public_key: bytes | None) -> Verified:
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise Refused("format", f"not a {FORMAT} bundle")
    try:
        kind, subject = bundle["subject"]["kind"], str(bundle["subject"]["id"])
        raw_events, streams, claims = bundle["events"], bundle["streams"], bundle["claims"]
        named_key = _b64(bundle["public_key"], "the public key")
        head = _head(bundle["head"])
    except (KeyError, TypeError) as exc:
        raise Refused("format", f"the bundle lacks {exc}") from None
    if kind not in ("order", "code"):
        raise Refused("format", f"a bundle is of an order or a code, not {kind!r}")
    events = [_event(raw) for raw in raw_events]
    verified = Verified(kind, subject)
    verified.lines.append(_authentic(events, head, public_key or named_key, named_key,
                                     trusted=public_key is not None))
    verified.lines.append(_complete(events, streams))
    derive = _order_state if kind == "order" else _code_state
    unchecked: dict[str, str] = {}
    verified.lines += derive(subject, events, claims, unchecked)
    verified.lines.append(_postings(kind, subject, events, claims, unchecked))
    other = "code" if kind == "order" else "order"
    if claims.get(other) is not None:
        raise Refused("format", f"a bundle of {kind} {subject} claims a {other} too")
    unchecked.update({f"claims.{name}": "not a claim this verifier knows"
                      for name in claims.keys() - {"order", "code", "postings"}})
    verified.lines.append(_not_checked(unchecked))
    return verified


def _authentic(events: list[Event], head: merkle.SignedHead, key: bytes, named: bytes,
               trusted: bool) -> str:
    if key != named:
        raise Refused("authentic", "the bundle names another audit key than the one given")
    if not merkle.verify_head(key, head):
        raise Refused("authentic", "the head's signature does not verify with the audit key "
                                   "(a forged or edited head)")
    seen: dict[int, Event] = {}
    for event in events:
        if event.leaf_index in seen:
            raise Refused("authentic", f"{event.name()} and {seen[event.leaf_index].name()} "
                                       "claim the same leaf")
        seen[event.leaf_index] = event
        leaf = merkle.leaf_hash(merkle.leaf_bytes(event.position, event.originator_id,
                                                  event.version, event.topic, event.stored))
        if not merkle.verify_inclusion(leaf, event.leaf_index, head.tree_size, event.proof,
                                       head.root_hash):
            raise Refused("authentic", f"{event.name()} is not in the signed log: its bytes, "
                                       "position or proof do not lead to the head's root")
    by_leaf = [seen[i] for i in sorted(seen)]
    if any(a.position >= b.position for a, b in pairwise(by_leaf)):
        raise Refused("authentic", "events' positions are not in the order of their leaves")
    whose = "the key you trust" if trusted else "the key the bundle names (none was given)"
    return (f"authentic: {len(events)} events are leaves of the log of {head.tree_size} "
            f"events whose head was signed at {head.signed_at} by {whose}")


def _complete(events: list[Event], streams: Any) -> str:
    try:
        listed = {UUID(s["originator_id"]): int(s["versions"]) for s in streams}
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused("format", f"a stream lacks or misspells a field ({exc})") from None
    held: dict[UUID, list[int]] = defaultdict(list)
    for event in events:
        if event.originator_id not in listed:
            raise Refused("complete", f"{event.name()} belongs to no stream the bundle lists")
        held[event.originator_id].append(event.version)
    for stream, count in listed.items():
        versions = sorted(held.get(stream, []))
        if versions != list(range(1, count + 1)):
            missing = sorted(set(range(1, count + 1)) - set(versions))
            raise Refused("complete", f"stream {stream} has {count} events, the bundle holds "
                                      f"versions {_spans(versions)}"
                                      + (f" (missing {_spans(missing)})" if missing else ""))
    return f"complete: {len(listed)} streams, each with every version from 1 to its last"


def _spans(versions: list[int]) -> str:
    return ", ".join(str(v) for v in versions) or "none"


def _stream(events: list[Event], stream: str) -> list[Event]:
    found = sorted((e for e in events if str(e.originator_id) == stream),
                   key=lambda e: e.version)
    if not found:
        raise Refused("complete", f"the bundle holds no event of its subject {stream}")
    return found


# -- an order's state -----------------------------------------------------------------------

ORDER_TOPICS = {"quanyi:order.placed", "quanyi:order.paid", "quanyi:order.payment_refunded",
                "quanyi:order.expired", "quanyi:order.cancelled", "quanyi:order.revealed",
                "quanyi:order.refunded"}


def derive_order(events: list[Event]) -> dict[str, Any]:
    """The order as its events make it (the same steps as engine/sales/orders.py applies)."""
    order: dict[str, Any] = {}
    for event in events:
        if event.topic not in ORDER_TOPICS:
            raise Refused("state", f"{event.name()}: {event.topic} is no order event this "
                                   "verifier knows")
        _apply_order(order, event.topic.removeprefix("quanyi:order."), event.state, event.at)
    if not order:
        raise Refused("state", "the order's first event is not order.placed")
    return order


def _apply_order(order: dict[str, Any], step: str, s: dict[str, Any], at: datetime) -> None:
    if step == "placed":
        order.update(status="reserved", buyer_id=s["buyer_id"], amount=s["amount"],
                     currency=s["currency"], items=s["items"], channel=s.get("channel"),
                     distributor_id=s.get("distributor_id"),
                     external_ref=s.get("external_ref"), expires_at=s["expires_at"],
                     placed_at=at, codes=list(s["codes"]), released=[], payments=[],
                     refunds=[], recharge_account=None, topup=None)
    elif not order:
        raise Refused("state", f"order.{step} comes before order.placed")
    elif step == "paid":
        order.update(status="delivered", codes=list(s["codes"]))
        order["payments"].append(_payment(s, at, late=s["late"]))
    elif step == "payment_refunded":
        order["status"] = "refunded"
        order["payments"].append(_payment(s, at, late=True))
        order["refunds"].append({"refund_id": f"auto-{s['payment_ref']}",
                                 "amount": s["amount"], "reason": s["reason"], "code_ids": [],
                                 "automatic": True, "at": at})
    elif step in ("expired", "cancelled"):
        order["status"] = step
        _let_go(order, {c["code_id"] for c in order["codes"]}, step)
    elif step == "refunded":
        _let_go(order, set(s["code_ids"]), "refunded")
        order["status"] = s["status"]
        order["refunds"].append({"refund_id": s["refund_id"], "amount": s["amount"]["amount"],
                                 "currency": s["amount"]["currency"], "reason": s["reason"],
                                 "code_ids": list(s["code_ids"]), "automatic": False,
                                 "at": at})


def _payment(s: dict[str, Any], at: datetime, late: bool) -> dict[str, Any]:
    return {"payment_ref": s["payment_ref"], "amount": s["amount"], "currency": s["currency"],
            "provider": s.get("provider"), "late": late, "at": at}


def _let_go(order: dict[str, Any], gone: set[str], why: str) -> None:
    order["released"] += [{"code_id": c["code_id"], "sku": c["sku"], "why": why}
                          for c in order["codes"] if c["code_id"] in gone]
    order["codes"] = [c for c in order["codes"] if c["code_id"] not in gone]


def _order_state(subject: str, events: list[Event], claims: Any,
                 unchecked: dict[str, str]) -> list[str]:
    order = derive_order(_stream(events, subject))
    compare("state", "order", {"order_id": subject, **order}, _claim(claims, "order"),
            unchecked)
    _payments_match(subject, order, events)
    paid = sum(p["amount"] for p in order["payments"])
    back = sum(r["amount"] for r in order["refunds"])
    return [(f"state: order {subject} is {order['status']}: {order['amount']} "
             f"{order['currency']} (minor units), paid {paid}, refunded {back}, "
             f"{len(order['codes'])} codes held, {len(order['released'])} released; buyer "
             f"{order['buyer_id']}, placed at {order['placed_at'].isoformat()}")]


def _payments_match(subject: str, order: dict[str, Any], events: list[Event]) -> None:
    """Each payment of the order comes with its own captured payment, for this order."""
    captured = {e.state["payment_ref"]: e.state for e in events if e.topic == PAYMENT_TOPIC}
    for payment in order["payments"]:
        found = captured.get(payment["payment_ref"])
        if found is None:
            raise Refused("complete", f"payment {payment['payment_ref']} of the order comes "
                                      "without its payment stream")
        if (found["order_id"], found["amount"], found["currency"]) != (
                subject, payment["amount"], payment["currency"]):
            raise Refused("state", f"payment {payment['payment_ref']} was captured for "
                                   f"{found['amount']} {found['currency']} on order "
                                   f"{found['order_id']}, not as the order records it")


def _claim(claims: Any, name: str) -> dict[str, Any]:
    if not isinstance(claims, dict) or not isinstance(claims.get(name), dict):
        raise Refused("format", f"the bundle claims no {name}")
    return claims[name]


# -- every claim against what the events make -----------------------------------------------

NOT_CHECKED = {  # claim fields the bundled events cannot settle, and why
    "order.codes[].status": "each code's status now is in that code's own bundle",
}


def compare(check: str, path: str, derived: Any, claimed: Any,
            unchecked: dict[str, str]) -> None:
    """Refuse at the first claimed field that differs from what the events make. A field
    the events do not make is noted in ``unchecked`` (path: why), never passed as checked."""
    if isinstance(derived, dict) and isinstance(claimed, dict):
        for name, value in claimed.items():
            if name in derived:
                compare(check, f"{path}.{name}", derived[name], value, unchecked)
            else:
                field_path = _field(f"{path}.{name}")
                unchecked[field_path] = NOT_CHECKED.get(field_path,
                                                        "unknown to this verifier")
        for name in derived.keys() - claimed.keys():
            _differs(check, f"{path}.{name}", derived[name], "nothing")
    elif isinstance(derived, list) and isinstance(claimed, list):
        if len(derived) != len(claimed):
            _differs(check, path, derived, claimed)
        for index, (made, said) in enumerate(zip(derived, claimed)):
            compare(check, f"{path}[{index}]", made, said, unchecked)
    elif isinstance(derived, datetime):
        if derived != _instant(claimed, path):
            _differs(check, path, derived.isoformat(), claimed)
    elif derived != claimed or type(derived) is not type(claimed):
        _differs(check, path, derived, claimed)


def _field(path: str) -> str:
    """A claim's path without its list indexes: order.codes[0].status -> order.codes[].status"""
    return ".".join(part.split("[")[0] + ("[]" if "[" in part else "")
                    for part in path.split("."))


def _differs(check: str, path: str, derived: Any, claimed: Any) -> None:
    raise Refused(check, f"the bundle claims {path} {claimed!r}; its events make {derived!r}")


def _not_checked(unchecked: dict[str, str]) -> str:
    if not unchecked:
        return "not checked: nothing, every claim was re-derived from the events"
    return "not checked: " + "; ".join(f"{path} ({why})"
                                       for path, why in sorted(unchecked.items()))


# -- a code's state -------------------------------------------------------------------------

CODE_STEPS = {  # topic: (status after it, whether it ends the order's hold on the code)
    "quanyi:code.released": ("available", True), "quanyi:code.sold": ("sold", False),
    "quanyi:code.returned": ("available", True), "quanyi:code.written_off": ("voided", False),
    "quanyi:code.voided": ("voided", False), "quanyi:code.expired": ("expired", False),
}


def derive_code(events: list[Event]) -> dict[str, Any]:
    """The code as its events make it (the same steps as engine/codes/codes.py applies)."""
    code: dict[str, Any] = {}
    for event in events:
        s, topic = event.state, event.topic
        if topic == "quanyi:code.imported":
            code.update(sku=s["sku"], batch_id=s["batch_id"], status="available",
                        origin=s["origin"], expires_at=s.get("expires_at"), order_id=None,
                        holder=None, redemption=None, reveals=0)
        elif not code:
            raise Refused("state", f"{event.name()} comes before code.imported")
        elif topic == "quanyi:code.reserved":
            code.update(status="reserved", order_id=s["order_id"], holder=s["holder"])
        elif topic in CODE_STEPS:
            status, let_go = CODE_STEPS[topic]
            code["status"] = status
            if let_go:
                code.update(order_id=None, holder=None)
        elif topic == "quanyi:code.redeemed":
            code.update(status="redeemed", redemption={**s, "at": event.at})
        elif topic == "quanyi:code.redemption_rolled_back":
            code.update(status="sold", redemption=None)
        elif topic == "quanyi:code.revealed":
            code["reveals"] += 1
        else:
            raise Refused("state", f"{event.name()}: {topic} is no code event this verifier "
                                   "knows")
    code.update(version=len(events), updated_at=events[-1].at if events else None)
    return code


def _code_state(subject: str, events: list[Event], claims: Any,
                unchecked: dict[str, str]) -> list[str]:
    code = derive_code(_stream(events, subject))
    redemption = code["redemption"] or {}
    view = {"code_id": subject, **{name: code[name] for name in (
        "sku", "status", "batch_id", "origin", "order_id", "holder", "expires_at",
        "version", "updated_at")},
        "redemption_id": redemption.get("redemption_id"), "redeemed_at": redemption.get("at"),
        "redeemed_by": redemption.get("merchant_id"),
        "terminal_id": redemption.get("terminal_id"), "location": redemption.get("location")}
    compare("state", "code", view, _claim(claims, "code"), unchecked)
    told = (f", redeemed by {redemption['merchant_id']} at {redemption['at'].isoformat()}"
            if redemption else "")
    return [(f"state: code {subject} is {code['status']} (sku {code['sku']}, order "
             f"{code['order_id']}, shown {code['reveals']} times{told})")]


def _instant(text: Any, path: str) -> datetime:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        raise Refused("state", f"the bundle claims {path} {text!r}, which is not a time") \
            from None


# -- postings -------------------------------------------------------------------------------

LINKS = ("order_id", "refund_id", "payout_id", "settlement_id", "payment_ref", "provider")


def _postings(kind: str, subject: str, events: list[Event], claims: Any,
              unchecked: dict[str, str]) -> str:
    transactions = [e for e in events if e.topic == LEDGER_TOPIC]
    derived: dict[tuple[str, int], dict[str, Any]] = {}
    for txn in transactions:
        _balanced(txn)
        if kind == "order" and txn.state["links"].get("order_id") != subject:
            raise Refused("postings", f"ledger transaction {txn.originator_id} is not "
                                      f"linked to order {subject}")
        for index, leg in enumerate(txn.state["legs"]):
            if kind == "order" or leg["code_id"] == subject:
                derived[(str(txn.originator_id), index)] = _posting(txn, index, leg)
    claimed = _claimed_postings(claims)
    if sorted(derived) != sorted(claimed):
        extra, missing = set(claimed) - set(derived), set(derived) - set(claimed)
        raise Refused("postings", "the claimed postings differ from the bundled transactions' "
                                  f"legs: claimed but not posted {sorted(extra)[:3]}, posted "
                                  f"but not claimed {sorted(missing)[:3]}")
    for (txn_id, leg), posting in claimed.items():
        compare("postings", f"postings[{txn_id} leg {leg}]",
                _as_claimed_then(derived[(txn_id, leg)], posting), posting, unchecked)
    rows = [(p["account_id"], p["amount"], p["currency"]) for p in derived.values()]
    sums = _per_account(rows)
    if kind == "order":
        _order_money(subject, events, transactions, sums)
    shown = "; ".join(f"{account} {amount} {currency}"
                      for (account, currency), amount in sorted(sums.items()))
    return (f"postings: {len(transactions)} ledger transactions, each balanced per currency; "
            f"{len(derived)} legs as claimed, every field; per account: {shown or 'none'}")


def _posting(txn: Event, index: int, leg: dict[str, Any]) -> dict[str, Any]:
    """One leg as the ledger read model shows it (a claimed posting's fields)."""
    links = txn.state["links"]
    return {"txn_id": str(txn.originator_id), "leg": index, "position": txn.position,
            "kind": txn.state["kind"], "account_id": leg["account"], "amount": leg["amount"],
            "currency": leg["currency"], "memo": leg["memo"], "code_id": leg["code_id"],
            **{name: _text(links.get(name)) for name in LINKS}, "at": txn.at,
            "tenant": txn.state.get("tenant")}  # None: the platform's, or stored before books


def _as_claimed_then(made: dict[str, Any], posting: Any) -> dict[str, Any]:
    """A bundle made before each tenant had its book claims no posting's tenant: the
    platform's posting (the only kind there was) is compared without it."""
    if isinstance(posting, dict) and "tenant" not in posting and made["tenant"] is None:
        return {name: value for name, value in made.items() if name != "tenant"}
    return made


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _balanced(txn: Event) -> None:
    totals: dict[str, int] = defaultdict(int)
    for leg in txn.state["legs"]:
        totals[leg["currency"]] += leg["amount"]
    off = {currency: total for currency, total in totals.items() if total}
    if off or not txn.state["legs"]:
        raise Refused("postings", f"ledger transaction {txn.originator_id} does not balance: "
                                  f"{off or 'no legs'}")


def _claimed_postings(claims: Any) -> dict[tuple[str, int], dict[str, Any]]:
    postings = claims.get("postings") if isinstance(claims, dict) else None
    if not isinstance(postings, list):
        raise Refused("format", "the bundle claims no postings")
    try:
        keyed = {(str(p["txn_id"]), int(p["leg"])): p for p in postings}
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused("format", f"a claimed posting lacks or misspells a field ({exc})") \
            from None
    if len(keyed) != len(postings):
        raise Refused("postings", "the bundle claims a ledger leg twice")
    return keyed


def _per_account(rows: list[tuple[str, int, str]]) -> dict[tuple[str, str], int]:
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for account, amount, currency in rows:
        sums[(account, currency)] += amount
    return dict(sums)


def _order_money(subject: str, events: list[Event], transactions: list[Event],
                 sums: dict[tuple[str, str], int]) -> None:
    """Each payment and refund that moved money comes with its transaction, and the
    providers' clearing accounts hold what was paid less what was refunded."""
    order = derive_order(_stream(events, subject))
    linked = {(t.state["kind"], t.state["links"].get("payment_ref")) for t in transactions}
    refunds = {t.state["links"].get("refund_id") for t in transactions}
    for payment in order["payments"]:
        if payment["amount"] and ("sale", payment["payment_ref"]) not in linked:
            raise Refused("complete", f"payment {payment['payment_ref']} comes without its "
                                      "sale transaction")
    for refund in order["refunds"]:
        if refund["amount"] and not refund["automatic"] and refund["refund_id"] not in refunds:
            raise Refused("complete", f"refund {refund['refund_id']} comes without its "
                                      "ledger transaction")
    held = sum(amount for (account, currency), amount in sums.items()
               if account.startswith(CLEARING) and currency == order["currency"])
    net = (sum(p["amount"] for p in order["payments"])
           - sum(r["amount"] for r in order["refunds"]))
    if held != net:
        raise Refused("postings", f"the clearing accounts hold {held} {order['currency']} for "
                                  f"the order; its events say {net} was paid less refunded")


# -- the command line -----------------------------------------------------------------------

def load(path: str) -> Any:
    """The bundle in a file; Refused when it is not JSON."""
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except OSError as exc:
        raise Refused("format", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise Refused("format", f"{path} is not JSON ({exc})") from None


def public_key(text: str | None) -> bytes | None:
    """The raw Ed25519 public key from its base64 text (None: none given)."""
    if text is None:
        return None
    key = _b64(text.strip(), "the public key")
    if len(key) != 32:
        raise Refused("format", "an Ed25519 public key is 32 bytes")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a Quanyi dispute bundle offline.")
    parser.add_argument("bundle", help="the bundle file (JSON)")
    parser.add_argument("--public-key", help="the operator's audit public key (base64)")
    args = parser.parse_args(argv)
    try:
        verified = check_bundle(load(args.bundle), public_key(args.public_key))
    except Refused as exc:
        print(f"refused: {exc}")
        return 1
    print(f"verified: the {verified.kind} bundle of {verified.subject}")
    for line in verified.lines:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
