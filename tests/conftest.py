"""Shared fixtures: every storage test runs on the embedded SQLite store and on a real
PostgreSQL (a fresh schema per test, in the database named by QUANYI_TEST_DATABASE_URL,
which scripts/test starts and exports)."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from engine.settings import Settings
from runtime import Runtime

STORES = ("sqlite", "postgres")
TEST_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def postgres_url() -> str:
    url = os.environ.get("QUANYI_TEST_DATABASE_URL")
    if not url:
        pytest.fail("QUANYI_TEST_DATABASE_URL is not set: run the suite with scripts/test, "
                    "which starts PostgreSQL and sets it")
    return url


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def quanyi_env(store_kind: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """QUANYI_* variables for one isolated store: a temp data dir, and on PostgreSQL a
    schema of its own that is dropped afterwards."""
    env = {"QUANYI_DATA_DIR": str(tmp_path / "data"), "QUANYI_SECRET_KEY": TEST_KEY,
           "QUANYI_EXPIRY_SWEEP_SECONDS": "3600"}
    if store_kind == "sqlite":
        yield env
        return
    url = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield {**env, "QUANYI_DATABASE_URL": url, "QUANYI_DATABASE_SCHEMA": schema}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def settings(quanyi_env: dict[str, str]) -> Settings:
    return Settings.from_env(quanyi_env)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A started runtime: engine, projection runner and sweeper, as in `quanyi serve`."""
    rt = Runtime.open(settings)
    rt.start()
    yield rt
    rt.close()


def caught_up(rt: Runtime, timeout: float = 10.0) -> None:
    """Wait until the projections have applied every event written so far."""
    assert rt.runner.wait_for(rt.store.last_position(), timeout), "projections did not catch up"
