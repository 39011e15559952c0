"""The order list: one row per order with its status and expiry, for look-ups, lists and the
reservation-expiry sweeper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.orders import Order
from projections.database import Cursor
from projections.projection import Projection, Table, bigint, iso, key

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

STATUS_AFTER = {Order.Expired: "expired", Order.Cancelled: "cancelled",
                Order.Paid: "delivered", Order.PaymentRefunded: "refunded"}


class OrderProjection(Projection):
    name = "orders"
    tables = (ORDERS,)

    def apply(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> None:
        placed, changes = [], []
        for _position, event in events:
            if isinstance(event, Order.Created):
                placed.append(self._placed_row(event))
            elif type(event) in STATUS_AFTER:
                at = iso(event.timestamp)
                paid_at = at if isinstance(event, Order.Paid) else None
                changes.append((STATUS_AFTER[type(event)], paid_at, at,
                                str(event.originator_id)))
        if placed:
            cursor.executemany(
                f"INSERT INTO orders ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(COLUMNS))})", placed)
        if changes:
            cursor.executemany(
                "UPDATE orders SET status = %s, paid_at = COALESCE(%s, paid_at), "
                "updated_at = %s WHERE order_id = %s", changes)

    @staticmethod
    def _placed_row(event: Any) -> tuple[Any, ...]:
        at = iso(event.timestamp)
        units = sum(item["quantity"] for item in event.items)
        return (str(event.originator_id), key(event.buyer_id), "reserved", bigint(event.amount),
                event.currency, event.channel, event.distributor_id, event.external_ref,
                bigint(units), iso(event.expires_at), at, None, at)
