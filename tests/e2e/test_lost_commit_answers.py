"""A commit whose answer never came back (the connection cut just after PostgreSQL committed):
the library sends the same events again on a new connection, the store's unique key refuses
them, and that refusal must be read as what it is - this command's own events, already
stored - not as another writer's clash. Otherwise the command is retried on "fresh" state,
clashes with itself every time and is refused, though it was placed."""

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.settings import Settings
from runtime import Runtime
from tests.conftest import TEST_KEY, caught_up, postgres_url
from tests.integration.cutting_proxy import CommitCuttingProxy
from tests.integration.helpers import codes_for, define_product, import_codes


@pytest.fixture
def proxied(tmp_path) -> Iterator[tuple[Runtime, CommitCuttingProxy]]:
    """A runtime on PostgreSQL (a schema of its own) reached through a commit-cutting proxy."""
    url = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    proxy = CommitCuttingProxy(url)
    rt = Runtime.open(Settings.from_env({
        "QUANYI_DATA_DIR": str(tmp_path / "data"), "QUANYI_SECRET_KEY": TEST_KEY,
        "QUANYI_EXPIRY_SWEEP_SECONDS": "3600", "QUANYI_DATABASE_URL": proxy.url,
        "QUANYI_DATABASE_SCHEMA": schema}))
    rt.start()
    try:
        yield rt, proxy
    finally:
        rt.close()
        proxy.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_an_order_whose_commit_answer_was_lost_is_placed_once_and_answered(proxied):
    rt, proxy = proxied
    sku = define_product(rt, price=5000)
    import_codes(rt, sku, codes_for(3))
    caught_up(rt)
    buyer = f"lost-ack-{uuid.uuid4().hex}"
    proxy.cut_after_commit_of(buyer.encode())
    order = rt.engine.orders.place(buyer_id=buyer, items=[{"sku": sku, "quantity": 1}],
                                   actor="key:app")
    assert proxy.cuts == 1  # the answer to that commit was really lost
    assert rt.store.get(order.id, "order").buyer_id == buyer
    caught_up(rt)
    stock = rt.codes.inventory(sku)
    assert (stock["reserved"], stock["available"]) == (1, 2)  # one order, one code held
    paid = rt.engine.orders.pay(order_id=order.id, payment_ref=f"p-{buyer}", amount=5000,
                                currency="CNY", provider=None, actor="key:app")
    assert paid.status == "delivered"


def test_an_answer_the_database_could_not_keep_is_sent_and_kept_later(proxied):
    """The connection drops as the Idempotency-Key answer is being kept: the order was
    placed, so its client gets the 201, and the answer is kept once the database answers."""
    rt, proxy = proxied
    sku = define_product(rt, price=5000)
    import_codes(rt, sku, codes_for(2))
    caught_up(rt)
    app_key = rt.engine.keys.issue(role="app", name="lost-answer").secret
    headers = {"Authorization": f"Bearer {app_key}", "Idempotency-Key": "keep-me"}
    body = {"buyer_id": "b-keep", "items": [{"sku": sku, "quantity": 1}]}
    with TestClient(create_app(rt)) as client:
        proxy.drop_connection_sending(b"UPDATE api_idempotency SET status")
        first = client.post("/v1/orders", headers=headers, json=body)
        assert proxy.cuts == 1
        assert first.status_code == 201, first.text
        deadline = time.monotonic() + 10
        while (again := client.post("/v1/orders", headers=headers, json=body)).status_code \
                == 409 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
