"""A thread that follows the event log: the projection runner's and the audit follower's
loop, written once.

It runs a step at once when woken (this process's own saves wake it), when PostgreSQL
NOTIFYs a commit to the event table (with a ``listen_url``, a second thread LISTENs on the
channel the store names, reconnecting when the connection drops), and otherwise every ``poll_seconds``. A step that raises is logged and
retried after ``retry_seconds``; the step itself keeps whatever health it reports."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from engine.eventstore.connections import probe_options
from engine.kernel.errors import Unavailable

RETRY_SECONDS = 1.0
LISTEN_RECONNECT_SECONDS = 1.0
MESSAGE_CHARS = 200


@dataclass(frozen=True)
class RunnerHealth:
    """How a follower of the log is doing: failing since ``failing_position`` or not."""

    errors: int = 0  # failed attempts since the process started
    consecutive_failures: int = 0
    failing_position: int | None = None  # the first event not applied, when known
    error: str | None = None  # the exception's class name
    message: str | None = None  # its first line, cut short (logs and the CLI; not /healthz)
    last_success: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    def failed(self, position: int | None, exc: BaseException) -> "RunnerHealth":
        """This health after one more failure, at the event at ``position``."""
        lines = str(exc).strip().splitlines()
        return RunnerHealth(errors=self.errors + 1,
                            consecutive_failures=self.consecutive_failures + 1,
                            failing_position=position, error=type(exc).__name__,
                            message=(lines[0] if lines else type(exc).__name__)[:MESSAGE_CHARS],
                            last_success=self.last_success)

    def succeeded(self) -> "RunnerHealth":
        return RunnerHealth(errors=self.errors, last_success=datetime.now(timezone.utc))

    def where(self) -> str:
        """`` at position N (Error)`` while failing, for a log line."""
        return f" at position {self.failing_position} ({self.error})" if self.failing else ""


class LogFollower:
    def __init__(self, step: Callable[[], None], *, name: str, channel: Callable[[], str],
                 listen_url: str | None, poll_seconds: float, log: logging.Logger,
                 describe_failure: Callable[[], str] = lambda: "") -> None:
        self._step = step
        self._name = name
        self._channel = channel
        self._listen_url = listen_url
        self._poll_seconds = poll_seconds
        self._log = log
        self._describe_failure = describe_failure
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._follow, name=self._name, daemon=True)]
        if self._listen_url:
            self._threads.append(threading.Thread(target=self._listen,
                                                  name=f"{self._name}-listen", daemon=True))
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
                self._step()
            except Unavailable:
                self._stop.wait(RETRY_SECONDS)  # the store's watch says so, once
            except Exception:  # noqa: BLE001 - keep following; the step keeps the error
                self._log.exception("%s failed%s; retrying", self._name,
                                    self._describe_failure())
                self._stop.wait(RETRY_SECONDS)
            self._wake.wait(self._poll_seconds)
            self._wake.clear()

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._listen_url, autocommit=True,
                                     **probe_options(self._listen_url)) as conn:
                    conn.execute(f'LISTEN "{self._channel()}"')
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.25):
                            self._wake.set()
            except psycopg.OperationalError:
                self._stop.wait(LISTEN_RECONNECT_SECONDS)  # the store's watch says so, once
            except Exception:  # noqa: BLE001 - reconnect; polling covers the gap
                self._log.exception("%s: LISTEN connection lost; reconnecting", self._name)
                self._stop.wait(LISTEN_RECONNECT_SECONDS)
