"""The export file: the whole event log as JSON Lines, with the signed head that covers it.

    line 1        {"quanyi_export": 1, "store": "sqlite", "audit_public_key": B64,
                   "secret_key_check": HEX, "exported_at": ISO}
    next k lines  {"kept_head": HEAD}      heads the source kept that this file covers
    next n lines  {"position": P, "originator_id": UUID, "originator_version": V,
                   "topic": T, "state": B64}      one per stored event, in log order
    last line     {"signed_head": HEAD, "events": n}

    HEAD = {"tree_size": N, "root_hash": HEX, "signed_at": ISO, "signature": B64}

``state`` is the event's stored bytes exactly as the store holds them, so sealed secrets stay
sealed and leaf *i* of replay/merkle.py's tree is recomputed from line *i* of the events.
``secret_key_check`` is a keyed hash of a fixed text: it tells an importer whether its
secret key is the one that sealed the codes, without saying anything of the key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from replay.merkle import SignedHead

FORMAT = 1
LAST = 0  # the line number under which the trailer, read from the file's end, is named
KEY_CHECK_TEXT = "quanyi export: secret key check"


class FileRefused(Exception):
    """The export file is malformed or its chain does not verify; nothing was imported."""


@dataclass(frozen=True, slots=True)
class Header:
    store: str
    audit_public_key: bytes
    secret_key_check: str
    exported_at: str


@dataclass(frozen=True, slots=True)
class Trailer:
    head: SignedHead
    events: int


# -- writing ---------------------------------------------------------------------------------

def header_line(header: Header) -> bytes:
    return _line({"quanyi_export": FORMAT, "store": header.store,
                  "audit_public_key": _b64(header.audit_public_key),
                  "secret_key_check": header.secret_key_check,
                  "exported_at": header.exported_at})


def kept_head_line(head: SignedHead) -> bytes:
    return _line({"kept_head": head_json(head)})


def event_line(position: int, originator_id: UUID, originator_version: int, topic: str,
               state: bytes) -> bytes:
    # orjson writes a UUID in its canonical text form, faster than str()
    return _line({"position": position, "originator_id": originator_id,
                  "originator_version": originator_version, "topic": topic,
                  "state": _b64(state)})


def trailer_line(trailer: Trailer) -> bytes:
    return _line({"signed_head": head_json(trailer.head), "events": trailer.events})


def head_json(head: SignedHead) -> dict[str, Any]:
    return {"tree_size": head.tree_size, "root_hash": head.root_hash.hex(),
            "signed_at": head.signed_at, "signature": _b64(head.signature)}


def _line(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value) + b"\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- reading ---------------------------------------------------------------------------------

def parse(line: bytes, number: int) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise FileRefused(f"{where(number)} is not JSON") from None
    if not isinstance(value, dict):
        raise FileRefused(f"{where(number)} is not a JSON object")
    return value


def read_header(value: dict[str, Any], number: int = 1) -> Header:
    if value.get("quanyi_export") != FORMAT:
        raise FileRefused(f"{where(number)} is not the header of a Quanyi export of format "
                          f"{FORMAT}")
    return Header(store=_text(value, "store", number),
                  audit_public_key=unb64(_text(value, "audit_public_key", number), number),
                  secret_key_check=_text(value, "secret_key_check", number),
                  exported_at=_text(value, "exported_at", number))


def read_trailer(value: dict[str, Any], number: int) -> Trailer:
    if "signed_head" not in value:
        raise FileRefused(f"{where(number)}: the file does not end with its signed head")
    head = read_head(value["signed_head"], number)
    events = value.get("events")
    if not _natural(events):
        raise FileRefused(f"{where(number)}: events must be a whole number")
    return Trailer(head, events)


def read_head(value: Any, number: int) -> SignedHead:
    if not isinstance(value, dict):
        raise FileRefused(f"{where(number)}: a head must be an object")
    size = value.get("tree_size")
    if not _natural(size):
        raise FileRefused(f"{where(number)}: tree_size must be a whole number")
    try:
        root_hash = bytes.fromhex(_text(value, "root_hash", number))
    except ValueError:
        raise FileRefused(f"{where(number)}: root_hash must be hexadecimal") from None
    return SignedHead(tree_size=size, root_hash=root_hash,
                      signed_at=_text(value, "signed_at", number),
                      signature=unb64(_text(value, "signature", number), number))


def read_event(value: dict[str, Any], number: int) -> tuple[int, UUID, int, str, bytes]:
    """(position, originator_id, originator_version, topic, state) of an event line."""
    position, version = value.get("position"), value.get("originator_version")
    if not (_natural(position) and position > 0 and _natural(version)):
        raise FileRefused(f"{where(number)}: position and originator_version must be "
                          "positive whole numbers")
    try:
        originator_id = UUID(_text(value, "originator_id", number))
    except ValueError:
        raise FileRefused(f"{where(number)}: originator_id is not a UUID") from None
    return (position, originator_id, version, _text(value, "topic", number),
            unb64(_text(value, "state", number), number))


def where(number: int) -> str:
    """How a refusal names a line: by its number, or LAST for the trailer read first."""
    return "the last line" if number == LAST else f"line {number}"


def unb64(text: str, number: int) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)  # as b64decode(validate=True)
    except (binascii.Error, ValueError):
        raise FileRefused(f"{where(number)}: not valid base64") from None


def _text(value: dict[str, Any], name: str, number: int) -> str:
    text = value.get(name)
    if not isinstance(text, str):
        raise FileRefused(f"{where(number)}: {name} must be a string")
    return text


def _natural(number: Any) -> bool:
    return isinstance(number, int) and not isinstance(number, bool) and number >= 0
