"""The webhook delivery log: each endpoint's position in the event log, its deliveries and
every attempt, in the read-side database.

This is not a projection: it records what receivers answered, which no event holds, so a
rebuild leaves it alone. Each endpoint has its own row in ``webhook_cursors`` (the last log
position whose messages are queued for it), so one endpoint's failures hold back only its
own queue. One process at a time delivers to an endpoint: it holds a lease on the
endpoint's row (``holder``, ``held_until``), renewed at every step, which a second
``quanyi serve`` on the same database waits out. A delivery's ``seq`` is its log position times ``REDELIVERIES`` plus the number
of earlier deliveries of the same event: the queue is sent in ``seq`` order, which is log
order, and a redelivery sits beside the event it repeats.

    pending ──2xx──▶ delivered
       └──other answer / no answer──▶ pending (attempts + 1, next_attempt_at later)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid5

import orjson

from engine.kernel.errors import ConcurrentUpdate, NotFound
from engine.kernel.ids import NAMESPACE
from projections.database import Cursor, ReadDatabase
from projections.projection import iso

REDELIVERIES = 1000  # deliveries one event can have to one endpoint
MAX_ERROR = 300
PENDING, DELIVERED = "pending", "delivered"

TABLES = (
    "CREATE TABLE IF NOT EXISTS webhook_cursors (endpoint_id TEXT PRIMARY KEY, "
    "position BIGINT NOT NULL, failing_since TEXT, holder TEXT, held_until TEXT)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (endpoint_id TEXT NOT NULL, "
    "seq BIGINT NOT NULL, delivery_id TEXT NOT NULL UNIQUE, position BIGINT NOT NULL, "
    "message_id TEXT NOT NULL, event_type TEXT NOT NULL, payload TEXT NOT NULL, "
    "status TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at TEXT NOT NULL, "
    "last_status INTEGER, last_error TEXT, created_at TEXT NOT NULL, delivered_at TEXT, "
    "redelivery_of TEXT, PRIMARY KEY (endpoint_id, seq))",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_queue "
    "ON webhook_deliveries (endpoint_id, status, seq)",
    "CREATE TABLE IF NOT EXISTS webhook_attempts (delivery_id TEXT NOT NULL, "
    "attempt INTEGER NOT NULL, at TEXT NOT NULL, status_code INTEGER, error TEXT, "
    "duration_ms INTEGER NOT NULL, PRIMARY KEY (delivery_id, attempt))",
)
COLUMNS = ("endpoint_id", "seq", "delivery_id", "position", "message_id", "event_type",
           "payload", "status", "attempts", "next_attempt_at", "last_status", "last_error",
           "created_at", "delivered_at", "redelivery_of")


@dataclass(frozen=True)
class Delivery:
    endpoint_id: str
    seq: int
    delivery_id: str
    position: int
    message_id: str
    event_type: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: str
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    redelivery_of: str | None


@dataclass(frozen=True)
class Queued:
    """A message to queue for an endpoint: its log position, id, type and body."""

    position: int
    message_id: str
    event_type: str
    payload: str


@dataclass(frozen=True)
class Attempt:
    """What one attempt met: a status code, or an error (no answer), and how long it took."""

    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def delivery_id(endpoint_id: str, seq: int) -> str:
    return str(uuid5(NAMESPACE, f"webhook-delivery:{endpoint_id}:{seq}"))


class DeliveryLog:
    """Positions, queues and attempts of every endpoint."""

    def __init__(self, db: ReadDatabase) -> None:
        self.db = db
        with db.transaction() as cursor:
            for statement in TABLES:
                cursor.execute(statement)

    # -- positions --------------------------------------------------------------------

    def position(self, endpoint_id: str, registered_at: int) -> int:
        """The endpoint's position; a new endpoint starts where it was registered."""
        with self.db.transaction(write=False) as cursor:
            cursor.execute("SELECT position FROM webhook_cursors WHERE endpoint_id = %s",
                           (endpoint_id,))
            row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        with self.db.transaction() as cursor:
            cursor.execute("INSERT INTO webhook_cursors (endpoint_id, position) VALUES (%s, %s) "
                           "ON CONFLICT (endpoint_id) DO NOTHING", (endpoint_id, registered_at))
        return self.position(endpoint_id, registered_at)

    def hold(self, endpoint_id: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease on delivering to the endpoint; False while another
        process holds it."""
        with self.db.transaction() as cursor:
            cursor.execute("UPDATE webhook_cursors SET holder = %s, held_until = %s "
                           "WHERE endpoint_id = %s AND (holder IS NULL OR holder = %s "
                           "OR held_until < %s)",
                           (holder, iso(until), endpoint_id, holder, iso(now)))
            return cursor.rowcount == 1

    def let_go(self, endpoint_id: str, holder: str) -> None:
        with self.db.transaction() as cursor:
            cursor.execute("UPDATE webhook_cursors SET holder = NULL, held_until = NULL "
                           "WHERE endpoint_id = %s AND holder = %s", (endpoint_id, holder))

    def let_go_all(self, holder: str, keep: Sequence[str] = ()) -> None:
        """Let go of every lease ``holder`` holds but those on the endpoints in ``keep``."""
        spared = f" AND endpoint_id NOT IN ({', '.join(['%s'] * len(keep))})" if keep else ""
        with self.db.transaction() as cursor:
            cursor.execute("UPDATE webhook_cursors SET holder = NULL, held_until = NULL "
                           f"WHERE holder = %s{spared}", (holder, *keep))

    def enqueue(self, endpoint_id: str, was: int, upto: int, queued: Sequence[Queued],
                now: datetime) -> bool:
        """Queue messages and move the endpoint's position from ``was`` to ``upto``, at
        once; False (nothing done) when another dispatcher moved it first."""
        with self.db.transaction() as cursor:
            cursor.execute("UPDATE webhook_cursors SET position = %s "
                           "WHERE endpoint_id = %s AND position = %s", (upto, endpoint_id, was))
            if cursor.rowcount != 1:
                return False
            cursor.executemany(_insert(), [_row(endpoint_id, q, q.position * REDELIVERIES, now)
                                           for q in queued])
        return True

    # -- the queue --------------------------------------------------------------------

    def head(self, endpoint_id: str) -> Delivery | None:
        """The endpoint's first delivery not yet delivered: nothing after it goes first."""
        with self.db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM webhook_deliveries "
                           "WHERE endpoint_id = %s AND status = %s ORDER BY seq LIMIT 1",
                           (endpoint_id, PENDING))
            row = cursor.fetchone()
        return Delivery(*row) if row else None

    def record(self, delivery: Delivery, attempt: Attempt, retry_at: datetime) -> str | None:
        """Note an attempt: delivered, or pending until ``retry_at``. Returns since when the
        endpoint has been failing (None once an attempt succeeded)."""
        number = delivery.attempts + 1
        error = attempt.error[:MAX_ERROR] if attempt.error else None
        with self.db.transaction() as cursor:
            cursor.execute("INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, "
                           "error, duration_ms) VALUES (%s, %s, %s, %s, %s, %s)",
                           (delivery.delivery_id, number, iso(attempt.at), attempt.status_code,
                            error, attempt.duration_ms))
            cursor.execute("UPDATE webhook_deliveries SET status = %s, attempts = %s, "
                           "next_attempt_at = %s, last_status = %s, last_error = %s, "
                           "delivered_at = %s WHERE delivery_id = %s",
                           (DELIVERED if attempt.succeeded else PENDING, number,
                            iso(retry_at), attempt.status_code, error,
                            iso(attempt.at) if attempt.succeeded else None,
                            delivery.delivery_id))
            return self._failing(cursor, delivery.endpoint_id, attempt)

    @staticmethod
    def _failing(cursor: Cursor, endpoint_id: str, attempt: Attempt) -> str | None:
        if attempt.succeeded:
            cursor.execute("UPDATE webhook_cursors SET failing_since = NULL "
                           "WHERE endpoint_id = %s", (endpoint_id,))
            return None
        cursor.execute("UPDATE webhook_cursors SET failing_since = %s WHERE endpoint_id = %s "
                       "AND failing_since IS NULL", (iso(attempt.at), endpoint_id))
        cursor.execute("SELECT failing_since FROM webhook_cursors WHERE endpoint_id = %s",
                       (endpoint_id,))
        row = cursor.fetchone()
        return row[0] if row else None

    def forgive(self, endpoint_id: str, enabled_at: datetime, now: datetime) -> None:
        """Start afresh when an endpoint was enabled again after it began failing: the
        failures before count no more, and its first pending delivery is due now."""
        with self.db.transaction() as cursor:
            cursor.execute("UPDATE webhook_cursors SET failing_since = NULL "
                           "WHERE endpoint_id = %s AND failing_since < %s",
                           (endpoint_id, iso(enabled_at)))
            if cursor.rowcount != 1:
                return
            cursor.execute("UPDATE webhook_deliveries SET next_attempt_at = %s "
                           "WHERE endpoint_id = %s AND status = %s",
                           (iso(now), endpoint_id, PENDING))

    # -- reads and redelivery ---------------------------------------------------------

    def listing(self, endpoint_id: str, before: int | None,
                limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """The endpoint's deliveries, newest first, with their attempts; and the cursor of
        the next page, if there is one."""
        with self.db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM webhook_deliveries "
                           "WHERE endpoint_id = %s AND seq < %s ORDER BY seq DESC LIMIT %s",
                           (endpoint_id, 2**62 if before is None else before, limit + 1))
            rows = [Delivery(*row) for row in cursor.fetchall()]
            page = rows[:limit]
            attempts = self._attempts(cursor, [d.delivery_id for d in page])
        more = page[-1].seq if len(rows) > limit else None
        return [_view(d, attempts.get(d.delivery_id, [])) for d in page], more

    def get(self, endpoint_id: str, delivery_id_: str) -> dict[str, Any]:
        with self.db.transaction(write=False) as cursor:
            found = self._find(cursor, endpoint_id, delivery_id_)
            attempts = self._attempts(cursor, [found.delivery_id])
        return _view(found, attempts.get(found.delivery_id, []))

    def redeliver(self, endpoint_id: str, delivery_id_: str, now: datetime) -> dict[str, Any]:
        """Queue a delivery's message again, with the same webhook-id and body, due now."""
        with self.db.transaction() as cursor:
            original = self._find(cursor, endpoint_id, delivery_id_)
            base = original.position * REDELIVERIES
            cursor.execute("SELECT COALESCE(MAX(seq), %s) FROM webhook_deliveries "
                           "WHERE endpoint_id = %s AND seq >= %s AND seq < %s",
                           (base, endpoint_id, base, base + REDELIVERIES))
            row = cursor.fetchone()
            seq = int(row[0]) + 1 if row else base + 1
            if seq >= base + REDELIVERIES:
                raise ConcurrentUpdate(f"delivery {delivery_id_} was redelivered too often")
            queued = Queued(original.position, original.message_id, original.event_type,
                            original.payload)
            try:
                cursor.execute(_insert(), _row(endpoint_id, queued, seq, now,
                                               redelivery_of=original.delivery_id))
            except Exception as exc:
                if _is_unique_violation(exc):  # a redelivery of the same event at once
                    raise ConcurrentUpdate("another redelivery was queued at once; retry") \
                        from exc
                raise
            fresh = self._find(cursor, endpoint_id, delivery_id(endpoint_id, seq))
        return _view(fresh, [])

    @staticmethod
    def _find(cursor: Cursor, endpoint_id: str, delivery_id_: str) -> Delivery:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM webhook_deliveries "
                       "WHERE endpoint_id = %s AND delivery_id = %s", (endpoint_id, delivery_id_))
        row = cursor.fetchone()
        if row is None:
            raise NotFound(f"no delivery {delivery_id_} to webhook endpoint {endpoint_id}")
        return Delivery(*row)

    @staticmethod
    def _attempts(cursor: Cursor, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not ids:
            return {}
        cursor.execute("SELECT delivery_id, attempt, at, status_code, error, duration_ms "
                       "FROM webhook_attempts WHERE delivery_id IN "
                       f"({', '.join(['%s'] * len(ids))}) ORDER BY delivery_id, attempt", ids)
        found: dict[str, list[dict[str, Any]]] = {}
        for row in cursor.fetchall():
            found.setdefault(row[0], []).append({
                "attempt": row[1], "at": _instant(row[2]), "status_code": row[3],
                "error": row[4], "duration_ms": row[5]})
        return found


def _is_unique_violation(exc: Exception) -> bool:
    """SQLite's and psycopg's refusals of a duplicate key alike."""
    return any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__)


def _insert() -> str:
    return (f"INSERT INTO webhook_deliveries ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(COLUMNS))})")


def _row(endpoint_id: str, queued: Queued, seq: int, now: datetime,
         redelivery_of: str | None = None) -> tuple[Any, ...]:
    return (endpoint_id, seq, delivery_id(endpoint_id, seq), queued.position, queued.message_id,
            queued.event_type, queued.payload, PENDING, 0, iso(now), None, None, iso(now), None,
            redelivery_of)


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _view(delivery: Delivery, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """A delivery as shown to its endpoint's owner (its body holds no secret by design)."""
    return {"delivery_id": delivery.delivery_id, "message_id": delivery.message_id,
            "event_type": delivery.event_type, "position": delivery.position,
            "status": delivery.status, "attempts": attempts,
            "next_attempt_at": (_instant(delivery.next_attempt_at)
                                if delivery.status == PENDING else None),
            "last_status_code": delivery.last_status, "last_error": delivery.last_error,
            "created_at": _instant(delivery.created_at),
            "delivered_at": _instant(delivery.delivered_at),
            "redelivery_of": delivery.redelivery_of, "payload": orjson.loads(delivery.payload)}
