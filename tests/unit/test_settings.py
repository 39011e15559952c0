import base64
import os
import stat

import pytest

from engine.kernel.errors import SettingsError, StoreMissing
from engine.settings import Settings

KEY = base64.b64encode(b"k" * 32).decode()


def test_embedded_default_generates_a_private_key_once(tmp_path):
    first = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path / "data")})
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.secret_key) == 32 and first.store == "sqlite"
    again = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path / "data")})
    assert again.secret_key == first.secret_key


def test_key_goes_into_an_existing_open_directory_made_private(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    Settings.from_env({"QUANYI_DATA_DIR": str(data)})
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600


def test_an_existing_readable_key_file_is_narrowed(tmp_path):
    Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)})
    os.chmod(tmp_path / "secret.key", 0o644)
    Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)})
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_without_create_key_a_missing_key_creates_nothing(tmp_path):
    data = tmp_path / "elsewhere"
    with pytest.raises(StoreMissing) as caught:
        Settings.from_env({"QUANYI_DATA_DIR": str(data)}, create_key=False)
    assert str(data) in caught.value.detail and not data.exists()


def test_configured_key_wins_and_postgres_url_selects_postgres(tmp_path):
    settings = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY,
                                  "QUANYI_DATABASE_URL": "postgresql://u:p%40ss@db:6543/q"})
    assert settings.secret_key == b"k" * 32 and settings.store == "postgres"
    params = settings.postgres_params()
    assert params["POSTGRES_PASSWORD"] == "p@ss" and params["POSTGRES_PORT"] == "6543"
    assert not (tmp_path / "secret.key").exists()


def test_where_names_host_port_database_and_schema_never_the_password(tmp_path):
    settings = Settings.from_env({
        "QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY,
        "QUANYI_DATABASE_SCHEMA": "shop",
        "QUANYI_DATABASE_URL": "postgresql://u:S3cr%40t@db.example:6543/q?sslmode=require"})
    where = settings.where()
    assert all(part in where for part in ("db.example", "6543", "q", "shop"))
    assert "S3cr" not in where
    local = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY})
    assert str(tmp_path) in local.where() and "SQLite" in local.where()


BAD = [
    ("QUANYI_SECRET_KEY", "c2hvcnQ="),
    ("QUANYI_SECRET_KEY", "not base64!"),
    ("QUANYI_DATABASE_URL", "mysql://x"),
    ("QUANYI_DATABASE_URL", "postgresql://u:p@h/q?no_such_parameter=1"),
    ("QUANYI_DATABASE_SCHEMA", 'bad"schema'),
    ("QUANYI_RESERVATION_TTL_SECONDS", "abc"),
    ("QUANYI_RESERVATION_TTL_SECONDS", "-5"),
    ("QUANYI_EXPIRY_SWEEP_SECONDS", "soon"),
    ("QUANYI_EXPIRY_SWEEP_SECONDS", "inf"),
    ("QUANYI_WRITE_BATCH_SIZE", "1.5"),
    ("QUANYI_SUPPLIER_TIMEOUT_SECONDS", "0"),
    ("QUANYI_SUPPLIER_CONNECT_TIMEOUT_SECONDS", "never"),
    ("QUANYI_SUPPLIER_CALLBACK_TOLERANCE_SECONDS", "-300"),
    ("QUANYI_TOPUP_QUERY_MAX_SECONDS", "0"),
    ("QUANYI_SUPPLIER_BREAKER_FAILURES", "2.5"),
    ("QUANYI_SUPPLIER_BREAKER_COOLDOWN_SECONDS", "soon"),
    ("QUANYI_WEBHOOK_RETRY_BASE_SECONDS", "0"),
    ("QUANYI_WEBHOOK_DISABLE_AFTER_SECONDS", "a day"),
    ("QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS", "maybe"),
    ("QUANYI_WEBHOOK_WORKERS", "0"),
    ("QUANYI_WEBHOOK_MAX_ENDPOINTS", "many"),
    ("QUANYI_SUPPLIER_ALLOW_PRIVATE_URLS", "sometimes"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_every_bad_value_is_one_settings_error_naming_its_variable(tmp_path, name, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), name: value})
    assert name in caught.value.detail and "\n" not in caught.value.detail


def test_a_bad_key_file_names_the_file(tmp_path):
    (tmp_path / "secret.key").write_text("short")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)})
    assert "secret.key" in caught.value.detail


def test_a_malformed_url_is_refused_without_echoing_its_password(tmp_path):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY,
                           "QUANYI_DATABASE_URL": "postgresql://u:Hunter%zz2@h/q"})
    assert "QUANYI_DATABASE_URL" in caught.value.detail
    assert "Hunter" not in caught.value.detail


def test_supplier_timeouts_are_read_and_handed_to_adapters(tmp_path):
    from engine.app import supplier_timeouts

    settings = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY,
                                  "QUANYI_SUPPLIER_TIMEOUT_SECONDS": "2.5",
                                  "QUANYI_SUPPLIER_CONNECT_TIMEOUT_SECONDS": "0.5",
                                  "QUANYI_SUPPLIER_CALLBACK_TOLERANCE_SECONDS": "60"})
    timeouts = supplier_timeouts(settings)
    assert (timeouts.read_seconds, timeouts.connect_seconds,
            timeouts.callback_tolerance_seconds) == (2.5, 0.5, 60.0)
def test_webhook_settings_are_read_with_safe_defaults(tmp_path):
    default = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)})
    assert default.webhook_disable_after_seconds == 86400.0
    assert default.webhook_allow_private_urls is False
    told = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path),
                              "QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
                              "QUANYI_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
                              "QUANYI_WEBHOOK_RETRY_MAX_SECONDS": "60",
                              "QUANYI_WEBHOOK_TIMEOUT_SECONDS": "3",
                              "QUANYI_WEBHOOK_POLL_SECONDS": "0.2",
                              "QUANYI_WEBHOOK_DISABLE_AFTER_SECONDS": "600"})
    assert told.webhook_allow_private_urls is True
    assert (default.webhook_workers, default.webhook_max_endpoints) == (8, 50)
    assert default.supplier_allow_private_urls is False
    sized = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_WEBHOOK_WORKERS": "2",
                               "QUANYI_WEBHOOK_MAX_ENDPOINTS": "500",
                               "QUANYI_SUPPLIER_ALLOW_PRIVATE_URLS": "true"})
    assert (sized.webhook_workers, sized.webhook_max_endpoints) == (2, 500)
    assert sized.supplier_allow_private_urls is True
    assert (told.webhook_retry_base_seconds, told.webhook_retry_max_seconds,
            told.webhook_timeout_seconds, told.webhook_poll_seconds,
            told.webhook_disable_after_seconds) == (0.5, 60.0, 3.0, 0.2, 600.0)
