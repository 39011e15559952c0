"""Circuit breakers over suppliers: a supplier whose answers were a failure or unknown (a
timeout, a transport error, a 5xx, an unreadable answer; a placement or a query) this many
times in a row (``QUANYI_SUPPLIER_BREAKER_FAILURES``) is skipped by new attempts for a
cool-down (``QUANYI_SUPPLIER_BREAKER_COOLDOWN_SECONDS``), then given one more chance: a
success closes it, one more failure opens it again at once. A pending answer counts neither
way. An offer passed over is recorded on the order's fulfilment with ``why_skipped``.

Kept in memory, per process: a breaker is a hint about where to try first, never a fact
about an order, so losing it in a restart costs at most a few attempts at a failing
supplier. Only new attempts consult it; an open attempt is always resolved at its supplier.
"""

from __future__ import annotations

import math
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

    def why_skipped(self, wait: float) -> str:
        """What an order's top-up says of an offer passed over for ``wait`` more seconds."""
        return (f"circuit breaker open: {self._limit} failed or unknown answers in a row "
                f"from this supplier; skipped for {math.ceil(wait)} s more")
