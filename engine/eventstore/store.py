"""The event store: the eventsourcing application over SQLite or PostgreSQL, and the few
queries on the event table that the library does not offer (bulk existence of aggregates)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.persistence import Notification, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment
from psycopg.rows import dict_row, tuple_row

from engine.eventstore.append_only import refuse_changes
from engine.eventstore.connections import Budget, GuardedPool, StoreWatch
from engine.eventstore.data_dir import private_database
from engine.eventstore.transcoder import OrjsonTranscoder
from engine.kernel import reads
from engine.kernel.errors import NotFound, SettingsError
from engine.settings import Settings, without_password

EXISTENCE_CHUNK = 1000
EVENTS_FILE = "events.sqlite"
PROBE_TIMEOUT_SECONDS = 10


class NotingRepository(Repository):
    """The library's repository, noting every current read (a version or its absence) for
    the decision under way (engine/kernel/reads.py); a read "as of" a version notes nothing."""

    def __init__(self, source: reads.VersionSource, **parts: Any) -> None:
        super().__init__(**parts)
        self._source = source

    def get(self, aggregate_id: UUID, *, version: int | None = None, **options: Any) -> Any:
        try:
            aggregate = super().get(aggregate_id, version=version, **options)
        except AggregateNotFoundError:
            if version is None:
                reads.note(self._source, aggregate_id, 0)
            raise
        if version is None:
            reads.note(self._source, aggregate_id, aggregate.version)
        return aggregate


class EventStore(Application):
    """The one event-sourced application every use case writes through."""

    name = "quanyi"

    def __init__(self, env: Mapping[str, str], value_types: Mapping[str, Any]) -> None:
        self._value_types = value_types  # read by construct_transcoder, during __init__
        super().__init__(env=env)

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder(self._value_types)

    def construct_repository(self) -> Repository:
        # no aggregate cache is configured: the library's defaults but for the noting
        return NotingRepository(self, event_store=self.events, snapshot_store=self.snapshots)

    @property
    def kind(self) -> str:
        return "postgres" if "postgres" in type(self.recorder).__module__ else "sqlite"

    @property
    def watch(self) -> StoreWatch | None:
        """Whether PostgreSQL can be reached (engine/eventstore/connections.py); None on SQLite."""
        return getattr(self.factory, "watch", None)

    def append(self, events: Sequence[Any]) -> None:
        """Store already collected events in one atomic write. ``Application.save`` would
        first test each one against the library's runtime-checkable protocols, which costs
        more than encoding it: the group-commit writer, which holds only events, skips that
        (no snapshotting or follower notification is configured here)."""
        self.events.put(events)

    def already_stored(self, events: Sequence[Any]) -> bool:
        """Whether these events are in the store byte for byte. The PostgreSQL recorder sends
        a write again when its connection failed, also when the failure came after the
        commit (a network cut, a restart): the unique key then refuses the write that is
        already there. One transaction stores all its events or none, so the first decides;
        another writer's event at that version differs at least in its timestamp."""
        first = self.mapper.to_stored_event(events[0])
        found = self.recorder.select_events(first.originator_id,
                                            gt=first.originator_version - 1,
                                            lte=first.originator_version, limit=1)
        return bool(found) and (found[0].topic, found[0].state) == (first.topic, first.state)

    def get(self, aggregate_id: UUID, what: str) -> Any:
        """The aggregate, or NotFound saying there is no ``what`` (e.g. ``"order <id>"``)."""
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError as exc:
            raise NotFound(f"no {what}") from exc

    def find(self, aggregate_id: UUID) -> Any | None:
        """The aggregate, or None when the store has no event of it."""
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def existing_ids(self, ids: Iterable[UUID]) -> set[UUID]:
        """The given aggregate ids that already have a first event in the store."""
        return set(self.versions(ids))

    def versions(self, ids: Iterable[UUID]) -> dict[UUID, int]:
        """The current version of each given aggregate that has an event."""
        wanted = list(ids)
        found: dict[UUID, int] = {}
        for start in range(0, len(wanted), EXISTENCE_CHUNK):
            found.update(self._versions_chunk(wanted[start:start + EXISTENCE_CHUNK]))
        return found

    def _versions_chunk(self, chunk: Sequence[UUID]) -> dict[UUID, int]:
        recorder = self.recorder
        table = recorder.events_table_name
        if self.kind == "postgres":
            sql = (f"SELECT originator_id, MAX(originator_version) AS version "
                   f'FROM "{recorder.datastore.schema}"."{table}" '
                   "WHERE originator_id = ANY(%s) GROUP BY originator_id")
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(sql, (list(chunk),))
                return {row["originator_id"]: row["version"] for row in cursor.fetchall()}
        marks = ",".join("?" * len(chunk))
        sql = (f"SELECT originator_id, MAX(originator_version) FROM {table} "
               f"WHERE originator_id IN ({marks}) GROUP BY originator_id")
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, [i.hex for i in chunk])
            return {UUID(row[0]): row[1] for row in cursor.fetchall()}

    def get_many(self, ids: Sequence[UUID], until: datetime | None = None) -> list[Any]:
        """Aggregates for many ids in one query each chunk (missing ids are left out); with
        ``until``, each as its events stamped at or before that instant made it. Notes no
        read (engine/kernel/reads.py): its callers take candidates whose staleness they handle, or
        read history."""
        by_id: dict[UUID, list[Any]] = {}
        for _, stored in self.recorded(ids):
            event = self.mapper.to_domain_event(stored)
            if until is None or event.timestamp <= until:
                by_id.setdefault(event.originator_id, []).append(event)
        found: list[Any] = []
        for events in by_id.values():
            aggregate = None
            for event in sorted(events, key=lambda e: e.originator_version):
                aggregate = event.mutate(aggregate)
            found.append(aggregate)
        return found

    def recorded(self, ids: Iterable[UUID]) -> list[tuple[int, StoredEvent]]:
        """Every stored event of the given streams with its position, in log order, read a
        chunk of streams a query."""
        wanted = list(dict.fromkeys(ids))
        found: list[tuple[int, StoredEvent]] = []
        for start in range(0, len(wanted), EXISTENCE_CHUNK):
            found += self._recorded_chunk(wanted[start:start + EXISTENCE_CHUNK])
        return sorted(found, key=lambda row: row[0])

    def _recorded_chunk(self, chunk: Sequence[UUID]) -> list[tuple[int, StoredEvent]]:
        recorder = self.recorder
        table = recorder.events_table_name
        if self.kind == "postgres":
            sql = (f"SELECT notification_id, originator_id, originator_version, topic, state "
                   f'FROM "{recorder.datastore.schema}"."{table}" WHERE originator_id = ANY(%s)')
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(sql, (list(chunk),))
                return [(r["notification_id"],
                         StoredEvent(r["originator_id"], r["originator_version"], r["topic"],
                                     bytes(r["state"]))) for r in cursor.fetchall()]
        marks = ",".join("?" * len(chunk))
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
               f"WHERE originator_id IN ({marks})")
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, [i.hex for i in chunk])
            return [(r[0], StoredEvent(UUID(r[1]), r[2], r[3], bytes(r[4])))
                    for r in cursor.fetchall()]

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(start=after, limit=limit,
                                                  inclusive_of_start=False)

    def stored_rows(self, after: int, limit: int) -> list[tuple[int, bytes, int, str, bytes]]:
        """The log after ``after`` as stored: (position, stream id's 16 bytes, version, topic,
        state) rows, without decoding (the audit follower hashes them as they are)."""
        recorder = self.recorder
        table = recorder.events_table_name
        if self.kind == "postgres":
            sql = (f"SELECT notification_id, uuid_send(originator_id), originator_version, "
                   f'topic, state FROM "{recorder.datastore.schema}"."{table}" '
                   "WHERE notification_id > %s ORDER BY notification_id LIMIT %s")
            # Binary rows: bytea as it is, not hex to decode (half the time of a read).
            with recorder.datastore.get_connection() as conn, conn.cursor(
                    binary=True, row_factory=tuple_row) as cursor:
                cursor.execute(sql, (after, limit))
                return cursor.fetchall()
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
               "WHERE rowid > ? ORDER BY rowid LIMIT ?")
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, (after, limit))
            return [(r[0], bytes.fromhex(r[1]), r[2], r[3], r[4]) for r in cursor.fetchall()]

    def last_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def holds(self, event: Any) -> bool:
        """Whether ``event`` is stored, as encoded here: after a write whose outcome is in
        doubt (it raised, but perhaps only once it had committed). False when the store
        cannot be read either."""
        mine = self.mapper.to_stored_event(event)
        try:
            found = self.recorder.select_events(
                event.originator_id, gt=event.originator_version - 1,
                lte=event.originator_version, limit=1)
        except Exception:  # noqa: BLE001 - unreadable: the write stays in doubt
            return False
        return bool(found) and found[0].topic == mine.topic and found[0].state == mine.state


class UrlPostgresFactory(PostgresFactory):
    """The library's PostgreSQL persistence, connecting with the whole QUANYI_DATABASE_URL
    from a pool that fails fast while the database is lost (engine/eventstore/connections.py).

    The library builds its connections from host, port, user, password and database name
    only, which drops the URL's query parameters (sslmode, sslrootcert, application_name,
    connect_timeout, ...) that managed PostgreSQL needs. Its pool is not open yet when the
    factory is built, so it is replaced by one given the URL before the first connection."""

    POSTGRES_URL = "POSTGRES_URL"
    POSTGRES_MAX_IDLE = "POSTGRES_MAX_IDLE"

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        url = self.env.get(self.POSTGRES_URL) or ""
        library = self.datastore.pool
        self.watch = StoreWatch(url)
        self.datastore.pool = GuardedPool(
            self.watch, url, max_size=library.max_size,
            idle_seconds=float(self.env.get(self.POSTGRES_MAX_IDLE) or library.max_idle),
            kwargs={"row_factory": dict_row}, connection_class=library.connection_class,
            configure=self.datastore.after_connect_func(), max_lifetime=library.max_lifetime,
            open=False)


def open_event_store(settings: Settings, value_types: Mapping[str, Any]) -> EventStore:
    """The event store the settings name, decoding the value objects ``value_types`` names.
    The domain opens it with its own (engine/topics.py: ``open_store``)."""
    if settings.database_url:
        env = {
            "PERSISTENCE_MODULE": f"{__name__}:{UrlPostgresFactory.__name__}",
            "POSTGRES_URL": settings.database_url,
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": str(Budget.of(settings.database_max_connections).store - 1),
            "POSTGRES_MAX_IDLE": str(settings.database_idle_seconds),
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
            **settings.postgres_params(),
        }
    else:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(private_database(settings.data_dir / EVENTS_FILE)),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    store = EventStore(env, value_types)
    refuse_changes(store.recorder, store.kind)
    return store


def store_exists(settings: Settings) -> bool:
    """Whether the event store is already there (SQLite: its file; PostgreSQL: its event
    table in the schema). Raises SettingsError when the database cannot be reached."""
    if not settings.database_url:
        return (settings.data_dir / EVENTS_FILE).exists()
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    table = f'"{settings.database_schema}".{EventStore.name}_events'
    # Without connect_timeout in the URL a black-holed host would hang the probe.
    timeout = {} if "connect_timeout" in conninfo_to_dict(settings.database_url) else {
        "connect_timeout": PROBE_TIMEOUT_SECONDS}
    try:
        with psycopg.connect(settings.database_url, **timeout) as conn:
            schema, events = conn.execute("SELECT to_regnamespace(%s), to_regclass(%s)", (
                f'"{settings.database_schema}"', table)).fetchone()
    except psycopg.Error as exc:
        reason = without_password(str(exc), settings.database_url)
        raise SettingsError(f"cannot reach the {settings.where()}: {reason}") from None
    if schema is None:
        raise SettingsError(f"QUANYI_DATABASE_SCHEMA {settings.database_schema} does not exist "
                            f"in the {settings.where()}: create it first")
    return events is not None
