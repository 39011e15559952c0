"""Reserving, releasing and selling codes under real concurrent writers."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.kernel.errors import InvalidState, SoldOut
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes


def reserve_all(rt: Runtime, sku: str, buyers: int, quantity: int = 1):
    def buy(n: int):
        try:
            codes = rt.engine.reservations.reserve(sku=sku, quantity=quantity,
                                                   order_id=f"order-{n}", holder=f"buyer-{n}",
                                                   actor="test")
            return [(c.id, f"order-{n}") for c in codes]
        except SoldOut:
            return "sold_out"

    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(buy, range(buyers)))


def test_many_threads_reserving_one_sku_never_share_a_code(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(150))
    caught_up(runtime)
    outcomes = reserve_all(runtime, sku, buyers=200)
    won = [pair for o in outcomes if o != "sold_out" for pair in o]
    owners = Counter(code_id for code_id, _ in won)
    assert len(won) == 150 and max(owners.values()) == 1
    assert outcomes.count("sold_out") == 50
    for code_id, order_id in won:
        assert runtime.engine.codes.get(code_id).order_id == order_id
    caught_up(runtime)
    stock = runtime.codes.inventory(sku)
    assert stock["reserved"] == 150 and stock["available"] == 0 and stock["total"] == 150


def test_multi_unit_reservation_is_all_or_nothing(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(5))
    caught_up(runtime)
    with pytest.raises(SoldOut):
        runtime.engine.reservations.reserve(sku=sku, quantity=6, order_id="big",
                                            holder="b", actor="test")
    caught_up(runtime)
    assert runtime.codes.inventory(sku)["available"] == 5
    codes = runtime.engine.reservations.reserve(sku=sku, quantity=5, order_id="fits",
                                                holder="b", actor="test")
    assert len({c.id for c in codes}) == 5


def test_released_codes_can_be_reserved_again(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(2))
    caught_up(runtime)
    first = runtime.engine.reservations.reserve(sku=sku, quantity=2, order_id="o1",
                                                holder="a", actor="test")
    runtime.engine.reservations.release(code_ids=[c.id for c in first], order_id="o1",
                                        reason="cancelled", actor="test")
    again = runtime.engine.reservations.reserve(sku=sku, quantity=2, order_id="o2",
                                                holder="b", actor="test")
    assert {c.id for c in again} == {c.id for c in first}


def test_selling_needs_the_reserving_order(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(1))
    caught_up(runtime)
    [code] = runtime.engine.reservations.reserve(sku=sku, quantity=1, order_id="o1",
                                                 holder="a", actor="test")
    with pytest.raises(InvalidState):
        runtime.engine.reservations.sell(code_ids=[code.id], order_id="o2", actor="test")
    [sold] = runtime.engine.reservations.sell(code_ids=[code.id], order_id="o1", actor="test")
    assert sold.status == "sold"


def test_two_runtimes_on_one_store_never_share_a_code(runtime, settings):
    """Two engines (as two `quanyi serve` processes) over the same store and read models."""
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(120))
    caught_up(runtime)
    other = Runtime.open(settings)
    other.start()
    try:
        caught_up(other)
        with ThreadPoolExecutor(max_workers=2) as pool:
            left = pool.submit(reserve_all, runtime, sku, 80)
            right = pool.submit(reserve_all, other, sku, 80)
            outcomes = left.result() + right.result()
    finally:
        other.close()
    won = [code_id for o in outcomes if o != "sold_out" for code_id, _ in o]
    assert len(won) == 120 and len(set(won)) == 120
    assert outcomes.count("sold_out") == 40
