"""Placing an order answers what the sale could not be: below cost (409), an unknown
distributor (404); both before anything is held."""

import uuid

from tests.conftest import caught_up
from tests.e2e.conftest import import_codes


def promo_product(client, keys, **extra) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": sku, "name": "Video VIP", "delivery": "card", "price": 1990,
        "channel_prices": {"promo": 990}, **extra})
    assert answer.status_code == 201, answer.text
    import_codes(client, keys, sku, [f"SALE-{uuid.uuid4().hex[:10]}"])  # cost 1000
    return sku


def place(client, keys, sku, **extra):
    return client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "buyer-1", "items": [{"sku": sku, "quantity": 1}], **extra})


def stock(client, keys, runtime, sku) -> dict:
    caught_up(runtime)
    return client.get(f"/v1/products/{sku}/inventory", headers=keys["app"]).json()


def test_a_price_below_the_codes_cost_is_409_and_holds_nothing(client, keys, runtime):
    sku = promo_product(client, keys)
    answer = place(client, keys, sku, channel="promo")
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "price_below_cost"
    held = stock(client, keys, runtime, sku)
    assert (held["reserved"], held["available"]) == (0, 1)


def test_a_product_that_allows_it_sells_below_cost(client, keys):
    sku = promo_product(client, keys, allow_below_cost=True)
    placed = place(client, keys, sku, channel="promo")
    assert placed.status_code == 201 and placed.json()["amount"] == 990


def test_an_unregistered_distributor_is_404_naming_it_and_holds_nothing(client, keys,
                                                                       runtime):
    sku = promo_product(client, keys)
    answer = place(client, keys, sku, distributor_id="d-nobody")
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert "d-nobody" in answer.json()["detail"]
    held = stock(client, keys, runtime, sku)
    assert (held["reserved"], held["available"]) == (0, 1)
    client.post("/v1/distributors", headers=keys["app"],
                json={"distributor_id": "d-nobody", "name": "Now known"})
    assert place(client, keys, sku, distributor_id="d-nobody").status_code == 201
