"""The background worker that keeps the audit tree behind the log and signs heads.

It polls the log every POLL_SECONDS rather than waking on every save: nothing waits on the
tree (a bundle or an export catches it up before signing), and extending it by a second's
events at once costs a fraction of extending it after every group commit, which counts in
a flash sale (docs/BENCHMARKS.md). It signs a head when the tree has grown by
QUANYI_AUDIT_HEAD_EVERY_EVENTS since the last head, or has grown at all and
QUANYI_AUDIT_HEAD_EVERY_SECONDS have passed. A failure is kept in a ``RunnerHealth`` (as the
projection runner's is) for /healthz and /metrics, and the worker retries.
"""

from __future__ import annotations

import logging
import time

from projections.following import LogFollower, RunnerHealth
from replay.audit_log import AuditLog

log = logging.getLogger("quanyi.audit")

POLL_SECONDS = 1.0  # the most the tree trails the log by while the follower is healthy


class AuditFollower:
    """Extends ``audit`` in a thread of its own; ``health`` says whether it is failing."""

    def __init__(self, audit: AuditLog, *, head_every_events: int,
                 head_every_seconds: float) -> None:
        self.audit = audit
        self.head_every_events = head_every_events
        self.head_every_seconds = head_every_seconds
        self.health = RunnerHealth()
        self._follower = LogFollower(self.run_once, name="quanyi-audit",
                                     channel=lambda: audit.store.recorder.channel_name,
                                     listen_url=None, poll_seconds=POLL_SECONDS, log=log,
                                     describe_failure=lambda: self.health.where())
        self._last_head = (0, time.monotonic())  # (tree size, when) of the last head seen

    def wake(self) -> None:
        self._follower.wake()

    def start(self) -> None:
        latest = self.audit.latest_head()
        self._last_head = (latest.tree_size if latest else 0, time.monotonic())
        self._follower.start()

    def stop(self) -> None:
        self._follower.stop()

    def run_once(self) -> None:
        """Extend the tree to the log's end (a chunk at a time) and sign a head if due."""
        try:
            while self.audit.extend_once() and not self._follower.stopping:
                pass
            self._sign_if_due()
        except Exception as exc:
            self.health = self.health.failed(self.audit.position() + 1, exc)
            raise
        self.health = self.health.succeeded()

    def _sign_if_due(self) -> None:
        size, (last_size, last_at) = self.audit.size, self._last_head
        grown = size - last_size
        if grown >= self.head_every_events or (
                grown > 0 and time.monotonic() - last_at >= self.head_every_seconds):
            head = self.audit.sign_head()
            self._last_head = (head.tree_size, time.monotonic())
