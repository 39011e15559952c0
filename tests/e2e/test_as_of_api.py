"""`?as_of=` answers from the events as they stood at that instant, on both stores: a code, an
order, an account's balance, the trial balance and a SKU's inventory, each taken at an
instant T, changed after T, then asked again as of T. The ledger's answer is shown to come
from the events by emptying its read model first."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest

from tests.e2e.conftest import import_codes, sold_code
from tests.integration.test_ledger_projection import post_sale

DISTRIBUTOR = "liabilities:distributors:d-1"
LEDGER_READS = ("/v1/ledger/trial-balance", "/v1/ledger/accounts/income:sales",
                f"/v1/ledger/accounts/{DISTRIBUTOR}")


def instant_after(runtime) -> str:
    """An instant after everything written so far (and projected), then a pause so that
    what follows is stamped after it."""
    runtime.read_your_writes()
    now = datetime.now(timezone.utc)
    time.sleep(0.01)
    return now.isoformat()


def as_of(client, path: str, headers: dict[str, str], when: str):
    answer = client.get(path, headers=headers, params={"as_of": when})
    assert answer.status_code == 200, answer.text
    return answer.json()


def redeem(client, keys, code: str) -> None:
    answer = client.post("/v1/redemptions", headers=keys["merchant"],
                         json={"code": code, "merchant_id": "m-1"})
    assert answer.status_code == 201, answer.text


def test_a_code_as_of_before_its_redemption_is_the_sold_code_then(client, keys, product,
                                                                   runtime):
    code, order = sold_code(client, keys, product)
    path = f"/v1/codes/{order['codes'][0]['code_id']}"
    then = client.get(path, headers=keys["support"]).json()
    t = instant_after(runtime)
    redeem(client, keys, code)
    assert client.get(path, headers=keys["support"]).json()["status"] == "redeemed"
    assert as_of(client, path, keys["support"], t) == then
    assert then["status"] == "sold"


def test_an_order_as_of_before_its_refund_is_the_paid_order_then(client, keys, product,
                                                                 runtime):
    _, order = sold_code(client, keys, product)
    path = f"/v1/orders/{order['order_id']}"
    then = client.get(path, headers=keys["app"]).json()
    t = instant_after(runtime)
    refunded = client.post(f"{path}/refunds", headers=keys["app"], json={"reason": "asked"})
    assert refunded.status_code == 201, refunded.text
    now = client.get(path, headers=keys["app"]).json()
    assert now != then and now["refunds"] and now["status"] != then["status"]
    assert as_of(client, path, keys["app"], t) == then
    assert then["status"] == "delivered" and then["codes"][0]["status"] == "sold"
    assert as_of(client, path, keys["support"], t) == then


def test_an_order_before_it_was_placed_is_not_found(client, keys, product):
    _, order = sold_code(client, keys, product)
    answer = client.get(f"/v1/orders/{order['order_id']}", headers=keys["app"],
                        params={"as_of": "2001-01-01T00:00:00Z"})
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_another_app_key_cannot_see_an_order_as_of_an_instant(client, keys, product,
                                                              runtime):
    _, order = sold_code(client, keys, product)
    other = runtime.engine.keys.issue(role="app", name="other-shop")
    answer = client.get(f"/v1/orders/{order['order_id']}",
                        headers={"Authorization": f"Bearer {other.secret}"},
                        params={"as_of": datetime.now(timezone.utc).isoformat()})
    assert answer.status_code == 404


def test_balances_and_trial_balance_as_of_t_are_those_of_t(client, keys, runtime):
    post_sale(runtime, commission=100)
    finance = keys["finance"]
    then = {path: client.get(path, headers=finance).json() for path in LEDGER_READS}
    t = instant_after(runtime)
    post_sale(runtime, paid=990, commission=30)
    runtime.read_your_writes()
    for path in LEDGER_READS:
        now = client.get(path, headers=finance).json()
        past = as_of(client, path, finance, t)
        assert now != then[path], path
        assert {**past, "as_of": None} == then[path], path
    assert then[f"/v1/ledger/accounts/{DISTRIBUTOR}"]["balance"] == -100


def test_the_ledger_as_of_comes_from_the_events_not_the_entries_table(client, keys,
                                                                      runtime):
    post_sale(runtime, commission=100)
    t = instant_after(runtime)
    post_sale(runtime, commission=30)
    runtime.read_your_writes()
    finance = keys["finance"]
    before = {path: as_of(client, path, finance, t) for path in LEDGER_READS}
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DELETE FROM ledger_entries")
    assert client.get("/v1/ledger/accounts/income:sales/entries",
                      headers=finance).json()["items"] == []
    after = {path: as_of(client, path, finance, t) for path in LEDGER_READS}
    assert after == before
    assert before[f"/v1/ledger/accounts/{DISTRIBUTOR}"]["balance"] == -100
    assert before["/v1/ledger/trial-balance"]["total_debits"] > 0


def test_an_account_with_no_entries_then_has_a_zero_balance_then(client, keys, runtime):
    t = instant_after(runtime)
    post_sale(runtime)
    answer = as_of(client, f"/v1/ledger/accounts/{DISTRIBUTOR}", keys["finance"], t)
    assert answer["balance"] == 0 and answer["currency"] == "CNY"


def test_inventory_as_of_t_is_the_inventory_of_t(client, keys, product, runtime):
    code, _ = sold_code(client, keys, product)
    import_codes(client, keys, product, [f"INV-{uuid.uuid4().hex[:8]}" for _ in range(2)])
    path = f"/v1/products/{product}/inventory"
    then = client.get(path, headers=keys["support"]).json()
    t = instant_after(runtime)
    redeem(client, keys, code)
    import_codes(client, keys, product, [f"LATE-{uuid.uuid4().hex[:8]}" for _ in range(3)])
    runtime.read_your_writes()
    now = client.get(path, headers=keys["support"]).json()
    assert (now["total"], now["redeemed"], now["available"]) == (6, 1, 5)
    assert as_of(client, path, keys["support"], t) == then
    assert (then["total"], then["sold"], then["available"]) == (3, 1, 2)


def test_inventory_as_of_comes_from_the_events(client, keys, product, runtime):
    sold_code(client, keys, product)
    t = instant_after(runtime)
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DELETE FROM inventory")
    path = f"/v1/products/{product}/inventory"
    assert client.get(path, headers=keys["support"]).json()["total"] == 0
    assert as_of(client, path, keys["support"], t)["total"] == 1


def test_inventory_before_any_import_is_all_zero(client, keys, product):
    import_codes(client, keys, product, ["EARLY-1"])
    answer = client.get(f"/v1/products/{product}/inventory", headers=keys["support"],
                        params={"as_of": "2001-01-01T00:00:00Z"})
    assert answer.status_code == 200
    assert answer.json() == {"sku": product, "total": 0, "available": 0, "reserved": 0,
                             "sold": 0, "redeemed": 0, "voided": 0, "expired": 0}


@pytest.mark.parametrize("when", ["2026-11-23T10:00:00", "1999-12-31T23:59:59Z",
                                  "2200-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00",
                                  "yesterday"])
def test_every_as_of_refuses_a_naive_or_out_of_range_instant(client, keys, product, when):
    _, order = sold_code(client, keys, product)
    for path in (f"/v1/codes/{order['codes'][0]['code_id']}",
                 f"/v1/orders/{order['order_id']}", f"/v1/products/{product}/inventory"):
        answer = client.get(path, headers=keys["support"], params={"as_of": when})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["code"] == "validation_error"


AS_OF_READS = ("/v1/codes/{code_id}", "/v1/orders/{order_id}", "/v1/ledger/trial-balance",
               "/v1/ledger/accounts/{account_id}", "/v1/products/{sku}/inventory")


def test_every_as_of_parameter_is_documented_with_an_example(client):
    doc = client.get("/openapi.json").json()
    for path in AS_OF_READS:
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
        assert params["as_of"]["examples"]["instant"]["value"].endswith("Z"), path
        assert "timezone" in params["as_of"]["description"], path
    history = doc["components"]["schemas"]["HistoryOut"]
    assert history["examples"][0]["postings"] and "postings" in history["properties"]
