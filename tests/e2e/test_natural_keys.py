"""Natural keys (external_ref, payment_ref, payout_ref): the same request again answers the
first result; the key with another request is 409 naming the reused key, and changes
nothing."""

from tests.e2e.conftest import import_codes
from tests.e2e.test_ledger_api import pay as pay_out
from tests.e2e.test_ledger_api import post_sale
from tests.e2e.test_orders_api import pay, place


def _reserved(client, keys, sku) -> int:
    client.app.state.runtime.read_your_writes()
    return client.get(f"/v1/products/{sku}/inventory", headers=keys["app"]).json()["reserved"]


def test_an_external_ref_with_another_quantity_is_409_and_holds_nothing_more(client, keys,
                                                                             product):
    import_codes(client, keys, product, [f"NAT-{n}" for n in range(5)])
    first = place(client, keys, product, 1, external_ref="shop-9")
    other = place(client, keys, product, 3, external_ref="shop-9")
    assert first.status_code == 201
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "external_ref_reused"
    assert _reserved(client, keys, product) == 1


def test_an_external_ref_with_another_buyer_or_channel_is_409(client, keys, product):
    import_codes(client, keys, product, ["NAT-B1", "NAT-B2"])
    assert place(client, keys, product, external_ref="shop-10").status_code == 201
    buyer = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "someone-else", "items": [{"sku": product, "quantity": 1}],
        "external_ref": "shop-10"})
    channel = place(client, keys, product, external_ref="shop-10", channel="wechat")
    assert (buyer.status_code, buyer.json()["code"]) == (409, "external_ref_reused")
    assert (channel.status_code, channel.json()["code"]) == (409, "external_ref_reused")


def test_the_same_external_ref_and_request_still_answer_the_first_order(client, keys,
                                                                        product):
    import_codes(client, keys, product, ["NAT-S1", "NAT-S2"])
    first = place(client, keys, product, 1, external_ref="shop-11")
    again = place(client, keys, product, 1, external_ref="shop-11")
    assert first.status_code == again.status_code == 201
    assert again.json()["order_id"] == first.json()["order_id"]
    assert _reserved(client, keys, product) == 1


def test_a_payment_ref_with_another_amount_is_409_and_pays_nothing(client, keys, product):
    import_codes(client, keys, product, ["NAT-P1"])
    order = place(client, keys, product).json()
    assert pay(client, keys, order, "pay-nat-1").status_code == 200
    other = pay(client, keys, order, "pay-nat-1", amount=order["amount"] + 1)
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "payment_ref_reused"
    same = pay(client, keys, order, "pay-nat-1")
    assert same.status_code == 200 and len(same.json()["payments"]) == 1


def test_a_payment_ref_of_another_order_is_409(client, keys, product):
    import_codes(client, keys, product, ["NAT-Q1", "NAT-Q2"])
    first, second = place(client, keys, product).json(), place(client, keys, product).json()
    assert pay(client, keys, first, "pay-nat-2").status_code == 200
    other = pay(client, keys, second, "pay-nat-2")
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "payment_ref_reused"
    assert client.get(f"/v1/orders/{second['order_id']}",
                      headers=keys["app"]).json()["status"] == "reserved"


def test_a_payout_ref_with_another_amount_is_409(client, runtime, keys):
    post_sale(runtime, commission=300)
    assert pay_out(client, keys["finance"], 100, "bank-nat").status_code == 201
    other = pay_out(client, keys["finance"], 101, "bank-nat")
    assert other.status_code == 409 and other.json()["code"] == "payout_ref_reused"


def test_the_openapi_document_names_the_reused_keys(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "`external_ref_reused`" in paths["/v1/orders"]["post"]["responses"]["409"][
        "description"]
    payments = paths["/v1/orders/{order_id}/payments"]["post"]["responses"]["409"]
    assert "`payment_ref_reused`" in payments["description"]
    assert "`payout_ref_reused`" in paths["/v1/payouts"]["post"]["responses"]["409"][
        "description"]
