"""An order placed under an Idempotency-Key (without an external_ref) has its id derived from
the key: a retry finds the order the first attempt placed, whatever became of its answer -
here, the state a crash between the commit and the kept answer leaves (a claim with no
answer, held by a process that is gone)."""

import uuid

from tests.e2e.conftest import import_codes


def _orphan_the_claim(runtime, key: str) -> None:
    """What kill -9 between the order's commit and its kept answer leaves behind."""
    with runtime.read_db.transaction() as cursor:
        cursor.execute("UPDATE api_idempotency SET status = NULL, content_type = NULL, "
                       "body = NULL, holder = %s WHERE key = %s", (str(uuid.uuid4()), key))


def test_a_retry_after_the_answer_was_lost_finds_the_order_placed(client, keys, runtime,
                                                                  product):
    import_codes(client, keys, product, ["KEYED-1", "KEYED-2"])
    key = f"order-{uuid.uuid4()}"
    body = {"buyer_id": "b-1", "items": [{"sku": product, "quantity": 1}]}
    headers = {**keys["app"], "Idempotency-Key": key}
    first = client.post("/v1/orders", headers=headers, json=body)
    assert first.status_code == 201
    _orphan_the_claim(runtime, key)
    again = client.post("/v1/orders", headers=headers, json=body)
    assert again.status_code == 201, again.text
    assert again.json()["order_id"] == first.json()["order_id"]
    runtime.read_your_writes()
    stock = client.get(f"/v1/products/{product}/inventory", headers=keys["app"]).json()
    assert stock["reserved"] == 1


def _forget_the_answer(runtime, key: str) -> None:
    """What the answers' 48-hour clean-up leaves: no row for the key at all."""
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DELETE FROM api_idempotency WHERE key = %s", (key,))


def test_the_key_of_an_order_with_another_request_is_refused(client, keys, runtime, product):
    import_codes(client, keys, product, ["KEYED-3", "KEYED-4"])
    key = f"order-{uuid.uuid4()}"
    headers = {**keys["app"], "Idempotency-Key": key}
    client.post("/v1/orders", headers=headers,
                json={"buyer_id": "b-1", "items": [{"sku": product, "quantity": 1}]})
    _forget_the_answer(runtime, key)
    other = client.post("/v1/orders", headers=headers,
                        json={"buyer_id": "b-1", "items": [{"sku": product, "quantity": 2}]})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_orders_without_a_key_are_each_new(client, keys, product):
    import_codes(client, keys, product, ["KEYED-5", "KEYED-6"])
    body = {"buyer_id": "b-1", "items": [{"sku": product, "quantity": 1}]}
    first = client.post("/v1/orders", headers=keys["app"], json=body).json()
    second = client.post("/v1/orders", headers=keys["app"], json=body).json()
    assert first["order_id"] != second["order_id"]
