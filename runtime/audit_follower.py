"""The background worker that keeps the audit tree behind the log and signs heads.

It wakes on this process's own saves at once and, on PostgreSQL, on the event table's
NOTIFY; otherwise it polls. It signs a head when the tree has grown by
QUANYI_AUDIT_HEAD_EVERY_EVENTS since the last head, or has grown at all and
QUANYI_AUDIT_HEAD_EVERY_SECONDS have passed. A failure is kept in a ``RunnerHealth`` (as the
projection runner's is) for /healthz and /metrics, and the worker retries.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from projections.runner import RunnerHealth
from replay.audit_log import AuditLog

log = logging.getLogger("quanyi.audit")

POLL_SECONDS = 1.0
RETRY_SECONDS = 1.0
MESSAGE_CHARS = 200


class AuditFollower:
    """Extends ``audit`` in a thread of its own; ``health`` says whether it is failing."""

    def __init__(self, audit: AuditLog, *, head_every_events: int, head_every_seconds: float,
                 listen_url: str | None = None) -> None:
        self.audit = audit
        self.head_every_events = head_every_events
        self.head_every_seconds = head_every_seconds
        self.listen_url = listen_url
        self.health = RunnerHealth()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_head = (0, time.monotonic())  # (tree size, when) of the last head seen

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        latest = self.audit.latest_head()
        self._last_head = (latest.tree_size if latest else 0, time.monotonic())
        self._stop.clear()
        self._threads = [threading.Thread(target=self._follow, name="quanyi-audit",
                                          daemon=True)]
        if self.listen_url:
            self._threads.append(threading.Thread(target=self._listen,
                                                  name="quanyi-audit-listen", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def run_once(self) -> None:
        """Extend the tree to the log's end (a chunk at a time) and sign a head if due."""
        try:
            while self.audit.extend_once() and not self._stop.is_set():
                pass
            self._sign_if_due()
        except Exception as exc:
            was = self.health
            self.health = RunnerHealth(
                errors=was.errors + 1, consecutive_failures=was.consecutive_failures + 1,
                failing_position=self.audit.position() + 1, error=type(exc).__name__,
                message=(str(exc).strip().splitlines() or [""])[0][:MESSAGE_CHARS],
                last_success=was.last_success)
            raise
        self.health = RunnerHealth(errors=self.health.errors,
                                   last_success=datetime.now(timezone.utc))

    def _sign_if_due(self) -> None:
        size, (last_size, last_at) = self.audit.size, self._last_head
        grown = size - last_size
        if grown >= self.head_every_events or (
                grown > 0 and time.monotonic() - last_at >= self.head_every_seconds):
            head = self.audit.sign_head()
            self._last_head = (head.tree_size, time.monotonic())

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - keep following; the error is in self.health
                log.exception("audit follower failed at position %s (%s); retrying",
                              self.health.failing_position, self.health.error)
                self._stop.wait(RETRY_SECONDS)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _listen(self) -> None:
        import psycopg

        channel = self.audit.store.recorder.channel_name
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.listen_url, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.25):
                            self._wake.set()
            except Exception:  # noqa: BLE001 - reconnect; polling covers the gap
                log.exception("audit LISTEN connection lost; reconnecting")
                self._stop.wait(1.0)
