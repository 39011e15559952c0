"""The top-up list: one row per paid top-up, its state and how far it got, for the
dispatcher (which open ones to drive), support and the benchmark.

``seq`` is the log position of the event that last made the row worth driving (opened, or
an attempt definitely failed): the dispatcher follows rows by it, so a top-up reopened by a
callback or by support is picked up again at once.
"""

from __future__ import annotations

from typing import Any

from engine.topups.fulfilment import NEEDS_ATTENTION, OPEN, Fulfilment
from projections.projection import Chunk, Projection, Table, event_handlers, iso, key

TOPUPS = Table("topups", (
    "CREATE TABLE IF NOT EXISTS topups (order_id TEXT PRIMARY KEY, sku TEXT NOT NULL, "
    "status TEXT NOT NULL, supplier_id TEXT, attempts BIGINT NOT NULL, "
    "late_successes BIGINT NOT NULL, seq BIGINT NOT NULL, paid_at TEXT NOT NULL, "
    "decided_at TEXT)",
    "CREATE INDEX IF NOT EXISTS topups_open ON topups (status, seq)",
), "order_id")


class TopupProjection(Projection):
    name = "topups"
    tables = (TOPUPS,)
    project = event_handlers()

    @staticmethod
    def _set(chunk: Chunk, event: Any, assignments: str, *values: Any) -> None:
        chunk.cursor.execute(f"UPDATE topups SET {assignments} WHERE order_id = %s",
                             (*values, event.order_id if hasattr(event, "order_id")
                              else _order_of(event)))

    @project.register
    def _opened(self, event: Fulfilment.Created, position: int, chunk: Chunk) -> None:
        chunk.cursor.execute(
            "INSERT INTO topups (order_id, sku, status, supplier_id, attempts, "
            "late_successes, seq, paid_at, decided_at) "
            "VALUES (%s, %s, %s, NULL, 0, 0, %s, %s, NULL) ON CONFLICT DO NOTHING",
            (event.order_id, key(event.sku), OPEN, position, iso(event.timestamp)))

    @project.register
    def _started(self, event: Fulfilment.AttemptStarted, position: int, chunk: Chunk) -> None:
        self._set(chunk, event, "attempts = attempts + 1, supplier_id = %s",
                  key(event.supplier_id))

    @project.register
    def _failed_attempt(self, event: Fulfilment.AttemptFailed, position: int,
                        chunk: Chunk) -> None:
        self._set(chunk, event, "status = %s, seq = %s", OPEN, position)

    @project.register
    def _escalated(self, event: Fulfilment.NeedsAttention, position: int,
                   chunk: Chunk) -> None:
        self._set(chunk, event, "status = %s", NEEDS_ATTENTION)

    @project.register
    def _succeeded(self, event: Fulfilment.Succeeded, position: int, chunk: Chunk) -> None:
        self._set(chunk, event, "status = %s, supplier_id = %s, decided_at = %s",
                  "succeeded", key(event.supplier_id), iso(event.timestamp))

    @project.register
    def _failed(self, event: Fulfilment.Failed, position: int, chunk: Chunk) -> None:
        self._set(chunk, event, "status = %s, decided_at = %s", "failed",
                  iso(event.timestamp))

    @project.register
    def _recorded(self, event: Fulfilment.OutcomeRecorded, position: int,
                  chunk: Chunk) -> None:
        """A late or repeated report changes nothing the list holds."""

    @project.register
    def _skipped(self, event: Fulfilment.OfferSkipped, position: int, chunk: Chunk) -> None:
        """An offer passed over is told on the fulfilment itself; the list keeps no count."""

    @project.register
    def _late(self, event: Fulfilment.LateSuccess, position: int, chunk: Chunk) -> None:
        self._set(chunk, event, "late_successes = late_successes + 1")


def _order_of(event: Any) -> str:
    """An attempt's events carry its reference: ``<order id>-<number>``."""
    return str(event.reference).rpartition("-")[0]
