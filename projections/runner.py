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
from typing import Any

from engine.eventstore.store import EventStore
from projections.database import Cursor, ReadDatabase
from projections.following import LogFollower, RunnerHealth
from projections.projection import Projection

log = logging.getLogger("quanyi.projections")

CHUNK = 2_000
MAIN = "main"  # the tracking row of the runner inside `quanyi serve`
POLL_SECONDS = 0.5
TRACKING = ("CREATE TABLE IF NOT EXISTS projection_tracking "
            "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)")

Progress = Callable[[int, int], None]  # (position reached, target position)


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
        self._follower = LogFollower(self._catch_up, name="quanyi-projections",
                                     channel=lambda: store.recorder.channel_name,
                                     listen_url=listen_url, poll_seconds=POLL_SECONDS, log=log,
                                     describe_failure=lambda: self.health.where())
        self._chunk = CHUNK
        self.health = RunnerHealth()
        self.create_tables()

    # -- set-up -------------------------------------------------------------------------

    def create_tables(self) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(TRACKING)
            cursor.execute("INSERT INTO projection_tracking (name, position) VALUES (%s, 0) "
                           "ON CONFLICT (name) DO NOTHING", (self.name,))
            # The tracking row before any table, as a chunk takes them: on PostgreSQL
            # CREATE INDEX IF NOT EXISTS locks an existing table, and a runner of another
            # process holding the row while it writes that table would wait in a circle.
            cursor.execute("UPDATE projection_tracking SET position = position "
                           "WHERE name = %s", (self.name,))
            for projection in self.projections:
                projection.create_tables(cursor)
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
        self.health = self.health.failed(position, exc)

    def _succeeded(self) -> None:
        self._chunk = min(CHUNK, self._chunk * 2)
        self.health = self.health.succeeded()

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
        self._follower.wake()

    def start(self) -> None:
        self._follower.start()

    def stop(self) -> None:
        self._follower.stop()

    def _catch_up(self) -> None:
        while self.run_once() and not self._follower.stopping:
            pass
        self.refresh()
