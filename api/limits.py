"""Brute-force protection on code look-ups: too many misses from one key in a minute and
the key is told to wait (429 with Retry-After)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from api.problems import ApiProblem

WINDOW_SECONDS = 60.0
MAX_MISSES = 20


class MissLimiter:
    def __init__(self, max_misses: int = MAX_MISSES, window: float = WINDOW_SECONDS) -> None:
        self._max = max_misses
        self._window = window
        self._misses: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key_id: str) -> None:
        """Refuse a key that missed too often lately."""
        now = time.monotonic()
        with self._lock:
            misses = self._misses[key_id]
            while misses and now - misses[0] > self._window:
                misses.popleft()
            if len(misses) >= self._max:
                wait = int(self._window - (now - misses[0])) + 1
                raise ApiProblem(429, "rate_limited", "too many look-ups of unknown codes; "
                                 "wait before trying again", {"Retry-After": str(wait)})

    def missed(self, key_id: str) -> None:
        with self._lock:
            self._misses[key_id].append(time.monotonic())
