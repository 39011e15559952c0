"""Writing stored events at given positions, one adapter per store.

The event store hands out positions itself (SQLite's rowid, PostgreSQL's bigserial); an
import must keep the source's instead, because projections store positions and the audit
tree's leaves include them. Each adapter holds one transaction on the event table, taken
with the lock that keeps every other writer out until it ends, and commits only when the
importer says the whole file verified:

    SQLite:      BEGIN IMMEDIATE; INSERT ... (rowid, ...) in batches; COMMIT
    PostgreSQL:  BEGIN; LOCK TABLE ... IN EXCLUSIVE MODE; COPY ... (notification_id, ...)
                 in batches; setval(the bigserial's sequence, the last position); COMMIT

A failure or a refusal rolls the whole transaction back: the table is left as empty as it
was. (PostgreSQL's setval is not transactional, so it runs last, just before the commit.)
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Protocol
from uuid import UUID

import psycopg
from psycopg import sql

from engine.eventstore.store import EVENTS_FILE, EventStore
from engine.settings import Settings

Row = tuple[int, UUID, int, str, bytes]  # position, originator_id, version, topic, state
LOCK_TIMEOUT_SECONDS = 30


class EventTable(Protocol):
    def is_empty(self) -> bool: ...
    def insert(self, rows: Sequence[Row]) -> None: ...
    def finish(self, last_position: int) -> None: ...


@contextlib.contextmanager
def positioned_writer(settings: Settings, store: EventStore) -> Iterator[EventTable]:
    """The store's event table in one locked transaction; it commits when the block ends
    normally and rolls back when it raises."""
    name = store.recorder.events_table_name
    if settings.database_url:
        with _postgres(settings, name) as table:
            yield table
    else:
        with _sqlite(settings, name) as table:
            yield table


@contextlib.contextmanager
def _sqlite(settings: Settings, name: str) -> Iterator[EventTable]:
    conn = sqlite3.connect(settings.data_dir / EVENTS_FILE, isolation_level=None,
                           timeout=LOCK_TIMEOUT_SECONDS)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteEventTable(conn, name)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        conn.close()


class SqliteEventTable:
    """rowid is SQLite's position: written explicitly, the next save continues after it."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._conn = conn
        self._name = name
        self._insert = (f"INSERT INTO {name} (rowid, originator_id, originator_version, "
                        "topic, state) VALUES (?, ?, ?, ?, ?)")

    def is_empty(self) -> bool:
        return self._conn.execute(f"SELECT 1 FROM {self._name} LIMIT 1").fetchone() is None

    def insert(self, rows: Sequence[Row]) -> None:
        self._conn.executemany(self._insert, [(p, i.hex, v, t, s) for p, i, v, t, s in rows])

    def finish(self, last_position: int) -> None:
        """Nothing to do: SQLite gives the next event the largest rowid plus one."""


@contextlib.contextmanager
def _postgres(settings: Settings, name: str) -> Iterator[EventTable]:
    with psycopg.connect(settings.database_url or "") as conn:  # one transaction until exit
        table = sql.Identifier(settings.database_schema, name)
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
            sql.Literal(f"{LOCK_TIMEOUT_SECONDS}s")))
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        yield PostgresEventTable(conn, table, f'"{settings.database_schema}"."{name}"')


class PostgresEventTable:
    """notification_id is PostgreSQL's position: copied in, then its sequence moved past it."""

    def __init__(self, conn: psycopg.Connection, table: sql.Identifier,
                 qualified: str) -> None:
        self._conn = conn
        self._table = table
        self._qualified = qualified
        self._copy = sql.SQL("COPY {} (notification_id, originator_id, originator_version, "
                             "topic, state) FROM STDIN (FORMAT BINARY)").format(table)

    def is_empty(self) -> bool:
        query = sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(self._table)
        return bool(self._conn.execute(query).fetchone()[0])  # type: ignore[index]

    def insert(self, rows: Sequence[Row]) -> None:
        with self._conn.cursor() as cursor, cursor.copy(self._copy) as copy:
            copy.set_types(["int8", "uuid", "int8", "text", "bytea"])
            for row in rows:
                copy.write_row(row)

    def finish(self, last_position: int) -> None:
        if last_position:
            self._conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), "
                               "%s)", (self._qualified, last_position))
