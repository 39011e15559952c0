"""Prove the read models: rebuild every projection aside, up to the live position, and
compare it with the live tables.

    live read side ──one snapshot: position P and a copy of every table──▶ aside
    event log ──────the live projection classes, run_until(P)────────────▶ aside
                                                 aside: compare copy and rebuild (EXCEPT)

Aside is a temporary SQLite file in the data directory, or a temporary PostgreSQL schema
``verify_<random>`` in the store's database; either is removed afterwards. The live tables
are only read, all in one snapshot with their tracking position, so verify is safe while
``quanyi serve`` runs and writes: whatever the live runner applies after that snapshot is
outside the comparison. The comparison runs in the database, so memory stays flat however
large the tables grow; only the differing rows (at most MAX_LINES of them) reach Python.
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
from typing import Any

import psycopg

from engine.settings import Settings
from engine.store import open_event_store
from projections.database import Cursor, ReadDatabase
from projections.projection import Table
from projections.runner import MAIN, ProjectionRunner

MAX_LINES = 50
COPY = "live_"  # the prefix of the live tables' copies, beside the rebuilt tables


def verify(settings: Settings) -> list[str]:
    """The differences between live and rebuilt projections; empty when they agree."""
    from api.runtime import all_projections

    projections = all_projections()
    tables = [table for projection in projections for table in projection.tables]
    store = open_event_store(settings)
    try:
        with _aside(settings) as aside:
            position, present = aside.copy_live(tables)
            runner = ProjectionRunner(store, aside.db, projections, name="verify")
            runner.run_until(position)
            # Before the live runner's first chunk its tables need not exist.
            lines = [f"{table.name}: missing from the live database" for table in tables
                     if table.name not in present and position]
            with aside.db.transaction(write=False) as cursor:
                compared = [table for table in tables if table.name in present]
                return lines + _differences(cursor, compared, MAX_LINES - len(lines))
    finally:
        store.close()


# -- aside ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _aside(settings: Settings) -> Iterator["_Aside"]:
    aside: _Aside = _PostgresAside(settings) if settings.database_url else _SqliteAside(settings)
    try:
        yield aside
    finally:
        aside.remove()


class _Aside:
    """A throw-away read-side database of the live one's kind."""

    db: ReadDatabase

    def copy_live(self, tables: Sequence[Table]) -> tuple[int, set[str]]:
        """Copy every live table as ``live_<name>`` in one snapshot with the live tracking
        position; (that position, the names of the tables the live side has)."""
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError


class _PostgresAside(_Aside):
    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url or ""
        self.live = settings.database_schema
        self.schema = f"verify_{uuid.uuid4().hex[:12]}"
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

    def remove(self) -> None:
        self.db.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


class _SqliteAside(_Aside):
    def __init__(self, settings: Settings) -> None:
        live = ReadDatabase.open(settings)
        self.live_path: Path = live.path  # type: ignore[attr-defined]
        self.dir = Path(tempfile.mkdtemp(prefix="verify-", dir=settings.data_dir))
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

    def remove(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- comparison -----------------------------------------------------------------------------

def _differences(cursor: Cursor, tables: Sequence[Table], room: int) -> list[str]:
    """One line per differing row key, at most ``room`` of them, then a count of the rest."""
    lines: list[str] = []
    total = 0
    for table in tables:
        differing = _differing_keys(table)
        cursor.execute(f"SELECT COUNT(*) FROM ({differing}) AS d")
        count = int(cursor.fetchone()[0])  # type: ignore[index]
        total += count
        if count and len(lines) < room:
            cursor.execute(f"{differing} ORDER BY {table.order_by} LIMIT %s",
                           (room - len(lines),))
            for key in cursor.fetchall():
                lines.append(_describe(cursor, table, tuple(key)))
    if total > len(lines):
        lines.append(f"... and {total - len(lines)} more differences ({total} in all)")
    return lines


def _differing_keys(table: Table) -> str:
    """SQL for the keys of rows that are not identical on both sides."""
    live, rebuilt, key = f"{COPY}{table.name}", table.name, ", ".join(table.key)
    return (f"SELECT {key} FROM (SELECT * FROM {live} EXCEPT SELECT * FROM {rebuilt}) AS a "
            f"UNION SELECT {key} FROM (SELECT * FROM {rebuilt} EXCEPT SELECT * FROM {live}) AS b")


def _describe(cursor: Cursor, table: Table, key: tuple[Any, ...]) -> str:
    """``table key: column live X, rebuilt Y`` — only the columns that differ."""
    live = _row(cursor, f"{COPY}{table.name}", table, key)
    rebuilt = _row(cursor, table.name, table, key)
    where = ", ".join(f"{column}={value!r}" for column, value in zip(table.key, key))
    if live is None or rebuilt is None:
        side, row = ("live", rebuilt) if live is None else ("rebuilt", live)
        return f"{table.name} {where}: missing from {side}; the other side has {_show(row)}"
    changed = [f"{c} live {live[c]!r}, rebuilt {rebuilt[c]!r}"
               for c in rebuilt if live.get(c) != rebuilt[c]]
    return f"{table.name} {where}: " + "; ".join(changed)


def _row(cursor: Cursor, name: str, table: Table, key: tuple[Any, ...]) -> dict[str, Any] | None:
    where = " AND ".join(f"{column} = %s" for column in table.key)
    cursor.execute(f"SELECT * FROM {name} WHERE {where}", key)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip((d[0] for d in cursor.description or ()), row))


def _show(row: dict[str, Any] | None) -> str:
    return "nothing" if row is None else ", ".join(f"{c}={v!r}" for c, v in row.items())
