"""Brute-force protection on code look-ups and redemptions.

Every miss (a code that is unknown, or that the caller may not see) is counted per subject:
the API key, and for a redemption also the merchant it names, so that a merchant's second
key does not start again from zero. ``limit`` misses of one subject within ``window``
seconds lock the subject out: 429 with Retry-After. Each lock-out of a subject lasts twice
as long as its previous one (from ``window`` seconds, capped at a day); the strikes are
forgotten a day after the last lock-out ended. A hit never resets the count: misses only
age out of the window.

The counts live in the read-side database, so every server process shares them and they
survive a restart. Times are wall-clock seconds, the only clock processes share.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from api.problems import ApiProblem
from projections.database import Cursor, ReadDatabase

WINDOW_SECONDS = 60.0
MAX_MISSES = 20
MAX_LOCKOUT = 86400.0
STRIKE_MEMORY = 86400.0
TABLES = (
    "CREATE TABLE IF NOT EXISTS api_miss_subjects (subject TEXT PRIMARY KEY, "
    "strikes INTEGER NOT NULL, locked_until DOUBLE PRECISION NOT NULL, "
    "last_miss DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_misses (subject TEXT NOT NULL, "
    "at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS api_misses_by_subject ON api_misses (subject, at)",
)


def subjects(key_id: str, merchant_id: str | None = None) -> tuple[str, ...]:
    """Whom a miss counts against: the key, and the merchant when one is named."""
    return (f"key:{key_id}",) + ((f"merchant:{merchant_id}",) if merchant_id else ())


class MissLimiter:
    """Counts misses per subject and locks out a subject that misses too often."""

    def __init__(self, db: ReadDatabase, *, limit: int = MAX_MISSES,
                 window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._limit = limit
        self._window = window
        self._clock = clock
        with db.transaction() as cursor:
            for sql in TABLES:
                cursor.execute(sql)

    @classmethod
    def for_runtime(cls, runtime: Any) -> "MissLimiter":
        settings = runtime.settings
        return cls(runtime.read_db, limit=settings.miss_limit,
                   window=settings.miss_window_seconds)

    def check(self, *who: str) -> None:
        """Refuse while any of the subjects is locked out."""
        marks = ", ".join(["%s"] * len(who))
        with self._db.transaction(write=False) as cursor:
            cursor.execute(f"SELECT MAX(locked_until) FROM api_miss_subjects "
                           f"WHERE subject IN ({marks})", who)
            row = cursor.fetchone()
        wait = (row[0] or 0.0) - self._clock() if row else 0.0
        if wait > 0:
            raise ApiProblem(429, "rate_limited", "too many look-ups of unknown codes; "
                             "wait before trying again",
                             {"Retry-After": str(max(1, math.ceil(wait)))})

    def missed(self, *who: str) -> None:
        """Count a miss against every subject (always in the order given, so that
        concurrent misses lock subjects' rows in one order)."""
        now = self._clock()
        with self._db.transaction() as cursor:
            for subject in who:
                self._count(cursor, subject, now)
            if random.random() < 0.01:
                self._forget_old(cursor, now)

    def _count(self, cursor: Cursor, subject: str, now: float) -> None:
        # the upsert locks the subject's row: concurrent misses of one subject count in turn
        cursor.execute("INSERT INTO api_miss_subjects (subject, strikes, locked_until, "
                       "last_miss) VALUES (%s, 0, 0, %s) ON CONFLICT (subject) "
                       "DO UPDATE SET last_miss = excluded.last_miss", (subject, now))
        cursor.execute("DELETE FROM api_misses WHERE subject = %s AND at <= %s",
                       (subject, now - self._window))
        cursor.execute("INSERT INTO api_misses (subject, at) VALUES (%s, %s)", (subject, now))
        cursor.execute("SELECT COUNT(*) FROM api_misses WHERE subject = %s", (subject,))
        (count,) = cursor.fetchone() or (0,)
        if count >= self._limit:
            self._lock_out(cursor, subject, now)

    def _lock_out(self, cursor: Cursor, subject: str, now: float) -> None:
        cursor.execute("SELECT strikes, locked_until FROM api_miss_subjects WHERE subject = %s",
                       (subject,))
        strikes, locked_until = cursor.fetchone() or (0, 0.0)
        if locked_until > now:
            return  # a miss that raced the lock-out: it is already paid for
        strikes = strikes + 1 if locked_until > now - STRIKE_MEMORY else 1
        lasting = min(self._window * 2 ** min(strikes - 1, 32), MAX_LOCKOUT)
        cursor.execute("UPDATE api_miss_subjects SET strikes = %s, locked_until = %s "
                       "WHERE subject = %s", (strikes, now + lasting, subject))
        cursor.execute("DELETE FROM api_misses WHERE subject = %s", (subject,))

    def _forget_old(self, cursor: Cursor, now: float) -> None:
        cutoff = now - STRIKE_MEMORY
        cursor.execute("DELETE FROM api_miss_subjects WHERE locked_until < %s "
                       "AND last_miss < %s", (cutoff, cutoff))
        cursor.execute("DELETE FROM api_misses WHERE at < %s", (cutoff,))
