import csv
import io
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import import_codes


def place(client, keys, sku, quantity=1, **extra):
    return client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "buyer-1", "items": [{"sku": sku, "quantity": quantity}], **extra})


def pay(client, keys, order, ref="pay-1", **override):
    body = {"payment_ref": ref, "amount": order["amount"], "currency": order["currency"],
            **override}
    return client.post(f"/v1/orders/{order['order_id']}/payments", headers=keys["app"],
                       json=body)


def test_order_reserves_then_payment_delivers_masked_codes(client, keys, product):
    import_codes(client, keys, product, ["ORD-AAAA-0001", "ORD-AAAA-0002"])
    placed = place(client, keys, product, 2)
    assert placed.status_code == 201
    order = placed.json()
    assert order["status"] == "reserved" and order["amount"] == 3980
    paid = pay(client, keys, order)
    assert paid.status_code == 200
    body = paid.json()
    assert body["status"] == "delivered" and len(body["codes"]) == 2
    assert all("*" in c["masked"] and c["status"] == "sold" for c in body["codes"])
    assert "ORD-AAAA-0001" not in paid.text


def test_sold_out_is_409_and_holds_nothing(client, keys, product):
    import_codes(client, keys, product, ["ONE-ONLY"])
    answer = place(client, keys, product, 2)
    assert answer.status_code == 409 and answer.json()["code"] == "sold_out"
    stock = client.get(f"/v1/products/{product}/inventory", headers=keys["app"]).json()
    assert stock["available"] == 1


def test_purchase_limit_is_409(client, keys):
    client.post("/v1/products", headers=keys["app"], json={
        "sku": "LIM", "name": "l", "delivery": "card", "price": 100,
        "purchase_limit": {"quantity": 1}})
    import_codes(client, keys, "LIM", ["L1", "L2"], unit_cost=50)
    assert place(client, keys, "LIM").status_code == 201
    answer = place(client, keys, "LIM")
    assert answer.status_code == 409 and answer.json()["code"] == "purchase_limit_exceeded"


def test_parallel_payment_callbacks_pay_once(client, keys, product):
    import_codes(client, keys, product, ["PAR-1", "PAR-2", "PAR-3"])
    order = place(client, keys, product).json()
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: pay(client, keys, order, ref="cb"), range(5)))
    assert {a.status_code for a in answers} == {200}
    codes = {tuple(c["code_id"] for c in a.json()["codes"]) for a in answers}
    assert len(codes) == 1
    final = client.get(f"/v1/orders/{order['order_id']}", headers=keys["support"]).json()
    assert len(final["payments"]) == 1


def test_wrong_amount_is_422_and_changes_nothing(client, keys, product):
    import_codes(client, keys, product, ["AMT-1"])
    order = place(client, keys, product).json()
    answer = pay(client, keys, order, amount=order["amount"] + 1)
    assert answer.status_code == 422 and answer.json()["code"] == "amount_mismatch"
    wrong_currency = pay(client, keys, order, ref="pay-2", currency="USD")
    assert wrong_currency.status_code == 422
    after = client.get(f"/v1/orders/{order['order_id']}", headers=keys["app"]).json()
    assert after["status"] == "reserved" and after["payments"] == []


def test_cancel_releases_the_reservation(client, keys, product):
    import_codes(client, keys, product, ["CAN-1"])
    order = place(client, keys, product).json()
    answer = client.post(f"/v1/orders/{order['order_id']}/cancel", headers=keys["app"])
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert place(client, keys, product).status_code == 201


def test_reveal_returns_codes_and_pins(client, keys, product):
    import_codes(client, keys, product, ["REV-1"])
    order = place(client, keys, product).json()
    pay(client, keys, order)
    shown = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=keys["app"]).json()
    assert shown["codes"][0]["code"] == "REV-1" and shown["codes"][0]["pin"] == "PINREV-1"


def test_support_cannot_reveal(client, keys, product):
    import_codes(client, keys, product, ["REV-2"])
    order = place(client, keys, product).json()
    pay(client, keys, order)
    answer = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=keys["support"])
    assert answer.status_code == 403


def test_bulk_order_exports_its_codes_as_csv(client, keys, product):
    codes = [f"BULK-{n:04d}" for n in range(200)]
    import_codes(client, keys, product, codes)
    order = place(client, keys, product, 200).json()
    pay(client, keys, order)
    export = client.get(f"/v1/orders/{order['order_id']}/codes.csv", headers=keys["app"])
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["code"] for r in rows) == codes


def test_external_ref_gives_the_same_order(client, keys, product):
    import_codes(client, keys, product, ["EXT-1", "EXT-2"])
    first = place(client, keys, product, external_ref="shop-1").json()
    again = place(client, keys, product, external_ref="shop-1").json()
    assert again["order_id"] == first["order_id"]


def test_unknown_order_is_404(client, keys):
    answer = client.get("/v1/orders/00000000-0000-0000-0000-000000000000",
                        headers=keys["app"])
    assert answer.status_code == 404
