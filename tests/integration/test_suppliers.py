"""The Suppliers service on both stores: concurrent registrations of one supplier store it
once and all answer it; concurrent offer changes all land, and one whole set is read back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from engine.kernel import ids
from engine.kernel.money import Money
from engine.topups.suppliers import TopupOffer
from tests.integration.helpers import define_product

CREDENTIALS = {"api_key": "k-1", "callback_secret": "s-1"}


def at_once(work: Callable[[int], Any], count: int) -> list[Any]:
    """``work(i)`` for i in 0..count-1 in as many threads, started together."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_registrations_of_one_supplier_store_it_once(runtime):
    def register(_: int):
        return runtime.engine.suppliers.register(
            supplier_id="sup-race", name="Race", adapter="http-json",
            endpoint="https://supplier.example", credentials=CREDENTIALS, actor="t")

    results = at_once(register, 6)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.id for r in results} == {results[0].id}
    assert len(list(runtime.store.events.get(results[0].id))) == 1


def test_concurrent_offer_changes_all_land_and_one_set_is_read_whole(runtime):
    suppliers = runtime.engine.suppliers
    for n in range(3):
        suppliers.register(supplier_id=f"sup-{n}", name=f"S{n}", adapter="http-json",
                           endpoint="https://supplier.example", credentials=CREDENTIALS,
                           actor="t")
    sku = define_product(runtime, delivery="topup", price=10000)
    choices = [[TopupOffer(f"sup-{n}", f"X-{i}", Money(9000 + i, "CNY"), n)
                for n in range(3)] for i in range(5)]
    results = at_once(lambda i: suppliers.set_offers(sku, choices[i], "t"), 5)
    assert not [r for r in results if isinstance(r, Exception)], results
    stored = runtime.store.find(ids.topup_offers_id(sku))  # past this process's recent copy
    assert stored.version == 1 + 5  # created once, then five sets
    assert stored.ranked() in choices
