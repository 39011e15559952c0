"""Stored events to webhook messages: types by topic (the top-up outcomes included, before
any module defines them), allow-listed data that never carries a secret, stable ids,
Standard Webhooks signatures, the URL guard and the retry schedule."""

from __future__ import annotations

import base64
import dataclasses
import uuid
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from engine.kernel.errors import ValidationFailed
from engine.kernel.money import Money
from engine.settings import Settings
from engine.webhooks.messages import (
    message_id,
    message_of,
    sign,
    stock_message,
    topics_for,
)
from engine.webhooks.urls import check_url
from runtime.webhook_courier import backoff

AT = datetime(2026, 11, 23, 10, 22, 23, 123456, tzinfo=timezone.utc)
ORDER = str(uuid.uuid4())
CODE = str(uuid.uuid4())


class Context:
    def order(self, order_id):
        return {"owner": "tenant:shop-1", "external_ref": "shop-778"} if order_id == ORDER \
            else None

    def code(self, code_id):
        return {"sku": "VIP-1M", "order_id": ORDER} if code_id == CODE else None


def stored(**fields):
    """A stored event's decoded state, as the dispatcher reads it from the log."""
    return {"timestamp": AT, **fields}


@pytest.mark.parametrize("topic, kind", [("quanyi:topup.succeeded", "topup.succeeded"),
                                         ("quanyi:topup.failed", "topup.failed")])
def test_top_up_outcomes_map_by_topic_with_only_allowed_fields(topic, kind):
    state = stored(originator_id=uuid.uuid4(), order_id=ORDER, supplier_id="sup-9",
                   credentials="user:pw", recharge_account="13800138000", sealed="x")
    message = message_of(topic, state, 42, Context())
    assert message.type == kind and message.owner == "tenant:shop-1"
    assert message.data == {"order_id": ORDER, "external_ref": "shop-778",
                            "supplier_id": "sup-9"}
    assert b"user:pw" not in message.payload() and b"13800138000" not in message.payload()
    assert topics_for([kind]) == [topic]


def test_a_delivered_order_names_its_codes_but_never_their_secrets():
    state = stored(originator_id=uuid.UUID(ORDER), payment_ref="wx-1", amount=1990,
                   currency="CNY", provider="wechat", late=False, actor="key:x",
                   codes=[{"code_id": CODE, "sku": "VIP-1M", "code": "AQZX", "pin": "4409",
                           "sealed": "blob"}])
    message = message_of("quanyi:order.paid", state, 7, Context())
    assert message.data["codes"] == [{"code_id": CODE, "sku": "VIP-1M"}]
    payload = message.payload()
    assert not [part for part in (b"AQZX", b"4409", b"blob", b"key:x") if part in payload]


def test_a_payment_that_delivered_no_code_tells_no_delivery():
    state = stored(originator_id=uuid.UUID(ORDER), payment_ref="wx-1", amount=1990,
                   currency="CNY", provider=None, late=False, actor="a", codes=[])
    assert message_of("quanyi:order.paid", state, 7, Context()) is None


def test_a_refund_carries_its_money_and_codes():
    state = stored(originator_id=uuid.UUID(ORDER), refund_id="r-1", code_ids=[CODE],
                   amount=Money(990, "CNY"), reason="changed mind", status="refunded",
                   actor="a")
    message = message_of("quanyi:order.refunded", state, 9, Context())
    assert message.type == "order.refunded"
    assert (message.data["amount"], message.data["currency"]) == (990, "CNY")


def test_a_late_payment_returned_is_told_as_a_refund():
    state = stored(originator_id=uuid.UUID(ORDER), payment_ref="wx-9", amount=1990,
                   currency="CNY", provider="wechat", reason="sold out", actor="a")
    message = message_of("quanyi:order.payment_refunded", state, 9, Context())
    assert message.type == "order.refunded"
    assert message.data["refund_id"] == "auto-wx-9" and message.data["status"] == "refunded"


def test_a_redemption_names_the_code_sku_and_order_never_the_code():
    state = stored(originator_id=uuid.UUID(CODE), redemption_id="rd-1", merchant_id="m-7",
                   terminal_id="t-1", location=None, actor="a")
    message = message_of("quanyi:code.redeemed", state, 11, Context())
    assert message.data == {"code_id": CODE, "sku": "VIP-1M", "order_id": ORDER,
                            "redemption_id": "rd-1", "merchant_id": "m-7",
                            "terminal_id": "t-1", "location": None}
    assert message.owner == "tenant:shop-1"


def test_events_that_tell_nothing_map_to_no_message():
    assert message_of("quanyi:code.reserved", stored(originator_id=uuid.uuid4()), 1,
                      Context()) is None


def test_a_payload_is_type_timestamp_and_data():
    message = stock_message({"position": 5, "sku": "VIP-1M", "threshold": 10,
                             "available": 9, "at": "2026-11-23T10:22:23.123456Z"})
    assert message.payload() == (b'{"type":"stock.low","timestamp":"2026-11-23T10:22:23.'
                                 b'123456Z","data":{"sku":"VIP-1M","threshold":10,'
                                 b'"available":9}}')


def test_the_message_id_is_stable_per_endpoint_and_event():
    assert message_id("e1", 5, "order.delivered") == message_id("e1", 5, "order.delivered")
    assert message_id("e1", 5, "order.delivered") != message_id("e2", 5, "order.delivered")
    assert message_id("e1", 5, "order.delivered") != message_id("e1", 6, "order.delivered")


def test_the_signature_verifies_with_the_standardwebhooks_package():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body, timestamp = b'{"type":"stock.low"}', int(datetime.now(timezone.utc).timestamp())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, "msg_1", timestamp, body)}
    assert Webhook(secret).verify(body, headers) == {"type": "stock.low"}


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/hook", "http://10.0.0.5/hook",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://192.168.1.1/",
    "http://0.0.0.0/", "http://api.localhost/hook"])
def test_private_addresses_are_refused_unless_allowed(url):
    with pytest.raises(ValidationFailed):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["ftp://example.com/", "https://u:p@example.com/",
                                 "https:///path", "https://example.com/#frag",
                                 "https://example.com:99999/", "javascript:alert(1)"])
def test_urls_that_are_not_plain_http_are_refused(url):
    with pytest.raises(ValidationFailed):
        check_url(url, allow_private=True)


def test_public_urls_are_accepted():
    assert check_url("https://hooks.example.com/q?x=1", allow_private=False)


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap(tmp_path):
    settings = dataclasses.replace(Settings.from_env({"QUANYI_DATA_DIR": str(tmp_path)}),
                                   webhook_retry_base_seconds=2.0,
                                   webhook_retry_max_seconds=60.0)
    delays = [[backoff(n, settings) for _ in range(50)] for n in (1, 2, 3, 10)]
    assert all(1.0 <= d <= 2.0 for d in delays[0]) and all(2.0 <= d <= 4.0 for d in delays[1])
    assert all(4.0 <= d <= 8.0 for d in delays[2]) and all(30.0 <= d <= 60.0 for d in delays[3])
    assert len(set(delays[0])) > 1
