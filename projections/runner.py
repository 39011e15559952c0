"""Follows the event log and keeps projections current, exactly once.

The runner pulls from the notification log (SQLite and PostgreSQL alike) and applies each
chunk of events together with the advance of its tracking position in one read-side
transaction. The tracking row is compare-and-set first, so two runners on one database (two
``quanyi serve`` processes) never apply a chunk twice. It wakes on this process's own writes
at once and, on PostgreSQL, on the event table's NOTIFY; otherwise it polls.

A chunk that fails is never skipped: the runner retries it, halving the chunk each time so
that it comes to rest on the first event it cannot apply, and keeps a ``RunnerHealth`` (that
position, the error's class, consecutive failures, last success) for /healthz and /metrics.

The tracked position only moves forward, except when ``quanyi replay rebuild`` swaps in
rebuilt tables with the position they were built to. A runner whose compare-and-set fails
therefore takes the tracked position as it finds it, lower than its own or not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from engine.store import EventStore
from projections.database import Cursor, ReadDatabase
from projections.projection import Projection

log = logging.getLogger("quanyi.projections")

CHUNK = 2_000
MAIN = "main"  # the tracking row of the runner inside `quanyi serve`
POLL_SECONDS = 0.5
RETRY_SECONDS = 1.0
TRACKING = ("CREATE TABLE IF NOT EXISTS projection_tracking "
            "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
MESSAGE_CHARS = 200

Progress = Callable[[int, int], None]  # (position reached, target position)


@dataclass(frozen=True)
class RunnerHealth:
    """How the runner is doing: failing since ``failing_position`` or not."""

    errors: int = 0  # failed attempts since the process started
    consecutive_failures: int = 0
    failing_position: int | None = None  # the first event not applied, when known
    error: str | None = None  # the exception's class name
    message: str | None = None  # its first line, cut short (logs and the CLI; not /healthz)
    last_success: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:MESSAGE_CHARS]


class ProjectionRunner:
    """Applies new events to a set of projections; one tracking row per runner name."""

    def __init__(self, store: EventStore, db: ReadDatabase, projections: Sequence[Projection],
                 *, name: str = MAIN, listen_url: str | None = None) -> None:
        self.store = store
        self.listen_url = listen_url
        self.db = db
        self.projections = tuple(projections)
        self.name = name
        self._position = 0
        self._advanced = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._chunk = CHUNK
        self.health = RunnerHealth()
        self.create_tables()

    # -- set-up -------------------------------------------------------------------------

    def create_tables(self) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(TRACKING)
            for projection in self.projections:
                projection.create_tables(cursor)
            cursor.execute("INSERT INTO projection_tracking (name, position) VALUES (%s, 0) "
                           "ON CONFLICT (name) DO NOTHING", (self.name,))
            self._position = self._tracked(cursor)

    def reset(self) -> None:
        """Drop every projection table and start again from the first event."""
        with self.db.transaction() as cursor:
            for projection in self.projections:
                projection.drop_tables(cursor)
            cursor.execute("DELETE FROM projection_tracking WHERE name = %s", (self.name,))
        self.create_tables()

    def _tracked(self, cursor: Cursor) -> int:
        cursor.execute("SELECT position FROM projection_tracking WHERE name = %s", (self.name,))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    # -- progress -----------------------------------------------------------------------

    def position(self) -> int:
        return self._position

    def lag(self) -> int:
        return max(0, self.store.last_position() - self._position)

    def run_once(self, stop: int | None = None) -> int:
        """Apply the next chunk of events (none past ``stop``); the number applied."""
        limit = self._chunk if stop is None else max(0, min(self._chunk, stop - self._position))
        if limit == 0:
            return 0
        first = self._position + 1  # the log's next event, until it is read
        try:
            notifications = self.store.notifications(self._position, limit)
            if stop is not None:
                # Ids have gaps (an insert rolled back on a version clash still used its
                # number), so `limit` notifications can reach past `stop`.
                notifications = [n for n in notifications if n.id <= stop]
            first = notifications[0].id if notifications else first
            applied = self._apply(notifications) if notifications else 0
        except Exception as exc:
            self._failed(first, exc)
            raise
        self._succeeded()
        return applied

    def _apply(self, notifications: Sequence[Any]) -> int:
        events = [(n.id, self.store.mapper.to_domain_event(n)) for n in notifications]
        last = notifications[-1].id
        with self.db.transaction() as cursor:
            cursor.execute("UPDATE projection_tracking SET position = %s "
                           "WHERE name = %s AND position = %s",
                           (last, self.name, self._position))
            claimed = cursor.rowcount
            if claimed == 1:
                for projection in self.projections:
                    projection.apply(cursor, events)
            else:
                last = self._tracked(cursor)  # another runner got there first, or a rebuild
        if claimed == 1:
            self._advance(last)
            return len(events)
        self._take(last)
        return 0

    def run_until(self, stop: int | None = None, progress: Progress | None = None) -> int:
        """Apply everything up to ``stop`` (default: the log's end now); the number of events
        this call applied (another runner on the same tracking row may apply some).
        ``progress`` hears (position, target) after each chunk."""
        target = self.store.last_position() if stop is None else stop
        applied = 0
        while self._position < target:
            done = self.run_once(target)
            applied += done
            if progress:
                progress(self._position, target)
            if done:
                continue
            self.refresh()
            if not self._pending(target):
                break
            time.sleep(0.01)
        return applied

    def refresh(self) -> None:
        """Take the tracked position (a rebuild may have set it below this runner's)."""
        with self.db.transaction(write=False) as cursor:
            self._take(self._tracked(cursor))

    # -- health -------------------------------------------------------------------------

    def _failed(self, position: int, exc: Exception) -> None:
        # Halve the chunk so that retries come to rest on the first event that fails.
        self._chunk = max(1, self._chunk // 2)
        was = self.health
        self.health = RunnerHealth(
            errors=was.errors + 1, consecutive_failures=was.consecutive_failures + 1,
            failing_position=position, error=type(exc).__name__, message=_short(exc),
            last_success=was.last_success)

    def _succeeded(self) -> None:
        self._chunk = min(CHUNK, self._chunk * 2)
        self.health = RunnerHealth(errors=self.health.errors,
                                   last_success=datetime.now(timezone.utc))

    @property
    def errors(self) -> int:
        return self.health.errors

    def _pending(self, stop: int) -> bool:
        """Whether the log holds an event after this runner's position and not past ``stop``."""
        following = self.store.notifications(self._position, 1)
        return bool(following) and following[0].id <= stop

    def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the projections have applied the log up to ``position``."""
        self.wake()
        deadline = time.monotonic() + timeout
        with self._advanced:
            while self._position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._advanced.wait(remaining)
        return True

    def wait_beyond(self, position: int, timeout: float) -> bool:
        """Wait, without waking the runner, until it has applied the log past ``position``
        (for followers of the read models, such as the webhook dispatcher)."""
        with self._advanced:
            return self._advanced.wait_for(lambda: self._position > position, timeout)

    def _advance(self, position: int) -> None:
        with self._advanced:
            if position > self._position:
                self._position = position
                self._advanced.notify_all()

    def _take(self, position: int) -> None:
        with self._advanced:
            self._position = position
            self._advanced.notify_all()

    # -- the background loop ------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._follow, name="quanyi-projections",
                                          daemon=True)]
        if self.listen_url:
            self._threads.append(threading.Thread(target=self._listen, name="quanyi-listen",
                                                  daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                while self.run_once() and not self._stop.is_set():
                    pass
                self.refresh()
            except Exception:  # noqa: BLE001 - keep following; the error is in self.health
                health = self.health
                log.exception("projection runner failed at position %s (%s); retrying",
                              health.failing_position, health.error)
                self._stop.wait(RETRY_SECONDS)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _listen(self) -> None:
        import psycopg

        channel = self.store.recorder.channel_name
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.listen_url, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.25):
                            self._wake.set()
            except Exception:  # noqa: BLE001 - reconnect; polling covers the gap
                log.exception("LISTEN connection lost; reconnecting")
                self._stop.wait(1.0)
