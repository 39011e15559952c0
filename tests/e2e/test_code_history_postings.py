"""A code's history carries, apart from its events, the ledger legs that name it: the sale's
cost, and a refund's reversal or write-off, oldest first, with their order and refund."""

from __future__ import annotations

from tests.e2e.conftest import import_codes, sold_code


def history(client, keys, code_id: str) -> dict:
    answer = client.get(f"/v1/codes/{code_id}/history", headers=keys["support"])
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_history_gains_the_sale_postings_of_the_code(client, keys, product):
    code, order = sold_code(client, keys, product)
    code_id = order["codes"][0]["code_id"]
    body = history(client, keys, code_id)
    assert [e["type"] for e in body["events"]] == ["code.imported", "code.reserved",
                                                   "code.sold"]
    postings = body["postings"]
    assert [(p["kind"], p["account_id"], p["amount"], p["currency"]) for p in postings] == [
        ("sale", "expenses:cost_of_sales", 1000, "CNY"),
        ("sale", "liabilities:suppliers:sup-1", -1000, "CNY")]
    assert all(p["code_id"] == code_id and p["order_id"] == order["order_id"]
               and p["at"].endswith("Z") and p["refund_id"] is None for p in postings)
    assert code not in str(body)


def test_a_refund_adds_its_postings_after_the_sale_with_its_refund_id(client, keys, product):
    _, order = sold_code(client, keys, product)
    code_id = order["codes"][0]["code_id"]
    refunded = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=keys["app"],
                           json={"reason": "asked"})
    assert refunded.status_code == 201, refunded.text
    postings = history(client, keys, code_id)["postings"]
    kinds = [p["kind"] for p in postings]
    assert kinds[:2] == ["sale", "sale"] and set(kinds[2:]) == {"refund"}
    assert [p["position"] for p in postings] == sorted(p["position"] for p in postings)
    assert [p["at"] for p in postings] == sorted(p["at"] for p in postings)
    back = postings[2:]
    assert {p["refund_id"] for p in back} == {refunded.json()["refund_id"]}
    assert {(p["account_id"], p["amount"]) for p in back} >= {
        ("liabilities:suppliers:sup-1", 1000), ("expenses:cost_of_sales", -1000)}


def test_a_code_only_imported_has_no_postings(client, keys, product):
    import_codes(client, keys, product, ["HIST-ONLY-1"])
    found = client.post("/v1/codes/lookup", headers=keys["support"],
                        json={"code": "HIST-ONLY-1"}).json()
    body = history(client, keys, found["code_id"])
    assert [e["type"] for e in body["events"]] == ["code.imported"]
    assert body["postings"] == []
