"""Idempotency-Key claims and kept answers, in the read-side database (api/idempotency.py
says how the middleware uses them). A claim is an INSERT whose primary key is the lock, and
names the process holding it (runtime/leases.py): one held by a process that died is free at
once. Answers are kept sealed, 48 hours; one the database cannot take at that moment is kept
by a background retry."""

from __future__ import annotations

import logging
import queue
import random
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from engine.kernel.errors import Unavailable
from projections.projection import iso

KEEP = timedelta(hours=48)
STALE_CLAIM = timedelta(seconds=60)  # only for claims that name no holder (older code)
TABLE = ("CREATE TABLE IF NOT EXISTS api_idempotency (scope TEXT NOT NULL, key TEXT NOT NULL, "
         "request_hash TEXT NOT NULL, status INTEGER, content_type TEXT, body TEXT, "
         "created_at TEXT NOT NULL, PRIMARY KEY (scope, key))")
KEEPER_FIRST_PAUSE, KEEPER_MAX_PAUSE = 0.1, 5.0  # seconds between tries to keep an answer
log = logging.getLogger("quanyi.idempotency")


class IdempotencyStore:
    """Claims, answers and replays, in the read-side database. A claim names the process
    holding it (runtime/leases.py): one held by a process that died is free at once."""

    def __init__(self, runtime: Any) -> None:
        self._db = runtime.read_db
        self._vault = runtime.engine.vault
        self._lease = runtime.lease
        self._unkept: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._keeper: threading.Thread | None = None
        self._keeper_lock = threading.Lock()
        with self._db.transaction() as cursor:
            cursor.execute(TABLE)
            _add_holder_column(cursor, self._db.kind)

    def claim(self, scope: str, key: str, digest: str) -> tuple[str, Any]:
        """('claimed', None) | ('reused', None) | ('busy', None) | ('done', answer)
        | ('rerun', first status): the answer carried secrets and was not kept."""
        now = datetime.now(timezone.utc)
        with self._db.transaction() as cursor:
            cursor.execute("INSERT INTO api_idempotency (scope, key, request_hash, created_at, "
                           "holder) VALUES (%s, %s, %s, %s, %s) "
                           "ON CONFLICT (scope, key) DO NOTHING",
                           (scope, key, digest, iso(now), self._lease.holder))
            if cursor.rowcount == 1:
                return "claimed", None
            cursor.execute("SELECT request_hash, status, content_type, body, created_at, "
                           "holder FROM api_idempotency WHERE scope = %s AND key = %s",
                           (scope, key))
            row = cursor.fetchone()
        if row is None:
            return "busy", None
        stored_hash, status, content_type, body, created_at, holder = row
        if stored_hash != digest:
            return "reused", None
        if status is not None and body is None:
            return "rerun", status
        if status is not None:
            return "done", (status, content_type, self._open(scope, key, body))
        return self._take_over(scope, key, holder, created_at, now)

    def _take_over(self, scope: str, key: str, holder: str | None, created_at: str,
                   now: datetime) -> tuple[str, Any]:
        """A claim still unanswered: busy while its holder lives; a dead holder's claim
        (or, for a claim made before claims named their holder, a stale one) is taken."""
        if holder is not None and self._lease.is_alive(holder):
            return "busy", None
        if holder is None and created_at >= iso(now - STALE_CLAIM):
            return "busy", None
        with self._db.transaction() as cursor:
            cursor.execute("UPDATE api_idempotency SET created_at = %s, holder = %s "
                           "WHERE scope = %s AND key = %s AND created_at = %s "
                           "AND status IS NULL",
                           (iso(now), self._lease.holder, scope, key, created_at))
            return ("claimed", None) if cursor.rowcount == 1 else ("busy", None)

    def answer(self, scope: str, key: str, status: int, content_type: str,
               body: bytes | None) -> None:
        """Keep the answer sealed; ``body`` None keeps only the status (secrets)."""
        sealed = None if body is None else self._vault.seal(f"{scope}:{key}",
                                                            {"body": body.decode()})
        with self._db.transaction() as cursor:
            cursor.execute("UPDATE api_idempotency SET status = %s, content_type = %s, body = %s "
                           "WHERE scope = %s AND key = %s",
                           (status, content_type, sealed, scope, key))
            if random.random() < 0.01:
                cutoff = iso(datetime.now(timezone.utc) - KEEP)
                cursor.execute("DELETE FROM api_idempotency WHERE created_at < %s", (cutoff,))

    def keep(self, scope: str, key: str, status: int, content_type: str,
             body: bytes | None) -> None:
        """Keep the answer; if the database cannot take it now, keep trying in the
        background. The command has acted: its client gets its answer either way, and
        retries of the key find the claim held by this live process (in progress) until
        the answer is kept, then the replay."""
        try:
            self.answer(scope, key, status, content_type, body)
        except (sqlite3.Error, psycopg.Error, Unavailable):
            log.warning("an Idempotency-Key answer could not be kept yet; retrying")
            self._unkept.put((scope, key, status, content_type, body))
            with self._keeper_lock:
                if self._keeper is None:
                    self._keeper = threading.Thread(target=self._keep_unkept, daemon=True,
                                                    name="quanyi-idempotency-keeper")
                    self._keeper.start()

    def _keep_unkept(self) -> None:
        while True:
            unkept = self._unkept.get()
            pause = KEEPER_FIRST_PAUSE
            while True:
                try:
                    self.answer(*unkept)
                    break
                except (sqlite3.Error, psycopg.Error, Unavailable):
                    time.sleep(pause)
                    pause = min(pause * 2, KEEPER_MAX_PAUSE)

    def release(self, scope: str, key: str) -> None:
        with self._db.transaction() as cursor:
            cursor.execute("DELETE FROM api_idempotency WHERE scope = %s AND key = %s "
                           "AND status IS NULL", (scope, key))

    def _open(self, scope: str, key: str, sealed: str) -> bytes:
        return str(self._vault.open(f"{scope}:{key}", sealed)["body"]).encode()


def _add_holder_column(cursor: Any, kind: str) -> None:
    """Claims name their holder; a table made before that gets the column (NULL: a claim of
    the previous code, taken over only once stale)."""
    if kind == "postgres":
        cursor.execute("ALTER TABLE api_idempotency ADD COLUMN IF NOT EXISTS holder TEXT")
        return
    cursor.execute("PRAGMA table_info(api_idempotency)")
    if "holder" not in {row[1] for row in cursor.fetchall()}:
        cursor.execute("ALTER TABLE api_idempotency ADD COLUMN holder TEXT")
