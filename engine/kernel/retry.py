"""One way to re-run a decision after a version clash.

A use case loads, decides and saves; when the save finds that another process changed one of
the aggregates first (ConcurrentUpdate), the whole attempt runs again on fresh state. A
refusal stands only if what it was decided on is still current; if not, it counts as a clash
(engine/kernel/reads.py). A short random pause spreads the clashing writers apart so they do not
clash again in step; every attempt after a clash reads the store, no remembered copy.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from engine.kernel.errors import ConcurrentUpdate
from engine.kernel.reads import decided

T = TypeVar("T")

ATTEMPTS = 10
MAX_PAUSE_SECONDS = 0.01


def retrying(attempt: Callable[[], T], *, attempts: int = ATTEMPTS, what: str = "the record",
             max_pause: float = MAX_PAUSE_SECONDS) -> T:
    """``attempt()``'s first answer that does not clash; after ``attempts`` clashes, a
    ConcurrentUpdate naming ``what``. A refusal on current state ends the retries at once."""
    fresh = False
    for tries in range(1, attempts + 1):
        try:
            return decided(attempt, fresh=fresh)
        except ConcurrentUpdate as exc:
            if tries == attempts:
                raise ConcurrentUpdate(f"{what} kept changing; retry") from exc
            fresh = True
            time.sleep(random.uniform(0, max_pause))
    raise ValueError("attempts must be at least 1")
