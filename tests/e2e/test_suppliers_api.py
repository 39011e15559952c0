"""POST /v1/suppliers, GET /v1/suppliers/{id} and PUT/GET /v1/products/{sku}/offers on both
stores: credentials sealed and never shown, refused input as problem+json, replayed retries,
offers only for top-up SKUs and in priority order, and the adapter a registration builds."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from engine.kernel.money import Money
from engine.topups.supplier_port import Outcome, TopupRequest
from supplier_sim import SimConfig, SimServer


@pytest.fixture
def settings(settings):
    """The simulator listens on 127.0.0.1: private supplier addresses are allowed here."""
    return dataclasses.replace(settings, supplier_allow_private_urls=True)


API_KEY = "sup-api-key-" + uuid.uuid4().hex
CALLBACK_SECRET = "sup-callback-secret-" + uuid.uuid4().hex


def new_id() -> str:
    return f"sup-{uuid.uuid4().hex[:8]}"


def supplier_body(supplier_id: str, **changes) -> dict:
    return {"supplier_id": supplier_id, "name": "Mobile top-ups Ltd", "adapter": "http-json",
            "endpoint": "https://api.supplier.example/quanyi",
            "credentials": {"api_key": API_KEY, "callback_secret": CALLBACK_SECRET},
            **changes}


def register(client, keys, supplier_id: str, headers=None, **changes):
    return client.post("/v1/suppliers", headers=headers or keys["admin"],
                       json=supplier_body(supplier_id, **changes))


def topup_product(client, keys, price: int = 10000, **extra) -> str:
    sku = f"TOPUP-{uuid.uuid4().hex[:8]}"
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": sku, "name": "China Mobile 100", "delivery": "topup", "price": price, **extra})
    assert answer.status_code == 201, answer.text
    return sku


def offer(supplier_id: str, priority: int, cost: int = 9800, **changes) -> dict:
    return {"supplier_id": supplier_id, "supplier_sku": f"CM-{priority}", "cost": cost,
            "priority": priority, **changes}


def assert_problem(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code
    return answer.json()


def test_a_registered_supplier_shows_its_credentials_names_never_their_values(client, keys):
    supplier_id = new_id()
    made = register(client, keys, supplier_id)
    assert made.status_code == 201, made.text
    read = client.get(f"/v1/suppliers/{supplier_id}", headers=keys["support"])
    assert read.status_code == 200
    for answer in (made, read):
        assert answer.json()["credential_names"] == ["api_key", "callback_secret"]
        assert API_KEY not in answer.text and CALLBACK_SECRET not in answer.text
    assert set(read.json()) == {"supplier_id", "name", "adapter", "endpoint",
                                "credential_names", "registered_at"}


def test_only_admin_registers_suppliers(client, keys):
    supplier_id = new_id()
    assert_problem(register(client, keys, supplier_id, headers=keys["app"]), 403, "forbidden")
    assert client.get(f"/v1/suppliers/{supplier_id}", headers=keys["app"]).status_code == 404


def test_the_same_registration_again_answers_the_first_another_is_409(client, keys):
    supplier_id = new_id()
    first = register(client, keys, supplier_id)
    again = register(client, keys, supplier_id)
    assert again.status_code == 201 and again.json() == first.json()
    other_secret = register(client, keys, supplier_id, credentials={
        "api_key": API_KEY, "callback_secret": "another"})
    problem = assert_problem(other_secret, 409, "already_exists")
    assert "another" not in problem["detail"] and API_KEY not in other_secret.text
    assert_problem(register(client, keys, supplier_id, name="Other"), 409, "already_exists")


def test_a_retry_with_the_same_idempotency_key_replays_the_answer(client, keys):
    supplier_id = new_id()
    headers = {**keys["admin"], "Idempotency-Key": f"sup-{supplier_id}"}
    first = register(client, keys, supplier_id, headers=headers)
    again = register(client, keys, supplier_id, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()


@pytest.mark.parametrize("changes, fragment", [
    ({"adapter": "carrier-pigeon"}, "adapter must be one of: http-json"),
    ({"credentials": {"api_key": "k"}}, "credentials must include callback_secret"),
    ({"credentials": {"API KEY": "k"}}, "credentials"),
    ({"credentials": "k"}, "credentials"),
    ({"endpoint": "https://user:pw@supplier.example/"}, "no user, password"),
    ({"endpoint": "https://supplier.example/?key=abc"}, "no user, password, query"),
    ({"endpoint": "ftp://supplier.example/"}, "http or https"),
    ({"endpoint": "not a url"}, "http or https"),
    ({"endpoint": "http://[::1"}, "http or https"),
    ({"endpoint": "http://supplier.example:99999"}, "http or https"),
    ({"endpoint": "http://bad_host.example"}, "http or https"),
    ({"credentials": {"api_key": "k\ud800", "callback_secret": "s"}}, "api_key"),
    ({"credentials": {"api_key": "k\x00", "callback_secret": "s"}}, "api_key"),
    ({"supplier_id": "has space"}, "supplier_id"),
    ({"name": ""}, "name"),
    ({"unexpected": 1}, "unexpected"),
])
def test_bad_registrations_are_422_problems(client, keys, changes, fragment):
    body = json.dumps({**supplier_body(new_id()), **changes})  # escapes a lone surrogate
    answer = client.post("/v1/suppliers", content=body,
                         headers={**keys["admin"], "Content-Type": "application/json"})
    problem = assert_problem(answer, 422, "validation_error")
    assert fragment in problem["detail"]
    assert API_KEY not in answer.text


def test_an_unknown_supplier_is_404(client, keys):
    assert_problem(client.get("/v1/suppliers/nobody", headers=keys["app"]), 404, "not_found")


def test_offers_of_a_topup_sku_are_kept_and_read_in_priority_order(client, keys):
    first, second = new_id(), new_id()
    register(client, keys, first)
    register(client, keys, second)
    sku = topup_product(client, keys)
    body = {"offers": [offer(second, 20, cost=9850), offer(first, 10)]}
    put = client.put(f"/v1/products/{sku}/offers", headers=keys["app"], json=body)
    assert put.status_code == 200, put.text
    read = client.get(f"/v1/products/{sku}/offers", headers=keys["finance"])
    assert read.json() == put.json()
    assert [(o["supplier_id"], o["priority"], o["cost"], o["currency"])
            for o in read.json()["offers"]] == [(first, 10, 9800, "CNY"),
                                                (second, 20, 9850, "CNY")]


def test_new_offers_replace_the_old_and_an_empty_list_clears_them(client, keys, runtime):
    supplier_id = new_id()
    register(client, keys, supplier_id)
    sku = topup_product(client, keys)
    client.put(f"/v1/products/{sku}/offers", headers=keys["app"],
               json={"offers": [offer(supplier_id, 1)]})
    client.put(f"/v1/products/{sku}/offers", headers=keys["app"],
               json={"offers": [offer(supplier_id, 5, cost=9700)]})
    assert runtime.engine.suppliers.offers_for(sku)[0].cost == Money(9700, "CNY")
    cleared = client.put(f"/v1/products/{sku}/offers", headers=keys["app"], json={"offers": []})
    assert cleared.json()["offers"] == [] and runtime.engine.suppliers.offers_for(sku) == []


def test_offers_for_a_product_that_is_not_a_topup_are_409(client, keys, product):
    supplier_id = new_id()
    register(client, keys, supplier_id)
    answer = client.put(f"/v1/products/{product}/offers", headers=keys["app"],
                        json={"offers": [offer(supplier_id, 1, cost=100)]})
    assert_problem(answer, 409, "invalid_state")


def test_offers_above_the_price_are_refused_unless_the_product_allows_it(client, keys):
    supplier_id = new_id()
    register(client, keys, supplier_id)
    strict, lenient = topup_product(client, keys), topup_product(
        client, keys, allow_below_cost=True)
    too_dear = {"offers": [offer(supplier_id, 1, cost=10001)]}
    assert_problem(client.put(f"/v1/products/{strict}/offers", headers=keys["app"],
                              json=too_dear), 409, "price_below_cost")
    assert client.put(f"/v1/products/{lenient}/offers", headers=keys["app"],
                      json=too_dear).status_code == 200


@pytest.mark.parametrize("make_offers, status, fragment", [
    (lambda s: [offer("nobody-here", 1)], 422, "no supplier nobody-here"),
    (lambda s: [offer(s, 1, currency="USD")], 422, "must be in CNY"),
    (lambda s: [offer(s, 1), offer(s, 2)], 422, "at most one offer"),
    (lambda s: [offer(s, -1)], 422, "priority"),
    (lambda s: [offer(s, 1, cost="9800")], 422, "cost"),
    (lambda s: [offer(s, 1, supplier_sku="")], 422, "supplier_sku"),
    (lambda s: [{"supplier_id": s}], 422, "priority"),
])
def test_bad_offers_are_422_problems(client, keys, make_offers, status, fragment):
    supplier_id = new_id()
    register(client, keys, supplier_id)
    sku = topup_product(client, keys)
    answer = client.put(f"/v1/products/{sku}/offers", headers=keys["app"],
                        json={"offers": make_offers(supplier_id)})
    assert fragment in assert_problem(answer, status, "validation_error")["detail"]
    assert client.get(f"/v1/products/{sku}/offers", headers=keys["app"]).json()["offers"] == []


def test_offers_of_an_unknown_product_are_404(client, keys):
    answer = client.put("/v1/products/NO-SUCH-SKU/offers", headers=keys["app"],
                        json={"offers": []})
    assert_problem(answer, 404, "not_found")
    assert_problem(client.get("/v1/products/NO-SUCH-SKU/offers", headers=keys["app"]),
                   404, "not_found")


def test_a_merchant_key_may_not_set_offers(client, keys):
    sku = topup_product(client, keys)
    answer = client.put(f"/v1/products/{sku}/offers", headers=keys["merchant"],
                        json={"offers": []})
    assert_problem(answer, 403, "forbidden")


def test_a_registered_supplier_adapter_tops_up_with_its_sealed_credentials(client, keys,
                                                                           runtime):
    config = SimConfig(api_key=API_KEY, callback_secret=CALLBACK_SECRET)
    with SimServer(config) as sim:
        supplier_id = new_id()
        assert register(client, keys, supplier_id, endpoint=sim.url).status_code == 201
        adapter = runtime.engine.suppliers.adapter_for(supplier_id)
        assert adapter is runtime.engine.suppliers.adapter_for(supplier_id)  # built once
        report = adapter.place(TopupRequest("att-e2e-1", "CM-100", "13800138000",
                                            Money(10000, "CNY")))
        assert report.outcome is Outcome.SUCCEEDED
        assert sim.admin().credits("13800138000") == 1


def test_the_event_feed_shows_registrations_and_offers_without_credentials(client, keys,
                                                                         runtime):
    supplier_id = new_id()
    register(client, keys, supplier_id)
    sku = topup_product(client, keys)
    client.put(f"/v1/products/{sku}/offers", headers=keys["app"],
               json={"offers": [offer(supplier_id, 1)]})
    feed = client.get("/v1/events", headers=keys["admin"], params={"limit": 1000})
    assert feed.status_code == 200, feed.text
    by_type = {item["type"]: item["data"] for item in feed.json()["items"]}
    assert by_type["supplier.registered"]["supplier_id"] == supplier_id
    assert "sealed_credentials" not in by_type["supplier.registered"]
    assert by_type["topup_offers.set"]["offers"][0]["cost"] == {"amount": 9800,
                                                                "currency": "CNY"}
    assert API_KEY not in feed.text and CALLBACK_SECRET not in feed.text
    assert runtime.read_your_writes() and runtime.runner.health.errors == 0  # read side too
