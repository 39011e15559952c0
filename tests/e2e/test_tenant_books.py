"""Each tenant keeps its own book: its payouts and settlements pay only its payees, its refs
are its own, and its finance key reads only its postings (accounts, balances, entries,
trial balance, journal, daily statement, provider statements). A platform key reads the
consolidated book, the sum of the tenants', or one tenant's with `Quanyi-Tenant`.

Tenant A's world is the one the wall test builds (tests/e2e/test_tenant_wall.py): two
orders paid through distributor ``d-wall``, codes owed to supplier ``sup-a``. Tenant B sells
one order of its own through its distributor ``d-wall-b``."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timezone

import pytest

from tests.e2e.test_tenant_wall import ROLES, Tenant, ok, world  # noqa: F401 (a fixture)

TODAY = datetime.now(timezone.utc).date().isoformat()
B_SKU, B_DISTRIBUTOR, B_SUPPLIER = "B-BOOK", "d-wall-b", "sup-b-batch"
A_REFS = ("pay-ta-kept", "pay-ta-redeemed")


@pytest.fixture
def books(client, world) -> tuple[Tenant, Tenant]:
    """A's world, and one sale of B's: 500 paid, 100 owed to its supplier, 50 commission."""
    a, b = world
    app = b.keys["app"]
    ok(client.post("/v1/products", headers=app, json={
        "sku": B_SKU, "name": "B's card", "delivery": "card", "price": 500,
        "commission_rates_bp": [1000]}), 201)
    ok(client.post(f"/v1/products/{B_SKU}/batches", headers=app, json={
        "supplier_id": B_SUPPLIER, "unit_cost": 100, "codes": [{"code": "B-BOOK-CODE-1"}]}),
        201)
    ok(client.post("/v1/distributors", headers=app,
                   json={"distributor_id": B_DISTRIBUTOR, "name": "B's shop"}), 201)
    placed = ok(client.post("/v1/orders", headers=app, json={
        "buyer_id": "buyer-tb", "items": [{"sku": B_SKU, "quantity": 1}],
        "distributor_id": B_DISTRIBUTOR}), 201)
    ok(client.post(f"/v1/orders/{placed['order_id']}/payments", headers=app, json={
        "payment_ref": "pay-tb-1", "amount": 500, "currency": "CNY", "provider": "wechat"}))
    b.ids = {"order_id": placed["order_id"]}
    return a, b


def platform(runtime, role: str = "finance") -> dict[str, str]:
    issued = runtime.engine.keys.issue(role=role, name=f"platform-{role}")
    return {"Authorization": f"Bearer {issued.secret}"}


def balances(client, headers) -> dict[tuple[str, str], int]:
    trial = ok(client.get("/v1/ledger/trial-balance", headers=headers))
    assert trial["total_debits"] == trial["total_credits"]
    return {(row["account_id"], row["currency"]): row["balance"] for row in trial["accounts"]}


def pay(client, headers, distributor: str, amount: int, ref: str):
    return client.post("/v1/payouts", headers=headers, json={
        "distributor_id": distributor, "amount": amount, "currency": "CNY",
        "payout_ref": ref})


def settle(client, headers, supplier: str, amount: int, ref: str):
    return client.post(f"/v1/suppliers/{supplier}/settlements", headers=headers,
                       json={"amount": amount, "currency": "CNY", "settlement_ref": ref})


def stored(account: str, tenant: str) -> str:
    """A tenant's account as the consolidated book names it (its distributors carry the
    tenant's name)."""
    return account.replace("liabilities:distributors:", f"liabilities:distributors:{tenant}:")


def blanked(answer, name: str) -> tuple[int, str]:
    return answer.status_code, answer.text.replace(name, "ID")


@pytest.mark.parametrize("role", ROLES)
def test_b_pays_none_of_a_payees_and_is_answered_as_for_unknown_ones(client, books, role):
    a, b = books
    before = balances(client, a.keys["finance"])
    key = b.keys[role]
    allowed = role in ("finance", "admin")
    for foreign, unknown in (("d-wall", "no-such-d"),):
        tried = pay(client, key, foreign, 1, f"{role}-po")
        assert tried.status_code == (404 if allowed else 403), tried.text
        assert blanked(tried, foreign) == blanked(pay(client, key, unknown, 1, f"{role}-po2"),
                                                  unknown)
    for foreign in ("sup-a", "sup-wall"):  # owed by A's batches; registered by A
        tried = settle(client, key, foreign, 1, f"{role}-st")
        assert tried.status_code == (404 if allowed else 403), tried.text
        assert blanked(tried, foreign) == blanked(
            settle(client, key, "no-such-supplier", 1, f"{role}-st2"), "no-such-supplier")
    assert balances(client, a.keys["finance"]) == before


def test_a_tenant_pays_its_own_payees_within_its_own_book(client, books):
    a, b = books
    paid = ok(pay(client, b.keys["finance"], B_DISTRIBUTOR, 50, "po-b"), 201)
    assert paid["distributor_id"] == B_DISTRIBUTOR
    ok(settle(client, b.keys["finance"], B_SUPPLIER, 100, "st-b"), 201)
    more = settle(client, b.keys["finance"], B_SUPPLIER, 1, "st-b-2")
    assert more.status_code == 409 and more.json()["code"] == "insufficient_balance"
    mine = balances(client, b.keys["finance"])
    assert mine[(f"liabilities:distributors:{B_DISTRIBUTOR}", "CNY")] == 0
    assert mine[("assets:bank", "CNY")] == -150


def test_the_same_ref_in_two_tenants_is_two_payments_and_tells_neither_of_the_other(
        client, books):
    a, b = books
    first = ok(pay(client, a.keys["finance"], "d-wall", 100, "po-shared"), 201)
    second = ok(pay(client, b.keys["finance"], B_DISTRIBUTOR, 20, "po-shared"), 201)
    assert first["payout_id"] != second["payout_id"]
    assert (first["amount"], second["amount"]) == (100, 20)
    assert ok(pay(client, a.keys["finance"], "d-wall", 100, "po-shared"), 201) == first
    # B asking A's ref for another payment learns nothing of A's: its own retry answers
    assert ok(pay(client, b.keys["finance"], B_DISTRIBUTOR, 20, "po-shared"), 201) == second
    reused = pay(client, b.keys["finance"], B_DISTRIBUTOR, 21, "po-shared")
    assert reused.status_code == 409 and "100" not in reused.text
    fresh = pay(client, b.keys["finance"], "d-wall", 100, "po-only-a")
    assert fresh.status_code == 404 and "po-only-a" not in fresh.text
    ok(settle(client, a.keys["finance"], "sup-a", 1000, "st-shared"), 201)
    ok(settle(client, b.keys["finance"], B_SUPPLIER, 100, "st-shared"), 201)
    assert balances(client, a.keys["finance"])[("assets:bank", "CNY")] == -1100
    assert balances(client, b.keys["finance"])[("assets:bank", "CNY")] == -120


def test_each_tenants_trial_balance_balances_and_the_consolidated_one_is_their_sum(
        client, runtime, books):
    a, b = books
    ok(pay(client, a.keys["finance"], "d-wall", 100, "po-a"), 201)
    ok(pay(client, b.keys["finance"], B_DISTRIBUTOR, 10, "po-b"), 201)
    ok(client.post(f"/v1/orders/{a.ids['order_id']}/refunds", headers=a.keys["app"],
                   json={"reason": "a refund is in its order's book"}), 201)
    books_of = {t.name: balances(client, t.keys["finance"]) for t in (a, b)}
    summed: Counter = Counter()
    for name, held in books_of.items():
        summed.update({(stored(account, name), currency): amount
                       for (account, currency), amount in held.items()})
    assert balances(client, platform(runtime)) == dict(summed)
    assert books_of["ta"][("income:sales", "CNY")] == -1990
    assert books_of["tb"][("income:sales", "CNY")] == -500
    named = balances(client, {**platform(runtime), "Quanyi-Tenant": "tb"})
    assert named == books_of["tb"]


def test_b_sees_none_of_a_accounts_balances_or_entries(client, books):
    a, b = books
    finance = b.keys["finance"]
    accounts = ok(client.get("/v1/ledger/accounts", headers=finance))["items"]
    names = {row["account_id"] for row in accounts}
    assert f"liabilities:distributors:{B_DISTRIBUTOR}" in names
    assert not {"liabilities:distributors:d-wall", "liabilities:suppliers:sup-a"} & names
    sales = ok(client.get("/v1/ledger/accounts/income:sales", headers=finance))
    assert sales["balance"] == -500
    for account in ("liabilities:distributors:d-wall", "liabilities:suppliers:sup-a",
                    "liabilities:distributors:ta:d-wall"):
        for path in (account, f"{account}/entries"):
            seen = client.get(f"/v1/ledger/accounts/{path}", headers=finance)
            blind = client.get(f"/v1/ledger/accounts/{path.replace(account, 'assets:none')}",
                               headers=finance)
            assert blanked(seen, account) == blanked(blind, "assets:none")
            assert seen.status_code == 404
    entries = ok(client.get("/v1/ledger/accounts/income:sales/entries", headers=finance))
    assert [e["order_id"] for e in entries["items"]] == [b.ids["order_id"]]
    mine = ok(client.get("/v1/ledger/accounts/liabilities:distributors:d-wall",
                         headers=a.keys["finance"]))
    assert mine["balance"] == -398


def test_b_journal_holds_only_b_lines(client, books):
    a, b = books
    text = client.get("/v1/ledger/journal", headers=b.keys["finance"]).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {row["order_id"] for row in rows} == {b.ids["order_id"]}
    assert {row["tenant"] for row in rows} == {"tb"}
    assert f"liabilities:distributors:{B_DISTRIBUTOR}" in {row["account"] for row in rows}
    beancount = client.get("/v1/ledger/journal?format=beancount",
                           headers=b.keys["finance"]).text
    for foreign in (a.ids["order_id"], *A_REFS, "Distributors:D-wall\n", "Sup-a\n", "Ta:"):
        assert foreign not in text and foreign not in beancount
    whole = client.get("/v1/ledger/journal", headers=a.keys["finance"]).text
    assert a.ids["order_id"] in whole and b.ids["order_id"] not in whole


def test_b_daily_statement_holds_only_b_rows(client, books):
    a, b = books
    day = ok(client.get("/v1/reconciliation/daily", headers=b.keys["finance"],
                        params={"date": TODAY}))
    assert [r["supplier_id"] for r in day["suppliers"]] == [B_SUPPLIER]
    assert [r["distributor_id"] for r in day["distributors"]] == [B_DISTRIBUTOR]
    assert [(r["provider"], r["captured"]) for r in day["providers"]] == [("wechat", 500)]
    theirs = ok(client.get("/v1/reconciliation/daily", headers=a.keys["finance"],
                           params={"date": TODAY}))
    assert [r["distributor_id"] for r in theirs["distributors"]] == ["d-wall"]
    assert theirs["providers"][0]["captured"] == 3980
    rows = client.get("/v1/reconciliation/daily", headers=b.keys["finance"],
                      params={"date": TODAY, "format": "csv"}).text
    assert "d-wall," not in rows and "sup-a" not in rows and B_DISTRIBUTOR in rows


def test_b_matches_a_provider_statement_only_against_its_own_postings(client, books):
    a, b = books
    at = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    end = at.replace(hour=23, minute=59, second=59)
    statement = (f"payment_ref,amount,type,at\r\n{A_REFS[0]},1990,capture,{at.isoformat()}"
                 f"\r\npay-tb-1,500,capture,{end.isoformat()}\r\n")
    matched = ok(client.post("/v1/reconciliation/providers/wechat/statements",
                             headers={**b.keys["finance"], "Content-Type": "text/csv"},
                             content=statement))
    assert matched["matched"] == 1
    assert matched["missing_in_ledger"] == [
        {"payment_ref": A_REFS[0], "type": "capture", "amount": 1990}]
    assert matched["missing_in_statement"] == [] and A_REFS[1] not in str(matched)
    theirs = ok(client.post("/v1/reconciliation/providers/wechat/statements",
                            headers={**a.keys["finance"], "Content-Type": "text/csv"},
                            content=statement))
    assert theirs["matched"] == 1
    assert [m["payment_ref"] for m in theirs["missing_in_statement"]] == [A_REFS[1]]


def test_a_tenant_reconciles_its_order_with_its_distributor_as_it_named_it(client, books):
    a, b = books
    order = ok(client.get(f"/v1/reconciliation/orders/{a.ids['order_id']}",
                          headers=a.keys["finance"]))
    assert order["consistent"], order["flags"]
    assert [(c["distributor_id"], c["amount"]) for c in order["commissions"]] == [
        ("d-wall", 199)]
    seen = client.get(f"/v1/reconciliation/orders/{a.ids['order_id']}",
                      headers=b.keys["finance"])
    assert seen.status_code == 404
