"""The audit key: an Ed25519 seed of its own (not the data key), made into the data
directory on first run (0600) unless QUANYI_AUDIT_KEY gives it, the same for every process."""

import base64
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.kernel.errors import SettingsError
from engine.settings import Settings

KEY = base64.b64encode(b"k" * 32).decode()


def test_first_run_makes_a_private_audit_key_apart_from_the_secret_key(tmp_path):
    first = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)})
    key_file = tmp_path / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.audit_key) == 32 and first.audit_key != first.secret_key[:32]
    assert Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)}).audit_key == first.audit_key


def test_processes_starting_at_once_agree_on_one_audit_key(tmp_path):
    env = {"QUANYI_DATA_DIR": str(tmp_path / "data"), "QUANYI_SECRET_KEY": KEY}
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: Settings.from_env(env).audit_key, range(16)))
    assert len(keys) == 1
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["audit.key"]


def test_a_configured_audit_key_wins_and_no_file_is_made(tmp_path):
    settings = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY,
                                  "QUANYI_AUDIT_KEY": base64.b64encode(b"a" * 32).decode()})
    assert settings.audit_key == b"a" * 32
    assert not (tmp_path / "audit.key").exists()


def test_a_store_older_than_the_audit_log_gets_its_key_without_create(tmp_path):
    Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)})
    (tmp_path / "audit.key").unlink()
    settings = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)}, create_key=False)
    assert len(settings.audit_key) == 32 and (tmp_path / "audit.key").exists()


def test_without_create_and_without_a_store_no_audit_key_is_made(tmp_path):
    settings = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY},
                                 create_key=False)
    assert settings.audit_key == b"" and not (tmp_path / "audit.key").exists()


@pytest.mark.parametrize(("name", "value"), [
    ("QUANYI_AUDIT_KEY", base64.b64encode(b"x" * 64).decode()),
    ("QUANYI_AUDIT_KEY", base64.b64encode(b"x" * 16).decode()),
    ("QUANYI_AUDIT_KEY", "not base64!"),
    ("QUANYI_AUDIT_HEAD_EVERY_EVENTS", "0"),
    ("QUANYI_AUDIT_HEAD_EVERY_SECONDS", "never"),
])
def test_a_bad_audit_setting_is_one_error_naming_it(tmp_path, name, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY,
                           name: value})
    assert name in caught.value.detail and "\n" not in caught.value.detail
