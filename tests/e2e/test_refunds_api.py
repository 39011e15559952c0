"""POST /v1/orders/{id}/refunds over HTTP on both stores: answers, conflicts, idempotency,
ownership, and an order that shows the codes it holds and those it released."""

from __future__ import annotations

import uuid

from engine.ledger.transactions import transaction_id
from tests.conftest import caught_up
from tests.e2e.conftest import import_codes
from tests.integration.ledger_helpers import sale_of


def paid_order(client, keys, runtime, sku, codes):
    import_codes(client, keys, sku, codes)
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": sku, "quantity": len(codes)}]}).json()
    paid = client.post(f"/v1/orders/{placed['order_id']}/payments", headers=keys["app"],
                       json={"payment_ref": f"pay-{uuid.uuid4().hex[:8]}",
                             "amount": placed["amount"], "currency": "CNY",
                             "provider": "wechat"})
    assert paid.status_code == 200, paid.text
    assert sale_of(runtime, runtime.engine.orders.get(uuid.UUID(placed["order_id"]))).legs
    return paid.json()


def refund(client, headers, order, **body):
    return client.post(f"/v1/orders/{order['order_id']}/refunds", headers=headers,
                       json={"reason": "buyer asked", **body})


def test_partial_then_full_refund(client, keys, runtime, product):
    order = paid_order(client, keys, runtime, product, ["RF-1", "RF-2"])
    first, second = (c["code_id"] for c in order["codes"])
    answer = refund(client, keys["app"], order, code_ids=[first])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["amount"] == 1990 and body["currency"] == "CNY"
    assert body["code_ids"] == [first] and body["order_id"] == order["order_id"]
    assert body["reason"] == "buyer asked" and body["refunded_at"].endswith("Z")
    shown = client.get(f"/v1/orders/{order['order_id']}", headers=keys["support"]).json()
    assert shown["status"] == "partially_refunded"
    assert [c["code_id"] for c in shown["codes"]] == [second]
    assert shown["released"] == [{"code_id": first, "sku": product, "why": "refunded"}]
    again = refund(client, keys["app"], order, code_ids=[first])
    assert again.status_code == 409 and again.json()["code"] == "already_refunded"
    rest = refund(client, keys["app"], order)
    assert rest.status_code == 201 and rest.json()["code_ids"] == [second]
    shown = client.get(f"/v1/orders/{order['order_id']}", headers=keys["app"]).json()
    assert shown["status"] == "refunded" and shown["codes"] == []
    caught_up(runtime)
    stock = client.get(f"/v1/products/{product}/inventory", headers=keys["app"]).json()
    assert (stock["available"], stock["sold"]) == (2, 0)  # never revealed: back on sale


def test_a_redeemed_code_answers_409_already_redeemed(client, keys, runtime, product):
    order = paid_order(client, keys, runtime, product, ["RF-RED-1"])
    redeemed = client.post("/v1/redemptions", headers=keys["merchant"], json={
        "code": "RF-RED-1", "merchant_id": "m-1"})
    assert redeemed.status_code == 201, redeemed.text
    answer = refund(client, keys["app"], order, code_ids=[order["codes"][0]["code_id"]])
    assert answer.status_code == 409 and answer.json()["code"] == "already_redeemed"
    assert answer.json()["merchant_id"] == "m-1"


def test_an_idempotent_retry_refunds_once(client, keys, runtime, product):
    order = paid_order(client, keys, runtime, product, ["RF-IDEM-1"])
    headers = {**keys["app"], "Idempotency-Key": "refund-1"}
    first = refund(client, headers, order)
    second = refund(client, headers, order)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    shown = client.get(f"/v1/orders/{order['order_id']}", headers=keys["app"]).json()
    assert len(shown["refunds"]) == 1
    refund_id = first.json()["refund_id"]
    assert runtime.store.find(transaction_id("refund", refund_id)) is not None
    assert runtime.store.repository.get(transaction_id("refund", refund_id)).version == 1


def test_another_app_key_finds_no_order(client, keys, runtime, product):
    order = paid_order(client, keys, runtime, product, ["RF-OWN-1"])
    other = runtime.engine.keys.issue(role="app", name="other-shop")
    answer = refund(client, {"Authorization": f"Bearer {other.secret}"}, order)
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert refund(client, keys["merchant"], order).status_code == 403


def test_bad_refund_bodies_are_422(client, keys, runtime, product):
    order = paid_order(client, keys, runtime, product, ["RF-BAD-1"])
    for body in ({"reason": ""}, {"code_ids": [], "reason": "x"},
                 {"code_ids": ["not-a-uuid"], "reason": "x"},
                 {"code_ids": [str(uuid.uuid4())], "reason": "x"}, {"reason": "a\x00b"}):
        answer = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=keys["app"],
                             json=body)
        assert answer.status_code == 422, (body, answer.text)


def test_a_cancelled_order_shows_no_codes_and_lists_them_released(client, keys, product):
    import_codes(client, keys, product, ["RF-CAN-1"])
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": product, "quantity": 1}]}).json()
    held = placed["codes"][0]["code_id"]
    cancelled = client.post(f"/v1/orders/{placed['order_id']}/cancel", headers=keys["app"])
    assert cancelled.status_code == 200
    assert cancelled.json()["codes"] == []
    assert cancelled.json()["released"] == [{"code_id": held, "sku": product,
                                             "why": "cancelled"}]
