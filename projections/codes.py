"""The code read models: the code index, each code's history, and inventory per batch.

One projection keeps all three because they move together: a code's transition updates its
index row, appends a history row and shifts one inventory count from the old status to the
new one. A chunk of events is applied with one read of the affected index rows and a few
batched writes, which is what lets a rebuild run at thousands of events a second.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from engine.codes import STATUSES, Batch, Code
from engine.serialization import event_type, public_fields
from projections.database import Cursor
from projections.projection import Projection, Table, bigint, iso, key

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

# The status a code moves to on each transition event (imports start at "available").
NEXT_STATUS = {
    Code.Reserved: "reserved", Code.Released: "available", Code.Sold: "sold",
    Code.Redeemed: "redeemed", Code.RedemptionRolledBack: "sold", Code.Voided: "voided",
    Code.Expired: "expired",
}
# Events that are part of a code's story without moving its status.
UNCHANGED_STATUS = (Code.Revealed,)
CODE_EVENTS = (Code.Created, *NEXT_STATUS, *UNCHANGED_STATUS)
BATCH_EVENTS = (Batch.Created, Batch.Completed)


def slot_of(code_id: str) -> int:
    return int(code_id.replace("-", "")[:8], 16) % SLOTS


class CodeProjection(Projection):
    name = "codes"
    tables = (CODE_INDEX, CODE_HISTORY, INVENTORY)

    def apply(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> None:
        code_events = [(p, e) for p, e in events if isinstance(e, CODE_EVENTS)]
        rows = self._load(cursor, {str(e.originator_id) for _, e in code_events})
        changed: dict[str, dict[str, Any]] = {}
        history: list[tuple[Any, ...]] = []
        deltas: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for position, event in events:
            if isinstance(event, BATCH_EVENTS):
                self._apply_batch(cursor, event)
            elif isinstance(event, CODE_EVENTS):
                code_id = str(event.originator_id)
                row = self._transition(rows.get(code_id), event, deltas)
                rows[code_id] = changed[code_id] = row
                history.append(self._history_row(code_id, position, event))
        self._write(cursor, changed, history, deltas)

    # -- reading and transitions --------------------------------------------------------

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

    @staticmethod
    def _transition(row: dict[str, Any] | None, event: Any,
                    deltas: dict[str, dict[str, int]]) -> dict[str, Any]:
        at = iso(event.timestamp)
        if isinstance(event, Code.Created):
            row = {"code_id": str(event.originator_id), "sku": key(event.sku),
                   "batch_id": event.batch_id, "origin": event.origin, "status": "available",
                   "order_id": None, "holder": None, "expires_at": iso(event.expires_at),
                   "redemption_id": None, "redeemed_at": None, "redeemed_by": None,
                   "terminal_id": None, "location": None,
                   "slot": slot_of(str(event.originator_id)), "imported_at": at}
            deltas[event.batch_id]["total"] += 1
            deltas[event.batch_id]["available"] += 1
        else:
            assert row is not None, f"event for unknown code {event.originator_id}"
            row = dict(row)
            new_status = NEXT_STATUS.get(type(event), row["status"])
            deltas[row["batch_id"]][row["status"]] -= 1
            deltas[row["batch_id"]][new_status] += 1
            row["status"] = new_status
            if isinstance(event, Code.Reserved):
                row["order_id"], row["holder"] = key(event.order_id), event.holder
            elif isinstance(event, Code.Released):
                row["order_id"] = row["holder"] = None
            elif isinstance(event, Code.Redeemed):
                row.update(redemption_id=key(event.redemption_id), redeemed_at=at,
                           redeemed_by=event.merchant_id, terminal_id=event.terminal_id,
                           location=event.location)
            elif isinstance(event, Code.RedemptionRolledBack):
                row.update(redemption_id=None, redeemed_at=None, redeemed_by=None,
                           terminal_id=None, location=None)
        row["version"] = event.originator_version
        row["updated_at"] = at
        return row

    @staticmethod
    def _history_row(code_id: str, position: int, event: Any) -> tuple[Any, ...]:
        details = public_fields(event)
        actor = details.pop("actor", None)
        return (code_id, position, event_type(event), iso(event.timestamp), actor,
                orjson.dumps(details, default=iso,
                             option=orjson.OPT_PASSTHROUGH_DATETIME).decode())

    @staticmethod
    def _apply_batch(cursor: Cursor, event: Any) -> None:
        if isinstance(event, Batch.Created):
            cursor.execute(
                "INSERT INTO inventory (batch_id, sku, origin, supplier_id, unit_cost, currency, "
                "expires_at, opened_at, completed_at, total, "
                + ", ".join(STATUSES) + ") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, 0, "
                + ", ".join(["0"] * len(STATUSES)) + ")",
                (str(event.originator_id), key(event.sku), event.origin, event.supplier_id,
                 bigint(event.unit_cost), event.currency, iso(event.expires_at),
                 iso(event.timestamp)))
        elif isinstance(event, Batch.Completed):
            cursor.execute("UPDATE inventory SET completed_at = %s WHERE batch_id = %s",
                           (iso(event.timestamp), str(event.originator_id)))

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
