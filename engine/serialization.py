"""The event store's transcoder: orjson, with typed envelopes for values JSON lacks.

Datetimes travel as ``{"_type_": "datetime", "_data_": "<ISO 8601>"}`` so that they decode
back to timezone-aware ``datetime`` objects, and ``Money`` values as ``{"_type_": "money",
"_data_": {"amount": <minor units>, "currency": "CNY"}}``; other fields are JSON-native by
design (ids are strings). Ledger legs, order lines and top-up offers travel the same way
(``"leg"``, ``"order_line"``, ``"topup_offer"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder

from engine.ledger import Leg
from engine.money import Money
from engine.order_lines import OrderLine
from engine.topup_offers import TopupOffer

# Value objects that events carry, by the name their envelope gives: each has to_json and
# from_json. A name, once stored, is forever.
VALUE_TYPES: dict[str, Any] = {"money": Money, "leg": Leg, "order_line": OrderLine,
                               "topup_offer": TopupOffer}
VALUE_NAMES = {kind: name for name, kind in VALUE_TYPES.items()}
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _encode_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("naive datetime in an event; time must be timezone-aware UTC")
        return {"_type_": "datetime", "_data_": value.isoformat()}
    name = VALUE_NAMES.get(type(value))
    if name is not None:
        return {"_type_": name, "_data_": value.to_json()}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot store a {type(value).__name__} in an event")


def _revive(value: Any) -> Any:
    """The value with its typed envelopes revived; scalars are never visited (this runs
    for every event every follower reads)."""
    if type(value) is dict:
        kind = value.get("_type_")
        if kind == "datetime":
            return datetime.fromisoformat(value["_data_"])
        value_type = VALUE_TYPES.get(kind) if kind is not None else None
        if value_type is not None:
            return value_type.from_json(value["_data_"])
        return {key: _revive(item) if type(item) in _NESTED else item
                for key, item in value.items()}
    return [_revive(item) if type(item) in _NESTED else item for item in value]


_NESTED = (dict, list)


class OrjsonTranscoder(Transcoder):
    """Encodes event state with orjson; revives the typed envelopes on decode."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_encode_default, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        for key, value in state.items():
            if type(value) in _NESTED:
                state[key] = _revive(value)
        return state


SECRET_FIELDS = frozenset({"sealed", "secret_hash", "sealed_credentials"})
STANDARD_FIELDS = frozenset({"originator_id", "originator_version", "timestamp",
                             "originator_topic"})


def event_type(event: Any) -> str:
    """The public name of an event: its registered topic without the ``quanyi:`` prefix."""
    return type(event).TOPIC.removeprefix("quanyi:")


def public_fields(event: Any) -> dict[str, Any]:
    """An event's own fields, without the standard ones and never a secret."""
    return {k: v for k, v in vars(event).items()
            if k not in SECRET_FIELDS and k not in STANDARD_FIELDS}
