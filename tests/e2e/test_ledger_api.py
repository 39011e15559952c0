"""The ledger over HTTP (finance): accounts, a balance now and as of an instant, entries
page by page, the trial balance; payouts and settlements within what is owed."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from engine.ledger.transactions import transaction_id
from tests.integration.test_ledger_projection import post_sale

DISTRIBUTOR = "liabilities:distributors:d-1"


@pytest.fixture
def finance(keys) -> dict[str, str]:
    return keys["finance"]


def test_accounts_list_every_account_with_its_balance(client, runtime, finance):
    post_sale(runtime)
    answer = client.get("/v1/ledger/accounts", headers=finance)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["next_cursor"] is None
    rows = {a["account_id"]: a for a in body["items"]}
    assert rows[DISTRIBUTOR] == {"account_id": DISTRIBUTOR, "type": "liabilities",
                                 "currency": "CNY", "debits": 0, "credits": 99,
                                 "balance": -99}
    assert rows["income:sales"]["balance"] == -1990


@pytest.mark.parametrize("spelling", [DISTRIBUTOR, quote(DISTRIBUTOR, safe="")])
def test_an_account_id_with_colons_reads_plain_or_encoded(client, runtime, finance, spelling):
    post_sale(runtime)
    answer = client.get(f"/v1/ledger/accounts/{spelling}", headers=finance)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"account_id": DISTRIBUTOR, "balance": -99, "currency": "CNY",
                             "as_of": None}


def test_an_account_without_entries_is_not_found(client, runtime, finance):
    post_sale(runtime)
    answer = client.get("/v1/ledger/accounts/liabilities:distributors:nobody",
                        headers=finance)
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_a_balance_as_of_an_instant_before_and_after_a_posting(client, runtime, finance):
    post_sale(runtime, commission=100)
    runtime.read_your_writes()
    between = datetime.now(timezone.utc)
    time.sleep(0.01)
    post_sale(runtime, commission=30)
    in_shanghai = between.astimezone(timezone(timedelta(hours=8))).isoformat()
    at = client.get(f"/v1/ledger/accounts/{DISTRIBUTOR}", headers=finance,
                    params={"as_of": in_shanghai}).json()
    assert at["balance"] == -100
    assert at["as_of"] == between.isoformat().replace("+00:00", "Z")
    now = client.get(f"/v1/ledger/accounts/{DISTRIBUTOR}", headers=finance).json()
    assert now["balance"] == -130
    before = client.get(f"/v1/ledger/accounts/{DISTRIBUTOR}", headers=finance,
                        params={"as_of": "2020-01-01T00:00:00Z"}).json()
    assert before["balance"] == 0


@pytest.mark.parametrize("as_of", ["2026-11-23T10:00:00", "1999-01-01T00:00:00Z",
                                   "9999-12-31T23:59:59-01:00", "not a time"])
def test_an_as_of_naive_or_out_of_range_is_refused(client, runtime, finance, as_of):
    post_sale(runtime)
    for path in (f"/v1/ledger/accounts/{DISTRIBUTOR}", "/v1/ledger/trial-balance"):
        answer = client.get(path, headers=finance, params={"as_of": as_of})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["code"] == "validation_error"


def test_entries_page_through_an_account_by_cursor(client, runtime, finance):
    for _ in range(3):
        post_sale(runtime)
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/v1/ledger/accounts/liabilities:unearned/entries",
                            headers=finance, params=params)
        assert answer.status_code == 200, answer.text
        seen += answer.json()["items"]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and len({(e["txn_id"], e["leg"]) for e in seen}) == 6
    assert sum(e["amount"] for e in seen) == 0
    assert all(e["account_id"] == "liabilities:unearned" for e in seen)


@pytest.mark.parametrize("cursor", ["41", "-1.2", "1.2.3", "99999999999999999999.1"])
def test_a_malformed_entries_cursor_is_refused(client, runtime, finance, cursor):
    post_sale(runtime)
    answer = client.get("/v1/ledger/accounts/liabilities:unearned/entries",
                        headers=finance, params={"cursor": cursor})
    assert answer.status_code == 422


def test_the_trial_balance_totals_are_equal(client, runtime, finance):
    post_sale(runtime)
    post_sale(runtime, paid=990, cost=400, commission=10, distributor="d-2")
    body = client.get("/v1/ledger/trial-balance", headers=finance).json()
    assert body["total_debits"] == body["total_credits"] == 2980 + 1900 + 109
    assert body["as_of"] is None and len(body["accounts"]) == 8
    early = client.get("/v1/ledger/trial-balance", headers=finance,
                       params={"as_of": "2020-01-01T00:00:00+08:00"}).json()
    assert early == {"accounts": [], "total_debits": 0, "total_credits": 0,
                     "as_of": "2019-12-31T16:00:00Z"}


@pytest.mark.parametrize("path", ["/v1/ledger/accounts", "/v1/ledger/trial-balance",
                                  f"/v1/ledger/accounts/{DISTRIBUTOR}",
                                  f"/v1/ledger/accounts/{DISTRIBUTOR}/entries"])
def test_ledger_reads_need_finance(client, runtime, keys, path):
    post_sale(runtime)
    assert client.get(path, headers=keys["app"]).status_code == 403
    assert client.get(path, headers=keys["support"]).status_code == 403
    assert client.get(path, headers=keys["admin"]).status_code == 200


# -- payouts and settlements -------------------------------------------------------------

def pay(client, headers, amount: int, ref: str, distributor: str = "d-1"):
    return client.post("/v1/payouts", headers=headers, json={
        "distributor_id": distributor, "amount": amount, "payout_ref": ref})


def test_a_payout_within_the_balance_is_paid_and_posted(client, runtime, finance):
    post_sale(runtime, commission=300)
    answer = pay(client, finance, 200, "bank-1")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert {k: body[k] for k in ("distributor_id", "amount", "currency", "payout_ref")} == {
        "distributor_id": "d-1", "amount": 200, "currency": "CNY", "payout_ref": "bank-1"}
    assert body["paid_at"].endswith("Z")
    balance = client.get(f"/v1/ledger/accounts/{DISTRIBUTOR}", headers=finance).json()
    assert balance["balance"] == -100
    bank = client.get("/v1/ledger/accounts/assets:bank/entries", headers=finance).json()
    assert [(e["amount"], e["kind"], e["payout_id"]) for e in bank["items"]] == [
        (-200, "payout", body["payout_id"])]


def test_a_payout_beyond_the_balance_is_refused_and_stores_nothing(client, runtime, finance):
    post_sale(runtime, commission=300)
    runtime.read_your_writes()
    before = runtime.store.last_position()
    answer = pay(client, finance, 301, "bank-2")
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "insufficient_balance"
    assert runtime.store.last_position() == before
    assert pay(client, finance, 1, "bank-3", distributor="d-unknown").status_code == 409


def test_the_same_payout_ref_answers_the_same_and_pays_once(client, runtime, finance):
    post_sale(runtime, commission=300)
    first = pay(client, finance, 120, "bank-4")
    again = pay(client, finance, 120, "bank-4")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    bank = client.get("/v1/ledger/accounts/assets:bank/entries", headers=finance).json()
    assert len(bank["items"]) == 1
    topics = [n.topic for n in runtime.store.notifications(0, 1000)]
    assert topics.count("quanyi:payout.paid") == topics.count("quanyi:payout_book.paid") == 1
    assert topics.count("quanyi:ledger.posted") == 2  # the sale and the payout
    txn = runtime.store.repository.get(transaction_id("payout", "bank-4"))
    assert txn.links["payout_id"] == first.json()["payout_id"]
    other = pay(client, finance, 121, "bank-4")
    assert other.status_code == 409 and other.json()["code"] == "payout_ref_reused"


@pytest.mark.parametrize("body", [
    {"distributor_id": "d-1", "amount": 1, "payout_ref": "bank\x00-5"},
    {"distributor_id": "d-1", "amount": 0, "payout_ref": "bank-5"},
    {"distributor_id": "d-1", "amount": 1.0, "payout_ref": "bank-5"},
    {"distributor_id": "d:1", "amount": 1, "payout_ref": "bank-5"},
    {"distributor_id": "d-1", "amount": 1, "currency": "cny", "payout_ref": "bank-5"},
    {"distributor_id": "d-1", "amount": 1, "payout_ref": ""}])
def test_a_malformed_payout_is_refused(client, runtime, finance, body):
    post_sale(runtime, commission=300)
    answer = client.post("/v1/payouts", headers=finance, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"


def test_payouts_and_settlements_need_finance(client, runtime, keys):
    post_sale(runtime, commission=300)
    assert pay(client, keys["app"], 1, "bank-6").status_code == 403
    assert client.post("/v1/suppliers/sup-1/settlements", headers=keys["support"], json={
        "amount": 1, "settlement_ref": "s-6"}).status_code == 403
    assert pay(client, keys["admin"], 1, "bank-6").status_code == 201


def test_a_settlement_pays_a_supplier_within_what_it_is_owed(client, runtime, finance):
    post_sale(runtime, cost=1500)
    settle = {"amount": 1000, "currency": "CNY", "settlement_ref": "s-1"}
    answer = client.post("/v1/suppliers/sup-1/settlements", headers=finance, json=settle)
    assert answer.status_code == 201, answer.text
    assert answer.json()["supplier_id"] == "sup-1"
    assert client.post("/v1/suppliers/sup-1/settlements", headers=finance,
                       json=settle).json() == answer.json()
    beyond = client.post("/v1/suppliers/sup-1/settlements", headers=finance, json={
        "amount": 501, "settlement_ref": "s-2"})
    assert beyond.status_code == 409 and beyond.json()["code"] == "insufficient_balance"
    owed = client.get("/v1/ledger/accounts/liabilities:suppliers:sup-1", headers=finance)
    assert owed.json()["balance"] == -500


def test_an_account_in_two_currencies_is_read_one_currency_at_a_time(client, runtime, finance):
    from engine.kernel.money import Money
    from engine.ledger.transactions import BANK, SALES, LedgerTransaction, Leg

    post_sale(runtime)
    runtime.engine.writer.save(LedgerTransaction.post(kind="sale", cause="usd-1", legs=[
        Leg(BANK, Money(500, "USD"), "capture"), Leg(SALES, Money(-500, "USD"), "revenue")],
        links={}, actor="t", tenant=None))
    path = "/v1/ledger/accounts/income:sales"
    both = client.get(path, headers=finance)
    assert both.status_code == 422 and "CNY, USD" in both.json()["detail"]
    usd = client.get(path, headers=finance, params={"currency": "USD"}).json()
    assert (usd["balance"], usd["currency"]) == (-500, "USD")
    trial = client.get("/v1/ledger/trial-balance", headers=finance).json()
    assert trial["total_debits"] == trial["total_credits"] == 1990 + 1500 + 99 + 500
    dollars = client.get("/v1/ledger/trial-balance", headers=finance,
                         params={"currency": "USD"}).json()
    assert dollars["total_debits"] == dollars["total_credits"] == 500
    assert {a["account_id"] for a in dollars["accounts"]} == {BANK, SALES}
