"""`quanyi init` makes the audit key; `quanyi audit public-key` prints what a third party
needs to check heads; the audit commands make no store where there is none."""

from __future__ import annotations

import base64

import pytest

from engine.settings import Settings
from replay import merkle
from runtime import Runtime
from tests.integration.test_cli import quanyi, stored_in


def test_init_makes_the_audit_key_and_public_key_prints_the_one_that_signs(quanyi_env):
    made = quanyi("init", env=quanyi_env)
    assert made.returncode == 0, made.stderr
    printed = quanyi("audit", "public-key", env=quanyi_env)
    assert printed.returncode == 0, printed.stderr
    public_key = base64.b64decode(printed.stdout.strip(), validate=True)
    rt = Runtime.open(Settings.from_env(quanyi_env))
    try:
        head = rt.audit.sign_head()
        assert rt.audit.public_key == public_key
        assert merkle.verify_head(public_key, head)
    finally:
        rt.close()


@pytest.mark.parametrize("args", [("audit", "verify"), ("audit", "public-key")])
def test_audit_commands_refuse_to_create_a_store(quanyi_env, args):
    done = quanyi(*args, env=quanyi_env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "quanyi init" in done.stderr and len(done.stderr.splitlines()) == 1
    assert stored_in(quanyi_env) == []


def test_audit_verify_without_the_audit_key_says_how_to_give_it(quanyi_env, tmp_path):
    if "QUANYI_DATABASE_URL" not in quanyi_env:
        pytest.skip("on SQLite the data directory is the store: tested above")
    assert quanyi("init", env=quanyi_env).returncode == 0
    elsewhere = {**quanyi_env, "QUANYI_DATA_DIR": str(tmp_path / "other")}
    done = quanyi("audit", "verify", env=elsewhere)
    assert done.returncode == 2 and "QUANYI_AUDIT_KEY" in done.stderr
