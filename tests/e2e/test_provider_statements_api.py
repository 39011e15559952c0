"""POST /v1/reconciliation/providers/{provider}/statements: a provider's CSV statement
matched with its clearing account over the statement's period; every bad cell a 422 with
its row index, never a 500."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.ledger_book import post_refund, post_sale

NOW = datetime.now(timezone.utc)
HOUR_AGO = (NOW - timedelta(hours=1)).isoformat()
IN_AN_HOUR = (NOW + timedelta(hours=1)).isoformat()
HEADER = "payment_ref,amount,type,at\n"


@pytest.fixture
def booked(runtime) -> None:
    """wechat: wx-1 captured 2000 and 500 refunded; wx-2 captured 1000; alipay: ali-1."""
    post_sale(runtime, order_id="o-1", payment_ref="wx-1", provider="wechat", paid=2000,
              costs=[], commissions=[])
    post_refund(runtime, order_id="o-1", refund_id="rf-1", payment_ref="wx-1",
                provider="wechat", amount=500)
    post_sale(runtime, order_id="o-2", payment_ref="wx-2", provider="wechat", paid=1000,
              costs=[], commissions=[])
    post_sale(runtime, order_id="o-3", payment_ref="ali-1", provider="alipay", paid=700,
              costs=[], commissions=[])


def _send(client, keys, body: str | bytes, provider: str = "wechat", role: str = "finance"):
    return client.post(f"/v1/reconciliation/providers/{provider}/statements",
                       headers={**keys[role], "Content-Type": "text/csv"},
                       content=body if isinstance(body, bytes) else body.encode())


def test_the_statement_is_matched_line_by_line_with_the_clearing_account(client, keys,
                                                                         booked):
    answer = _send(client, keys, HEADER + f"wx-1,2000,capture,{HOUR_AGO}\n"
                   f"wx-1,400,refund,{NOW.isoformat()}\n"
                   f"wx-9,300,capture,{IN_AN_HOUR}\n")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["provider"] == "wechat"
    assert (body["matched"], body["missing_in_ledger"], body["missing_in_statement"],
            body["amount_differences"]) == (
        1, [{"payment_ref": "wx-9", "type": "capture", "amount": 300}],
        [{"payment_ref": "wx-2", "type": "capture", "amount": 1000}],
        [{"payment_ref": "wx-1", "type": "refund", "statement": 400, "ledger": 500}])
    assert body["period_from"].endswith("Z") and body["period_from"] < body["period_to"]


def test_a_complete_statement_matches_everything(client, keys, booked):
    body = _send(client, keys, HEADER + f"wx-1,2000,capture,{HOUR_AGO}\n"
                 f"wx-1,500,refund,{IN_AN_HOUR}\nwx-2,1000,capture,{IN_AN_HOUR}\n").json()
    assert body["matched"] == 3
    assert body["missing_in_ledger"] == body["missing_in_statement"] == []
    assert body["amount_differences"] == []


def test_legs_outside_the_statements_period_are_not_expected_in_it(client, keys, booked):
    long_ago = (NOW - timedelta(days=3)).isoformat()
    body = _send(client, keys, HEADER + f"wx-1,2000,capture,{long_ago}\n"
                 f"wx-1,2000,capture,{(NOW - timedelta(days=2)).isoformat()}\n").json()
    assert body["matched"] == 0 and body["missing_in_statement"] == []
    assert body["missing_in_ledger"] == [{"payment_ref": "wx-1", "type": "capture",
                                          "amount": 4000}]


def test_another_providers_legs_stay_out(client, keys, booked):
    body = _send(client, keys, HEADER + f"ali-1,700,capture,{HOUR_AGO}\n"
                 f"ali-1,700,capture,{IN_AN_HOUR}\n", provider="alipay").json()
    assert body["amount_differences"] == [{"payment_ref": "ali-1", "type": "capture",
                                           "statement": 1400, "ledger": 700}]
    assert body["missing_in_statement"] == []


@pytest.mark.parametrize("body, index", [
    (HEADER + f"wx-1,2000,capture,{HOUR_AGO}\nwx-2,12.5,capture,{HOUR_AGO}\n", 1),
    (HEADER + f"wx-1,-5,capture,{HOUR_AGO}\n", 0),
    (HEADER + f"wx-1,99999999999999999999999,capture,{HOUR_AGO}\n", 0),
    (HEADER + f"wx-1,5,chargeback,{HOUR_AGO}\n", 0),
    (HEADER + "wx-1,5,capture,2026-11-23T10:00:00\n", 0),
    (HEADER + "wx-1,5,capture,yesterday\n", 0),
    (HEADER + "wx-1,5,capture,1999-01-01T00:00:00Z\n", 0),
    (HEADER + f",5,capture,{HOUR_AGO}\n", 0),
    (HEADER + f"{'r' * 129},5,capture,{HOUR_AGO}\n", 0),
    (HEADER + f"wx\x00-1,5,capture,{HOUR_AGO}\n", 0),
    (HEADER + f"wx-1,5,capture,{HOUR_AGO},extra\n", 0),
    (HEADER + f"wx-1,5,capture,{HOUR_AGO}\nwx-1,5\n", 1),
])
def test_a_bad_cell_is_422_naming_its_row(client, keys, body, index):
    answer = _send(client, keys, body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_error" and problem["index"] == index
    assert f"row {index}" in problem["detail"]


@pytest.mark.parametrize("body", [
    b"", HEADER.encode(), b"ref,amount,type,at\nwx-1,5,capture,2026-11-23T10:00:00Z\n",
    b"\xff\xfe\x00garbage", b'payment_ref,amount,type,at\n"wx-1,5,capture\n'])
def test_an_unreadable_or_empty_statement_is_422(client, keys, body):
    answer = _send(client, keys, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"


def test_a_provider_that_cannot_name_an_account_is_422(client, keys):
    answer = _send(client, keys, HEADER + f"wx-1,5,capture,{HOUR_AGO}\n", provider="we chat")
    assert answer.status_code == 422


def test_an_oversized_statement_is_413(client, keys, runtime):
    line = f"wx-1,5,capture,{HOUR_AGO}\n"
    body = HEADER + line * (runtime.settings.max_body_bytes // len(line) + 1)
    assert _send(client, keys, body).status_code == 413


def test_only_finance_sends_statements(client, keys):
    body = HEADER + f"wx-1,5,capture,{HOUR_AGO}\n"
    assert _send(client, keys, body, role="support").status_code == 403
    assert _send(client, keys, body, role="app").status_code == 403
