"""Webhooks over real HTTP on 127.0.0.1, on both stores: Standard Webhooks signatures as the
`standardwebhooks` package verifies them, at-least-once delivery in log order through a
receiver outage, disabling of an endpoint that keeps failing, redelivery, secret rotation,
tenancy, and no secret in any payload."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from engine.settings import Settings
from runtime import Runtime
from tests.conftest import caught_up
from tests.e2e.conftest import import_codes
from tests.e2e.webhook_receiver import Receiver

FAST = {"QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS": "true", "QUANYI_WEBHOOK_POLL_SECONDS": "0.05",
        "QUANYI_WEBHOOK_RETRY_BASE_SECONDS": "0.05", "QUANYI_WEBHOOK_RETRY_MAX_SECONDS": "0.2",
        "QUANYI_WEBHOOK_TIMEOUT_SECONDS": "2"}


@pytest.fixture
def settings(quanyi_env: dict[str, str]) -> Settings:
    return Settings.from_env({**quanyi_env, **FAST})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.down()


def register(client, headers, url: str, *types: str, **extra) -> dict:
    answer = client.post("/v1/webhooks", headers=headers, json={
        "url": url, "event_types": list(types) or ["order.delivered"], **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def buy(client, keys, sku: str, headers=None) -> tuple[str, dict]:
    """Import a code, order it and pay: the code string and the paid order."""
    headers = headers or keys["app"]
    code = f"WH-{uuid.uuid4().hex[:10]}"
    import_codes(client, keys, sku, [code])
    placed = client.post("/v1/orders", headers=headers, json={
        "buyer_id": "b-1", "items": [{"sku": sku, "quantity": 1}]}).json()
    paid = client.post(f"/v1/orders/{placed['order_id']}/payments", headers=headers, json={
        "payment_ref": f"pay-{uuid.uuid4().hex[:8]}", "amount": placed["amount"],
        "currency": "CNY"})
    assert paid.status_code == 200, paid.text
    return code, paid.json()


def verify(secret: str, received) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


def test_a_delivery_verifies_with_the_standardwebhooks_package(client, keys, product,
                                                                 receiver):
    endpoint = register(client, keys["app"], receiver.url, "order.delivered")
    assert endpoint["secret"].startswith("whsec_")
    code, order = buy(client, keys, product)
    (received,) = receiver.wait_for(1, "order.delivered")
    assert verify(endpoint["secret"], received)["data"]["order_id"] == order["order_id"]
    assert received.headers["webhook-id"].startswith("msg_")
    assert received.headers["webhook-signature"].startswith("v1,")
    assert received.data["codes"] == [{"code_id": order["codes"][0]["code_id"], "sku": product}]
    assert received.payload["timestamp"].endswith("Z")
    assert code.encode() not in received.body and b"PIN" not in received.body


def test_a_forged_or_stale_signature_does_not_verify(client, keys, product, receiver):
    endpoint = register(client, keys["app"], receiver.url, "order.delivered")
    buy(client, keys, product)
    (received,) = receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        verify(endpoint["secret"], dataclasses.replace(received, body=received.body + b" "))


def test_the_secret_is_shown_once_and_never_again(client, keys, receiver):
    endpoint = register(client, keys["app"], receiver.url)
    caught_up(client.app.state.runtime)
    shown = [client.get(f"/v1/webhooks/{endpoint['endpoint_id']}", headers=keys["app"]).text,
             client.get("/v1/webhooks", headers=keys["app"]).text]
    assert endpoint["endpoint_id"] in shown[1]
    assert all(endpoint["secret"] not in text and '"secret"' not in text for text in shown)


def test_no_secret_in_the_events_or_the_read_database(client, keys, runtime, receiver):
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg=="
    register(client, keys["app"], receiver.url, secret=secret)
    caught_up(runtime)
    stored = [n.state for n in runtime.store.notifications(0, 10_000)]
    assert stored and not any(b"c2VjcmV0LXNlY3JldC1zZWNyZXQt" in s for s in stored)
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT * FROM webhook_endpoints")
        assert "c2VjcmV0LXNlY3JldC1zZWNyZXQt" not in repr(cursor.fetchall())


def test_a_given_secret_is_used_to_sign(client, keys, product, receiver):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    register(client, keys["app"], receiver.url, secret=secret)
    buy(client, keys, product)
    assert verify(secret, receiver.wait_for(1)[0])["type"] == "order.delivered"


@pytest.mark.parametrize("body, says", [
    ({"url": "ftp://example.com/x"}, "http"),
    ({"url": "https://user:pw@example.com/x"}, "credentials"),
    ({"url": "not a url"}, "url"),
    ({"event_types": ["order.paid"]}, "event_types"),
    ({"event_types": []}, "event_types"),
    ({"secret": "whsec_short"}, "secret"),
    ({"secret": "plain-secret-without-prefix-0000000000"}, "secret"),
])
def test_bad_registrations_are_refused_with_a_problem(client, keys, body, says):
    answer = client.post("/v1/webhooks", headers=keys["app"], json={
        "url": "https://example.com/hooks", "event_types": ["order.delivered"], **body})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.json()["detail"]


def test_roles_other_than_admin_and_app_may_not_register(client, keys):
    for role in ("merchant", "support", "finance"):
        answer = client.post("/v1/webhooks", headers=keys[role], json={
            "url": "https://example.com/hooks", "event_types": ["order.delivered"]})
        assert answer.status_code == 403, role


def test_the_same_idempotency_key_registers_once(client, keys, runtime, receiver):
    headers = {**keys["app"], "Idempotency-Key": "register-hook-1"}
    body = {"url": receiver.url, "event_types": ["order.delivered"]}
    first = client.post("/v1/webhooks", headers=headers, json=body)
    second = client.post("/v1/webhooks", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true"
    assert first.json()["endpoint_id"] == second.json()["endpoint_id"]
    caught_up(runtime)
    assert len(client.get("/v1/webhooks", headers=keys["app"]).json()["items"]) == 1


def test_an_app_key_sees_and_hears_only_its_own(client, keys, runtime, product, receiver):
    other = runtime.engine.keys.issue(role="app", name="other-shop", tenant="other")
    other_headers = {"Authorization": f"Bearer {other.secret}"}
    mine = register(client, keys["app"], receiver.url, "order.delivered")
    spy = Receiver()
    try:
        theirs = register(client, other_headers, spy.url, "order.delivered")
        caught_up(runtime)
        assert client.get(f"/v1/webhooks/{mine['endpoint_id']}",
                          headers=other_headers).status_code == 404
        listed = client.get("/v1/webhooks", headers=other_headers).json()["items"]
        assert [e["endpoint_id"] for e in listed] == [theirs["endpoint_id"]]
        everyone = client.get("/v1/webhooks", headers=keys["admin"]).json()["items"]
        assert len(everyone) == 2
        _, order = buy(client, keys, product)
        assert receiver.wait_for(1)[0].data["order_id"] == order["order_id"]
        time.sleep(0.5)  # time enough for a wrong delivery to arrive
        assert spy.received == []
    finally:
        spy.down()


def test_every_event_arrives_in_order_once_the_receiver_is_back(client, keys, product,
                                                                receiver):
    endpoint = register(client, keys["app"], receiver.url, "order.delivered",
                        "order.refunded")
    receiver.down()
    orders = [buy(client, keys, product)[1] for _ in range(3)]
    for order in orders[:2]:
        refunded = client.post(f"/v1/orders/{order['order_id']}/refunds",
                               headers=keys["app"], json={"reason": "changed their mind"})
        assert refunded.status_code == 201, refunded.text
    deliveries = f"/v1/webhooks/{endpoint['endpoint_id']}/deliveries"
    _wait(lambda: any(a["status_code"] is None and a["error"] for d in
                      client.get(deliveries, headers=keys["app"]).json()["items"]
                      for a in d["attempts"]))
    receiver.up()
    received = receiver.wait_for(5)
    time.sleep(0.3)
    by_id = {r.headers["webhook-id"]: r for r in receiver.received}
    assert len(by_id) == 5
    for order in orders:
        told = [r.type for r in received if r.data["order_id"] == order["order_id"]]
        assert told == (["order.delivered", "order.refunded"] if order in orders[:2]
                        else ["order.delivered"])
    positions = [d["position"] for d in client.get(deliveries, headers=keys["app"]).json()[
        "items"]]
    assert positions == sorted(positions, reverse=True)
    assert [r.headers["webhook-id"] for r in received] == [
        d["message_id"] for d in reversed(client.get(deliveries, headers=keys["app"]).json()[
            "items"])]


def test_a_slow_endpoint_delays_neither_another_nor_a_command(client, keys, product,
                                                              receiver):
    slow = Receiver()
    slow.delay = 1.5  # beyond this test's patience, within the 2 s attempt timeout
    try:
        register(client, keys["app"], slow.url)
        register(client, keys["app"], receiver.url)
        started = time.monotonic()
        buy(client, keys, product)
        _, second = buy(client, keys, product)
        assert time.monotonic() - started < 1.5  # the payments did not wait on anyone
        told = receiver.wait_for(2, timeout=1.0)
        assert told[1].data["order_id"] == second["order_id"]
        assert slow.received == []  # still sitting on the first one
    finally:
        slow.down()


def test_a_restarted_server_delivers_what_the_stopped_one_had_not(client, keys, runtime,
                                                                  settings, product,
                                                                  receiver):
    register(client, keys["app"], receiver.url)
    receiver.down()
    _, order = buy(client, keys, product)
    caught_up(runtime)
    time.sleep(0.3)  # an attempt or two fail
    runtime.webhooks.stop()  # the first server's dispatcher is gone
    receiver.up()
    second = Runtime.open(settings)
    second.start()
    try:
        (told,) = receiver.wait_for(1)
        assert told.data["order_id"] == order["order_id"]
    finally:
        second.close()


def test_two_servers_on_one_database_deliver_each_event_once(client, keys, runtime,
                                                             settings, product, receiver):
    second = Runtime.open(settings)
    second.start()
    try:
        register(client, keys["app"], receiver.url)
        orders = [buy(client, keys, product)[1]["order_id"] for _ in range(4)]
        told = receiver.wait_for(4)
        time.sleep(0.5)  # time enough for a second copy to arrive
        assert [r.data["order_id"] for r in receiver.received] == orders
        assert len(told) == 4
    finally:
        second.close()


def test_an_endpoint_failing_too_long_is_disabled_and_says_why(client, keys, runtime,
                                                                product, receiver):
    runtime.webhooks.settings = dataclasses.replace(runtime.settings,
                                                    webhook_disable_after_seconds=0.5)
    receiver.status = 500
    endpoint = register(client, keys["app"], receiver.url)
    buy(client, keys, product)
    url = f"/v1/webhooks/{endpoint['endpoint_id']}"
    _wait(lambda: client.get(url, headers=keys["app"]).json()["status"] == "disabled")
    shown = client.get(url, headers=keys["app"]).json()
    assert "HTTP 500" in shown["disabled_reason"] and shown["failing_since"]
    assert shown["failing_since"] <= shown["disabled_at"]
    attempts = client.get(f"{url}/deliveries", headers=keys["app"]).json()["items"][0][
        "attempts"]
    assert len(attempts) >= 2 and {a["status_code"] for a in attempts} == {500}


def test_a_disabled_endpoint_hears_nothing_until_enabled(client, keys, runtime, product,
                                                        receiver):
    endpoint = register(client, keys["app"], receiver.url)
    url = f"/v1/webhooks/{endpoint['endpoint_id']}"
    disabled = client.post(f"{url}/disable", headers=keys["app"], json={"reason": "upgrade"})
    assert disabled.json()["status"] == "disabled"
    assert client.post(f"{url}/disable", headers=keys["app"]).status_code == 409
    _, order = buy(client, keys, product)
    caught_up(runtime)
    time.sleep(0.4)
    assert receiver.received == []
    assert client.post(f"{url}/enable", headers=keys["app"]).json()["status"] == "enabled"
    assert receiver.wait_for(1)[0].data["order_id"] == order["order_id"]


def test_a_redelivery_sends_the_same_message_again(client, keys, product, receiver):
    endpoint = register(client, keys["app"], receiver.url)
    buy(client, keys, product)
    (first,) = receiver.wait_for(1)
    url = f"/v1/webhooks/{endpoint['endpoint_id']}/deliveries"
    _wait(lambda: client.get(url, headers=keys["app"]).json()["items"][0]["status"]
          == "delivered")  # the answer came; its record follows
    (delivery,) = client.get(url, headers=keys["app"]).json()["items"]
    again = client.post(f"{url}/{delivery['delivery_id']}/redeliver", headers=keys["app"])
    assert again.status_code == 202, again.text
    assert again.json()["redelivery_of"] == delivery["delivery_id"]
    second = receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body
    assert verify(endpoint["secret"], second)
    missing = client.post(f"{url}/{uuid.uuid4()}/redeliver", headers=keys["app"])
    assert missing.status_code == 404


def test_deliveries_are_listed_a_page_at_a_time(client, keys, product, receiver):
    endpoint = register(client, keys["app"], receiver.url)
    for _ in range(3):
        buy(client, keys, product)
    receiver.wait_for(3)
    url = f"/v1/webhooks/{endpoint['endpoint_id']}/deliveries"
    first = client.get(url, headers=keys["app"], params={"limit": 2}).json()
    rest = client.get(url, headers=keys["app"],
                      params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    ids = [d["delivery_id"] for d in first["items"] + rest["items"]]
    assert len(set(ids)) == 3


def test_a_rotated_secret_signs_the_next_deliveries(client, keys, product, receiver):
    endpoint = register(client, keys["app"], receiver.url)
    rotated = client.post(f"/v1/webhooks/{endpoint['endpoint_id']}/rotate-secret",
                          headers=keys["app"])
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["secret"]
    assert fresh.startswith("whsec_") and fresh != endpoint["secret"]
    buy(client, keys, product)
    (received,) = receiver.wait_for(1)
    assert verify(fresh, received)
    with pytest.raises(WebhookVerificationError):
        verify(endpoint["secret"], received)


def test_redemptions_and_their_rollback_are_told(client, keys, product, receiver):
    register(client, keys["app"], receiver.url, "code.redeemed",
             "code.redemption_rolled_back")
    code, order = buy(client, keys, product)
    redeemed = client.post("/v1/redemptions", headers=keys["merchant"],
                           json={"code": code, "merchant_id": "m-1"})
    assert redeemed.status_code == 201, redeemed.text
    rollback = client.post(f"/v1/redemptions/{redeemed.json()['redemption_id']}/rollback",
                           headers=keys["merchant"], json={"reason": "wrong till"})
    assert rollback.status_code == 200, rollback.text
    told = receiver.wait_for(2)
    assert [r.type for r in told] == ["code.redeemed", "code.redemption_rolled_back"]
    assert told[0].data["order_id"] == order["order_id"]
    assert told[0].data["merchant_id"] == "m-1" and told[0].data["sku"] == product
    assert all(code.encode() not in r.body for r in told)


def test_an_expired_order_is_told(client, keys, runtime, product, receiver):
    register(client, keys["app"], receiver.url, "order.expired")
    import_codes(client, keys, product, [f"EXP-{uuid.uuid4().hex[:8]}"])
    runtime.engine.orders._placing._ttl = timedelta(0)  # this order is due at once
    placed = _place(client, keys, product)
    assert runtime.engine.orders.expire(uuid.UUID(placed["order_id"]))
    (told,) = receiver.wait_for(1)
    assert told.data == {"order_id": placed["order_id"], "external_ref": None}


def test_stock_low_is_told_once_per_crossing(client, keys, runtime, product, receiver):
    register(client, keys["app"], receiver.url, "stock.low")
    import_codes(client, keys, product, [f"LOW-{uuid.uuid4().hex[:8]}" for _ in range(3)])
    set_low = client.put(f"/v1/products/{product}/low-stock", headers=keys["app"],
                         json={"threshold": 2})
    assert set_low.json()["low_stock_threshold"] == 2, set_low.text
    placed = [_place(client, keys, product) for _ in range(3)]  # 3 -> 2 -> 1 (low) -> 0
    (told,) = receiver.wait_for(1)
    assert told.data == {"sku": product, "threshold": 2, "available": 1}
    for order in placed:  # back to 3: re-armed
        client.post(f"/v1/orders/{order['order_id']}/cancel", headers=keys["app"], json={})
    _place(client, keys, product)
    _place(client, keys, product)  # 3 -> 2 -> 1: low again
    second = receiver.wait_for(2)[1]
    caught_up(runtime)
    time.sleep(0.3)
    assert len(receiver.received) == 2 and second.data["available"] == 1


def test_a_low_stock_threshold_is_validated(client, keys, product):
    for body in ({"threshold": 0}, {"threshold": "5"}, {}):
        answer = client.put(f"/v1/products/{product}/low-stock", headers=keys["app"],
                            json=body)
        assert answer.status_code == 422, body
    cleared = client.put(f"/v1/products/{product}/low-stock", headers=keys["app"],
                         json={"threshold": None})
    assert cleared.status_code == 200 and cleared.json()["low_stock_threshold"] is None
    assert client.put("/v1/products/NO-SUCH/low-stock", headers=keys["app"],
                      json={"threshold": 3}).status_code == 404


# -- helpers -----------------------------------------------------------------------------


def _place(client, keys, sku: str) -> dict:
    answer = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": f"b-{uuid.uuid4().hex[:6]}", "items": [{"sku": sku, "quantity": 1}]})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the condition did not come true in time")
