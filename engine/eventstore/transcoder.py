"""The event store's transcoder: orjson, with typed envelopes for values JSON lacks.

Datetimes travel as ``{"_type_": "datetime", "_data_": "<ISO 8601>"}`` so that they decode
back to timezone-aware ``datetime`` objects, and ``Money`` values as ``{"_type_": "money",
"_data_": {"amount": <minor units>, "currency": "CNY"}}``; other fields are JSON-native by
design (ids are strings). Ledger legs, order lines and top-up offers travel the same way
(``"leg"``, ``"order_line"``, ``"topup_offer"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_NESTED = (dict, list)


class OrjsonTranscoder(Transcoder):
    """Encodes event state with orjson; revives the typed envelopes on decode.

    ``value_types`` names each value object that events carry by the name its envelope
    gives (each has ``to_json`` and ``from_json``); the domain hands them in
    (engine/topics.py), and a name, once stored, is forever."""

    def __init__(self, value_types: Mapping[str, Any]) -> None:
        self._types = dict(value_types)
        self._names = {kind: name for name, kind in self._types.items()}

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_default, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        for key, value in state.items():
            if type(value) in _NESTED:
                state[key] = self._revive(value)
        return state

    def _encode_default(self, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise TypeError("naive datetime in an event; time must be timezone-aware UTC")
            return {"_type_": "datetime", "_data_": value.isoformat()}
        name = self._names.get(type(value))
        if name is not None:
            return {"_type_": name, "_data_": value.to_json()}
        if isinstance(value, (set, frozenset, tuple)):
            return list(value)
        raise TypeError(f"cannot store a {type(value).__name__} in an event")

    def _revive(self, value: Any) -> Any:
        """The value with its typed envelopes revived; scalars are never visited (this
        runs for every event every follower reads)."""
        revive = self._revive
        if type(value) is dict:
            kind = value.get("_type_")
            if kind == "datetime":
                return datetime.fromisoformat(value["_data_"])
            value_type = self._types.get(kind) if kind is not None else None
            if value_type is not None:
                return value_type.from_json(value["_data_"])
            return {key: revive(item) if type(item) in _NESTED else item
                    for key, item in value.items()}
        return [revive(item) if type(item) in _NESTED else item for item in value]


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
