"""A store written by an earlier release opens with the current code and keeps working.

tests/fixtures/store-d3484dd/ was made by tests/fixtures/make_store.py at commit d3484dd. On
SQLite a copy is opened as it is; on PostgreSQL the copy is exported and imported into an
empty schema first, so both stores read the old events through today's classes."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.settings import Settings
from replay.audit_verify import verify_audit
from replay.export import export_log
from replay.import_events import import_and_build
from replay.verify import Outcome, verify
from runtime import Runtime
from tests.conftest import caught_up
from tests.fixtures import make_store as made

FIXTURE = Path(__file__).parent.parent / "fixtures" / "store-d3484dd"
STORE_FILES = ("events.sqlite", "projections.sqlite", "audit.sqlite", "secret.key",
               "audit.key")


def copied(into: Path) -> Path:
    into.mkdir(mode=0o700)
    for name in STORE_FILES:
        shutil.copy(FIXTURE / name, into / name)
        (into / name).chmod(0o600)
    return into


def fixture_keys() -> dict[str, str]:
    return {"QUANYI_SECRET_KEY": (FIXTURE / "secret.key").read_text().strip(),
            "QUANYI_AUDIT_KEY": (FIXTURE / "audit.key").read_text().strip()}


def imported_into_postgres(env: dict[str, str], tmp_path: Path) -> Settings:
    source = Settings.from_env({"QUANYI_DATA_DIR": str(copied(tmp_path / "old")),
                                "QUANYI_EXPIRY_SWEEP_SECONDS": "3600"})
    old = Runtime.open(source)
    try:
        export_log(old.store, old.audit, tmp_path / "log.jsonl",
                   secret_key=source.secret_key)
    finally:
        old.close()
    settings = Settings.from_env({**env, **fixture_keys()})
    target = Runtime.open(settings)
    try:
        import_and_build(target, tmp_path / "log.jsonl")
    finally:
        target.close()
    return settings


@pytest.fixture
def settings(store_kind: str, quanyi_env: dict[str, str], tmp_path: Path) -> Settings:
    """The copied store's settings: the `runtime` and `client` fixtures open it."""
    if store_kind == "postgres":
        return imported_into_postgres(quanyi_env, tmp_path)
    return Settings.from_env({**quanyi_env, **fixture_keys(),
                              "QUANYI_DATA_DIR": str(copied(tmp_path / "old"))})


def bearer(rt: Runtime, role: str, **binding: str) -> dict[str, str]:
    issued = rt.engine.keys.issue(role=role, name=f"new-{role}", **binding)
    return {"Authorization": f"Bearer {issued.secret}"}


def old_order(client: TestClient, headers: dict, ref: str) -> dict:
    """The old order of that external_ref, found through the codes it was sold."""
    for code in made.CODES:
        state = client.post("/v1/codes/lookup", headers=headers, json={"code": code}).json()
        if state["order_id"] is None:
            continue
        order = client.get(f"/v1/orders/{state['order_id']}", headers=headers).json()
        if order["external_ref"] == ref:
            return order
    raise AssertionError(f"no old order {ref}")


def test_the_old_objects_read_as_they_were_stored(runtime, client):
    support = bearer(runtime, "support")
    product = client.get(f"/v1/products/{made.CARD_SKU}", headers=support).json()
    assert product["channel_prices"] == {"wholesale": 1800}
    inventory = client.get(f"/v1/products/{made.CARD_SKU}/inventory", headers=support).json()
    assert (inventory["total"], inventory["voided"], inventory["redeemed"],
            inventory["sold"]) == (8, 1, 1, 2)
    statuses = {old_order(client, support, f"fix-{tag}")["status"]
                for tag in ("redeemed", "kept", "tenant")}
    assert statuses == {"delivered"}
    offers = client.get(f"/v1/products/{made.TOPUP_SKU}/offers",
                        headers=bearer(runtime, "app")).json()
    assert [o["supplier_id"] for o in offers["offers"]] == [made.SUPPLIER]


def test_the_old_objects_belong_to_the_platform(runtime, client):
    support = bearer(runtime, "support")
    product = client.get(f"/v1/products/{made.CARD_SKU}", headers=support).json()
    assert product["tenant"] is None
    acme = bearer(runtime, "support", tenant=made.TENANT)
    assert client.get(f"/v1/products/{made.CARD_SKU}", headers=acme).status_code == 404
    sold = client.post("/v1/codes/lookup", headers=support, json={"code": made.CODES[0]})
    assert client.get(f"/v1/codes/{sold.json()['code_id']}", headers=acme).status_code == 404
    assert runtime.engine.suppliers.get(made.SUPPLIER).tenant is None
    assert client.get(f"/v1/suppliers/{made.SUPPLIER}", headers=support).status_code == 200
    assert client.get(f"/v1/suppliers/{made.SUPPLIER}", headers=acme).status_code == 404


def test_the_tenant_keys_of_the_old_store_still_share_their_orders(runtime, client):
    acme = bearer(runtime, "app", tenant=made.TENANT)
    order = old_order(client, bearer(runtime, "support"), "fix-tenant")
    assert client.get(f"/v1/orders/{order['order_id']}", headers=acme).status_code == 200


def test_replay_and_audit_verify_agree_on_the_old_store(runtime, settings):
    caught_up(runtime)
    verdict = verify(settings)
    assert verdict.outcome is Outcome.AGREE, verdict.differences or verdict.error
    runtime.audit.catch_up()
    runtime.audit.sign_head()  # the old store's log had no signed head yet: nothing vouched
    audit = verify_audit(runtime.audit)
    assert audit.ok and audit.heads_checked >= 1, (audit.mismatch, audit.head_problems)


def test_new_orders_sell_the_old_stock_and_an_old_order_is_refunded(runtime, client):
    app, admin = bearer(runtime, "app"), bearer(runtime, "admin")
    placed = client.post("/v1/orders", headers=app, json={
        "buyer_id": "b-new", "items": [{"sku": made.CARD_SKU, "quantity": 1}]})
    assert placed.status_code == 201, placed.text
    paid = client.post(f"/v1/orders/{placed.json()['order_id']}/payments", headers=app, json={
        "payment_ref": f"pay-{uuid.uuid4().hex[:8]}", "amount": placed.json()["amount"],
        "currency": "CNY"})
    assert paid.status_code == 200 and paid.json()["status"] == "delivered", paid.text
    kept = old_order(client, admin, "fix-kept")
    refund = client.post(f"/v1/orders/{kept['order_id']}/refunds", headers=admin,
                         json={"reason": "late complaint"})
    assert refund.status_code == 201, refund.text
    balance = client.get("/v1/ledger/trial-balance", headers=bearer(runtime, "finance"))
    assert balance.json()["total_debits"] == balance.json()["total_credits"]


def test_the_old_postings_stay_in_the_platforms_book(runtime, client):
    """Transactions stored before tenants kept books are upcast to none, and the ledger
    table made by the old code gains its tenant column with every row the platform's."""
    caught_up(runtime)
    acme = client.get("/v1/ledger/trial-balance",
                      headers=bearer(runtime, "finance", tenant=made.TENANT))
    assert acme.status_code == 200 and acme.json()["accounts"] == [], acme.text
    whole = client.get("/v1/ledger/trial-balance", headers=bearer(runtime, "finance")).json()
    assert whole["accounts"] and whole["total_debits"] == whole["total_credits"] > 0
    with runtime.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT COUNT(*), COUNT(tenant) FROM ledger_entries")
        rows, of_tenants = cursor.fetchone()
    assert rows > 0 and of_tenants == 0


def test_an_old_payout_is_found_by_its_retry_and_pays_once(runtime, client):
    finance = bearer(runtime, "finance")
    account = f"/v1/ledger/accounts/liabilities:distributors:{made.DISTRIBUTOR}"
    before = client.get(account, headers=finance).json()["balance"]
    again = client.post("/v1/payouts", headers=finance, json={
        "distributor_id": made.DISTRIBUTOR, "amount": 100, "payout_ref": "fix-payout"})
    assert again.status_code == 201, again.text
    assert again.json()["payout_ref"] == "fix-payout"
    assert client.get(account, headers=finance).json()["balance"] == before
    settled = client.post("/v1/suppliers/sup-1/settlements", headers=finance,
                          json={"amount": 1000, "settlement_ref": "fix-settle"})
    assert settled.status_code == 201, settled.text
