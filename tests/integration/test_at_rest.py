"""The data directory is private: 0700, and every file the engine keeps there 0600, whatever
the umask and whether the directory (or an older, wider file) already existed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.settings import Settings
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.helpers import define_product


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def open_data_dir(quanyi_env: dict[str, str], open_umask: None) -> Path:
    """The data directory, made beforehand by someone else with the usual 0755."""
    data = Path(quanyi_env["QUANYI_DATA_DIR"])
    data.mkdir(mode=0o755, parents=True)
    os.chmod(data, 0o755)
    return data


def modes(data: Path) -> dict[str, int]:
    """Each file's mode, and the data directory's as "."; a folder inside (the process
    leases) counts as private at 0700, as if it were a 0600 file."""
    return {str(p.relative_to(data)): (0o600 if p != data and p.is_dir()
                                       and stat.S_IMODE(p.stat().st_mode) == 0o700
                                       else stat.S_IMODE(p.stat().st_mode))
            for p in [data, *data.rglob("*")]}


def generated_key_env(quanyi_env: dict[str, str]) -> dict[str, str]:
    """The settings with no QUANYI_SECRET_KEY, so the engine writes secret.key itself."""
    return {k: v for k, v in quanyi_env.items() if k != "QUANYI_SECRET_KEY"}


def test_store_files_and_key_are_private_in_an_existing_open_directory(open_data_dir,
                                                                       quanyi_env):
    rt = Runtime.open(Settings.from_env(generated_key_env(quanyi_env)))
    rt.start()
    try:
        define_product(rt)
        rt.engine.keys.issue(role="admin", name="ops")
        caught_up(rt)
        found = modes(open_data_dir)  # while open: SQLite's -wal and -shm files exist
    finally:
        rt.close()
    expected = {".", "secret.key", "audit.key"}
    if rt.store.kind == "sqlite":
        expected |= {f"{db}.sqlite{suffix}" for db in ("events", "projections", "audit")
                     for suffix in ("", "-wal", "-shm")}
    assert expected <= set(found), found
    assert found.pop(".") == 0o700
    assert set(found.values()) == {0o600}, found


def test_files_left_readable_by_an_older_version_are_narrowed(open_data_dir, quanyi_env):
    Runtime.open(Settings.from_env(generated_key_env(quanyi_env))).close()
    for path in [open_data_dir, *open_data_dir.iterdir()]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    rt = Runtime.open(Settings.from_env(generated_key_env(quanyi_env)))
    try:
        found = modes(open_data_dir)
    finally:
        rt.close()
    assert found.pop(".") == 0o700
    assert found and set(found.values()) == {0o600}, found
