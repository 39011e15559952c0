"""HTTP fixtures: the app over the `runtime` fixture (both stores) and a key per role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.keys import ROLES

MERCHANT = "m-1"  # the merchant the `keys` fixture's merchant key is bound to


@pytest.fixture
def client(runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


@pytest.fixture
def keys(runtime) -> dict[str, dict[str, str]]:
    """Authorization headers for one key of each role (the merchant key redeems as m-1)."""
    headers = {}
    for role in ROLES:
        bound = {"merchant_id": MERCHANT} if role == "merchant" else {}
        issued = runtime.engine.keys.issue(role=role, name=f"test-{role}", **bound)
        headers[role] = {"Authorization": f"Bearer {issued.secret}"}
    return headers


@pytest.fixture
def product(client, keys) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": sku, "name": "Video VIP", "delivery": "card", "price": 1990})
    assert answer.status_code == 201, answer.text
    return sku


def import_codes(client, keys, sku: str, codes: list[str], **extra) -> dict:
    body = {"supplier_id": "sup-1", "unit_cost": 1000,
            "codes": [{"code": c, "pin": f"PIN{c}"} for c in codes], **extra}
    answer = client.post(f"/v1/products/{sku}/batches", headers=keys["app"], json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def sold_code(client, keys, sku: str) -> tuple[str, dict]:
    """Import one code, order and pay it; the code string and the paid order."""
    code = f"E2E-{uuid.uuid4().hex[:10]}"
    import_codes(client, keys, sku, [code])
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": sku, "quantity": 1}]}).json()
    paid = client.post(f"/v1/orders/{placed['order_id']}/payments", headers=keys["app"],
                       json={"payment_ref": f"pay-{uuid.uuid4().hex[:6]}",
                             "amount": placed["amount"], "currency": "CNY"})
    assert paid.status_code == 200, paid.text
    return code, paid.json()
