"""Requests as a whole: a ceiling on bodies (413 before a body is read), the caller known
before a body is parsed (401, not 422), positions read as plain digits only, and money and
quantities only ever JSON integers. This module runs with a 4 KiB body ceiling."""

import socket
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from bench.common import serve_subprocess
from tests.e2e.conftest import import_codes

LIMIT = 4096
OVER = b"x" * 1024  # five of these pass the ceiling


@pytest.fixture
def quanyi_env(quanyi_env):
    return {**quanyi_env, "QUANYI_MAX_BODY_BYTES": str(LIMIT)}


def _too_large(answer) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "too_large"


def _chunks(count: int, chunk: bytes = OVER):
    """A body sent without Content-Length (chunked transfer encoding)."""
    for _ in range(count):
        yield chunk


# -- body ceiling -------------------------------------------------------------------------

def test_body_over_the_limit_is_413(client, keys, runtime):
    before = runtime.store.last_position()
    answer = client.post("/v1/products", headers=keys["app"], content=b" " * (LIMIT + 1))
    _too_large(answer)
    assert runtime.store.last_position() == before


def test_declared_length_over_the_limit_is_413_without_reading_the_body(client):
    app = client.app
    sent: list[dict] = []

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/products", "raw_path": b"/",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "server": ("test", 80), "client": ("test", 1), "state": {},
             "headers": [(b"content-length", str(10**9).encode()),
                         (b"content-type", b"application/json")]}
    client.portal.call(app, scope, receive, send)
    assert sent[0]["status"] == 413


def test_chunked_body_growing_past_the_limit_is_413(client, keys, runtime):
    before = runtime.store.last_position()
    answer = client.post("/v1/products", headers={**keys["app"],
                         "Content-Type": "application/json"}, content=_chunks(5))
    _too_large(answer)
    assert runtime.store.last_position() == before


def test_chunked_csv_import_past_the_limit_is_413(client, keys, product):
    """The import route reads its body itself, outside pydantic."""
    answer = client.post(f"/v1/products/{product}/batches", headers={
        **keys["app"], "Content-Type": "text/csv"}, content=_chunks(5),
        params={"supplier_id": "sup-1", "unit_cost": "100"})
    _too_large(answer)


def test_chunked_body_past_the_limit_with_an_idempotency_key_is_413(client, keys):
    """The idempotency layer reads the body to hash it: the ceiling holds there too."""
    answer = client.post("/v1/products", headers={
        **keys["app"], "Content-Type": "application/json",
        "Idempotency-Key": f"big-{uuid.uuid4()}"}, content=_chunks(5))
    _too_large(answer)


def test_chunked_body_under_the_limit_is_served(client, keys):
    body = b'{"sku": "CHUNKED-1", "name": "chunked", "delivery": "card", "price": 100}'
    answer = client.post("/v1/products", headers={**keys["app"],
                         "Content-Type": "application/json"}, content=_chunks(1, body))
    assert answer.status_code == 201, answer.text


def test_a_real_server_refuses_chunked_and_declared_bodies_over_the_limit(quanyi_env):
    with serve_subprocess(quanyi_env) as (base, key):
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            _too_large(http.post("/v1/products", content=_chunks(8)))
        _too_large(_declared_only(base, key, 10**9))


def _declared_only(base: str, key: str, length: int) -> httpx.Response:
    """Send only the head of a request that declares a huge body, and read the answer: it
    must come without the server waiting for a single byte of that body."""
    address = urlsplit(base)
    head = (f"POST /v1/products HTTP/1.1\r\nHost: {address.hostname}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(head)
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += conn.recv(65536)
        head_part, _, body = raw.partition(b"\r\n\r\n")
        lines = head_part.decode().split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        wanted = int(httpx.Headers(fields)["content-length"])
        while len(body) < wanted:
            body += conn.recv(65536)
    return httpx.Response(int(lines[0].split()[1]), headers=fields, content=body)


# -- authentication before the body ------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer qy_000000000000_nothing"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}])
@pytest.mark.parametrize("body", [b"{not json", b'{"sku": '])
def test_bad_body_without_a_valid_key_is_401(client, headers, body):
    answer = client.post("/v1/products", headers={**headers,
                         "Content-Type": "application/json"}, content=body)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"


# -- positions and cursors ---------------------------------------------------------------

@pytest.mark.parametrize("cursor", ["²", "٣", "+5", " 5", "5_0", "-1", "9" * 25])
def test_cursor_that_is_not_plain_digits_is_422(client, keys, cursor):
    answer = client.get("/v1/events", headers=keys["app"], params={"cursor": cursor})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"


@pytest.mark.parametrize("after", ["²", "+5", " 5", "5_0"])
def test_position_that_is_not_plain_digits_is_422(client, keys, after):
    answer = client.get("/v1/events", headers=keys["app"], params={"after": after})
    assert answer.status_code == 422, answer.text


def test_plain_cursor_still_pages(client, keys, product):
    first = client.get("/v1/events", headers=keys["app"], params={"limit": 1}).json()
    following = client.get("/v1/events", headers=keys["app"],
                           params={"cursor": first["next_cursor"], "limit": 1}).json()
    assert following["items"][0]["position"] > first["items"][0]["position"]


# -- money and quantities are JSON integers ----------------------------------------------

NOT_INTEGERS = [True, "1990", 1990.0]


def _product(sku: str, **extra) -> dict:
    return {"sku": sku, "name": "strict", "delivery": "card", "price": 1990, **extra}


@pytest.mark.parametrize("shape", [
    lambda v: _product("S-1", price=v),
    lambda v: _product("S-2", purchase_limit={"quantity": v}),
    lambda v: _product("S-3", purchase_limit={"quantity": 1, "window_seconds": v}),
    lambda v: _product("S-4", commission_rates_bp=[v]),
    lambda v: _product("S-5", channel_prices={"wechat": v}),
    lambda v: _product("S-6", components=[{"sku": "PART", "quantity": v}]),
], ids=["price", "limit", "window", "commission", "channel_price", "component_quantity"])
def test_product_numbers_must_be_json_integers(client, keys, runtime, shape):
    before = runtime.store.last_position()
    for value in NOT_INTEGERS:
        answer = client.post("/v1/products", headers=keys["app"], json=shape(value))
        assert answer.status_code == 422, (value, answer.text)
    assert runtime.store.last_position() == before


def test_channel_price_must_be_a_json_integer(client, keys, product):
    for value in NOT_INTEGERS:
        answer = client.put(f"/v1/products/{product}/channel-prices/wechat",
                            headers=keys["app"], json={"price": value})
        assert answer.status_code == 422, (value, answer.text)


def test_item_quantity_must_be_a_json_integer(client, keys, runtime, product):
    import_codes(client, keys, product, [f"Q-{uuid.uuid4().hex[:8]}"])
    before = runtime.store.last_position()
    for value in NOT_INTEGERS:
        answer = client.post("/v1/orders", headers=keys["app"], json={
            "buyer_id": "b-1", "items": [{"sku": product, "quantity": value}]})
        assert answer.status_code == 422, (value, answer.text)
    assert runtime.store.last_position() == before


def test_payment_amount_must_be_a_json_integer(client, keys, runtime, product):
    import_codes(client, keys, product, [f"A-{uuid.uuid4().hex[:8]}"])
    order = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": product, "quantity": 1}]}).json()
    before = runtime.store.last_position()
    for value in NOT_INTEGERS:
        answer = client.post(f"/v1/orders/{order['order_id']}/payments", headers=keys["app"],
                             json={"payment_ref": "p-1", "amount": value, "currency": "CNY"})
        assert answer.status_code == 422, (value, answer.text)
    assert runtime.store.last_position() == before


@pytest.mark.parametrize("field", ["count", "length"])
def test_generation_numbers_must_be_json_integers(client, keys, runtime, product, field):
    before = runtime.store.last_position()
    for value in [True, "8", 8.0]:
        body = {"count": 8, "length": 12, field: value}
        answer = client.post(f"/v1/products/{product}/batches/generate", headers=keys["app"],
                             json=body)
        assert answer.status_code == 422, (value, answer.text)
    assert runtime.store.last_position() == before


def test_import_unit_cost_must_be_a_json_integer(client, keys, runtime, product):
    before = runtime.store.last_position()
    for value in NOT_INTEGERS:
        answer = client.post(f"/v1/products/{product}/batches", headers=keys["app"], json={
            "supplier_id": "sup-1", "unit_cost": value, "codes": [{"code": "UC-1"}]})
        assert answer.status_code == 422, (value, answer.text)
    assert runtime.store.last_position() == before


@pytest.mark.parametrize("unit_cost", ["+5", " 5", "5_000", "٣", "5.0"])
def test_csv_unit_cost_must_be_plain_digits(client, keys, runtime, product, unit_cost):
    before = runtime.store.last_position()
    answer = client.post(f"/v1/products/{product}/batches", headers={
        **keys["app"], "Content-Type": "text/csv"}, content=b"code,pin\nCSV-UC-1,1\n",
        params={"supplier_id": "sup-1", "unit_cost": unit_cost})
    assert answer.status_code == 422, answer.text
    assert runtime.store.last_position() == before
