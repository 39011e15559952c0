"""Rebuild and verify the read models from the log, with the live projection code."""

import os
import subprocess
import sys

from replay.rebuild import rebuild
from replay.verify import verify
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def busy_store(rt) -> str:
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


def test_rebuild_reproduces_identical_tables(runtime):
    busy_store(runtime)
    before = snapshot(runtime)
    runtime.runner.stop()
    applied = rebuild(runtime)
    assert applied == runtime.store.last_position()
    assert snapshot(runtime) == before


def test_verify_agrees_on_an_untouched_store(runtime, settings):
    busy_store(runtime)
    assert verify(settings) == []


def test_verify_lists_a_tampered_inventory_row(runtime, settings):
    sku = busy_store(runtime)
    with runtime.read_db.transaction() as cursor:
        cursor.execute("UPDATE inventory SET available = available + 1 WHERE sku = %s", (sku,))
    differences = verify(settings)
    assert len(differences) == 1 and differences[0].startswith("inventory ")


def test_verify_lists_a_tampered_code_status(runtime, settings):
    busy_store(runtime)
    with runtime.read_db.transaction() as cursor:
        cursor.execute("UPDATE code_index SET status = 'sold' WHERE code_id = "
                       "(SELECT MIN(code_id) FROM code_index WHERE status = 'available')")
    differences = verify(settings)
    assert len(differences) == 1 and differences[0].startswith("code_index ")
    assert "'sold'" in differences[0] and "'available'" in differences[0]


def test_verify_command_exits_non_zero_only_after_tampering(runtime, quanyi_env):
    busy_store(runtime)
    env = {**os.environ, **quanyi_env}
    command = [sys.executable, "-m", "api.cli", "replay", "verify"]
    clean = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DELETE FROM code_history WHERE position = "
                       "(SELECT MAX(position) FROM code_history)")
    tampered = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert tampered.returncode == 1
    assert "code_history" in tampered.stdout and "missing" in tampered.stdout


def test_rebuild_command_rebuilds_from_the_log(runtime, quanyi_env):
    busy_store(runtime)
    before = snapshot(runtime)
    runtime.runner.stop()
    env = {**os.environ, **quanyi_env}
    done = subprocess.run([sys.executable, "-m", "api.cli", "replay", "rebuild"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rebuilt projections" in done.stdout
    assert snapshot(runtime) == before
