"""The fields the audit, top-up and webhook endpoints added, attacked as a review would: NUL,
control characters and year-9999 instants are refused with 422 and store nothing (the read
models stay caught up, /healthz stays ok); a command sent again with the same
Idempotency-Key the instant its answer arrives acts once; another app key finds nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import caught_up

YEAR_9999 = "9999-12-31T23:59:59-01:00"
HOOK = "https://hooks.example.com/quanyi"


def _topup_product(client, keys) -> str:
    sku = f"TOPUP-{uuid.uuid4().hex[:6]}"
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": sku, "name": "Mobile", "delivery": "topup", "price": 10_000,
        "recharge_account_pattern": "mobile_cn"})
    assert answer.status_code == 201, answer.text
    return sku


def _supplier(supplier_id: str = "sup-x", **changes) -> dict:
    return {"supplier_id": supplier_id, "name": "Supplier", "adapter": "http-json",
            "endpoint": "https://sup.example.com", "credentials": {
                "api_key": "k-1", "callback_secret": "c-1"}, **changes}


def _poisoned(client, keys, product):
    """(method, path, headers, body) of each new command, one hostile field each."""
    topup = _topup_product(client, keys)
    return [
        ("post", "/v1/webhooks", keys["app"], {"url": HOOK + "\x00",
                                                "event_types": ["order.delivered"]}),
        ("post", "/v1/suppliers", keys["admin"], _supplier(name="a\x00b")),
        ("post", "/v1/suppliers", keys["admin"], _supplier(supplier_id="s\x01")),
        ("post", "/v1/suppliers", keys["admin"], _supplier(credentials={
            "api_key": "k\x00", "callback_secret": "c"})),
        ("put", f"/v1/products/{topup}/offers", keys["app"], {"offers": [
            {"supplier_id": "sup-x", "supplier_sku": "s\x00", "cost": 9000, "priority": 0}]}),
        ("post", "/v1/orders", keys["app"], {"buyer_id": "b", "items": [
            {"sku": topup, "quantity": 1}], "recharge_account": "1390000\x0000"}),
        ("post", "/v1/products", keys["app"], {
            "sku": f"T-{uuid.uuid4().hex[:6]}", "name": "x", "delivery": "topup",
            "price": 100, "recharge_account_pattern": "[0-9]{11}\x00"}),
        ("put", f"/v1/products/{product}/low-stock", keys["app"], {"threshold": 2 ** 64}),
        ("get", f"/v1/orders/{uuid.uuid4()}?as_of={YEAR_9999}", keys["app"], None),
        ("get", f"/v1/products/{product}/inventory?as_of={YEAR_9999}", keys["app"], None),
        ("get", f"/v1/ledger/accounts/income:sales?as_of={YEAR_9999}", keys["finance"], None),
    ]


def test_every_new_field_refuses_poison_and_stores_nothing(client, keys, runtime, product):
    attacks = _poisoned(client, keys, product)
    caught_up(runtime)
    before = runtime.store.last_position()
    for method, path, headers, body in attacks:
        answer = client.request(method, path, headers=headers, json=body)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert runtime.store.last_position() == before
    health = client.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json()["projection_lag"] == 0


@pytest.mark.parametrize("command", ["webhook", "supplier", "offers", "low_stock",
                                     "channel_price"])
def test_a_command_resent_at_once_with_its_key_acts_once(client, keys, runtime, product,
                                                         command):
    topup = _topup_product(client, keys)
    client.post("/v1/suppliers", headers=keys["admin"], json=_supplier())
    method, path, headers, body = {
        "webhook": ("post", "/v1/webhooks", keys["app"],
                    {"url": HOOK, "event_types": ["order.delivered"]}),
        "supplier": ("post", "/v1/suppliers", keys["admin"], _supplier("sup-y")),
        "offers": ("put", f"/v1/products/{topup}/offers", keys["app"], {"offers": [
            {"supplier_id": "sup-x", "supplier_sku": "x-100", "cost": 9000,
             "priority": 0}]}),
        "low_stock": ("put", f"/v1/products/{product}/low-stock", keys["app"],
                      {"threshold": 5}),
        "channel_price": ("put", f"/v1/products/{product}/channel-prices/wechat", keys["app"],
                          {"price": 1500}),
    }[command]
    sent = {**headers, "Idempotency-Key": f"again-{uuid.uuid4().hex}"}
    first = client.request(method, path, headers=sent, json=body)
    written = runtime.store.last_position()
    second = client.request(method, path, headers=sent, json=body)
    assert first.status_code in (200, 201), first.text
    assert (second.status_code, second.json()) == (first.status_code, first.json())
    assert runtime.store.last_position() == written  # the replay wrote nothing


def test_another_app_key_finds_no_endpoint_of_this_one(client, keys, runtime):
    mine = client.post("/v1/webhooks", headers=keys["app"], json={
        "url": HOOK, "event_types": ["order.delivered"]}).json()["endpoint_id"]
    other = {"Authorization":
             f"Bearer {runtime.engine.keys.issue(role='app', name='other').secret}"}
    for method, path in [("get", f"/v1/webhooks/{mine}"),
                         ("get", f"/v1/webhooks/{mine}/deliveries"),
                         ("post", f"/v1/webhooks/{mine}/disable"),
                         ("post", f"/v1/webhooks/{mine}/rotate-secret")]:
        assert client.request(method, path, headers=other).status_code == 404, path
    listed = client.get("/v1/webhooks", headers=other).json()["items"]
    assert mine not in [e["endpoint_id"] for e in listed]


def test_an_app_key_may_not_open_a_dispute_bundle_or_resolve_a_top_up(client, keys):
    some = uuid.uuid4()
    assert client.get(f"/v1/audit/orders/{some}/bundle",
                      headers=keys["app"]).status_code == 403
    assert client.get(f"/v1/audit/codes/{some}/bundle",
                      headers=keys["app"]).status_code == 403
    assert client.post(f"/v1/orders/{some}/topup/resolve", headers=keys["app"], json={
        "outcome": "failed", "note": "n"}).status_code == 403
