"""Circuit breakers over suppliers: a supplier that failed (or did not answer) this many
times in a row is skipped for a cool-down, then given one more chance.

Kept in memory, per process: a breaker is a hint about where to try first, never a fact
about an order, so losing it in a restart costs at most a few attempts at a failing
supplier. Only new attempts consult it; an open attempt is always resolved at its supplier.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreakers:
    """Consecutive failures per supplier, and until when each is skipped."""

    def __init__(self, failures: int, cooldown_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = failures
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, supplier_id: str) -> float:
        """Seconds before the supplier may be tried again (0: now)."""
        with self._lock:
            return max(0.0, self._open_until.get(supplier_id, 0.0) - self._clock())

    def failed(self, supplier_id: str) -> None:
        with self._lock:
            count = self._failures.get(supplier_id, 0) + 1
            self._failures[supplier_id] = count
            if count >= self._limit:
                self._open_until[supplier_id] = self._clock() + self._cooldown
                self._failures[supplier_id] = self._limit - 1  # one more failure reopens

    def succeeded(self, supplier_id: str) -> None:
        with self._lock:
            self._failures.pop(supplier_id, None)
            self._open_until.pop(supplier_id, None)

    def skipped(self) -> dict[str, float]:
        """The suppliers skipped now, and for how many more seconds."""
        now = self._clock()
        with self._lock:
            return {s: until - now for s, until in self._open_until.items() if until > now}
