"""The codes.csv export: cells a spreadsheet would run as a formula are neutralised."""

import csv
import io


def _delivered(client, keys, product, codes: list[dict]) -> str:
    answer = client.post(f"/v1/products/{product}/batches", headers=keys["app"], json={
        "supplier_id": "sup-1", "unit_cost": 1000, "codes": codes})
    assert answer.status_code == 201 and answer.json()["imported"] == len(codes), answer.text
    order = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b", "items": [{"sku": product, "quantity": len(codes)}]}).json()
    paid = client.post(f"/v1/orders/{order['order_id']}/payments", headers=keys["app"],
                       json={"payment_ref": "csv-pay", "amount": order["amount"],
                             "currency": "CNY"})
    assert paid.status_code == 200, paid.text
    return order["order_id"]


def _exported(client, keys, order_id: str) -> list[tuple[str, str]]:
    export = client.get(f"/v1/orders/{order_id}/codes.csv", headers=keys["app"])
    assert export.status_code == 200
    return sorted((r["code"], r["pin"]) for r in csv.DictReader(io.StringIO(export.text)))


def test_cells_that_start_like_a_formula_get_a_leading_quote(client, keys, product):
    order_id = _delivered(client, keys, product, [
        {"code": "=HYPERLINK(1)", "pin": "+12"}, {"code": "-DASH-1", "pin": "@SUM"}])
    assert _exported(client, keys, order_id) == [
        ("'-DASH-1", "'@SUM"), ("'=HYPERLINK(1)", "'+12")]


def test_the_quote_goes_in_the_export_only(client, keys, product):
    order_id = _delivered(client, keys, product, [{"code": "=EQ-1", "pin": "-1"}])
    shown = client.post(f"/v1/orders/{order_id}/reveal", headers=keys["app"]).json()
    assert [(c["code"], c["pin"]) for c in shown["codes"]] == [("=EQ-1", "-1")]


def test_ordinary_cells_are_exported_as_they_are(client, keys, product):
    order_id = _delivered(client, keys, product, [{"code": "PLAIN-1", "pin": "7"}])
    assert _exported(client, keys, order_id) == [("PLAIN-1", "7")]
