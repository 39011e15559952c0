import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn

from api.app import create_app
from tests.e2e.conftest import import_codes


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


def test_a_reveal_answer_is_not_kept_at_all(client, keys, runtime, product):
    order = _delivered_order(client, keys, product, "IDEM-SECRET-CODE")
    headers = {**keys["app"], "Idempotency-Key": "reveal-1"}
    first = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    again = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    assert again.json() == first.json() and "IDEM-SECRET-CODE" in again.text
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT status, body FROM api_idempotency WHERE key = %s",
                       ("reveal-1",))
        assert cursor.fetchall() == [(200, None)]


# -- the answer is kept before it leaves ----------------------------------------------------

@pytest.fixture
def server(runtime) -> Iterator[str]:
    """The app behind a real HTTP server (in a thread), so that a client sees the answer as
    soon as it is sent, not when the ASGI call ends as with the test client."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(runtime), log_level="warning", lifespan="off")
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not http.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert http.started, "the test server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    http.should_exit = True
    thread.join(10)


def test_an_immediate_resend_is_always_the_replay(server, keys):
    with httpx.Client(base_url=server, headers=keys["app"], timeout=10) as http:
        for n in range(30):
            body = {"sku": f"RACE-{uuid.uuid4().hex[:8]}", "name": "Race", "delivery": "card",
                    "price": 100}
            headers = {"Idempotency-Key": f"race-{n}"}
            first = http.post("/v1/products", headers=headers, json=body)
            again = http.post("/v1/products", headers=headers, json=body)
            assert first.status_code == 201, first.text
            assert (again.status_code, again.content) == (first.status_code, first.content)
            assert again.headers.get("idempotent-replayed") == "true"


# -- what counts as the same request ---------------------------------------------------------

def _post_raw(client, keys, product, key: str, raw: bytes, content_type: str):
    return client.post(f"/v1/products/{product}/batches/generate", content=raw,
                       headers={**keys["app"], "Idempotency-Key": key,
                                "Content-Type": content_type})


def test_json_bodies_differing_only_in_key_order_and_spacing_are_the_same(client, keys,
                                                                          product):
    first = _post_raw(client, keys, product, "canon-1", b'{"count": 2, "prefix": "CAN"}',
                      "application/json")
    again = _post_raw(client, keys, product, "canon-1", b'{\n "prefix":"CAN",\t"count":2}',
                      "application/json")
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"


def test_json_bodies_with_another_meaning_are_refused(client, keys, product):
    _post_raw(client, keys, product, "canon-2", b'{"count": 2, "prefix": "CAN"}',
              "application/json")
    other = _post_raw(client, keys, product, "canon-2", b'{"prefix": "CAN", "count": 3}',
                      "application/json")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def _import_raw(client, keys, product, key: str, raw: bytes, content_type: str):
    return client.post(f"/v1/products/{product}/batches?supplier_id=s&unit_cost=1",
                       content=raw, headers={**keys["app"], "Idempotency-Key": key,
                                             "Content-Type": content_type})


def test_the_same_bytes_under_another_content_type_are_another_request(client, keys,
                                                                         product):
    raw = b'{"supplier_id": "s", "unit_cost": 1, "codes": [{"code": "CT-1"}]}'
    _import_raw(client, keys, product, "ctype-1", raw, "text/csv")
    other = _import_raw(client, keys, product, "ctype-1", raw, "application/json")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_a_csv_body_is_compared_byte_for_byte(client, keys, product):
    first = _import_raw(client, keys, product, "csv-1", b"code,pin\nCSV-1,1\n", "text/csv")
    again = _import_raw(client, keys, product, "csv-1", b"code,pin\nCSV-1,1\n", "text/csv")
    other = _import_raw(client, keys, product, "csv-1", b"code,pin\nCSV-1,1\r\n", "text/csv")
    assert first.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


# -- the stored request hash is keyed --------------------------------------------------------

def _stored_hash(runtime, key: str) -> str:
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT request_hash FROM api_idempotency WHERE key = %s", (key,))
        return cursor.fetchone()[0]


def test_the_stored_request_hash_is_keyed_and_stable(client, keys, runtime, product):
    raw = b'{"codes": [{"code": "GUESS-ME-1"}], "supplier_id": "s", "unit_cost": 1}'
    spaced = b'{"unit_cost": 1, "supplier_id": "s",  "codes": [{"code": "GUESS-ME-1"}]}'
    _import_raw(client, keys, product, "hash-1", raw, "application/json")
    _import_raw(client, keys, product, "hash-2", spaced, "application/json")
    stored = _stored_hash(runtime, "hash-1")
    canonical = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    unkeyed = {hashlib.sha256(b).hexdigest() for b in (raw, canonical)}
    path = f"/v1/products/{product}/batches".encode()
    unkeyed |= {hashlib.sha256(b"\n".join([path, b"supplier_id=s&unit_cost=1", b]))
                .hexdigest() for b in (raw, canonical)}
    assert stored not in unkeyed
    assert _stored_hash(runtime, "hash-2") == stored


# -- answers that carry secrets --------------------------------------------------------------

def _delivered_order(client, keys, product, code: str) -> dict:
    import_codes(client, keys, product, [code])
    order = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b", "items": [{"sku": product, "quantity": 1}]}).json()
    paid = client.post(f"/v1/orders/{order['order_id']}/payments", headers=keys["app"],
                       json={"payment_ref": f"p-{uuid.uuid4().hex[:8]}",
                             "amount": order["amount"], "currency": "CNY"})
    assert paid.status_code == 200, paid.text
    return paid.json()


def _reveals(client, keys, code_id: str) -> list[dict]:
    history = client.get(f"/v1/codes/{code_id}/history", headers=keys["support"])
    assert history.status_code == 200, history.text
    return [e for e in history.json()["events"] if "reveal" in e["type"].lower()]


def test_a_replayed_reveal_is_recorded_as_a_reveal(client, keys, product):
    order = _delivered_order(client, keys, product, "IDEM-REVEAL-1")
    code_id = order["codes"][0]["code_id"]
    headers = {**keys["app"], "Idempotency-Key": "reveal-twice"}
    first = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    again = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    reveals = _reveals(client, keys, code_id)
    assert len(reveals) == 2
    assert all(r["client_address"] and r["actor"] for r in reveals)


def test_a_replayed_reveal_after_voiding_the_code_is_refused(client, keys, product):
    order = _delivered_order(client, keys, product, "IDEM-VOIDED-1")
    code_id = order["codes"][0]["code_id"]
    headers = {**keys["app"], "Idempotency-Key": "reveal-then-void"}
    first = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    assert first.status_code == 200 and "IDEM-VOIDED-1" in first.text
    # a sold code is voided through a refund: revealed, it is written off (voided)
    refunded = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=keys["app"],
                           json={"reason": "reported stolen"})
    assert refunded.status_code == 201, refunded.text
    again = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "IDEM-VOIDED-1" not in again.text and "PINIDEM" not in again.text
    assert len(_reveals(client, keys, code_id)) == 1


def test_a_reveal_answer_is_never_cached(client, keys, product):
    order = _delivered_order(client, keys, product, "IDEM-NOSTORE-1")
    headers = {**keys["app"], "Idempotency-Key": "reveal-no-store"}
    for _ in range(2):
        answer = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=headers)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
    plain = client.post(f"/v1/orders/{order['order_id']}/reveal", headers=keys["app"])
    assert plain.headers["cache-control"] == "no-store"
    export = client.get(f"/v1/orders/{order['order_id']}/codes.csv", headers=keys["app"])
    assert export.headers["cache-control"] == "no-store"
