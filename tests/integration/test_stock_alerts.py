"""Low stock crossings (projections/stock.py) on both stores: one per fall below a SKU's
threshold, re-armed when stock is back, and the same whether the log is applied as it
arrives or rebuilt in one chunk."""

from __future__ import annotations

from replay.rebuild import rebuild
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def alerts(rt) -> list[tuple]:
    with rt.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT sku, threshold, available FROM stock_alerts ORDER BY position")
        return [tuple(row) for row in cursor.fetchall()]


def place(rt, sku: str, quantity: int = 1):
    return rt.engine.orders.place(buyer_id="b", items=[{"sku": sku, "quantity": quantity}],
                                  actor="t")


def test_a_fall_below_the_threshold_is_recorded_once_and_re_arms(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(5))
    runtime.engine.catalog.set_low_stock_threshold(sku=sku, threshold=3, actor="t")
    held = [place(runtime, sku) for _ in range(4)]  # 5 4 3 2(low) 1
    caught_up(runtime)
    assert alerts(runtime) == [(sku, 3, 2)]
    for order in held[:3]:  # back to 4: re-armed, no new crossing
        runtime.engine.orders.cancel(order_id=order.id, reason="r", actor="t")
    place(runtime, sku)
    place(runtime, sku)  # 4 3 2(low)
    caught_up(runtime)
    assert alerts(runtime) == [(sku, 3, 2), (sku, 3, 2)]


def test_a_sku_without_a_threshold_records_nothing(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(2))
    place(runtime, sku, 2)
    caught_up(runtime)
    assert alerts(runtime) == []


def test_setting_a_threshold_below_stock_records_no_crossing_until_stock_falls(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(2))
    runtime.engine.catalog.set_low_stock_threshold(sku=sku, threshold=5, actor="t")
    place(runtime, sku)
    caught_up(runtime)
    assert alerts(runtime) == []  # it was low already: no crossing happened
    runtime.engine.catalog.set_low_stock_threshold(sku=sku, threshold=None, actor="t")
    runtime.engine.catalog.set_low_stock_threshold(sku=sku, threshold=1, actor="t")
    place(runtime, sku)  # 1 -> 0
    caught_up(runtime)
    assert alerts(runtime) == [(sku, 1, 0)]


def test_a_rebuild_in_one_chunk_finds_the_same_crossings(runtime):
    sku, other = define_product(runtime), define_product(runtime)
    rows = codes_for(4)
    import_codes(runtime, sku, rows)
    import_codes(runtime, other, codes_for(3))
    runtime.engine.catalog.set_low_stock_threshold(sku=sku, threshold=3, actor="t")
    runtime.engine.catalog.set_low_stock_threshold(sku=other, threshold=3, actor="t")
    first = place(runtime, sku, 2)  # 4 -> 2 (low)
    place(runtime, other)  # 3 -> 2 (low)
    runtime.engine.orders.cancel(order_id=first.id, reason="r", actor="t")  # 4: re-armed
    code = runtime.engine.codes.look_up(rows[0].code)
    if code.status == "available":
        runtime.engine.codes.void(code_id=code.id, reason="recall", actor="t")
    place(runtime, sku, 2)  # low again
    caught_up(runtime)
    live = alerts(runtime)
    assert len(live) == 3
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT sku, available, threshold, low FROM stock_levels ORDER BY sku")
        levels = cursor.fetchall()
    runtime.runner.stop()
    rebuild(runtime.settings)
    assert alerts(runtime) == live
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT sku, available, threshold, low FROM stock_levels ORDER BY sku")
        assert cursor.fetchall() == levels
