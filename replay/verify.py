"""Prove the read models: rebuild every projection aside from the log, up to the live
position, and compare the tables row by row.

Aside means a temporary SQLite file, or a temporary PostgreSQL schema; the live tables are
only read. The same projection classes as the live runner are used (api.runtime)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg

from engine.settings import Settings
from engine.store import open_event_store
from projections.database import ReadDatabase
from projections.runner import ProjectionRunner

MAX_LINES = 50


def verify(settings: Settings) -> list[str]:
    """The differences between live and rebuilt projections; empty when they agree."""
    from api.runtime import all_projections

    store = open_event_store(settings)
    live_db = ReadDatabase.open(settings)
    try:
        live = ProjectionRunner(store, live_db, all_projections())
        position, live_rows = _live_snapshot(live)
        with _aside(settings) as aside_db:
            rebuilt = ProjectionRunner(store, aside_db, all_projections(), name="verify")
            rebuilt.run_until(position)
            with aside_db.transaction(write=False) as cursor:
                rebuilt_rows = _rows(rebuilt, cursor)
    finally:
        live_db.close()
        store.close()
    return _differences(live_rows, rebuilt_rows)


def _live_snapshot(runner: ProjectionRunner) -> tuple[int, dict[str, list[tuple]]]:
    """The live position and rows, read in one transaction so they belong together."""
    with runner.db.transaction(write=False) as cursor:
        cursor.execute("SELECT position FROM projection_tracking WHERE name = %s",
                       (runner.name,))
        row = cursor.fetchone()
        return (int(row[0]) if row else 0), _rows(runner, cursor)


def _rows(runner: ProjectionRunner, cursor: Any) -> dict[str, list[tuple]]:
    tables: dict[str, list[tuple]] = {}
    for projection in runner.projections:
        tables.update(projection.rows(cursor))
    return tables


class _aside:
    """A throw-away read-side database of the same kind as the live one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> ReadDatabase:
        if self.settings.database_url:
            self.schema = f"verify_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            self.db = ReadDatabase.open(self.settings, schema=self.schema)
        else:
            self.dir = Path(tempfile.mkdtemp(prefix="quanyi-verify-"))
            self.db = ReadDatabase.open(dataclasses.replace(self.settings, data_dir=self.dir))
        return self.db

    def __exit__(self, *_: object) -> None:
        self.db.close()
        if self.settings.database_url:
            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _differences(live: dict[str, list[tuple]], rebuilt: dict[str, list[tuple]]) -> list[str]:
    found: list[str] = []
    for table in sorted(set(live) | set(rebuilt)):
        left = {_key(r): r for r in live.get(table, [])}
        right = {_key(r): r for r in rebuilt.get(table, [])}
        for key in sorted(set(left) | set(right), key=str):
            if left.get(key) != right.get(key):
                found.append(f"{table} {key}: live {_show(left.get(key))} "
                             f"!= rebuilt {_show(right.get(key))}")
    if len(found) > MAX_LINES:
        return found[:MAX_LINES] + [f"... and {len(found) - MAX_LINES} more differences"]
    return found


def _key(row: tuple) -> tuple:
    return row[:2]


def _show(row: tuple | None) -> str:
    return "missing" if row is None else repr(row)
