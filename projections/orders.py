"""The order list: one row per order with its status and expiry, for look-ups, lists and the
reservation-expiry sweeper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.sales.orders import Order
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

COLUMNS = ("order_id", "buyer_id", "status", "amount", "currency", "channel",
           "distributor_id", "external_ref", "units", "expires_at", "placed_at", "paid_at",
           "updated_at")

ORDERS = Table("orders", (
    "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, buyer_id TEXT NOT NULL, "
    "status TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, channel TEXT, "
    "distributor_id TEXT, external_ref TEXT, units BIGINT NOT NULL, expires_at TEXT NOT NULL, "
    "placed_at TEXT NOT NULL, paid_at TEXT, updated_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS orders_due ON orders (status, expires_at)",
    "CREATE INDEX IF NOT EXISTS orders_buyer ON orders (buyer_id, placed_at)",
), "order_id")

@dataclass
class OrderChunk(Chunk):
    """The rows a chunk places and the status changes it makes, written at its end."""

    placed: list[tuple[Any, ...]] = field(default_factory=list)
    changes: list[tuple[Any, ...]] = field(default_factory=list)

    def change(self, event: Any, status: str, paid: bool = False) -> None:
        at = iso(event.timestamp)
        self.changes.append((status, at if paid else None, at, str(event.originator_id)))


class OrderProjection(Projection):
    name = "orders"
    tables = (ORDERS,)
    project = event_handlers()

    def open_chunk(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> OrderChunk:
        return OrderChunk(cursor)

    def close_chunk(self, chunk: OrderChunk) -> None:
        if chunk.placed:
            chunk.cursor.executemany(
                f"INSERT INTO orders ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(COLUMNS))})", chunk.placed)
        if chunk.changes:
            chunk.cursor.executemany(
                "UPDATE orders SET status = %s, paid_at = COALESCE(%s, paid_at), "
                "updated_at = %s WHERE order_id = %s", chunk.changes)

    @project.register
    def _placed(self, event: Order.Created, position: int, chunk: OrderChunk) -> None:
        at = iso(event.timestamp)
        units = sum(item["quantity"] for item in event.items)
        chunk.placed.append((
            str(event.originator_id), key(event.buyer_id), "reserved", bigint(event.amount),
            event.currency, event.channel, event.distributor_id, event.external_ref,
            bigint(units), iso(event.expires_at), at, None, at))

    @project.register
    def _paid(self, event: Order.Paid, position: int, chunk: OrderChunk) -> None:
        chunk.change(event, "delivered", paid=True)

    @project.register
    def _expired(self, event: Order.Expired, position: int, chunk: OrderChunk) -> None:
        chunk.change(event, "expired")

    @project.register
    def _cancelled(self, event: Order.Cancelled, position: int, chunk: OrderChunk) -> None:
        chunk.change(event, "cancelled")

    @project.register
    def _refunded(self, event: Order.PaymentRefunded, position: int,
                  chunk: OrderChunk) -> None:
        chunk.change(event, "refunded")

    @project.register
    def _refunded_codes(self, event: Order.Refunded, position: int,
                        chunk: OrderChunk) -> None:
        chunk.change(event, event.status)  # partially_refunded, or refunded by the last

    @project.register
    def _revealed(self, event: Order.Revealed, position: int, chunk: OrderChunk) -> None:
        """Showing a buyer the codes changes nothing the order list holds."""

    # -- direct top-ups ---------------------------------------------------------------------

    @project.register
    def _recharge_named(self, event: Order.RechargeAccountNamed, position: int,
                        chunk: OrderChunk) -> None:
        """The account is personal data, kept sealed in the log: the list holds none of it."""

    @project.register
    def _topup_paid(self, event: Order.TopupPaid, position: int, chunk: OrderChunk) -> None:
        chunk.change(event, "fulfilling", paid=True)

    @project.register
    def _topup_escalated(self, event: Order.TopupNeedsAttention, position: int,
                         chunk: OrderChunk) -> None:
        chunk.change(event, "needs_attention")

    @project.register
    def _topup_resumed(self, event: Order.TopupResumed, position: int,
                       chunk: OrderChunk) -> None:
        chunk.change(event, "fulfilling")

    @project.register
    def _topup_delivered(self, event: Order.TopupDelivered, position: int,
                         chunk: OrderChunk) -> None:
        chunk.change(event, "delivered")

    @project.register
    def _topup_refunded(self, event: Order.TopupRefunded, position: int,
                        chunk: OrderChunk) -> None:
        chunk.change(event, "refunded")
