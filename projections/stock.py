"""Low stock: each SKU's available count against its threshold, and every crossing below it.

A crossing is the available count of a SKU going from at least its threshold to below it;
it is recorded once, at the log position of the event that made it, and re-arms when the
count is back at or above the threshold. Setting a threshold records no crossing (the count
did not move), even when stock is already below it. The webhook dispatcher turns each
crossing into one ``stock.low`` delivery.

Counts are kept only for SKUs that have a threshold, so that the sales path pays nothing
where nobody asked. A code event carries no SKU after the import, so the projection runs
*before* the code projection and reads the chunk's codes as they stood before it
(``code_index``); a SKU's count starts, when its threshold is set, from the ``inventory``
as it stood before the chunk plus the moves earlier in the chunk. Each event is applied
in log order, so a rebuild finds the same crossings whatever its chunks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.catalog.products import Product
from engine.codes.codes import AVAILABLE, EXPIRED, RESERVED, VOIDED, Code
from projections.database import Cursor
from projections.projection import Chunk, Projection, Table, bigint, event_handlers, iso

LOAD_CHUNK = 500

STOCK_LEVELS = Table("stock_levels", (
    "CREATE TABLE IF NOT EXISTS stock_levels (sku TEXT PRIMARY KEY, "
    "available BIGINT NOT NULL, threshold BIGINT NOT NULL, low INTEGER NOT NULL)",
), "sku")

STOCK_ALERTS = Table("stock_alerts", (
    "CREATE TABLE IF NOT EXISTS stock_alerts (position BIGINT PRIMARY KEY, sku TEXT NOT NULL, "
    "threshold BIGINT NOT NULL, available BIGINT NOT NULL, at TEXT NOT NULL)",
), "position")


@dataclass
class Level:
    available: int
    threshold: int
    low: bool


@dataclass
class StockChunk(Chunk):
    levels: dict[str, Level]
    codes: dict[str, tuple[str, str]]  # code_id -> (sku, status), as the chunk goes
    moved: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # sku -> net
    changed: set[str] = field(default_factory=set)
    cleared: set[str] = field(default_factory=set)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)

    def move(self, event: Any, position: int, status: str, sku: str | None = None) -> None:
        """The code goes to ``status``; a change in the SKU's available count is applied
        to its level, recording a crossing below the threshold."""
        code_id = str(event.originator_id)
        before = self.codes.get(code_id)
        sku = sku or (before[0] if before else None)
        if sku is None:  # a code no event imported: nothing to count
            return
        self.codes[code_id] = (sku, status)
        delta = (status == AVAILABLE) - (before is not None and before[1] == AVAILABLE)
        if delta:
            self.moved[sku] += delta
            self._shift(sku, delta, position, event)

    def _shift(self, sku: str, delta: int, position: int, event: Any) -> None:
        level = self.levels.get(sku)
        if level is None:
            return
        was, level.available = level.available, level.available + delta
        if not level.low and was >= level.threshold > level.available:
            level.low = True
            self.alerts.append((position, sku, level.threshold, level.available,
                                iso(event.timestamp)))
        elif level.low and level.available >= level.threshold:
            level.low = False
        self.changed.add(sku)


class StockProjection(Projection):
    name = "stock"
    tables = (STOCK_LEVELS, STOCK_ALERTS)
    project = event_handlers()

    def apply(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> None:
        levels = self._levels(cursor)
        if not levels and not any(isinstance(e, Product.LowStockThresholdSet)
                                  for _, e in events):
            return  # no SKU has a threshold: nothing to count, not even a code to read
        code_ids = {str(e.originator_id) for _, e in events
                    if isinstance(e, Code.Event) and not isinstance(e, Code.Created)}
        chunk = StockChunk(cursor, levels, self._codes(cursor, code_ids))
        project = self.project
        for position, event in events:
            project(event, position, chunk)
        self.close_chunk(chunk)

    def close_chunk(self, chunk: StockChunk) -> None:
        cursor = chunk.cursor
        for sku in chunk.cleared:
            cursor.execute("DELETE FROM stock_levels WHERE sku = %s", (sku,))
        cursor.executemany(
            "INSERT INTO stock_levels (sku, available, threshold, low) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (sku) DO UPDATE SET available = excluded.available, "
            "threshold = excluded.threshold, low = excluded.low",
            [(sku, level.available, level.threshold, int(level.low))
             for sku, level in chunk.levels.items() if sku in chunk.changed])
        cursor.executemany("INSERT INTO stock_alerts (position, sku, threshold, available, at) "
                           "VALUES (%s, %s, %s, %s, %s)", chunk.alerts)

    # -- products: thresholds ----------------------------------------------------------

    @project.register
    def _defined(self, event: Product.Created, position: int, chunk: StockChunk) -> None:
        """A new product has no threshold yet: nothing to count."""

    @project.register
    def _priced(self, event: Product.ChannelPriceSet, position: int, chunk: StockChunk) -> None:
        """A price moves no stock."""

    @project.register
    def _threshold(self, event: Product.LowStockThresholdSet, position: int,
                   chunk: StockChunk) -> None:
        sku = event.sku
        if event.threshold is None:
            chunk.levels.pop(sku, None)
            chunk.changed.discard(sku)
            chunk.cleared.add(sku)
            return
        threshold = bigint(event.threshold)  # the API caps it; a stored event may not
        level = chunk.levels.get(sku)
        if level is None:
            available = self._inventory(chunk.cursor, sku) + chunk.moved[sku]
            level = chunk.levels[sku] = Level(available, threshold, False)
        level.threshold = threshold
        level.low = level.available < level.threshold
        chunk.cleared.discard(sku)
        chunk.changed.add(sku)

    # -- codes: moves in and out of the available count ---------------------------------

    @project.register
    def _imported(self, event: Code.Created, position: int, chunk: StockChunk) -> None:
        chunk.move(event, position, AVAILABLE, sku=event.sku)

    @project.register(Code.Reserved)
    def _reserved(self, event: Any, position: int, chunk: StockChunk) -> None:
        chunk.move(event, position, RESERVED)

    @project.register(Code.Released)
    @project.register(Code.Returned)
    def _back_on_sale(self, event: Any, position: int, chunk: StockChunk) -> None:
        chunk.move(event, position, AVAILABLE)

    @project.register(Code.Voided)
    @project.register(Code.WrittenOff)
    def _voided(self, event: Any, position: int, chunk: StockChunk) -> None:
        chunk.move(event, position, VOIDED)

    @project.register(Code.Expired)
    def _expired(self, event: Any, position: int, chunk: StockChunk) -> None:
        chunk.move(event, position, EXPIRED)

    @project.register(Code.Sold)
    @project.register(Code.Redeemed)
    @project.register(Code.RedemptionRolledBack)
    @project.register(Code.Revealed)
    def _not_on_sale(self, event: Any, position: int, chunk: StockChunk) -> None:
        """A code that was not available stays so: no count moves."""

    # -- reads ------------------------------------------------------------------------

    @staticmethod
    def _levels(cursor: Cursor) -> dict[str, Level]:
        cursor.execute("SELECT sku, available, threshold, low FROM stock_levels")
        return {row[0]: Level(int(row[1]), int(row[2]), bool(row[3]))
                for row in cursor.fetchall()}

    @staticmethod
    def _codes(cursor: Cursor, code_ids: set[str]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        wanted = sorted(code_ids)
        for start in range(0, len(wanted), LOAD_CHUNK):
            part = wanted[start:start + LOAD_CHUNK]
            cursor.execute("SELECT code_id, sku, status FROM code_index WHERE code_id IN "
                           f"({', '.join(['%s'] * len(part))})", part)
            found.update({row[0]: (row[1], row[2]) for row in cursor.fetchall()})
        return found

    @staticmethod
    def _inventory(cursor: Cursor, sku: str) -> int:
        cursor.execute("SELECT COALESCE(SUM(available), 0) FROM inventory WHERE sku = %s",
                       (sku,))
        row = cursor.fetchone()
        return int(row[0]) if row else 0


class StockAlerts:
    """Reads of the crossings, for the webhook dispatcher."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def between(self, after: int, upto: int) -> list[dict[str, Any]]:
        """Crossings recorded at log positions in (after, upto], in log order."""
        with self.db.transaction(write=False) as cursor:
            cursor.execute("SELECT position, sku, threshold, available, at FROM stock_alerts "
                           "WHERE position > %s AND position <= %s ORDER BY position",
                           (after, upto))
            return [{"position": int(r[0]), "sku": r[1], "threshold": int(r[2]),
                     "available": int(r[3]), "at": r[4]} for r in cursor.fetchall()]
