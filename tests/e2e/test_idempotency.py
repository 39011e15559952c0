import uuid


def test_same_key_and_body_replays_the_first_answer_and_acts_once(client, keys, product):
    headers = {**keys["app"], "Idempotency-Key": "gen-1"}
    body = {"count": 10}
    first = client.post(f"/v1/products/{product}/batches/generate", headers=headers, json=body)
    again = client.post(f"/v1/products/{product}/batches/generate", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    stock = client.get(f"/v1/products/{product}/inventory", headers=keys["app"]).json()
    assert stock["total"] == 10


def test_same_key_with_another_body_is_422(client, keys, product):
    headers = {**keys["app"], "Idempotency-Key": "gen-2"}
    client.post(f"/v1/products/{product}/batches/generate", headers=headers,
                json={"count": 1})
    other = client.post(f"/v1/products/{product}/batches/generate", headers=headers,
                        json={"count": 2})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_keys_are_scoped_per_api_key(client, keys, runtime, product):
    second = {"Authorization": f"Bearer {runtime.engine.keys.issue(role='app', name='b').secret}"}
    body = {"count": 3}
    client.post(f"/v1/products/{product}/batches/generate",
                headers={**keys["app"], "Idempotency-Key": "shared"}, json=body)
    other = client.post(f"/v1/products/{product}/batches/generate",
                        headers={**second, "Idempotency-Key": "shared"}, json=body)
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers


def test_error_answers_are_replayed_too(client, keys):
    headers = {**keys["app"], "Idempotency-Key": f"o-{uuid.uuid4()}"}
    body = {"buyer_id": "b", "items": [{"sku": "NO-SUCH", "quantity": 1}]}
    first = client.post("/v1/orders", headers=headers, json=body)
    again = client.post("/v1/orders", headers=headers, json=body)
    assert first.status_code == again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"


def test_replayed_reveal_is_not_stored_in_clear(client, keys, runtime, product, quanyi_env):
    from tests.e2e.conftest import import_codes

    import_codes(client, keys, product, ["IDEM-SECRET-CODE"])
    order = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b", "items": [{"sku": product, "quantity": 1}]}).json()
    client.post(f"/v1/orders/{order['order_id']}/payments", headers=keys["app"],
                json={"payment_ref": "p", "amount": order["amount"], "currency": "CNY"})
    headers = {**keys["app"], "Idempotency-Key": "reveal-1"}
    first = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    again = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    assert again.json() == first.json() and "IDEM-SECRET-CODE" in again.text
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT body FROM api_idempotency")
        stored = " ".join(str(r[0]) for r in cursor.fetchall())
    assert stored and "IDEM-SECRET-CODE" not in stored
