"""The command line: keys are printed once and work against the API."""

import os
import subprocess
import sys

from api.runtime import Runtime
from engine.settings import Settings


def test_keys_create_prints_a_working_key_once(quanyi_env):
    env = {**os.environ, **quanyi_env}
    done = subprocess.run([sys.executable, "-m", "api.cli", "keys", "create", "--role",
                           "support", "--name", "desk"], env=env, capture_output=True,
                          text=True, timeout=60)
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
    done = subprocess.run([sys.executable, "-m", "api.cli", "keys", "create", "--role",
                           "root", "--name", "x"], env={**os.environ, **quanyi_env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "role must be one of" in done.stderr


def quanyi(env, *args):
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_keys_list_shows_keys_without_secrets_and_revoke_ends_one(quanyi_env):
    made = quanyi(quanyi_env, "keys", "create", "--role", "merchant", "--name", "shop",
                  "--merchant-id", "m-5", "--expires-in-days", "7")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[0]
    key_id = secret.split("_")[1]
    listed = quanyi(quanyi_env, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line.split("\t") for line in listed.stdout.splitlines() if key_id in line)
    assert row[:4] == [key_id, "shop", "merchant", "merchant:m-5"] and row[5] != "-"
    assert row[6] == "no" and secret.split("_", 2)[2] not in listed.stdout
    assert quanyi(quanyi_env, "keys", "revoke", key_id).returncode == 0
    again = quanyi(quanyi_env, "keys", "revoke", key_id)
    assert again.returncode == 2 and "already revoked" in again.stderr
    rt = Runtime.open(Settings.from_env(quanyi_env))
    try:
        assert rt.engine.keys.authenticate(secret) is None
    finally:
        rt.close()


def test_keys_create_with_expires_at_and_a_bad_one(quanyi_env):
    made = quanyi(quanyi_env, "keys", "create", "--role", "app", "--name", "shop",
                  "--tenant", "acme", "--expires-at", "2199-01-01T00:00:00Z")
    assert made.returncode == 0, made.stderr
    listed = quanyi(quanyi_env, "keys", "list").stdout
    assert "tenant:acme" in listed and "2199-01-01T00:00:00+00:00" in listed
    bad = quanyi(quanyi_env, "keys", "create", "--role", "app", "--name", "x",
                 "--expires-at", "next tuesday")
    assert bad.returncode == 2 and "RFC 3339" in bad.stderr
