"""Orders belong to the app key, or the tenant, that placed them; order ids derived from an
external_ref cannot be computed without the secret key."""

import uuid

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from engine.kernel.errors import NotFound
from engine.kernel.ids import NAMESPACE, legacy_order_id
from engine.sales import placing
from engine.sales.orders import Order
from tests.e2e.conftest import import_codes, sold_code
from tests.integration.helpers import codes_for, define_product
from tests.integration.helpers import import_codes as import_rows


def bearer(runtime, **key) -> dict[str, str]:
    issued = runtime.engine.keys.issue(**{"role": "app", "name": "other-shop", **key})
    return {"Authorization": f"Bearer {issued.secret}"}


def place(client, headers, sku, **extra):
    answer = client.post("/v1/orders", headers=headers, json={
        "buyer_id": "b-1", "items": [{"sku": sku, "quantity": 1}], **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def attempt(client, headers, action, order):
    url = f"/v1/orders/{order['order_id']}"
    if action == "read":
        return client.get(url, headers=headers)
    if action == "export":
        return client.get(f"{url}/codes.csv", headers=headers)
    if action == "pay":
        return client.post(f"{url}/payments", headers=headers, json={
            "payment_ref": f"p-{uuid.uuid4().hex[:8]}", "amount": order["amount"],
            "currency": order["currency"]})
    return client.post(f"{url}/{action}", headers=headers, json={})


@pytest.mark.parametrize("action", ["read", "reveal", "export"])
def test_another_app_key_cannot_see_a_delivered_order(client, keys, runtime, product, action):
    code, order = sold_code(client, keys, product)
    answer = attempt(client, bearer(runtime), action, order)
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert code not in answer.text
    assert attempt(client, keys["app"], action, order).status_code == 200


@pytest.mark.parametrize("action", ["pay", "cancel"])
def test_another_app_key_cannot_pay_or_cancel_an_order(client, keys, runtime, product, action):
    import_codes(client, keys, product, [f"T-{uuid.uuid4().hex[:10]}"])
    order = place(client, keys["app"], product)
    answer = attempt(client, bearer(runtime), action, order)
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    after = client.get(f"/v1/orders/{order['order_id']}", headers=keys["app"]).json()
    assert after["status"] == "reserved" and after["payments"] == []


@pytest.mark.parametrize("role", ["support", "finance", "admin"])
def test_support_finance_and_admin_see_every_order(client, keys, product, role):
    _, order = sold_code(client, keys, product)
    answer = client.get(f"/v1/orders/{order['order_id']}", headers=keys[role])
    assert answer.status_code == 200 and answer.json()["status"] == "delivered"


def test_admin_reveals_any_order(client, keys, product):
    code, order = sold_code(client, keys, product)
    answer = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=keys["admin"])
    assert answer.status_code == 200 and answer.json()["codes"][0]["code"] == code


def test_keys_of_one_tenant_share_orders_and_external_refs(client, keys, runtime, product):
    first, second = bearer(runtime, tenant="acme"), bearer(runtime, tenant="acme")
    assert client.post("/v1/products", headers=first, json={
        "sku": product, "name": "Acme VIP", "delivery": "card", "price": 1990}).status_code == 201
    import_codes(client, {"app": first}, product, [f"T-{uuid.uuid4().hex[:10]}"])
    order = place(client, first, product, external_ref="acme-1")
    assert attempt(client, second, "read", order).status_code == 200
    assert place(client, second, product, external_ref="acme-1")["order_id"] == \
        order["order_id"]
    assert attempt(client, bearer(runtime, tenant="globex"), "read", order).status_code == 404
    assert attempt(client, keys["app"], "read", order).status_code == 404


def test_same_external_ref_of_two_keys_makes_two_orders(client, keys, runtime, product):
    import_codes(client, keys, product, [f"T-{uuid.uuid4().hex[:10]}" for _ in range(2)])
    mine = place(client, keys["app"], product, external_ref="ref-1")
    theirs = place(client, bearer(runtime), product, external_ref="ref-1")
    assert mine["order_id"] != theirs["order_id"]


def test_order_id_is_not_derivable_from_key_and_external_ref(runtime):
    sku = define_product(runtime)
    import_rows(runtime, sku, codes_for(2))
    order = runtime.engine.orders.place(buyer_id="b", items=[{"sku": sku, "quantity": 1}],
                                        external_ref="ref-9", actor="key:abc")
    assert order.id != uuid.uuid5(NAMESPACE, "order:key:abc:ref-9")
    again = runtime.engine.orders.place(buyer_id="b", items=[{"sku": sku, "quantity": 1}],
                                        external_ref="ref-9", actor="key:abc")
    assert again.id == order.id and again.owner == "key:abc"


def test_order_placed_before_keyed_ids_is_found_on_retry(runtime, monkeypatch):
    sku = define_product(runtime)
    import_rows(runtime, sku, codes_for(2))
    old_id = uuid.uuid5(NAMESPACE, "order:key:abc:ref-7")  # as ids were derived before
    monkeypatch.setattr(placing, "make_order_id", lambda _digest: old_id)
    old = runtime.engine.orders.place(buyer_id="b", items=[{"sku": sku, "quantity": 1}],
                                      external_ref="ref-7", actor="key:abc")
    monkeypatch.undo()
    retried = runtime.engine.orders.place(buyer_id="b", items=[{"sku": sku, "quantity": 1}],
                                          external_ref="ref-7", actor="key:abc")
    assert retried.id == old.id == old_id == legacy_order_id("key:abc", "ref-7")
    placed = [n for n in runtime.store.notifications(0, 1000)
              if n.topic == "quanyi:order.placed"]
    assert len(placed) == 1


def test_order_placed_before_owners_belongs_to_its_actor(runtime):
    """An Order.Created stored in the first shape (no owner, no class_version) decodes,
    and its owner is the key that placed it."""
    sku = define_product(runtime)
    import_rows(runtime, sku, codes_for(1))
    order = runtime.engine.orders.place(buyer_id="b", items=[{"sku": sku, "quantity": 1}],
                                        actor="key:abc", owner="tenant:acme")
    stored = next(n for n in runtime.store.notifications(0, 1000)
                  if n.topic == "quanyi:order.placed")
    state = orjson.loads(stored.state)
    del state["owner"], state["class_version"]
    old_id = uuid.uuid4()
    runtime.store.recorder.insert_events([StoredEvent(old_id, 1, stored.topic,
                                                      orjson.dumps(state))])
    old = runtime.engine.orders.get(old_id, "key:abc")
    assert isinstance(old, Order) and old.owner == "key:abc" and old.amount == order.amount
    with pytest.raises(NotFound):
        runtime.engine.orders.get(old_id, "tenant:acme")
