"""A throw-away read-side database beside the live one, for building projections aside.

Aside is a temporary SQLite file in the data directory, or a temporary PostgreSQL schema
``<purpose>_<live schema>_<random>`` in the store's database; either is removed on leaving
``aside()``. ``verify`` copies the live tables into it to compare; ``rebuild`` swaps its tables in:

    PostgreSQL: one transaction: lock the tracking row, DROP each live table, ALTER TABLE
                aside.t SET SCHEMA live (its indexes move with it), set the tracking row.
    SQLite:     ATTACH the aside file; one write transaction: DROP each live table, create
                it again (with its indexes), copy the rows in, set the tracking row.

Readers of the live tables wait on the swap's locks (PostgreSQL) or keep reading their
snapshot (SQLite WAL) and then see the rebuilt tables: never a missing or half-filled one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

from engine.settings import Settings
from projections.database import ReadDatabase
from projections.projection import Table
from projections.runner import MAIN, TRACKING

COPY = "live_"  # the prefix of the live tables' copies, beside the rebuilt tables
SWAP_LOCK_TIMEOUT = "30s"  # PostgreSQL: give up the swap (live untouched) rather than hang
SET_TRACKING = ("INSERT INTO {}projection_tracking (name, position) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position")


@contextlib.contextmanager
def aside(settings: Settings, purpose: str) -> Iterator["Aside"]:
    """A fresh aside database of the live one's kind, removed afterwards."""
    made: Aside = (_PostgresAside(settings, purpose) if settings.database_url
                   else _SqliteAside(settings, purpose))
    try:
        yield made
    finally:
        made.remove()


class Aside:
    """A throw-away read-side database of the live one's kind."""

    db: ReadDatabase

    def copy_live(self, tables: Sequence[Table]) -> tuple[int, set[str]]:
        """Copy every live table as ``live_<name>`` in one snapshot with the live tracking
        position; (that position, the names of the tables the live side has)."""
        raise NotImplementedError

    def swap_in(self, tables: Sequence[Table], position: int) -> None:
        """Replace the live tables with these, and the live tracking position with
        ``position``, in one transaction; on failure the live side is as it was."""
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError


def aside_schema(purpose: str, live: str) -> str:
    """``<purpose>_<live schema>_<random>``: whose it is shows, within PostgreSQL's 63."""
    return f"{purpose}_{live[:40]}_{uuid.uuid4().hex[:12]}"


class _PostgresAside(Aside):
    def __init__(self, settings: Settings, purpose: str) -> None:
        self.url = settings.database_url or ""
        self.live = settings.database_schema
        self.schema = aside_schema(purpose, self.live)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.db = ReadDatabase.open(settings, schema=self.schema)

    def copy_live(self, tables: Sequence[Table]) -> tuple[int, set[str]]:
        with psycopg.connect(self.url) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot
            with conn.transaction():
                present = {row[0] for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = %s", (self.live,))}
                position = 0
                if "projection_tracking" in present:
                    row = conn.execute(f'SELECT position FROM "{self.live}".projection_tracking'
                                       " WHERE name = %s", (MAIN,)).fetchone()
                    position = int(row[0]) if row else 0
                for table in tables:
                    if table.name in present:
                        conn.execute(f'CREATE TABLE "{self.schema}"."{COPY}{table.name}" AS '
                                     f'SELECT * FROM "{self.live}"."{table.name}"')
        return position, present

    def swap_in(self, tables: Sequence[Table], position: int) -> None:
        live = f'"{self.live}".'
        with psycopg.connect(self.url) as conn, conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
            conn.execute(TRACKING.replace("projection_tracking", live + "projection_tracking"))
            # The tracking row first: a live runner takes it before any table, so the same
            # order here cannot deadlock with it.
            conn.execute(SET_TRACKING.format(live), (MAIN, position))
            for table in tables:
                conn.execute(f'DROP TABLE IF EXISTS {live}"{table.name}"')
                conn.execute(f'ALTER TABLE "{self.schema}"."{table.name}" '
                             f'SET SCHEMA "{self.live}"')

    def remove(self) -> None:
        self.db.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


class _SqliteAside(Aside):
    def __init__(self, settings: Settings, purpose: str) -> None:
        live = ReadDatabase.open(settings)
        self.live_path: Path = live.path  # type: ignore[attr-defined]
        self.dir = Path(tempfile.mkdtemp(prefix=f"{purpose}-", dir=settings.data_dir))
        self.db = ReadDatabase.open(dataclasses.replace(settings, data_dir=self.dir))
        self.path: Path = self.db.path  # type: ignore[attr-defined]

    def copy_live(self, tables: Sequence[Table]) -> tuple[int, set[str]]:
        if not self.live_path.exists():
            return 0, set()
        with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("ATTACH DATABASE ? AS live", (str(self.live_path),))
            conn.execute("BEGIN")  # WAL: the first read of `live` fixes its snapshot
            present = {row[0] for row in conn.execute(
                "SELECT name FROM live.sqlite_master WHERE type = 'table'")}
            position = 0
            if "projection_tracking" in present:
                row = conn.execute("SELECT position FROM live.projection_tracking "
                                   "WHERE name = ?", (MAIN,)).fetchone()
                position = int(row[0]) if row else 0
            for table in tables:
                if table.name in present:
                    conn.execute(f'CREATE TABLE main."{COPY}{table.name}" AS '
                                 f'SELECT * FROM live."{table.name}"')
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE live")
        return position, present

    def swap_in(self, tables: Sequence[Table], position: int) -> None:
        self.db.close()  # every aside write is committed; the copy reads the file itself
        with contextlib.closing(sqlite3.connect(self.live_path, timeout=30,
                                                isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("ATTACH DATABASE ? AS aside", (str(self.path),))
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(TRACKING)
                conn.execute(SET_TRACKING.format("main.").replace("%s", "?"), (MAIN, position))
                for table in tables:
                    _copy_table(conn, table)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE aside")

    def remove(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _copy_table(conn: sqlite3.Connection, table: Table) -> None:
    """Replace ``main.<table>`` with the attached aside one (an unqualified CREATE makes
    tables and indexes in ``main``); rows go in before the indexes are built."""
    create_table, *create_indexes = table.create
    conn.execute(f'DROP TABLE IF EXISTS main."{table.name}"')
    conn.execute(create_table)
    conn.execute(f'INSERT INTO main."{table.name}" SELECT * FROM aside."{table.name}"')
    for statement in create_indexes:
        conn.execute(statement)
