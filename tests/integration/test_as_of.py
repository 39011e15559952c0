"""A code's state at a past instant, from its own events."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from engine.kernel.errors import NotFound, ValidationFailed
from replay.as_of import aggregate_at, code_state_at
from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes

TICK = timedelta(microseconds=1)


def one_code(rt) -> tuple[str, str, uuid.UUID]:
    """A SKU holding one imported code: (sku, code string, code id)."""
    sku = define_product(rt)
    row = codes_for(1)[0]
    import_codes(rt, sku, [row])
    caught_up(rt)
    return sku, row.code, rt.engine.codes.look_up(row.code).id


def sold_and_redeemed(rt) -> tuple[uuid.UUID, list]:
    """A code imported, reserved, sold and redeemed; its id and its events."""
    sku, code, code_id = one_code(rt)
    rt.engine.reservations.reserve(sku=sku, quantity=1, order_id="order-1", holder="buyer-1",
                                   actor="t")
    rt.engine.reservations.sell(code_ids=[code_id], order_id="order-1", actor="t")
    rt.engine.redemptions.redeem(code=code, merchant_id="m-1", terminal_id="pos-7",
                                 location="Hangzhou", actor="t")
    events = list(rt.store.events.get(code_id))
    assert [e.timestamp for e in events] == sorted({e.timestamp for e in events})
    return code_id, events


def midpoint(earlier: datetime, later: datetime) -> datetime:
    return earlier + (later - earlier) / 2


def test_each_event_instant_shows_the_state_that_event_made(runtime):
    code_id, events = sold_and_redeemed(runtime)
    states = [code_state_at(runtime.store, code_id, e.timestamp) for e in events]
    assert [(s["status"], s["version"]) for s in states] == [
        ("available", 1), ("reserved", 2), ("sold", 3), ("redeemed", 4)]


def test_an_instant_between_two_events_shows_the_earlier_state(runtime):
    code_id, events = sold_and_redeemed(runtime)
    between = [midpoint(a.timestamp, b.timestamp) for a, b in zip(events, events[1:])]
    assert [code_state_at(runtime.store, code_id, t)["status"] for t in between] == [
        "available", "reserved", "sold"]


def test_the_instant_before_an_event_does_not_include_it(runtime):
    code_id, events = sold_and_redeemed(runtime)
    assert code_state_at(runtime.store, code_id, events[3].timestamp - TICK)["status"] == "sold"


def test_reserved_state_names_its_order_and_holder(runtime):
    code_id, events = sold_and_redeemed(runtime)
    state = code_state_at(runtime.store, code_id, midpoint(events[1].timestamp,
                                                           events[2].timestamp))
    assert (state["order_id"], state["holder"], state["redeemed_by"]) == (
        "order-1", "buyer-1", None)


def test_redeemed_state_names_merchant_terminal_place_and_time(runtime):
    code_id, events = sold_and_redeemed(runtime)
    state = code_state_at(runtime.store, code_id, events[3].timestamp + timedelta(days=1))
    assert (state["redeemed_by"], state["terminal_id"], state["location"]) == (
        "m-1", "pos-7", "Hangzhou")
    assert state["redeemed_at"] == events[3].timestamp


def test_state_now_equals_the_current_code(runtime):
    code_id, _ = sold_and_redeemed(runtime)
    now = datetime.now(timezone.utc)
    assert code_state_at(runtime.store, code_id, now) == runtime.engine.codes.get(code_id).state()


def test_before_its_import_a_code_is_not_found(runtime):
    code_id, events = sold_and_redeemed(runtime)
    with pytest.raises(NotFound):
        code_state_at(runtime.store, code_id, events[0].timestamp - TICK)


def test_an_unknown_id_is_not_found(runtime):
    with pytest.raises(NotFound):
        code_state_at(runtime.store, uuid.uuid4(), datetime.now(timezone.utc))


def test_a_voided_code_was_available_until_its_void(runtime):
    _, _, code_id = one_code(runtime)
    runtime.engine.codes.void(code_id=code_id, reason="recall", actor="t")
    imported, voided = runtime.store.events.get(code_id)
    assert code_state_at(runtime.store, code_id, voided.timestamp - TICK)["status"] == "available"
    assert code_state_at(runtime.store, code_id, voided.timestamp)["status"] == "voided"


def test_a_rolled_back_redemption_shows_until_the_rollback(runtime):
    sku, code, code_id = one_code(runtime)
    runtime.engine.reservations.reserve(sku=sku, quantity=1, order_id="o", holder="h",
                                        actor="t")
    runtime.engine.reservations.sell(code_ids=[code_id], order_id="o", actor="t")
    _, redemption = runtime.engine.redemptions.redeem(code=code, merchant_id="m-2",
                                                      terminal_id=None, location=None,
                                                      actor="t")
    runtime.engine.redemptions.roll_back(redemption_id=redemption.id, reason="mistake",
                                         actor="t")
    *_, redeemed, rolled_back = runtime.store.events.get(code_id)
    before = code_state_at(runtime.store, code_id, rolled_back.timestamp - TICK)
    after = code_state_at(runtime.store, code_id, rolled_back.timestamp)
    assert (before["status"], before["redeemed_by"]) == ("redeemed", "m-2")
    assert (after["status"], after["redeemed_by"]) == ("sold", None)


def test_an_instant_without_a_timezone_is_refused(runtime):
    code_id, events = sold_and_redeemed(runtime)
    with pytest.raises(ValidationFailed):
        code_state_at(runtime.store, code_id, events[0].timestamp.replace(tzinfo=None))


def test_a_batch_is_not_a_code(runtime):
    sku = define_product(runtime)
    batch = import_codes(runtime, sku, codes_for(2))
    with pytest.raises(NotFound):
        code_state_at(runtime.store, batch.batch_id, datetime.now(timezone.utc))


def test_any_aggregate_can_be_seen_as_of_an_instant(runtime):
    sku = define_product(runtime)
    batch = import_codes(runtime, sku, codes_for(2))
    opened, completed = runtime.store.events.get(batch.batch_id)
    assert aggregate_at(runtime.store, batch.batch_id, opened.timestamp).completed is False
    finished = aggregate_at(runtime.store, batch.batch_id, completed.timestamp)
    assert (finished.completed, finished.imported) == (True, 2)
