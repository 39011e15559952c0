"""The command line: keys are printed once and work against the API; every command names its
store; only `serve`, `init` and `--init` create a store; a bad setting is one line."""

import os
import select
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from bench.common import free_port, wait_until_up
from engine.settings import Settings
from runtime import Runtime
from tests.conftest import TEST_KEY, postgres_url

ROOT = Path(__file__).resolve().parents[2]


def quanyi(*args: str, env: dict[str, str], cwd: Path | None = None,
           ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args],
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def store_names(quanyi_env: dict[str, str]) -> list[str]:
    """What identifies the store in a message: its data directory, or its schema."""
    if "QUANYI_DATABASE_URL" in quanyi_env:
        url = conninfo_to_dict(quanyi_env["QUANYI_DATABASE_URL"])
        return ["PostgreSQL", f"{url['host']}:{url.get('port', 5432)}", url["dbname"],
                f"schema {quanyi_env['QUANYI_DATABASE_SCHEMA']}"]
    return ["SQLite", quanyi_env["QUANYI_DATA_DIR"]]


def stored_in(quanyi_env: dict[str, str]) -> list[str]:
    """What the store holds: files in the data dir, and tables in the schema."""
    found = sorted(p.name for p in Path(quanyi_env["QUANYI_DATA_DIR"]).glob("*")) \
        if Path(quanyi_env["QUANYI_DATA_DIR"]).exists() else []
    if "QUANYI_DATABASE_URL" in quanyi_env:
        with psycopg.connect(quanyi_env["QUANYI_DATABASE_URL"]) as conn:
            found += [row[0] for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (quanyi_env["QUANYI_DATABASE_SCHEMA"],))]
    return found


def test_keys_create_prints_a_working_key_once(quanyi_env):
    done = quanyi("--init", "keys", "create", "--role", "support", "--name", "desk",
                  env=quanyi_env)
    assert done.returncode == 0, done.stderr
    secret = done.stdout.splitlines()[0]
    assert secret.startswith("qy_") and "role support" in done.stderr
    rt = Runtime.open(Settings.from_env(quanyi_env))
    try:
        principal = rt.engine.keys.authenticate(secret)
        assert principal is not None and principal.role == "support"
        assert rt.engine.keys.authenticate(secret[:-1] + "x") is None
        stored = [n.state for n in rt.store.notifications(0, 10)]
        assert all(secret.split("_", 2)[2].encode() not in s for s in stored)
    finally:
        rt.close()


def test_unknown_role_is_refused(quanyi_env):
    done = quanyi("--init", "keys", "create", "--role", "root", "--name", "x", env=quanyi_env)
    assert done.returncode == 2 and "role must be one of" in done.stderr


def test_init_creates_the_store_then_commands_name_it(quanyi_env):
    made = quanyi("init", env=quanyi_env)
    assert made.returncode == 0, made.stderr
    assert all(name in made.stderr for name in store_names(quanyi_env))
    done = quanyi("keys", "create", "--role", "admin", "--name", "ops", env=quanyi_env)
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("quanyi: using the ")
    assert all(name in first for name in store_names(quanyi_env)), first


COMMANDS = [("keys", "create", "--role", "admin", "--name", "ops"), ("replay", "rebuild"),
            ("replay", "verify")]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
@pytest.mark.parametrize("configured_key", [True, False], ids=["key set", "no key"])
def test_commands_refuse_to_create_a_store(quanyi_env, args, configured_key):
    env = dict(quanyi_env)
    if not configured_key:
        del env["QUANYI_SECRET_KEY"]
    done = quanyi(*args, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "quanyi init" in done.stderr
    postgres_store_missing = configured_key and "QUANYI_DATABASE_URL" in env
    named = env["QUANYI_DATABASE_SCHEMA"] if postgres_store_missing else env["QUANYI_DATA_DIR"]
    assert named in done.stderr
    assert stored_in(quanyi_env) == []


def test_keys_create_from_another_folder_refuses_instead_of_making_a_store(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    env = {"QUANYI_EXPIRY_SWEEP_SECONDS": "3600"}
    assert quanyi("init", env=env, cwd=home).returncode == 0
    done = quanyi("keys", "create", "--role", "admin", "--name", "ops", env=env, cwd=elsewhere)
    assert done.returncode == 2 and str(elsewhere / "data") in done.stderr
    assert list(elsewhere.iterdir()) == []
    assert quanyi("keys", "create", "--role", "admin", "--name", "ops", env=env,
                  cwd=home).returncode == 0


def test_serve_says_where_its_data_lives_and_creates_the_store(quanyi_env):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
                            env={**os.environ, "PYTHONPATH": str(ROOT), **quanyi_env},
                            stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        line = proc.stderr.readline() if ready else ""
        assert f"http://127.0.0.1:{port}" in line
        assert all(name in line for name in store_names(quanyi_env)), line
        assert "quanyi:quanyi@" not in line and "postgresql://" not in line
        wait_until_up(f"http://127.0.0.1:{port}")
        assert stored_in(quanyi_env)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


BAD = [("QUANYI_SECRET_KEY", "not base64!"), ("QUANYI_DATABASE_URL", "mysql://db/q"),
       ("QUANYI_RESERVATION_TTL_SECONDS", "fifteen"),
       ("QUANYI_DATABASE_URL", "postgresql://quanyi:Hunter2@127.0.0.1:1/quanyi")]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
@pytest.mark.parametrize("args", [("serve",), ("keys", "create", "--role", "admin",
                                               "--name", "ops")], ids=["serve", "keys"])
def test_a_bad_setting_is_one_line_and_exit_status_2(tmp_path, name, value, args):
    env = {"QUANYI_DATA_DIR": str(tmp_path / "data"), "QUANYI_SECRET_KEY": TEST_KEY, name: value}
    if args == ("serve",):
        args = ("serve", "--port", str(free_port()))
    done = quanyi(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert (name in done.stderr or "cannot reach the PostgreSQL database" in done.stderr)
    assert "Hunter2" not in done.stderr


@pytest.mark.parametrize("args", [("serve",), ("init",)])
def test_a_missing_postgres_schema_is_one_line(tmp_path, args):
    env = {"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": TEST_KEY,
           "QUANYI_DATABASE_URL": postgres_url(), "QUANYI_DATABASE_SCHEMA": "no_such_schema"}
    if args == ("serve",):
        args = ("serve", "--port", str(free_port()))
    done = quanyi(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "QUANYI_DATABASE_SCHEMA no_such_schema does not exist" in done.stderr


def test_keys_list_shows_keys_without_secrets_and_revoke_ends_one(quanyi_env):
    made = quanyi("--init", "keys", "create", "--role", "merchant", "--name", "shop",
                  "--merchant-id", "m-5", "--expires-in-days", "7", env=quanyi_env)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[0]
    key_id = secret.split("_")[1]
    listed = quanyi("keys", "list", env=quanyi_env)
    assert listed.returncode == 0, listed.stderr
    row = next(line.split("\t") for line in listed.stdout.splitlines() if key_id in line)
    assert row[:4] == [key_id, "shop", "merchant", "merchant:m-5"] and row[5] != "-"
    assert row[6] == "no" and secret.split("_", 2)[2] not in listed.stdout
    assert quanyi("keys", "revoke", key_id, env=quanyi_env).returncode == 0
    again = quanyi("keys", "revoke", key_id, env=quanyi_env)
    assert again.returncode == 2 and "already revoked" in again.stderr
    rt = Runtime.open(Settings.from_env(quanyi_env))
    try:
        assert rt.engine.keys.authenticate(secret) is None
    finally:
        rt.close()


def test_keys_create_with_expires_at_and_a_bad_one(quanyi_env):
    made = quanyi("--init", "keys", "create", "--role", "app", "--name", "shop",
                  "--tenant", "acme", "--expires-at", "2199-01-01T00:00:00Z", env=quanyi_env)
    assert made.returncode == 0, made.stderr
    listed = quanyi("keys", "list", env=quanyi_env).stdout
    assert "tenant:acme" in listed and "2199-01-01T00:00:00+00:00" in listed
    bad = quanyi("keys", "create", "--role", "app", "--name", "x",
                 "--expires-at", "next tuesday", env=quanyi_env)
    assert bad.returncode == 2 and "RFC 3339" in bad.stderr
