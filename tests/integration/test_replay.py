"""Rebuild and verify the read models from the log, with the live projection code."""

import os
import subprocess
import sys
import threading

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from replay.rebuild import rebuild
from replay.verify import MAX_LINES, Outcome
from replay.verify import verify as verdict_of
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def busy_store(rt) -> str:
    """A SKU with codes available, reserved, sold and voided, and orders placed and paid."""
    sku = define_product(rt)
    rows = codes_for(40)
    import_codes(rt, sku, rows)
    caught_up(rt)
    order = rt.engine.orders.place(buyer_id="b", items=[{"sku": sku, "quantity": 3}],
                                   actor="t")
    rt.engine.orders.pay(order_id=order.id, payment_ref="p", amount=order.amount,
                         currency=order.currency, provider=None, actor="t")
    rt.engine.orders.place(buyer_id="c", items=[{"sku": sku, "quantity": 2}], actor="t")
    code = next(c for c in (rt.engine.codes.look_up(r.code) for r in rows)
                if c.status == "available")
    rt.engine.codes.void(code_id=code.id, reason="recall", actor="t")
    caught_up(rt)
    return sku


def snapshot(rt):
    with rt.read_db.transaction(write=False) as cursor:
        return {t: rows for p in rt.runner.projections for t, rows in p.rows(cursor).items()}


def tamper(rt, sql: str) -> None:
    with rt.read_db.transaction() as cursor:
        cursor.execute(sql)


def leave_a_gap_in_the_log(rt) -> None:
    """A save that loses a version clash: on PostgreSQL its notification id stays unused."""
    code_id = rt.codes.available_code_ids(_any_sku(rt), 1, 0, set())[0]
    first, second = rt.store.repository.get(code_id), rt.store.repository.get(code_id)
    first.void(reason="first", actor="t")
    second.void(reason="second", actor="t")
    rt.store.save(first)
    with pytest.raises(IntegrityError):
        rt.store.save(second)


def _any_sku(rt) -> str:
    with rt.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT sku FROM code_index WHERE status = 'available' LIMIT 1")
        return cursor.fetchone()[0]


# -- rebuild ---------------------------------------------------------------------------------

def test_rebuild_reproduces_identical_tables(runtime):
    busy_store(runtime)
    before = snapshot(runtime)
    runtime.runner.stop()
    rebuild(runtime.settings)
    assert snapshot(runtime) == before


def test_rebuild_reports_every_event_of_the_log(runtime):
    busy_store(runtime)
    runtime.runner.stop()
    applied = rebuild(runtime.settings)
    assert applied == len(runtime.store.notifications(0, 10_000)) > 40


def test_rebuild_over_a_log_with_gaps_applies_it_all(runtime):
    busy_store(runtime)
    leave_a_gap_in_the_log(runtime)
    import_codes(runtime, define_product(runtime), codes_for(5))
    caught_up(runtime)
    before = snapshot(runtime)
    runtime.runner.stop()
    rebuild(runtime.settings)
    assert snapshot(runtime) == before
    assert runtime.runner.position() == runtime.store.last_position()


def test_rebuild_of_a_store_never_served_makes_empty_tables(settings):
    assert rebuild(settings) == 0
    assert verify(settings) == []


# -- verify ----------------------------------------------------------------------------------

def verify(settings) -> list[str]:
    """The differences verify lists; empty when it says the projections agree."""
    verdict = verdict_of(settings)
    assert verdict.outcome is not Outcome.COULD_NOT_REBUILD, verdict.error
    assert (verdict.outcome is Outcome.AGREE) == (verdict.differences == [])
    return verdict.differences


def test_verify_agrees_on_an_untouched_store(runtime, settings):
    busy_store(runtime)
    assert verify(settings) == []


def test_verify_agrees_on_a_store_never_served(settings):
    assert verify(settings) == []


def test_verify_lists_a_tampered_inventory_count(runtime, settings):
    sku = busy_store(runtime)
    tamper(runtime, f"UPDATE inventory SET available = available + 1 WHERE sku = '{sku}'")
    differences = verify(settings)
    assert len(differences) == 1
    assert differences[0].startswith("inventory batch_id=")
    assert "available live 35, rebuilt 34" in differences[0]


def test_verify_lists_a_tampered_code_status(runtime, settings):
    busy_store(runtime)
    tamper(runtime, "UPDATE code_index SET status = 'sold' WHERE code_id = "
                    "(SELECT MIN(code_id) FROM code_index WHERE status = 'available')")
    differences = verify(settings)
    assert len(differences) == 1
    assert differences[0].startswith("code_index code_id=")
    assert differences[0].endswith("status live 'sold', rebuilt 'available'")


def test_verify_agrees_on_the_ledger_and_lists_a_tampered_balance(runtime, settings):
    from tests.integration.test_ledger_projection import post_sale

    busy_store(runtime)
    post_sale(runtime, distributor="d-1")
    post_sale(runtime, distributor="d-2")
    caught_up(runtime)
    assert verify(settings) == []
    tamper(runtime, "UPDATE ledger_accounts SET balance = balance - 1 "
                    "WHERE account = 'liabilities:distributors:d-2'")
    differences = verify(settings)
    assert len(differences) == 1
    assert differences[0].startswith("ledger_accounts account='liabilities:distributors:d-2'")
    assert "balance live -100, rebuilt -99" in differences[0]


def test_verify_lists_a_history_row_missing_from_live(runtime, settings):
    busy_store(runtime)
    tamper(runtime, "DELETE FROM code_history WHERE position = "
                    "(SELECT MAX(position) FROM code_history)")
    differences = verify(settings)
    assert len(differences) == 1
    assert differences[0].startswith("code_history ") and "missing from live" in differences[0]


def test_verify_lists_a_row_only_live_has(runtime, settings):
    busy_store(runtime)
    tamper(runtime, "INSERT INTO orders SELECT 'forged', buyer_id, status, amount, currency, "
                    "channel, distributor_id, external_ref, units, expires_at, placed_at, "
                    "paid_at, updated_at FROM orders WHERE buyer_id = 'b'")
    differences = verify(settings)
    assert differences == [differences[0]]
    assert differences[0].startswith("orders order_id='forged': missing from rebuilt")


def test_verify_caps_its_listing_and_counts_the_rest(runtime, settings):
    busy_store(runtime)
    tamper(runtime, "UPDATE code_history SET actor = 'forger'")
    tamper(runtime, "UPDATE code_index SET holder = 'forger'")
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT (SELECT COUNT(*) FROM code_history) "
                       "+ (SELECT COUNT(*) FROM code_index)")
        rows = cursor.fetchone()[0]
    differences = verify(settings)
    assert rows > MAX_LINES
    assert len(differences) == MAX_LINES + 1
    assert differences[-1] == f"... and {rows - MAX_LINES} more differences ({rows} in all)"


def test_verify_compares_at_the_live_position_when_the_log_has_moved_on(runtime, settings):
    sku = busy_store(runtime)
    leave_a_gap_in_the_log(runtime)
    import_codes(runtime, sku, codes_for(5))
    caught_up(runtime)
    runtime.runner.stop()
    import_codes(runtime, sku, codes_for(5))  # not projected yet
    assert runtime.runner.position() < runtime.store.last_position()
    assert verify(settings) == []


def test_verify_agrees_while_events_keep_arriving(runtime, settings):
    sku = busy_store(runtime)
    stop = threading.Event()

    def keep_importing() -> None:
        while not stop.is_set():
            import_codes(runtime, sku, codes_for(20))

    writer = threading.Thread(target=keep_importing)
    writer.start()
    try:
        differences = [verify(settings) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    assert differences == [[], [], []]


def test_verify_leaves_nothing_behind(runtime, settings):
    busy_store(runtime)
    verify(settings)
    assert not list(settings.data_dir.glob("verify-*"))
    if settings.database_url:
        with psycopg.connect(settings.database_url) as conn:
            left = conn.execute("SELECT schema_name FROM information_schema.schemata "
                                "WHERE schema_name LIKE %s",
                                (f"verify_{settings.database_schema}_%",)).fetchall()
        assert left == []


# -- the command line ------------------------------------------------------------------------

def quanyi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_verify_command_exits_non_zero_only_after_tampering(runtime, quanyi_env):
    busy_store(runtime)
    clean = quanyi("replay", "verify", env=quanyi_env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    tamper(runtime, "UPDATE code_index SET status = 'sold' WHERE code_id = "
                    "(SELECT MIN(code_id) FROM code_index WHERE status = 'available')")
    tampered = quanyi("replay", "verify", env=quanyi_env)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "code_index code_id=" in tampered.stdout
    assert "status live 'sold', rebuilt 'available'" in tampered.stdout


def test_rebuild_command_rebuilds_from_the_log(runtime, quanyi_env):
    busy_store(runtime)
    before = snapshot(runtime)
    runtime.runner.stop()
    tamper(runtime, "DELETE FROM inventory")
    done = quanyi("replay", "rebuild", env=quanyi_env)
    assert done.returncode == 0, done.stderr
    assert "rebuilt projections" in done.stdout
    last = runtime.store.last_position()
    assert f"rebuild: {last:,} of {last:,} events" in done.stderr  # progress, not a terminal
    assert snapshot(runtime) == before
