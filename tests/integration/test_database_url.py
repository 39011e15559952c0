"""QUANYI_DATABASE_URL reaches every connection whole: its query parameters (here
application_name, connect_timeout, sslmode and options), which managed PostgreSQL needs, are
seen by the server on the event store's, the read side's and the LISTEN connections."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from engine import open_store
from engine.settings import Settings
from projections.database import ReadDatabase
from replay.verify import Outcome, verify
from runtime import Runtime
from tests.conftest import caught_up

STATEMENT_TIMEOUT = "4321ms"


@pytest.fixture
def store_kind() -> str:
    return "postgres"  # the URL is PostgreSQL's alone


@pytest.fixture
def app_name() -> str:
    return f"quanyi-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def url_settings(quanyi_env: dict[str, str], app_name: str) -> Settings:
    url = (quanyi_env["QUANYI_DATABASE_URL"] + f"?application_name={app_name}"
           "&connect_timeout=5&sslmode=disable&options=-c%20statement_timeout%3D4321")
    return Settings.from_env({**quanyi_env, "QUANYI_DATABASE_URL": url})


def seen_by_server(conn) -> tuple[str, str, str]:
    """This connection as pg_stat_activity shows it, with two of its session settings."""
    row = conn.execute("SELECT application_name, current_setting('statement_timeout') AS t, "
                       "current_setting('search_path') AS p FROM pg_stat_activity "
                       "WHERE pid = pg_backend_pid()").fetchone()
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def test_event_store_connections_carry_the_url_parameters(url_settings, app_name):
    store = open_store(url_settings)
    try:
        with store.recorder.datastore.get_connection() as conn:
            name, timeout, _ = seen_by_server(conn)
    finally:
        store.close()
    assert (name, timeout) == (app_name, STATEMENT_TIMEOUT)


def test_read_side_keeps_the_url_parameters_and_its_schema(url_settings, app_name):
    db = ReadDatabase.open(url_settings)
    try:
        with db.transaction(write=False) as cursor:
            name, timeout, search_path = seen_by_server(cursor)
    finally:
        db.close()
    assert (name, timeout) == (app_name, STATEMENT_TIMEOUT)
    assert search_path == url_settings.database_schema


def test_listen_connection_and_verify_use_the_url(url_settings, quanyi_env, app_name):
    rt = Runtime.open(url_settings)
    rt.start()
    try:
        rt.engine.keys.issue(role="admin", name="ops")
        caught_up(rt)
        assert listening_as(quanyi_env["QUANYI_DATABASE_URL"], app_name)
        assert verify(url_settings).outcome is Outcome.AGREE
    finally:
        rt.close()


def listening_as(plain_url: str, app_name: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    with psycopg.connect(plain_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                               "application_name = %s AND query LIKE 'LISTEN%%'",
                               (app_name,)).fetchone()
            if row[0]:
                return True
            time.sleep(0.1)
    return False
