"""Reads of the code read models, for the API and for allocation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson

from engine.codes.codes import STATUSES
from projections.codes import INDEX_COLUMNS
from projections.database import ReadDatabase
from projections.projection import iso, key
from projections.runner import ProjectionRunner

COUNTERS = ("total",) + STATUSES


class CodeQueries:
    """Inventory, code index and history look-ups; also the allocator's candidate source."""

    def __init__(self, db: ReadDatabase, runner: ProjectionRunner) -> None:
        self._db = db
        self._runner = runner

    def inventory(self, sku: str) -> dict[str, Any]:
        sums = ", ".join(f"COALESCE(SUM({c}), 0)" for c in COUNTERS)
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {sums} FROM inventory WHERE sku = %s", (key(sku),))
            row = cursor.fetchone() or (0,) * len(COUNTERS)
        return {"sku": sku, **{c: int(v) for c, v in zip(COUNTERS, row)}}

    def batches(self, sku: str) -> list[dict[str, Any]]:
        columns = ("batch_id", "origin", "supplier_id", "unit_cost", "currency", "expires_at",
                   "opened_at", "completed_at") + COUNTERS
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(columns)} FROM inventory WHERE sku = %s "
                           "ORDER BY opened_at, batch_id", (key(sku),))
            return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def code(self, code_id: UUID) -> dict[str, Any] | None:
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(INDEX_COLUMNS)} FROM code_index "
                           "WHERE code_id = %s", (str(code_id),))
            row = cursor.fetchone()
        return dict(zip(INDEX_COLUMNS, row)) if row else None

    def history(self, code_id: UUID) -> list[dict[str, Any]]:
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT position, type, at, actor, details FROM code_history "
                           "WHERE code_id = %s ORDER BY position", (str(code_id),))
            rows = cursor.fetchall()
        return [{"position": int(p), "type": t, "at": at, "actor": actor,
                 **orjson.loads(details)} for p, t, at, actor, details in rows]

    def codes_of_order(self, order_id: str) -> list[dict[str, Any]]:
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(INDEX_COLUMNS)} FROM code_index "
                           "WHERE order_id = %s ORDER BY code_id", (key(order_id),))
            return [dict(zip(INDEX_COLUMNS, row)) for row in cursor.fetchall()]

    def due_for_expiry(self, now_iso: str, limit: int = 1000) -> list[UUID]:
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT code_id FROM code_index WHERE status IN ('available', 'sold') "
                           "AND expires_at IS NOT NULL AND expires_at <= %s LIMIT %s",
                           (now_iso, limit))
            return [UUID(r[0]) for r in cursor.fetchall()]

    def orders_due(self, now_iso: str, limit: int = 1000) -> list[UUID]:
        """Unpaid orders whose reservation time has passed."""
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT order_id FROM orders WHERE status = 'reserved' "
                           "AND expires_at <= %s ORDER BY expires_at LIMIT %s", (now_iso, limit))
            return [UUID(r[0]) for r in cursor.fetchall()]

    # -- CandidateSource ------------------------------------------------------------------

    def available_code_ids(self, sku: str, limit: int, start_slot: int,
                           exclude: set[UUID]) -> list[UUID]:
        """Codes the index shows available, read from a starting slot and wrapping round."""
        now = iso_now()
        wanted = limit + len(exclude)
        found: list[UUID] = []
        sql = ("SELECT code_id FROM code_index WHERE sku = %s AND status = 'available' "
               "AND (expires_at IS NULL OR expires_at > %s) AND slot {} %s "
               "ORDER BY slot LIMIT %s")
        with self._db.transaction(write=False) as cursor:
            for op in (">=", "<"):
                cursor.execute(sql.format(op), (key(sku), now, start_slot, wanted))
                for (code_id,) in cursor.fetchall():
                    uid = UUID(code_id)
                    if uid not in exclude:
                        found.append(uid)
                if len(found) >= limit:
                    break
        return found[:limit]

    def wait_for(self, position: int, timeout: float) -> bool:
        return self._runner.wait_for(position, timeout)


def iso_now() -> str:
    from datetime import datetime, timezone

    return iso(datetime.now(timezone.utc)) or ""
