"""GET /v1/reconciliation/daily: one UTC day per supplier, distributor and payment provider,
with totals, as JSON or as one flat CSV table with a `section` column."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.ledger_book import post_payout, post_refund, post_sale, post_settlement

TODAY = datetime.now(timezone.utc).date()


@pytest.fixture
def day_of_business(runtime) -> None:
    """Two sales (wechat, alipay), a refund of one code put back on sale, a payout and a
    settlement, all posted today."""
    post_sale(runtime, order_id="o-1", payment_ref="wx-1", provider="wechat", paid=2000,
              costs=[("c-1", "sup-A", 700), ("c-2", "sup-B", 600)],
              commissions=[("d-1", 200), ("d-2", 100)])
    post_sale(runtime, order_id="o-2", payment_ref="ali-1", provider="alipay", paid=1000,
              costs=[("c-3", "sup-A", 700)], commissions=[("d-1", 100)])
    post_refund(runtime, order_id="o-1", refund_id="rf-1", payment_ref="wx-1",
                provider="wechat", amount=1000, returned=[("c-2", "sup-B", 600)],
                clawbacks=[("d-1", 100), ("d-2", 50)])
    post_payout(runtime, distributor="d-1", amount=150)
    post_settlement(runtime, supplier="sup-A", amount=1000)


def _daily(client, keys, day, fmt: str = "json", role: str = "finance"):
    return client.get(f"/v1/reconciliation/daily?date={day}&format={fmt}", headers=keys[role])


def test_the_day_is_summed_per_supplier_distributor_and_provider(client, keys,
                                                                 day_of_business):
    answer = _daily(client, keys, TODAY.isoformat())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "date": TODAY.isoformat(),
        "suppliers": [
            {"supplier_id": "sup-A", "currency": "CNY", "units_delivered": 2,
             "units_returned": 0, "topups_delivered": 0, "cost_owed": 1400, "settled": 1000},
            {"supplier_id": "sup-B", "currency": "CNY", "units_delivered": 1,
             "units_returned": 1, "topups_delivered": 0, "cost_owed": 0, "settled": 0}],
        "distributors": [
            {"distributor_id": "d-1", "currency": "CNY", "commission": 300, "clawback": 100,
             "paid_out": 150},
            {"distributor_id": "d-2", "currency": "CNY", "commission": 100, "clawback": 50,
             "paid_out": 0}],
        "providers": [
            {"provider": "alipay", "currency": "CNY", "captured": 1000, "refunded": 0},
            {"provider": "wechat", "currency": "CNY", "captured": 2000, "refunded": 1000}],
        "totals": [{"currency": "CNY", "units_delivered": 3, "units_returned": 1,
                    "topups_delivered": 0, "cost_owed": 1400, "settled": 1000, "commission": 400, "clawback": 150,
                    "paid_out": 150, "captured": 3000, "refunded": 1000}]}


def test_another_day_is_empty(client, keys, day_of_business):
    body = _daily(client, keys, (TODAY - timedelta(days=1)).isoformat()).json()
    assert body["suppliers"] == body["distributors"] == body["providers"] == []
    assert body["totals"] == []


def test_the_csv_is_one_table_with_a_section_column(client, keys, day_of_business):
    answer = _daily(client, keys, TODAY.isoformat(), "csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["section", "party", "currency", "units_delivered", "units_returned",
                       "topups_delivered", "cost_owed", "settled", "commission", "clawback", "paid_out",
                       "captured", "refunded"]
    assert [r[:3] for r in rows[1:]] == [
        ["supplier", "sup-A", "CNY"], ["supplier", "sup-B", "CNY"],
        ["distributor", "d-1", "CNY"], ["distributor", "d-2", "CNY"],
        ["provider", "alipay", "CNY"], ["provider", "wechat", "CNY"], ["total", "", "CNY"]]
    assert rows[1][3:] == ["2", "0", "0", "1400", "1000", "", "", "", "", ""]
    assert rows[-1][3:] == ["3", "1", "0", "1400", "1000", "400", "150", "150", "3000", "1000"]


@pytest.mark.parametrize("day", ["2026-02-30", "tomorrow", "2026-1-1", "", "20261123",
                                 "2026-11-23T00:00:00Z"])
def test_a_bad_date_is_422(client, keys, day):
    answer = _daily(client, keys, day)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"


def test_an_unknown_format_is_422_and_the_date_is_required(client, keys):
    assert _daily(client, keys, TODAY.isoformat(), "xlsx").status_code == 422
    assert client.get("/v1/reconciliation/daily", headers=keys["finance"]).status_code == 422


def test_the_last_representable_day_answers(client, keys):
    assert _daily(client, keys, "9999-12-31").status_code == 200


def test_only_finance_reads_the_daily_statement(client, keys):
    assert _daily(client, keys, TODAY.isoformat(), role="support").status_code == 403
    assert _daily(client, keys, TODAY.isoformat(), role="app").status_code == 403
