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
