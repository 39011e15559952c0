"""Every command of the OpenAPI document (each POST and PUT), sent twice with one
Idempotency-Key and one body after a normal success, acts once and answers the first answer
again. A reveal is the exception the contract makes: its answer carries codes and is never
kept, so its replay is a reveal of its own (recorded, and answered with the same status)."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_tenant_wall import (  # noqa: F401
    CARD,
    PUBLIC,
    SUPPLIER,
    TOPUP,
    Tenant,
    bodies,
    call,
    world,
)

TRIED_ROLES = ("admin", "app", "merchant", "finance")
REVEAL = ("POST", "/v1/orders/{order_id}/reveal")
# Commands the wall's world answers with a refusal (4xx, kept and replayed like any answer);
# every other command must succeed first, so that its retry is one after a success.
REFUSED_HERE = {("POST", "/v1/codes/{code_id}/void"), ("POST", "/v1/redemptions"),
                ("POST", "/v1/orders/{order_id}/topup/resolve"), ("POST", "/v1/payouts"),
                ("POST", "/v1/suppliers/{supplier_id}/settlements"),
                ("POST", "/v1/reconciliation/providers/{provider}/statements"),
                ("POST", "/v1/suppliers"),
                ("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")}


def commands(client) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops
            if method.upper() in ("POST", "PUT") and path not in PUBLIC]


def reserve(client, a) -> str:
    placed = client.post("/v1/orders", headers=a.keys["app"], json={
        "buyer_id": f"buyer-{a.name}", "items": [{"sku": CARD, "quantity": 1}]})
    assert placed.status_code == 201, placed.text
    return placed.json()["order_id"]


def succeeding(client, a) -> tuple[dict, dict]:
    """Bodies, and A's things each command names, under which a payment and a cancel
    succeed (the wall's table aims them at a delivered order, which refuses both)."""
    a.ids["order_id"] = reserve(client, a)
    table = bodies(a)
    table[("POST", "/v1/orders/{order_id}/payments")] = {
        "payment_ref": "replayed-pay", "amount": 1990, "currency": "CNY"}
    table[("PUT", "/v1/products/{sku}/offers")] = {"offers": [
        {"supplier_id": SUPPLIER, "supplier_sku": "CM2", "cost": 9700, "priority": 1}]}
    named = {("PUT", "/v1/products/{sku}/offers"): {**a.ids, "sku": TOPUP},
             ("POST", "/v1/orders/{order_id}/cancel"): {
        **a.ids, "order_id": a.ids["reserved_order"]}}
    return table, named


def first_allowed(client, a, platform, params, method: str, path: str, body):
    """The command sent by the first key allowed to send it (A's roles, then the
    platform's), and that key's headers (with the Idempotency-Key it was sent under)."""
    for tried in [*(a.keys[role] for role in TRIED_ROLES), *platform.values()]:
        headers = {**tried, "Idempotency-Key": f"once-{uuid.uuid4().hex}"}
        answer = call(client, headers, method, path, params, body)
        if answer.status_code != 403:
            return answer, headers
    pytest.fail(f"no role may send {method} {path}")


def keys_of_platform(runtime) -> dict[str, dict[str, str]]:
    return {role: {"Authorization": "Bearer " + runtime.engine.keys.issue(
        role=role, name=f"platform-{role}").secret} for role in ("admin", "finance")}


def test_every_command_is_in_the_table_of_bodies(client):
    assert set(commands(client)) <= set(bodies_for_listing())


def bodies_for_listing() -> dict:
    return bodies(Tenant("any", codes=["ANY-CODE"]))


def test_every_command_retried_after_success_acts_once_and_answers_the_first(
        client, runtime, world):  # noqa: F811 - the fixture imported above
    a, _ = world
    platform = keys_of_platform(runtime)
    table, named = succeeding(client, a)
    checked = []
    for method, path in commands(client):
        body, params = table[(method, path)], named.get((method, path), a.ids)
        first, headers = first_allowed(client, a, platform, params, method, path, body)
        stored = runtime.store.last_position()
        again = call(client, headers, method, path, params, body)
        assert again.status_code == first.status_code, (method, path, again.text)
        assert again.headers.get("idempotent-replayed") == "true", (method, path)
        if (method, path) != REVEAL:
            assert again.content == first.content, (method, path)
            assert runtime.store.last_position() == stored, (method, path, "acted again")
        if (method, path) not in REFUSED_HERE:
            assert first.status_code < 300, (method, path, first.text)
        checked.append((method, path))
    assert len(checked) == len(commands(client)) > 20
