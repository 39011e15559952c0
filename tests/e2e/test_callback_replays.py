"""A signed supplier callback sent again and again within its window (a supplier's retries,
or a replay by anyone who saw it) is recorded once, however many copies race."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson

from engine.topups.fulfilment import Fulfilment
from supplier_adapters.http_json import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from tests.e2e.test_topup_api import _events, _two_suppliers, settings, world  # noqa: F401
from tests.e2e.topup_world import account

COPIES = 300
SENDERS = 12


def _signed(body: dict) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    stamp = str(int(time.time()))
    return raw, {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                 SIGNATURE_HEADER: signature("sim-callback-secret", stamp, raw)}


def _via_callback(runtime, order_id: str) -> list:
    return [e for e in _events(runtime, order_id)
            if getattr(e, "via", None) == "callback"]


def test_one_callback_replayed_300_times_is_recorded_once(world, runtime):
    sim_a, _ = _two_suppliers(world)
    order = world.settled(world.paid_order(account())["order_id"])
    assert order["status"] == "delivered"  # decided by the supplier's answer
    raw, headers = _signed(sim_a.topup(f"{order['order_id']}-1"))
    url = f"{world.api_url}/v1/suppliers/sup-a/callbacks"

    def send(copies: int) -> list[int]:
        with httpx.Client(timeout=30) as http:
            return [http.post(url, content=raw, headers=headers).status_code
                    for _ in range(copies)]

    with ThreadPoolExecutor(SENDERS) as pool:
        statuses = [s for job in [pool.submit(send, COPIES // SENDERS)
                                  for _ in range(SENDERS)] for s in job.result()]
    assert statuses == [200] * COPIES
    recorded = _via_callback(runtime, order["order_id"])
    assert [type(e) for e in recorded] == [Fulfilment.OutcomeRecorded]


def test_a_callback_that_decided_is_not_recorded_again_when_resent(world, runtime):
    runtime.engine.topups.query_seconds = 30  # only the callback can decide in time
    number = account()
    _two_suppliers(world, behaviours={number: "pending"}, callback_delay_ms=100,
                   duplicate_callbacks=20)
    order = world.settled(world.paid_order(number)["order_id"])
    assert order["status"] == "delivered"
    time.sleep(1.0)  # the copies arrive one after another
    recorded = _via_callback(runtime, order["order_id"])
    assert [type(e) for e in recorded] == [Fulfilment.Succeeded]


def test_a_different_callback_for_a_decided_attempt_is_still_recorded(world, runtime):
    sim_a, _ = _two_suppliers(world)
    order = world.settled(world.paid_order(account())["order_id"])
    body = sim_a.topup(f"{order['order_id']}-1")
    url = f"{world.api_url}/v1/suppliers/sup-a/callbacks"
    for status in ("succeeded", "failed"):
        raw, headers = _signed({**body, "status": status})
        assert httpx.post(url, content=raw, headers=headers).status_code == 200
    outcomes = [e.outcome for e in _via_callback(runtime, order["order_id"])]
    assert outcomes == ["succeeded", "failed"]
    assert world.order(order["order_id"])["status"] == "delivered"
