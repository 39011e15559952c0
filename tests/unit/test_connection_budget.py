"""The PostgreSQL connection budget of one process (QUANYI_DATABASE_MAX_CONNECTIONS): shared
out whole, and by default small enough for four servers and a command line on one
PostgreSQL with the default max_connections."""

import base64

import pytest

from engine.eventstore.connections import Budget
from engine.kernel.errors import SettingsError
from engine.settings import DATABASE_MIN_CONNECTIONS, Settings

KEY = base64.b64encode(b"k" * 32).decode()
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
POSTGRES_SUPERUSER_RESERVED = 3
LISTEN_PROBE_AND_LEASE = 3  # one connection each


def _settings(tmp_path, **env) -> Settings:
    return Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_SECRET_KEY": KEY,
                              **env})


def test_four_servers_and_a_command_line_fit_the_default_max_connections(tmp_path):
    per_process = _settings(tmp_path).database_max_connections
    usable = POSTGRES_DEFAULT_MAX_CONNECTIONS - POSTGRES_SUPERUSER_RESERVED
    assert 5 * per_process <= usable


@pytest.mark.parametrize("total", range(DATABASE_MIN_CONNECTIONS, 201))
def test_the_budget_is_shared_out_whole_and_every_pool_gets_two(total):
    budget = Budget.of(total)
    assert budget.store + budget.read + budget.audit + LISTEN_PROBE_AND_LEASE == total
    assert min(budget.store, budget.read, budget.audit) >= 2


@pytest.mark.parametrize("value", ["8", "0", "-1", "many"])
def test_a_budget_too_small_to_share_is_refused(tmp_path, value):
    with pytest.raises(SettingsError, match="QUANYI_DATABASE_MAX_CONNECTIONS"):
        _settings(tmp_path, QUANYI_DATABASE_MAX_CONNECTIONS=value)


def test_the_idle_time_is_a_setting(tmp_path):
    assert _settings(tmp_path, QUANYI_DATABASE_IDLE_SECONDS="2.5").database_idle_seconds == 2.5
    with pytest.raises(SettingsError, match="QUANYI_DATABASE_IDLE_SECONDS"):
        _settings(tmp_path, QUANYI_DATABASE_IDLE_SECONDS="0")
