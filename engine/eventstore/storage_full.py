"""A full disk, told apart from other storage errors wherever a store writes: the event
store (engine/eventstore/writer.py) and the read side (projections/database.py) answer it as
StorageFull (507 ``storage_full`` with Retry-After) rather than as a failure of their own."""

from __future__ import annotations

import errno
import sqlite3

import psycopg

from engine.kernel.errors import StorageFull

RETRY_SECONDS = 30
SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, the primary code of an extended one
POSTGRES_DISK_FULL = "53100"


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk is full: SQLite's SQLITE_FULL,
    PostgreSQL's disk_full, or the system's ENOSPC."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error) and seen.sqlite_errorcode & 0xFF == SQLITE_FULL \
                or isinstance(seen, psycopg.Error) and seen.sqlstate == POSTGRES_DISK_FULL \
                or isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def storage_full() -> StorageFull:
    return StorageFull("the disk is full: nothing of this write was stored; try again once "
                       "space is freed", retry_after_seconds=RETRY_SECONDS)
