"""A lease on this process's life, which the operating system or PostgreSQL ends the
moment the process dies, so another process can tell at once whether a claim's holder is
still alive (an Idempotency-Key claim of a killed server is free for its retry at once,
not after a timeout).

    PostgreSQL: a session advisory lock on a connection held open for the process's
                life; the server drops it when that connection closes (the process died).
    SQLite:     an exclusive flock on <data dir>/leases/<holder>.lock; the kernel drops it
                when the process's file descriptors close.

Another process asks by trying to take the same lock without waiting: if it can, the holder
is gone. A lease lost to a database restart is taken again by a keeper thread within a
second; a claim may be taken over in that window (the only one: a live process otherwise
keeps its claims).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from engine.eventstore.data_dir import private_dir
from engine.settings import Settings

log = logging.getLogger("quanyi.leases")
KEEP_SECONDS = 1.0


def _lock_key(holder: str) -> int:
    """The holder's advisory lock: a signed 64-bit number from its uuid."""
    return int.from_bytes(uuid.UUID(holder).bytes[:8], "big", signed=True)


class ProcessLease:
    """This process's lease (``holder``, a fresh uuid) and the liveness of others'."""

    holder: str

    def is_alive(self, holder: str) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def take(settings: Settings) -> "ProcessLease":
        if settings.database_url:
            return PostgresLease(settings.database_url)
        return FileLease(settings.data_dir / "leases")


class FileLease(ProcessLease):
    def __init__(self, folder: Path) -> None:
        private_dir(folder)
        self.holder = str(uuid.uuid4())
        self._folder = folder
        self._fd = os.open(self._path(self.holder), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _path(self, holder: str) -> Path:
        return self._folder / f"{uuid.UUID(holder)}.lock"

    def is_alive(self, holder: str) -> bool:
        if holder == self.holder:
            return True
        try:
            fd = os.open(self._path(holder), os.O_RDWR)
        except (FileNotFoundError, ValueError):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self._path(holder).unlink()
        return False

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(self.holder).unlink()
        os.close(self._fd)


class PostgresLease(ProcessLease):
    def __init__(self, url: str) -> None:
        self.holder = str(uuid.uuid4())
        self._url = url
        self._conn: Any = None
        self._stop = threading.Event()
        self._hold()
        self._keeper = threading.Thread(target=self._keep, name="quanyi-lease", daemon=True)
        self._keeper.start()

    def _hold(self) -> None:
        import psycopg

        self._conn = psycopg.connect(self._url, autocommit=True)
        self._conn.execute("SELECT pg_advisory_lock(%s)", (_lock_key(self.holder),))

    def _keep(self) -> None:
        """Take the lease again when its connection was lost (a database restart)."""
        import psycopg

        while not self._stop.wait(KEEP_SECONDS):
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error:
                with contextlib.suppress(psycopg.Error):
                    self._hold()
                    log.warning("process lease taken again after its connection was lost")

    def is_alive(self, holder: str) -> bool:
        import psycopg

        if holder == self.holder:
            return True
        key = _lock_key(holder)
        with psycopg.connect(self._url, autocommit=True) as conn:
            free = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            if free:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return not free

    def close(self) -> None:
        self._stop.set()
        self._keeper.join(timeout=5)
        with contextlib.suppress(Exception):
            self._conn.close()
