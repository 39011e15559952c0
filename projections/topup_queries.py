"""Reads of the top-up list (projections/topups.py)."""

from __future__ import annotations

from typing import Any

from engine.topups.fulfilment import OPEN
from projections.database import ReadDatabase

COLUMNS = ("order_id", "sku", "status", "supplier_id", "attempts", "late_successes",
           "paid_at", "decided_at")


class TopupQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self._db = db

    def open_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """(seq, order id) of open top-ups past ``seq``, oldest first."""
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT seq, order_id FROM topups WHERE status = %s AND seq > %s "
                           "ORDER BY seq LIMIT %s", (OPEN, seq, limit))
            return [(int(s), str(o)) for s, o in cursor.fetchall()]

    def get(self, order_id: str) -> dict[str, Any] | None:
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM topups WHERE order_id = %s",
                           (order_id,))
            row = cursor.fetchone()
        return dict(zip(COLUMNS, row)) if row else None

    def counts(self) -> dict[str, int]:
        """Top-ups per status."""
        with self._db.transaction(write=False) as cursor:
            cursor.execute("SELECT status, COUNT(*) FROM topups GROUP BY status")
            return {str(s): int(n) for s, n in cursor.fetchall()}
