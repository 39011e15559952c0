"""Every command of the OpenAPI document commits, and its answer is lost as a kill -9 would
lose it: never kept, the claim's holder dead. The retry of its Idempotency-Key acts once
and answers 2xx with the resource, found from the receipt committed with the command's
events (engine/eventstore/receipts.py). A command whose first answer was a refusal committed nothing:
its retry runs it again and is refused alike."""

from __future__ import annotations

import uuid

import pytest

from api import idempotency
from api.idempotency import IdempotencyStore
from engine.eventstore.receipts import is_receipt
from tests.e2e.conftest import import_codes
from tests.e2e.test_every_command_replays import (
    REVEAL,
    commands,
    first_allowed,
    keys_of_platform,
    succeeding,
)
from tests.e2e.test_tenant_wall import CARD, call, ok, world  # noqa: F401

SECRET = "secret"
# Commands this world still answers with a refusal: nothing owed to pay out or settle, no
# top-up awaiting a decision, no delivery to send again, an empty statement.
REFUSED_HERE = {("POST", "/v1/orders/{order_id}/topup/resolve"), ("POST", "/v1/payouts"),
                ("POST", "/v1/suppliers/{supplier_id}/settlements"),
                ("POST", "/v1/reconciliation/providers/{provider}/statements"),
                ("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")}
# An answer that changes by the moment it is given, whoever gives it.
MOMENTARY = {("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")}


@pytest.fixture
def answers_lost(monkeypatch, runtime):
    """From now on no answer is kept and every claim's holder is dead: each retry meets
    what a process killed between the command's commit and its answer left."""
    monkeypatch.setattr(IdempotencyStore, "keep", lambda self, *answer: None)
    monkeypatch.setattr(runtime.lease, "is_alive", lambda holder: False)


def all_succeeding(client, a) -> tuple[dict, dict]:
    """Bodies and named things under which every command but REFUSED_HERE succeeds: a
    code of A's kept order is redeemed by A's merchant, a code never sold is voided, a
    supplier is registered with every credential it needs."""
    kept = a.ids["order_id"]
    table, named = succeeding(client, a)
    shown = ok(client.post(f"/v1/orders/{kept}/reveal", headers=a.keys["app"]))
    table[("POST", "/v1/redemptions")] = {"code": shown["codes"][0]["code"],
                                          "merchant_id": f"m-{a.name}"}
    unsold = f"UNSOLD-{uuid.uuid4().hex[:10]}"
    ok(client.post(f"/v1/products/{CARD}/batches", headers=a.keys["app"], json={
        "supplier_id": "sup-a", "unit_cost": 1000, "codes": [{"code": unsold}]}), 201)
    found = ok(client.post("/v1/codes/lookup", headers=a.keys["support"], json={"code": unsold}))
    named[("POST", "/v1/codes/{code_id}/void")] = {**a.ids, "code_id": found["code_id"]}
    table[("POST", "/v1/suppliers")]["credentials"]["callback_secret"] = "s"
    return table, named


def same_resource(first: dict, again: dict) -> list[str]:
    """The fields of the first answer that the retry's answer tells otherwise (a secret,
    shown once, is never told again)."""
    return [name for name, value in first.items()
            if name != SECRET and again.get(name) != value]


def retried(client, runtime, sent: tuple, first) -> list[str]:
    """What is wrong with the retry of a command whose answer was lost (nothing: [])."""
    (method, path), headers, params, body = sent
    stored = runtime.store.last_position()
    again = call(client, headers, method, path, params, body)
    if again.status_code != first.status_code:
        return [f"answered {again.status_code}: {again.text[:160]}"]
    if (method, path) == REVEAL:
        return []  # a reveal's retry is a reveal of its own, recorded (the contract)
    wrong = ["acted again"] if runtime.store.last_position() != stored else []
    if first.status_code < 300 and (method, path) not in MOMENTARY:
        wrong += [f"told {name} otherwise" for name in same_resource(first.json(), again.json())]
    return wrong


def test_a_lost_answer_is_found_by_the_retry_which_acts_once(
        client, runtime, world, request):  # noqa: F811 - the fixture imported above
    a, _ = world
    platform = keys_of_platform(runtime)
    table, named = all_succeeding(client, a)
    request.getfixturevalue("answers_lost")
    wrong = {}
    for method, path in commands(client):
        body, params = table[(method, path)], named.get((method, path), a.ids)
        first, headers = first_allowed(client, a, platform, params, method, path, body)
        if (method, path) not in REFUSED_HERE:
            assert first.status_code < 300, (method, path, first.text)
        found = retried(client, runtime, ((method, path), headers, params, body), first)
        if found:
            wrong[f"{method} {path}"] = found
    assert wrong == {}
    assert len(commands(client)) > 20


def product_body(sku: str) -> dict:
    return {"sku": sku, "name": "Receipted", "delivery": "card", "price": 1990}


def test_a_receipt_is_in_the_log_names_no_key_and_is_not_in_the_feed(client, runtime, keys):
    key = f"receipt-key-{uuid.uuid4().hex}"
    made = client.post("/v1/products", headers={**keys["app"], "Idempotency-Key": key},
                       json=product_body("RCPT-1"))
    assert made.status_code == 201, made.text
    notes = runtime.store.notifications(0, 10_000)
    receipts = [note for note in notes if is_receipt(note.topic)]
    assert len(receipts) == 1
    assert key.encode() not in receipts[0].state
    feed = client.get("/v1/events", params={"limit": 1000}, headers=keys["admin"])
    assert feed.status_code == 200, feed.text
    assert len(feed.json()["items"]) == len(notes) - 1
    assert not [e for e in feed.json()["items"] if e["type"].startswith("command_receipt")]


def test_a_committed_key_sent_with_another_request_is_refused_when_its_answer_is_gone(
        client, runtime, keys):
    """Its kept answer gone (48 hours passed, or a 5xx released the claim): the receipt
    still tells the same request (answered from it) from another (refused)."""
    headers = {**keys["app"], "Idempotency-Key": f"gone-{uuid.uuid4().hex}"}
    first = client.post("/v1/products", headers=headers, json=product_body("RCPT-2"))
    assert first.status_code == 201, first.text
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DELETE FROM api_idempotency")
    stored = runtime.store.last_position()
    other = client.post("/v1/products", headers=headers, json=product_body("RCPT-3"))
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DELETE FROM api_idempotency")
    again = client.post("/v1/products", headers=headers, json=product_body("RCPT-2"))
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true")
    assert same_resource(first.json(), again.json()) == []
    assert runtime.store.last_position() == stored


def test_a_run_refused_by_another_run_of_its_key_answers_from_that_runs_receipt(
        client, runtime, keys, product, monkeypatch):
    """A claim taken over while its live holder's lease was lost to a database restart:
    the other run of the key commits right after this one found no receipt, so this run is
    refused by the effect of its own key (a cancel: "order is cancelled"). The receipt that
    refused its save answers instead."""
    import_codes(client, keys, product, [f"RACE-{uuid.uuid4().hex[:10]}"])
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-race", "items": [{"sku": product, "quantity": 1}]})
    assert placed.status_code == 201, placed.text
    order = placed.json()["order_id"]
    headers = {**keys["app"], "Idempotency-Key": f"race-{uuid.uuid4().hex}"}
    first = client.post(f"/v1/orders/{order}/cancel", headers=headers)
    assert first.status_code == 200, first.text
    monkeypatch.setattr(IdempotencyStore, "keep", lambda self, *answer: None)
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DELETE FROM api_idempotency")
    looked = []
    found = idempotency.find_receipt

    def not_yet_on_first_look(store, receipt_id):
        looked.append(receipt_id)
        return None if len(looked) == 1 else found(store, receipt_id)
    monkeypatch.setattr(idempotency, "find_receipt", not_yet_on_first_look)
    stored = runtime.store.last_position()
    again = client.post(f"/v1/orders/{order}/cancel", headers=headers)
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (200, "true"), \
        again.text
    assert len(looked) == 2
    assert again.json()["status"] == "cancelled"
    assert runtime.store.last_position() == stored
