"""A merchant's look-up shows what redemption needs, nothing of the buyer, and nothing at
all of a code not yet sold; support keeps the full view."""

from __future__ import annotations

from tests.e2e.conftest import import_codes, sold_code

MERCHANT_FIELDS = {"code_id", "sku", "status", "redeemed_at", "redeemed_by"}


def look_up(client, headers, code: str):
    return client.post("/v1/codes/lookup", headers=headers, json={"code": code})


def test_merchant_sees_only_what_redemption_needs(client, keys, product):
    code, order = sold_code(client, keys, product)
    answer = look_up(client, keys["merchant"], code)
    assert answer.status_code == 200
    assert set(answer.json()) == MERCHANT_FIELDS
    assert answer.json()["status"] == "sold" and answer.json()["sku"] == product
    # the buyer id "b-1" may stand inside a uuid by chance: look for it as a JSON value
    assert '"b-1"' not in answer.text and order["order_id"] not in answer.text
    assert "buyer_id" not in answer.json()


def test_merchant_sees_who_redeemed_and_when(client, keys, product):
    code, _ = sold_code(client, keys, product)
    client.post("/v1/redemptions", headers=keys["merchant"],
                json={"code": code, "merchant_id": "m-1"})
    body = look_up(client, keys["merchant"], code).json()
    assert body["status"] == "redeemed" and body["redeemed_by"] == "m-1"
    assert body["redeemed_at"] is not None


def test_unsold_code_is_indistinguishable_from_an_unknown_one_for_a_merchant(
        client, keys, product):
    import_codes(client, keys, product, ["UNSOLD-LOOK-1"])
    unsold = look_up(client, keys["merchant"], "UNSOLD-LOOK-1")
    unknown = look_up(client, keys["merchant"], "NEVER-ISSUED-1")
    assert unsold.status_code == unknown.status_code == 404
    assert unsold.json() == unknown.json()


def test_reserved_code_is_hidden_from_a_merchant(client, keys, product):
    import_codes(client, keys, product, ["RESERVED-LOOK-1"])
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-2", "items": [{"sku": product, "quantity": 1}]})
    assert placed.status_code == 201
    assert look_up(client, keys["merchant"], "RESERVED-LOOK-1").status_code == 404
    assert look_up(client, keys["support"], "RESERVED-LOOK-1").json()["status"] == "reserved"


def test_looking_up_unsold_codes_counts_as_misses(client, keys, product):
    import_codes(client, keys, product, ["UNSOLD-LOOK-2"])
    for _ in range(20):
        assert look_up(client, keys["merchant"], "UNSOLD-LOOK-2").status_code == 404
    assert look_up(client, keys["merchant"], "UNSOLD-LOOK-2").status_code == 429


def test_support_keeps_the_full_view(client, keys, product):
    code, order = sold_code(client, keys, product)
    body = look_up(client, keys["support"], code).json()
    assert body["holder"] == "b-1" and body["order_id"] == order["order_id"]
    assert body["batch_id"] and body["origin"] == "imported"
