"""Top-up outcomes reach backend apps as Standard Webhooks, end to end over real HTTP on
127.0.0.1: the API, a simulated supplier calling it, and a webhook receiver."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook

from engine.settings import Settings
from tests.e2e.test_webhooks_api import FAST, register
from tests.e2e.topup_world import COST_A, api_server, World, account
from tests.e2e.webhook_receiver import Receiver


@pytest.fixture
def settings(quanyi_env: dict[str, str]) -> Settings:
    return dataclasses.replace(Settings.from_env({**quanyi_env, **FAST}),
                               topup_query_seconds=0.2, topup_poll_seconds=0.02,
                               supplier_allow_private_urls=True)  # the simulator's 127.0.0.1


@pytest.fixture
def world(runtime, keys) -> Iterator[World]:
    server = api_server(runtime).start()
    made = World(server.url, keys)
    yield made
    made.close()
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.down()


def test_a_top_up_that_succeeds_is_told_signed(world, receiver):
    hook = register(world.http, world.keys["app"], receiver.url, "topup.succeeded",
                    "order.delivered")
    sim = world.supplier("sup-a")
    world.product([("sup-a", COST_A)])
    number = account()
    order = world.paid_order(number)
    (told,) = receiver.wait_for(1, "topup.succeeded")
    message = Webhook(hook["secret"]).verify(told.body, told.headers)
    assert message["data"]["order_id"] == order["order_id"]
    assert message["data"]["supplier_id"] == "sup-a"
    assert world.settled(order["order_id"])["status"] == "delivered"
    assert sim.credits(number) == 1
    assert number.encode() not in told.body  # the recharge account is personal data
    assert not receiver.of_type("order.delivered")  # a top-up delivers no codes


def test_a_top_up_no_supplier_could_make_is_told_failed_and_refunded(world, receiver):
    hook = register(world.http, world.keys["app"], receiver.url, "topup.failed",
                    "order.refunded")
    world.supplier("sup-a", failure_rate=1.0)
    world.product([("sup-a", COST_A)])
    order = world.paid_order(account())
    (failed,) = receiver.wait_for(1, "topup.failed")
    (refunded,) = receiver.wait_for(1, "order.refunded")
    for told in (failed, refunded):
        assert Webhook(hook["secret"]).verify(told.body, told.headers)["data"]["order_id"] \
            == order["order_id"]
    assert failed.data["supplier_id"] == "sup-a"
    assert world.settled(order["order_id"])["status"] == "refunded"
