import base64
import stat

import pytest

from engine.errors import ValidationFailed
from engine.settings import Settings


def test_embedded_default_generates_a_private_key_once(tmp_path):
    first = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path / "data")})
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.secret_key) == 32 and first.store == "sqlite"
    again = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path / "data")})
    assert again.secret_key == first.secret_key


def test_configured_key_wins_and_postgres_url_selects_postgres(tmp_path):
    key = base64.b64encode(b"k" * 32).decode()
    settings = Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": key,
                                  "QUANYI_DATABASE_URL": "postgresql://u:p%40ss@db:6543/q"})
    assert settings.secret_key == b"k" * 32 and settings.store == "postgres"
    params = settings.postgres_params()
    assert params["POSTGRES_PASSWORD"] == "p@ss" and params["POSTGRES_PORT"] == "6543"
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize("env", [{"QUANYI_SECRET_KEY": "c2hvcnQ="},
                                 {"QUANYI_DATABASE_URL": "mysql://x"}])
def test_bad_configuration_is_refused(tmp_path, env):
    with pytest.raises(ValidationFailed):
        Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), **env})
