"""The code read models: the code index, each code's history, and inventory per batch.

One projection keeps all three because they move together: a code's transition updates its
index row, appends a history row and shifts one inventory count from the old status to the
new one. A chunk of events is applied with one read of the affected index rows and a few
batched writes, which is what lets a rebuild run at thousands of events a second.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.codes.codes import STATUSES, Batch, Code
from engine.eventstore.transcoder import event_type, public_fields
from projections.database import Cursor
from projections.projection import (
    Chunk,
    Projection,
    Table,
    bigint,
    event_handlers,
    iso,
    key,
)

SLOTS = 1024
LOAD_CHUNK = 500

INDEX_COLUMNS = ("code_id", "sku", "batch_id", "origin", "status", "order_id", "holder",
                 "expires_at", "redemption_id", "redeemed_at", "redeemed_by", "terminal_id",
                 "location", "slot", "version", "imported_at", "updated_at")

CODE_INDEX = Table("code_index", (
    "CREATE TABLE IF NOT EXISTS code_index (code_id TEXT PRIMARY KEY, sku TEXT NOT NULL, "
    "batch_id TEXT NOT NULL, origin TEXT NOT NULL, status TEXT NOT NULL, order_id TEXT, "
    "holder TEXT, expires_at TEXT, redemption_id TEXT, redeemed_at TEXT, redeemed_by TEXT, "
    "terminal_id TEXT, location TEXT, slot INTEGER NOT NULL, version INTEGER NOT NULL, "
    "imported_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS code_index_pool ON code_index (sku, status, slot)",
    "CREATE INDEX IF NOT EXISTS code_index_expiry ON code_index (status, expires_at)",
    "CREATE INDEX IF NOT EXISTS code_index_order ON code_index (order_id)",
    "CREATE INDEX IF NOT EXISTS code_index_redemption ON code_index (redemption_id)",
), "code_id")

CODE_HISTORY = Table("code_history", (
    "CREATE TABLE IF NOT EXISTS code_history (code_id TEXT NOT NULL, position BIGINT NOT NULL, "
    "type TEXT NOT NULL, at TEXT NOT NULL, actor TEXT, details TEXT NOT NULL, "
    "PRIMARY KEY (code_id, position))",
), "code_id, position")

INVENTORY = Table("inventory", (
    "CREATE TABLE IF NOT EXISTS inventory (batch_id TEXT PRIMARY KEY, sku TEXT NOT NULL, "
    "origin TEXT NOT NULL, supplier_id TEXT, unit_cost BIGINT NOT NULL, currency TEXT NOT NULL, "
    "expires_at TEXT, opened_at TEXT NOT NULL, completed_at TEXT, total BIGINT NOT NULL, "
    + ", ".join(f"{s} BIGINT NOT NULL" for s in STATUSES) + ")",
    "CREATE INDEX IF NOT EXISTS inventory_sku ON inventory (sku)",
), "batch_id")


def slot_of(code_id: str) -> int:
    return int(code_id.replace("-", "")[:8], 16) % SLOTS


@dataclass
class CodeChunk(Chunk):
    """The index rows a chunk touches, as they stand so far, and what it will write."""

    rows: dict[str, dict[str, Any]]
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    deltas: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def record(self, event: Any, position: int, row: dict[str, Any]) -> None:
        """Keep a code's new index row and add the event to its history."""
        code_id = row["code_id"]
        row["version"] = event.originator_version
        row["updated_at"] = iso(event.timestamp)
        self.rows[code_id] = self.changed[code_id] = row
        self.history.append(history_row(code_id, position, event))

    def move(self, event: Any, position: int, status: str | None = None) -> dict[str, Any]:
        """Move a known code to ``status`` (None: it keeps its own) and shift its batch's
        count; returns the new row for the handler to finish (it is recorded already)."""
        row = self.rows.get(str(event.originator_id))
        assert row is not None, f"event for unknown code {event.originator_id}"
        row = dict(row)
        new_status = status or row["status"]
        self.deltas[row["batch_id"]][row["status"]] -= 1
        self.deltas[row["batch_id"]][new_status] += 1
        row["status"] = new_status
        self.record(event, position, row)
        return row


def history_row(code_id: str, position: int, event: Any) -> tuple[Any, ...]:
    details = public_fields(event)
    actor = details.pop("actor", None)
    return (code_id, position, event_type(event), iso(event.timestamp), actor,
            orjson.dumps(details, default=iso, option=orjson.OPT_PASSTHROUGH_DATETIME).decode())


class CodeProjection(Projection):
    name = "codes"
    tables = (CODE_INDEX, CODE_HISTORY, INVENTORY)
    project = event_handlers()

    def open_chunk(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> CodeChunk:
        code_ids = {str(e.originator_id) for _, e in events if isinstance(e, Code.Event)}
        return CodeChunk(cursor, self._load(cursor, code_ids))

    def close_chunk(self, chunk: CodeChunk) -> None:
        self._write(chunk.cursor, chunk.changed, chunk.history, chunk.deltas)

    # -- batches: written at once, so that the chunk's count shifts find their row --------

    @project.register
    def _batch_opened(self, event: Batch.Created, position: int, chunk: CodeChunk) -> None:
        chunk.cursor.execute(
            "INSERT INTO inventory (batch_id, sku, origin, supplier_id, unit_cost, currency, "
            "expires_at, opened_at, completed_at, total, "
            + ", ".join(STATUSES) + ") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, 0, "
            + ", ".join(["0"] * len(STATUSES)) + ")",
            (str(event.originator_id), key(event.sku), event.origin, event.supplier_id,
             bigint(event.unit_cost), event.currency, iso(event.expires_at),
             iso(event.timestamp)))

    @project.register
    def _batch_completed(self, event: Batch.Completed, position: int,
                         chunk: CodeChunk) -> None:
        chunk.cursor.execute("UPDATE inventory SET completed_at = %s WHERE batch_id = %s",
                             (iso(event.timestamp), str(event.originator_id)))

    # -- codes: gathered in the chunk and written by close_chunk ----------------------------

    @project.register
    def _imported(self, event: Code.Created, position: int, chunk: CodeChunk) -> None:
        code_id = str(event.originator_id)
        chunk.record(event, position, {
            "code_id": code_id, "sku": key(event.sku), "batch_id": event.batch_id,
            "origin": event.origin, "status": "available", "order_id": None, "holder": None,
            "expires_at": iso(event.expires_at), "redemption_id": None, "redeemed_at": None,
            "redeemed_by": None, "terminal_id": None, "location": None,
            "slot": slot_of(code_id), "imported_at": iso(event.timestamp)})
        chunk.deltas[event.batch_id]["total"] += 1
        chunk.deltas[event.batch_id]["available"] += 1

    @project.register
    def _reserved(self, event: Code.Reserved, position: int, chunk: CodeChunk) -> None:
        row = chunk.move(event, position, "reserved")
        row["order_id"], row["holder"] = key(event.order_id), event.holder

    @project.register
    def _released(self, event: Code.Released, position: int, chunk: CodeChunk) -> None:
        row = chunk.move(event, position, "available")
        row["order_id"] = row["holder"] = None

    @project.register
    def _sold(self, event: Code.Sold, position: int, chunk: CodeChunk) -> None:
        chunk.move(event, position, "sold")

    @project.register
    def _revealed(self, event: Code.Revealed, position: int, chunk: CodeChunk) -> None:
        chunk.move(event, position)  # part of the code's story; its status stays

    @project.register
    def _redeemed(self, event: Code.Redeemed, position: int, chunk: CodeChunk) -> None:
        row = chunk.move(event, position, "redeemed")
        row.update(redemption_id=key(event.redemption_id), redeemed_at=iso(event.timestamp),
                   redeemed_by=event.merchant_id, terminal_id=event.terminal_id,
                   location=event.location)

    @project.register
    def _redemption_rolled_back(self, event: Code.RedemptionRolledBack, position: int,
                                chunk: CodeChunk) -> None:
        row = chunk.move(event, position, "sold")
        row.update(redemption_id=None, redeemed_at=None, redeemed_by=None, terminal_id=None,
                   location=None)

    @project.register
    def _voided(self, event: Code.Voided, position: int, chunk: CodeChunk) -> None:
        chunk.move(event, position, "voided")

    @project.register
    def _returned(self, event: Code.Returned, position: int, chunk: CodeChunk) -> None:
        row = chunk.move(event, position, "available")  # back on sale
        row["order_id"] = row["holder"] = None

    @project.register
    def _written_off(self, event: Code.WrittenOff, position: int, chunk: CodeChunk) -> None:
        chunk.move(event, position, "voided")

    @project.register
    def _expired(self, event: Code.Expired, position: int, chunk: CodeChunk) -> None:
        chunk.move(event, position, "expired")

    # -- reading ------------------------------------------------------------------------

    @staticmethod
    def _load(cursor: Cursor, code_ids: set[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(code_ids)
        rows: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start:start + LOAD_CHUNK]
            marks = ",".join(["%s"] * len(chunk))
            cursor.execute(f"SELECT {', '.join(INDEX_COLUMNS)} FROM code_index "
                           f"WHERE code_id IN ({marks})", chunk)
            for values in cursor.fetchall():
                rows[values[0]] = dict(zip(INDEX_COLUMNS, values))
        return rows

    # -- writing ------------------------------------------------------------------------

    @staticmethod
    def _write(cursor: Cursor, changed: dict[str, dict[str, Any]],
               history: list[tuple[Any, ...]], deltas: dict[str, dict[str, int]]) -> None:
        if changed:
            columns = ", ".join(INDEX_COLUMNS)
            marks = ", ".join(["%s"] * len(INDEX_COLUMNS))
            updates = ", ".join(f"{c} = excluded.{c}" for c in INDEX_COLUMNS[1:])
            cursor.executemany(
                f"INSERT INTO code_index ({columns}) VALUES ({marks}) "
                f"ON CONFLICT (code_id) DO UPDATE SET {updates}",
                [tuple(row[c] for c in INDEX_COLUMNS) for row in changed.values()])
        if history:
            cursor.executemany(
                "INSERT INTO code_history (code_id, position, type, at, actor, details) "
                "VALUES (%s, %s, %s, %s, %s, %s)", history)
        counters = ("total",) + STATUSES
        if deltas:
            cursor.executemany(
                "UPDATE inventory SET " + ", ".join(f"{c} = {c} + %s" for c in counters)
                + " WHERE batch_id = %s",
                [tuple(d[c] for c in counters) + (batch_id,) for batch_id, d in deltas.items()])
