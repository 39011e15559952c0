"""The read-side database: where projections keep their tables and tracking positions.

SQLite (a file beside the event store, so projection writes never wait on event writes) or
the PostgreSQL database of the event store, in its schema. SQL is written once with ``%s``
placeholders; SQLite's ``?`` is substituted here.

PostgreSQL text cannot hold NUL, which event text may carry; every text parameter sent to
it passes through ``storable`` (reads and writes alike, so a look-up finds what was stored).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from engine.eventstore.connections import Budget, GuardedPool, StoreWatch
from engine.eventstore.data_dir import private_database
from engine.eventstore.storage_full import disk_full, storage_full
from engine.settings import Settings


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...
    def fetchone(self) -> tuple[Any, ...] | None: ...

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Sequence[Sequence[Any]] | None: ...


class _SqliteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("%s", "?"), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("%s", "?"), rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Sequence[Sequence[Any]] | None:
        return self._cursor.description


class ReadDatabase:
    """A small connection holder with one ``transaction()`` for both engines."""

    kind: str

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:  # pragma: no cover
        raise NotImplementedError
        yield

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def open(settings: Settings, *, name: str = "projections", schema: str | None = None,
             watch: StoreWatch | None = None,
             connections: int | None = None) -> "ReadDatabase":
        """The read side where the settings point; on PostgreSQL a pool of at most
        ``connections`` (the read side's share of the budget unless given), refused while
        ``watch`` says the database is lost."""
        if settings.database_url:
            url = settings.database_url
            return PostgresReadDatabase(
                url, schema or settings.database_schema, watch or StoreWatch(url),
                connections or Budget.of(settings.database_max_connections).read,
                settings.database_idle_seconds)
        return SqliteReadDatabase(private_database(settings.data_dir / f"{name}.sqlite"))


class SqliteReadDatabase(ReadDatabase):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:
        """A transaction; on a full disk nothing of it is kept and StorageFull is raised."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _SqliteCursor(conn.cursor())
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # a failed COMMIT may leave it open
                conn.execute("ROLLBACK")
            if disk_full(exc):
                raise storage_full() from exc
            raise

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


NUL = "\x00"
REPLACEMENT = "\ufffd"


def storable(text: str) -> str:
    """Text PostgreSQL can store: NUL becomes U+FFFD (the only character it refuses)."""
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def _storable_text_dumpers() -> tuple[type, type]:
    from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

    class Text(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(storable(obj))

    class BinaryText(StrBinaryDumper):
        def dump(self, obj: str) -> Any:
            return super().dump(storable(obj))

    return Text, BinaryText


class PostgresReadDatabase(ReadDatabase):
    kind = "postgres"

    def __init__(self, url: str, schema: str, watch: StoreWatch, connections: int,
                 idle_seconds: float) -> None:
        self.url = url
        self.schema = schema
        self.pool = GuardedPool(watch, url, max_size=connections, idle_seconds=idle_seconds,
                                open=True, configure=self._configure,
                                kwargs={"options": _with_search_path(url, schema)})

    @staticmethod
    def _configure(conn: Any) -> None:
        text, binary_text = _storable_text_dumpers()
        conn.adapters.register_dumper(str, binary_text)
        conn.adapters.register_dumper(str, text)  # last: the default, as psycopg's own is

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        self.pool.close()


def _with_search_path(url: str, schema: str) -> str:
    """The URL's own ``options`` (kept: a keyword argument replaces them) plus the schema."""
    from psycopg.conninfo import conninfo_to_dict

    own = conninfo_to_dict(url).get("options") or ""
    return f"{own} -c search_path={schema}".strip()
