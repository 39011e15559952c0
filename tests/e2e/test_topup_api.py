"""Direct top-ups over real HTTP on 127.0.0.1: the API, two simulated suppliers calling it
back, every failure mode of docs/suppliers.md, on both stores."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.e2e.topup_world import COST_A, COST_B, PRICE, ApiServer, World, account


@pytest.fixture
def settings(settings):
    """Quick queries and deadlines, a breaker that opens after two failures."""
    return dataclasses.replace(settings, topup_query_seconds=0.2,
                               topup_deadline_seconds=1.5, breaker_failures=2,
                               breaker_cooldown_seconds=60.0, supplier_timeout_seconds=0.5,
                               topup_poll_seconds=0.02)


@pytest.fixture
def world(runtime, keys) -> Iterator[World]:
    server = ApiServer(runtime).start()
    made = World(server.url, keys)
    yield made
    made.close()
    server.stop()


def test_a_top_up_is_delivered_by_the_first_supplier(world):
    sim = world.supplier("sup-a")
    world.supplier("sup-b")
    world.product([("sup-a", COST_A), ("sup-b", COST_B)])
    number = account()
    paid = world.paid_order(number)
    assert paid["status"] == "fulfilling"
    assert paid["recharge_account"] == "13****" + number[-2:]
    done = world.settled(paid["order_id"])
    assert done["status"] == "delivered"
    assert done["topup"]["supplier_id"] == "sup-a"
    assert sim.credits(number) == 1
