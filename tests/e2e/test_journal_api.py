"""GET /v1/ledger/journal: every leg as CSV, or a Beancount file that bean-check accepts."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.kernel.money import Money
from engine.ledger.transactions import SALES, LedgerTransaction, Leg, clearing
from tests.e2e.ledger_book import post_payout, post_refund, post_sale, post_settlement
from tests.e2e.test_tenant_wall import world  # noqa: F401 (a fixture)

TODAY = datetime.now(timezone.utc).date()
BEAN_CHECK = Path(sys.executable).with_name("bean-check")
AWKWARD_MEMO = 'said "=1+1" \\ then ; left'


@pytest.fixture
def books(runtime) -> int:
    """A sale with commission and two suppliers, a partial refund, a payout, a settlement,
    and a transaction whose memo and links are awkward text; the number of legs."""
    post_sale(runtime, order_id="o-1", payment_ref="wx-1", provider="wechat", paid=9999,
              costs=[("c-1", "sup-1", 1500), ("c-2", "Sup.2", 1200)],
              commissions=[("d-1", 999), ("d-2", 499), ("d-3", 249)])
    post_refund(runtime, order_id="o-1", refund_id="rf-1", payment_ref="wx-1",
                provider="wechat", amount=3333, written_off=[("c-2", 1200)],
                clawbacks=[("d-1", 333), ("d-2", 166), ("d-3", 83)])
    post_payout(runtime, distributor="d-1", amount=600)
    post_settlement(runtime, supplier="sup-1", amount=1500)
    runtime.engine.writer.save(LedgerTransaction.post(
        kind="sale", cause="awkward", actor="t", tenant=None,
        links={"order_id": 'o"2\\', "payment_ref": "-x", "provider": "default"},
        legs=[Leg(clearing(None), Money(5, "JPY"), AWKWARD_MEMO),
              Leg(SALES, Money(-5, "JPY"), AWKWARD_MEMO)]))
    return 4 + 2 * 2 + 2 * 3 + 2 + 2 + 2 * 3 + 2 + 2 + 2


def _journal(client, keys, query: str = "", role: str = "finance"):
    return client.get(f"/v1/ledger/journal{query}", headers=keys[role])


def _bean_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "journal.beancount"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True,
                          timeout=120)


def test_the_beancount_journal_passes_bean_check(client, keys, books, tmp_path):
    answer = _journal(client, keys, "?format=beancount")
    assert answer.status_code == 200, answer.text
    text = answer.text
    checked = _bean_check(tmp_path, text)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stdout + checked.stderr + text)
    assert text.count(" * ") == 5
    assert f"{TODAY.isoformat()} open Liabilities:Suppliers:Sup-1\n" in text
    assert "Liabilities:Suppliers:Sup-2--" in text  # sanitised: a digest keeps it apart
    assert "  Assets:Clearing:Wechat  99.99 CNY\n" in text
    assert "  Income:Sales  33.33 CNY\n" in text
    assert "  Assets:Clearing:Default  5 JPY\n" in text
    assert "Expenses:CostOfSales" in text and "Expenses:WriteOffs" in text


def test_the_beancount_journal_opens_accounts_on_the_from_date(client, keys, books, tmp_path):
    since = (TODAY - timedelta(days=3)).isoformat()
    text = _journal(client, keys, f"?format=beancount&from={since}").text
    opens = [line for line in text.splitlines() if " open " in line]
    assert len(opens) == 13 and all(line.startswith(f"{since} open ") for line in opens)
    assert _bean_check(tmp_path, text).returncode == 0


def test_a_broken_beancount_file_fails_bean_check(tmp_path):
    broken = (f"{TODAY} open Assets:Bank\n\n{TODAY} * \"sale\" \"unbalanced\"\n"
              "  Assets:Bank  1.00 CNY\n  Income:Sales  -0.99 CNY\n")
    checked = _bean_check(tmp_path, broken)
    assert checked.returncode != 0
    assert checked.stdout + checked.stderr


def test_the_csv_journal_has_one_row_per_leg(client, keys, books):
    answer = _journal(client, keys)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == books
    first = rows[0]
    assert (first["kind"], first["account"], first["amount"], first["currency"],
            first["order_id"], first["payment_ref"]) == (
        "sale", "assets:clearing:wechat", "9999", "CNY", "o-1", "wx-1")
    assert sum(int(r["amount"]) for r in rows if r["currency"] == "CNY") == 0
    awkward = rows[-1]
    assert awkward["memo"] == AWKWARD_MEMO and awkward["payment_ref"] == "'-x"


def test_the_range_is_whole_utc_days_both_included(client, keys, books):
    today, tomorrow = TODAY.isoformat(), (TODAY + timedelta(days=1)).isoformat()
    yesterday = (TODAY - timedelta(days=1)).isoformat()

    def count(query: str) -> int:
        return len(list(csv.DictReader(io.StringIO(_journal(client, keys, query).text))))

    assert count(f"?from={today}&to={today}") == books
    assert count(f"?from={tomorrow}") == 0
    assert count(f"?to={yesterday}") == 0


@pytest.mark.parametrize("query", ["?from=2026-02-30", "?to=soon", "?format=xlsx",
                                   "?from=2026-11-23&to=2026-11-22", "?from=2026-11-23T00:00Z"])
def test_a_bad_range_or_format_is_422(client, keys, query):
    answer = _journal(client, keys, query)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"


def test_only_finance_reads_the_journal(client, keys):
    assert _journal(client, keys, role="support").status_code == 403


def test_each_tenants_journal_and_the_consolidated_one_pass_bean_check(
        client, runtime, world, tmp_path):
    a, b = world
    platform = runtime.engine.keys.issue(role="finance", name="platform-finance").secret
    for headers in (a.keys["finance"], b.keys["finance"],
                    {"Authorization": f"Bearer {platform}"}):
        text = client.get("/v1/ledger/journal?format=beancount", headers=headers).text
        checked = _bean_check(tmp_path, text)
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + text
    mine = client.get("/v1/ledger/journal?format=beancount", headers=a.keys["finance"]).text
    assert "  Liabilities:Distributors:D-wall  " in mine and " * " in mine
    whole = client.get("/v1/ledger/journal?format=beancount",
                       headers={"Authorization": f"Bearer {platform}"}).text
    assert "  Liabilities:Distributors:Ta:D-wall  " in whole
