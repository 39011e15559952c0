"""Direct top-ups over real HTTP on 127.0.0.1: the API, two simulated suppliers calling it
back, every failure mode of docs/suppliers.md, on both stores."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from api.idempotency import IdempotencyStore
from engine.topups.fulfilment import Fulfilment, fulfilment_id
from supplier_adapters.http_json import signature
from tests.e2e.topup_world import COST_A, COST_B, PRICE, World, account, api_server

DEADLINE = 3.0


@pytest.fixture
def settings(settings):
    """Quick queries and deadlines, a breaker that opens after two failures."""
    return dataclasses.replace(settings, topup_query_seconds=0.2,
                               topup_deadline_seconds=DEADLINE, breaker_failures=2,
                               breaker_cooldown_seconds=60.0, supplier_timeout_seconds=0.5,
                               topup_poll_seconds=0.02,
                               supplier_allow_private_urls=True)  # the simulators' 127.0.0.1


@pytest.fixture
def world(runtime, keys) -> Iterator[World]:
    server = api_server(runtime).start()
    made = World(server.url, keys)
    yield made
    made.close()
    server.stop()


def _two_suppliers(world: World, **a_config):
    sim_a = world.supplier("sup-a", **a_config)
    sim_b = world.supplier("sup-b")
    world.product([("sup-a", COST_A), ("sup-b", COST_B)])
    return sim_a, sim_b


def _events(runtime, order_id: str) -> list:
    return list(runtime.store.repository.event_store.get(fulfilment_id(order_id)))


def _books_balance(world: World) -> None:
    trial = world.trial_balance()
    assert trial["total_debits"] == trial["total_credits"]


# -- placing ----------------------------------------------------------------------------


def test_a_top_up_order_needs_an_account_that_matches_the_pattern(world):
    _two_suppliers(world)
    order = {"buyer_id": "b-1", "items": [{"sku": world.sku, "quantity": 1}]}
    missing = world.http.post("/v1/orders", headers=world.keys["app"], json=order)
    wrong = world.http.post("/v1/orders", headers=world.keys["app"],
                            json={**order, "recharge_account": "12345"})
    two = world.http.post("/v1/orders", headers=world.keys["app"], json={
        **order, "items": [{"sku": world.sku, "quantity": 2}], "recharge_account": account()})
    for answer in (missing, wrong, two):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert "12345" not in wrong.text


def test_a_pattern_re2_cannot_run_is_refused_when_the_product_is_defined(world):
    for pattern in (r"(\w)\1", r"(?=a)a", r"(?>a)b", "x" * 201):
        answer = world.http.post("/v1/products", headers=world.keys["app"], json={
            "sku": "BAD-1", "name": "Bad", "delivery": "topup", "price": 100,
            "recharge_account_pattern": pattern})
        assert answer.status_code == 422, pattern
        assert answer.json()["code"] == "validation_error"


def test_a_catastrophic_pattern_answers_a_hostile_order_at_once(world):
    defined = world.http.post("/v1/products", headers=world.keys["app"], json={
        "sku": world.sku, "name": "Hostile", "delivery": "topup", "price": 100,
        "recharge_account_pattern": r"(?:a?){27}a{27}"})
    assert defined.status_code == 201, defined.text
    started = time.monotonic()
    answer = world.http.post("/v1/orders", headers=world.keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": world.sku, "quantity": 1}],
        "recharge_account": "a" * 27})
    assert answer.status_code == 201, answer.text
    assert time.monotonic() - started < 1.0  # 5 s and doubling per character, backtracking


def test_a_card_product_has_no_recharge_pattern(world):
    answer = world.http.post("/v1/products", headers=world.keys["app"], json={
        "sku": "CARD-1", "name": "Card", "delivery": "card", "price": 100,
        "recharge_account_pattern": "mobile_cn"})
    assert answer.status_code == 422


def test_the_account_is_shown_masked_and_stored_sealed(world, runtime):
    _two_suppliers(world)
    number = account()
    paid = world.paid_order(number)
    assert paid["status"] == "fulfilling"
    assert paid["recharge_account"] == f"{number[:2]}****{number[-2:]}"
    raw = b"".join(e.state for e in runtime.store.recorder.select_events(
        uuid.UUID(paid["order_id"])))
    assert raw and number.encode() not in raw


# -- outcomes ---------------------------------------------------------------------------


def test_the_first_supplier_delivers_and_is_owed_its_cost(world):
    sim_a, sim_b = _two_suppliers(world)
    number = account()
    paid = world.paid_order(number)
    done = world.settled(paid["order_id"])
    assert done["status"] == "delivered"
    assert done["topup"]["supplier_id"] == "sup-a"
    assert (sim_a.credits(number), sim_b.credits(number)) == (1, 0)
    assert world.balance("liabilities:suppliers:sup-a") == -COST_A
    assert world.balance("liabilities:unearned") == 0
    assert world.balance("income:sales") == -PRICE
    books = world.reconciliation(paid["order_id"])
    assert books["consistent"] and books["revenue"] == PRICE and books["cost"] == COST_A
    _books_balance(world)


def test_a_definite_failure_fails_over_to_the_next_supplier(world):
    number = account()
    sim_a, sim_b = _two_suppliers(world, behaviours={number: "fail"})
    done = world.settled(world.paid_order(number)["order_id"])
    assert done["status"] == "delivered"
    assert [a["outcome"] for a in done["topup"]["attempts"]] == ["failed", "succeeded"]
    assert (sim_a.credits(number), sim_b.credits(number)) == (0, 1)
    assert world.balance("liabilities:suppliers:sup-b") == -COST_B
    assert world.balance("liabilities:suppliers:sup-a") == 0


def test_when_every_supplier_fails_the_payment_is_refunded(world, runtime):
    number = account()
    sim_a = world.supplier("sup-a", behaviours={number: "fail"})
    sim_b = world.supplier("sup-b", behaviours={number: "fail"})
    world.product([("sup-a", COST_A), ("sup-b", COST_B)])
    paid = world.paid_order(number)
    done = world.settled(paid["order_id"])
    assert done["status"] == "refunded"
    assert done["topup"]["status"] == "failed"
    assert done["refunds"][0]["amount"] == PRICE and done["refunds"][0]["automatic"]
    assert (sim_a.credits(number), sim_b.credits(number)) == (0, 0)
    assert world.balance("assets:clearing:wechat") == 0
    assert world.balance("liabilities:unearned") == 0
    failed = [e for e in _events(runtime, paid["order_id"])
              if isinstance(e, Fulfilment.Failed)]
    assert len(failed) == 1 and failed[0].supplier_id == "sup-b"
    assert world.reconciliation(paid["order_id"])["consistent"]


def test_a_timeout_is_queried_and_succeeds_without_failover(world):
    number = account()
    sim_a, sim_b = _two_suppliers(world, behaviours={number: "timeout"})
    done = world.settled(world.paid_order(number)["order_id"])
    assert done["status"] == "delivered"
    assert len(done["topup"]["attempts"]) == 1
    assert (sim_a.credits(number), sim_b.credits(number)) == (1, 0)


def test_a_lost_request_is_found_failed_by_the_query_and_fails_over(world):
    number = account()
    sim_a, sim_b = _two_suppliers(world, behaviours={number: "error"})
    done = world.settled(world.paid_order(number)["order_id"])
    assert done["status"] == "delivered" and done["topup"]["supplier_id"] == "sup-b"
    assert (sim_a.credits(number), sim_b.credits(number)) == (0, 1)


def _needs_attention(world: World, number: str) -> dict:
    """An order whose first supplier answers pending and decides only much later."""
    paid = world.paid_order(number)
    order = world.settled(paid["order_id"], timeout=DEADLINE + 10)
    assert order["status"] == "needs_attention", order
    assert order["topup"]["status"] == "needs_attention"
    return order


def _resolve(world: World, order_id: str, outcome: str, key: str | None = None,
             role: str = "support"):
    headers = {**world.keys[role], **({"Idempotency-Key": key} if key else {})}
    return world.http.post(f"/v1/orders/{order_id}/topup/resolve", headers=headers,
                           json={"outcome": outcome, "note": "checked with the supplier"})


def test_unknown_past_the_deadline_needs_attention_and_support_fails_it_over(world):
    number = account()
    _, sim_b = _two_suppliers(world, behaviours={number: "pending"},
                              callback_delay_ms=60_000)
    order = _needs_attention(world, number)
    assert _resolve(world, order["order_id"], "failed", role="app").status_code == 403
    answer = _resolve(world, order["order_id"], "failed", key="resolve-1")
    assert answer.status_code == 200, answer.text
    again = _resolve(world, order["order_id"], "failed", key="resolve-1")
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == answer.json()
    done = world.settled(order["order_id"])
    assert done["status"] == "delivered" and done["topup"]["supplier_id"] == "sup-b"
    assert sim_b.credits(number) == 1
    late = _resolve(world, order["order_id"], "failed")
    assert late.status_code == 409


def test_a_decision_whose_answer_was_lost_is_answered_by_its_retry_and_made_once(
        world, runtime, monkeypatch):
    """Its answer never kept and its server dead, as a kill -9 would leave it: the retry
    of the key answers the order from the decision's receipt and fails over no further."""
    number = account()
    _, sim_b = _two_suppliers(world, behaviours={number: "pending"},
                              callback_delay_ms=60_000)
    order = _needs_attention(world, number)
    monkeypatch.setattr(IdempotencyStore, "keep", lambda self, *answer: None)
    monkeypatch.setattr(runtime.lease, "is_alive", lambda holder: False)
    answer = _resolve(world, order["order_id"], "failed", key="resolve-lost")
    assert answer.status_code == 200, answer.text
    done = world.settled(order["order_id"])
    again = _resolve(world, order["order_id"], "failed", key="resolve-lost")
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (200, "true"), \
        again.text
    assert again.json()["status"] == done["status"] == "delivered"
    assert sim_b.credits(number) == 1


def test_support_confirms_a_success_and_that_supplier_is_owed(world):
    number = account()
    _two_suppliers(world, behaviours={number: "pending"}, callback_delay_ms=60_000)
    order = _needs_attention(world, number)
    answer = _resolve(world, order["order_id"], "succeeded")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "delivered"
    assert world.balance("liabilities:suppliers:sup-a") == -COST_A
    assert world.balance("liabilities:suppliers:sup-b") == 0


def test_a_pending_attempt_is_queried_ever_more_rarely_then_escalated_on_time(world, runtime):
    runtime.engine.topups.query_seconds = 0.05
    number = account()
    sim_a, _ = _two_suppliers(world, behaviours={number: "pending"}, callback_delay_ms=60_000)
    order = _needs_attention(world, number)
    queried = sim_a.topup(f"{order['order_id']}-1")["queried"]
    # pauses of 0.05, 0.1, 0.2, 0.4, 0.8, 1.6 s, then one just past the 3 s deadline: 7
    # queries, where a fixed 0.05 s pause asks some 60 times
    assert 1 <= queried <= 9, queried


def test_a_failing_supplier_is_skipped_for_a_cool_down(world):
    first, second, third = account(), account(), account()
    sim_a, sim_b = _two_suppliers(world, behaviours={first: "fail", second: "fail"})
    for number in (first, second):
        world.settled(world.paid_order(number)["order_id"])
    done = world.settled(world.paid_order(third)["order_id"])
    assert [a["supplier_id"] for a in done["topup"]["attempts"]] == ["sup-b"]
    assert sim_a.topup(f"{done['order_id']}-1") is None  # never asked
    assert (sim_a.credits(third), sim_b.credits(third)) == (0, 1)


def test_an_order_says_which_supplier_it_skipped_and_why(world, runtime):
    first, second, third = account(), account(), account()
    _two_suppliers(world, behaviours={first: "fail", second: "fail"})
    for number in (first, second):
        assert world.settled(world.paid_order(number)["order_id"])["topup"]["skipped"] == []
    done = world.settled(world.paid_order(third)["order_id"])
    [skip] = done["topup"]["skipped"]
    assert (skip["supplier_id"], skip["supplier_sku"], skip["before_attempt"]) == \
        ("sup-a", "sup-a-100", 1)
    assert skip["reason"].startswith("circuit breaker open: 2 failed or unknown answers")
    stored = [e for e in _events(runtime, done["order_id"])
              if isinstance(e, Fulfilment.OfferSkipped)]
    assert [e.supplier_id for e in stored] == ["sup-a"]


def test_a_pending_top_up_is_decided_by_the_suppliers_callback(world, runtime):
    runtime.engine.topups.query_seconds = 30  # only the callback can decide in time
    number = account()
    sim_a, _ = _two_suppliers(world, behaviours={number: "pending"}, callback_delay_ms=100)
    paid = world.paid_order(number)
    done = world.settled(paid["order_id"])
    assert done["status"] == "delivered" and done["topup"]["supplier_id"] == "sup-a"
    succeeded = [e for e in _events(runtime, paid["order_id"])
                 if isinstance(e, Fulfilment.Succeeded)]
    assert [e.via for e in succeeded] == ["callback"]
    assert sim_a.credits(number) == 1


def test_duplicate_and_late_callbacks_are_recorded_and_change_nothing(world, runtime):
    number = account()
    sim_a, _ = _two_suppliers(world, callback_always=True, duplicate_callbacks=2,
                              out_of_order=True)
    paid = world.paid_order(number)
    world.settled(paid["order_id"])
    deadline = time.monotonic() + 10
    while len(sim_a.callbacks()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    events = _events(runtime, paid["order_id"])
    recorded = [e for e in events if isinstance(e, Fulfilment.OutcomeRecorded)]
    # each distinct callback is recorded once, however many copies of it arrived
    distinct = {(c["status"], c["sequence"]) for c in sim_a.callbacks()}
    assert len(sim_a.callbacks()) > len(distinct)
    assert len(recorded) == len(distinct) and {e.via for e in recorded} == {"callback"}
    assert sum(isinstance(e, Fulfilment.Succeeded) for e in events) == 1
    assert world.order(paid["order_id"])["status"] == "delivered"
    assert world.balance("liabilities:suppliers:sup-a") == -COST_A
    _books_balance(world)


def test_a_success_after_giving_up_is_posted_and_flagged(world, runtime):
    number = account()
    sim_a, sim_b = _two_suppliers(world, behaviours={number: "pending"},
                                  callback_delay_ms=int((DEADLINE + 3) * 1000))
    order = _needs_attention(world, number)
    assert _resolve(world, order["order_id"], "failed").status_code == 200
    world.settled(order["order_id"])
    deadline = time.monotonic() + 15
    while world.balance("liabilities:suppliers:sup-a") == 0:
        assert time.monotonic() < deadline, "the late success was not posted"
        time.sleep(0.1)
    assert (sim_a.credits(number), sim_b.credits(number)) == (1, 1)
    assert world.balance("liabilities:suppliers:sup-a") == -COST_A
    assert world.balance("expenses:write_offs") == COST_A
    books = world.reconciliation(order["order_id"])
    assert "topup_credited_after_giving_up" in books["flags"]
    assert world.order(order["order_id"])["topup"]["attempts"][0]["late_success"]
    _books_balance(world)


def test_a_callback_without_a_valid_signature_is_refused(world):
    _two_suppliers(world)
    unsigned = world.http.post("/v1/suppliers/sup-a/callbacks",
                               json={"reference": "x-1", "status": "succeeded"})
    assert unsigned.status_code == 401, unsigned.text
    assert unsigned.headers["content-type"].startswith("application/problem+json")
    assert unsigned.json()["code"] == "signature_invalid"


def _untrusted_callbacks() -> list[dict[str, str]]:
    """Headers of callbacks nobody can trust: unsigned, wrongly signed, stale, malformed."""
    now = str(int(time.time()))
    body = b'{"reference":"x-1","status":"succeeded"}'
    return [{}, {"quanyi-timestamp": now},
            {"quanyi-timestamp": now, "quanyi-signature": "v1=" + "0" * 64},
            {"quanyi-timestamp": now, "quanyi-signature": signature("guess", now, body)},
            {"quanyi-timestamp": "1", "quanyi-signature": signature("guess", "1", body)},
            {"quanyi-timestamp": "soon", "quanyi-signature": "v1=x"}]


@pytest.mark.parametrize("unknown", ["nobody", "sup-a-", "sup-b.old", "x" * 64])
def test_an_unknown_supplier_is_answered_as_a_known_one_is(world, unknown):
    _two_suppliers(world)
    body = b'{"reference":"x-1","status":"succeeded"}'
    for headers in _untrusted_callbacks():
        known = world.http.post("/v1/suppliers/sup-a/callbacks", content=body,
                                headers={"content-type": "application/json", **headers})
        other = world.http.post(f"/v1/suppliers/{unknown}/callbacks", content=body,
                                headers={"content-type": "application/json", **headers})
        assert (other.status_code, other.json()) == (known.status_code, known.json())
        assert known.status_code == 401, known.text


def _signed_callback(world: World, supplier_id: str, body: dict):
    raw = orjson.dumps(body)
    stamp = str(int(time.time()))
    return world.http.post(f"/v1/suppliers/{supplier_id}/callbacks", content=raw, headers={
        "Content-Type": "application/json", "Quanyi-Timestamp": stamp,
        "Quanyi-Signature": signature("sim-callback-secret", stamp, raw)})


def test_a_signed_callback_naming_no_attempt_of_its_supplier_is_answered_ignored(world):
    _two_suppliers(world)
    done = world.settled(world.paid_order(account())["order_id"])
    ours_at_a = done["topup"]["attempts"][0]["reference"]
    for supplier_id, reference in (("sup-a", "x-1"), ("sup-a", f"{uuid.uuid4()}-1"),
                                   ("sup-a", f"{done['order_id']}-9"), ("sup-b", ours_at_a)):
        answer = _signed_callback(world, supplier_id, {
            "reference": reference, "status": "succeeded", "sequence": 2})
        assert answer.status_code == 200, (reference, answer.text)
        assert answer.json() == {"reference": reference, "outcome": "succeeded",
                                 "result": "ignored", "topup_status": None}
    assert world.order(done["order_id"])["status"] == "delivered"
    again = _signed_callback(world, "sup-a", {"reference": ours_at_a, "status": "succeeded"})
    assert again.json()["result"] == "recorded" and again.json()["topup_status"] == "succeeded"


def test_a_signed_callback_whose_sequence_is_not_a_whole_number_is_refused(world):
    _two_suppliers(world)
    for sequence in ("2", -1, 1.5, True, [2]):
        answer = _signed_callback(world, "sup-a", {
            "reference": "x-1", "status": "failed", "sequence": sequence})
        assert answer.status_code == 400, (sequence, answer.text)
        assert answer.json()["code"] == "callback_rejected"


def test_only_the_callback_path_goes_without_an_api_key(world):
    _two_suppliers(world)
    assert world.http.get("/v1/suppliers/sup-a/callbacks").status_code == 401
    assert world.http.get("/v1/suppliers/sup-a").status_code == 401
    assert world.http.post("/v1/suppliers/sup-a/callbacks/x").status_code == 401


def test_placing_and_paying_a_top_up_replay_under_their_idempotency_keys(world):
    _two_suppliers(world)
    body = {"buyer_id": "b-1", "items": [{"sku": world.sku, "quantity": 1}],
            "recharge_account": account()}
    headers = {**world.keys["app"], "Idempotency-Key": "place-topup-1"}
    first = world.http.post("/v1/orders", headers=headers, json=body)
    second = world.http.post("/v1/orders", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json()["order_id"] == first.json()["order_id"]
    pay = {"payment_ref": "pay-idem-1", "amount": PRICE, "currency": "CNY"}
    headers = {**world.keys["app"], "Idempotency-Key": "pay-topup-1"}
    url = f"/v1/orders/{first.json()['order_id']}/payments"
    paid = world.http.post(url, headers=headers, json=pay)
    replayed = world.http.post(url, headers=headers, json=pay)
    assert paid.status_code == replayed.status_code == 200
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert world.settled(first.json()["order_id"])["status"] == "delivered"


def test_a_supplier_that_stays_unreachable_escalates_without_failover(world):
    number = account()
    sim_a, sim_b = _two_suppliers(world, behaviours={number: "timeout"})
    paid = world.paid_order(number)
    world.wait(paid["order_id"], lambda o: o["topup"] and o["topup"]["attempts"])
    world.sims["sup-a"].stop()  # its answer never comes, and no query reaches it
    order = world.settled(paid["order_id"], timeout=DEADLINE + 10)
    assert order["status"] == "needs_attention"
    assert [a["supplier_id"] for a in order["topup"]["attempts"]] == ["sup-a"]
    assert sim_b.credits(number) == 0
