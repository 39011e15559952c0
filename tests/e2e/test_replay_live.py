"""`quanyi replay rebuild` and `verify` beside a running server: reads never fail and never
see a half-built read model; a rebuild that fails leaves the live tables as they were."""

import threading
import uuid

import psycopg
from typer.testing import CliRunner

from api.cli import app
from projections.projection import Projection
from replay.rebuild import RebuildFailed, rebuild
from replay.verify import Outcome, verify
from projections.live import all_projections
from tests.conftest import caught_up
from tests.e2e.conftest import import_codes

CODES = 1500


class Exploding(Projection):
    """A projection that fails on the first code it meets (a bug, in real life)."""

    name = "exploding"
    tables = ()

    def apply(self, cursor, events) -> None:
        if any(type(e).__name__ == "Created" and hasattr(e, "sealed") for _, e in events):
            raise RuntimeError("exploding projection")


def with_exploding() -> list[Projection]:
    return [*all_projections(), Exploding()]


def stocked(client, keys, product, runtime) -> dict:
    tag = uuid.uuid4().hex[:8]
    for start in range(0, CODES, 500):
        import_codes(client, keys, product, [f"R-{tag}-{i}" for i in range(start, start + 500)])
    caught_up(runtime, timeout=60)
    inventory = client.get(f"/v1/products/{product}/inventory", headers=keys["app"]).json()
    assert inventory["total"] == inventory["available"] == CODES
    return inventory


def snapshot(runtime):
    with runtime.read_db.transaction(write=False) as cursor:
        return {t: rows for p in runtime.runner.projections for t, rows in p.rows(cursor).items()}


def test_reads_during_a_rebuild_never_fail_nor_see_a_half_built_count(client, keys, product,
                                                                       runtime, settings):
    expected = stocked(client, keys, product, runtime)
    answers: list[tuple[int, dict]] = []
    done = threading.Event()

    def read_in_a_loop() -> None:
        while not done.is_set():
            answer = client.get(f"/v1/products/{product}/inventory", headers=keys["app"])
            answers.append((answer.status_code, answer.json()))

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        rebuild(settings)
        caught_up(runtime)
    finally:
        done.set()
        reader.join()
    assert len(answers) > 3
    assert {status for status, _ in answers} == {200}
    assert all(body == expected for _, body in answers), [
        body for _, body in answers if body != expected][:1]


def test_the_live_runner_follows_the_rebuilt_tables(client, keys, product, runtime, settings):
    stocked(client, keys, product, runtime)
    rebuild(settings)
    import_codes(client, keys, product, ["AFTER-1", "AFTER-2"])  # the runner carries on
    caught_up(runtime)
    assert runtime.runner.lag() == 0 and not runtime.runner.health.failing
    inventory = client.get(f"/v1/products/{product}/inventory", headers=keys["app"]).json()
    assert inventory["total"] == CODES + 2
    assert verify(settings).outcome is Outcome.AGREE
    assert nothing_left_aside(settings)


def test_a_failed_rebuild_leaves_the_live_tables_intact(client, keys, product, runtime,
                                                       settings):
    stocked(client, keys, product, runtime)
    before = snapshot(runtime)
    try:
        rebuild(settings, projections=with_exploding())
    except RebuildFailed as exc:
        assert "RuntimeError: exploding projection" in str(exc)
    else:
        raise AssertionError("the rebuild should have failed")
    assert snapshot(runtime) == before
    assert nothing_left_aside(settings)


def nothing_left_aside(settings) -> bool:
    if settings.database_url:
        with psycopg.connect(settings.database_url) as conn:
            if conn.execute("SELECT schema_name FROM information_schema.schemata "
                            "WHERE schema_name LIKE %s",
                            (f"rebuild_{settings.database_schema}_%",)).fetchall():
                return False
    return not list(settings.data_dir.glob("rebuild-*"))


def test_verify_says_it_could_not_rebuild(client, keys, product, runtime, settings):
    stocked(client, keys, product, runtime)
    verdict = verify(settings, projections=with_exploding())
    assert verdict.outcome is Outcome.COULD_NOT_REBUILD
    assert "exploding projection" in verdict.error and verdict.differences == []


def test_the_commands_exit_non_zero_when_their_rebuild_fails(client, keys, product, runtime,
                                                             quanyi_env, monkeypatch):
    stocked(client, keys, product, runtime)
    before = snapshot(runtime)
    cli = CliRunner()
    monkeypatch.setattr("projections.live.all_projections", with_exploding)
    rebuilt = cli.invoke(app, ["replay", "rebuild"], env=quanyi_env)
    verified = cli.invoke(app, ["replay", "verify"], env=quanyi_env)
    assert rebuilt.exit_code == 1, rebuilt.output
    assert "rebuild failed, the live projections are untouched" in rebuilt.output
    assert verified.exit_code == 2, verified.output
    assert "could not rebuild" in verified.output and "projections agree" not in verified.output
    assert snapshot(runtime) == before
    monkeypatch.undo()
    assert cli.invoke(app, ["replay", "verify"], env=quanyi_env).exit_code == 0
