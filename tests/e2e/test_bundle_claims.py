"""Every field a real bundle claims (the order's or the code's view, and each posting) is
edited in turn: the verifier refuses the bundle, or names the field on its `not checked`
line; a field the claims gain is caught here until it is listed, and so edited too. Both
stores."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.keys import ROLES
from engine.settings import Settings
from replay.bundle_check import NOT_CHECKED, Refused, check_bundle
from runtime import Runtime
from tests.conftest import STORES, TEST_KEY, postgres_url
from tests.e2e.test_audit_bundles import order_bundle, redeemed_code, refunded_order

# Every field of a real bundle's claims (lists by their items' fields). A field the view adds
# fails test_the_claim_fields_are_these until it is listed here, and so is edited below.
POSTING_FIELDS = [f"postings[].{name}" for name in (
    "txn_id", "leg", "position", "kind", "account_id", "amount", "currency", "memo", "code_id",
    "order_id", "refund_id", "payout_id", "settlement_id", "payment_ref", "provider", "at",
    "tenant")]
CLAIM_FIELDS = {
    "order": [f"order.{name}" for name in (
        "order_id", "status", "buyer_id", "amount", "currency", "items[].sku",
        "items[].quantity", "items[].unit_price", "channel", "distributor_id", "external_ref",
        "expires_at", "placed_at", "codes[].code_id", "codes[].sku", "codes[].status",
        "released[].code_id", "released[].sku", "released[].why", "payments[].payment_ref",
        "payments[].amount", "payments[].currency", "payments[].provider", "payments[].late",
        "payments[].at", "refunds[].refund_id", "refunds[].amount", "refunds[].currency",
        "refunds[].reason", "refunds[].code_ids[]", "refunds[].automatic", "refunds[].at",
        "recharge_account", "topup")] + POSTING_FIELDS,
    "code": [f"code.{name}" for name in (
        "code_id", "sku", "status", "batch_id", "origin", "order_id", "holder", "expires_at",
        "redemption_id", "redeemed_at", "redeemed_by", "terminal_id", "location", "version",
        "updated_at")] + POSTING_FIELDS,
}
FIELDS = [(kind, field) for kind, fields in CLAIM_FIELDS.items() for field in fields]


@pytest.fixture(scope="module", params=STORES)
def real_bundles(request, tmp_path_factory) -> dict:
    """A real order bundle (distributor, payment, one code refunded) and a real code bundle
    (the other code, redeemed) from one store of each kind, and the audit key."""
    env = {"QUANYI_DATA_DIR": str(tmp_path_factory.mktemp("bundles")),
           "QUANYI_SECRET_KEY": TEST_KEY, "QUANYI_EXPIRY_SWEEP_SECONDS": "3600"}
    schema = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "postgres":
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        env |= {"QUANYI_DATABASE_URL": postgres_url(), "QUANYI_DATABASE_SCHEMA": schema}
    runtime = Runtime.open(Settings.from_env(env))
    runtime.start()
    try:
        with TestClient(create_app(runtime)) as client:
            keys = {role: {"Authorization": "Bearer " + runtime.engine.keys.issue(
                role=role, name=role, **({"merchant_id": "m-1"} if role == "merchant" else {})
            ).secret} for role in ROLES}
            order = refunded_order(client, keys)
            code_id = redeemed_code(client, keys, order)
            return {"order": order_bundle(client, keys, order),
                    "code": client.get(f"/v1/audit/codes/{code_id}/bundle",
                                       headers=keys["support"]).json(),
                    "key": runtime.audit.public_key}
    finally:
        runtime.close()
        if request.param == "postgres":
            with psycopg.connect(postgres_url(), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def claim_fields(value, path: str = "") -> list[str]:
    """The leaf fields of a claim: a list stands for its items, an empty one for itself."""
    if isinstance(value, dict):
        return [f for name, item in value.items()
                for f in claim_fields(item, f"{path}.{name}" if path else name)]
    if isinstance(value, list) and value:
        return sorted({f for item in value for f in claim_fields(item, f"{path}[]")})
    return [path]


def claims_of(bundle: dict, kind: str) -> dict:
    return {kind: bundle["claims"][kind], "postings": bundle["claims"]["postings"]}


def edit_field(claims, path: str) -> bool:
    """Change the first value at ``path`` (a.b[].c) in place; whether one was there."""
    name, _, rest = path.partition(".")
    listed = name.endswith("[]")
    key = name.removesuffix("[]")
    if key not in claims:
        return False
    if listed:
        items = claims[key]
        if not items:
            return False
        if not rest:
            items[0] = edited(items[0])
            return True
        return edit_field(items[0], rest)
    if rest:
        return edit_field(claims[key], rest)
    claims[key] = edited(claims[key])
    return True


def edited(value):
    """Another value of the same kind: a time a second later, a number one more, ..."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value + "-edited"
        return (moment + timedelta(seconds=1)).isoformat()
    return "edited" if value is None else [*value, "edited"]


@pytest.mark.parametrize("kind", CLAIM_FIELDS)
def test_the_claim_fields_are_these(kind, real_bundles):
    found = set(claim_fields(claims_of(real_bundles[kind], kind)))
    assert found == set(CLAIM_FIELDS[kind])


@pytest.mark.parametrize(("kind", "field"), FIELDS,
                         ids=[f"{kind} bundle: {field}" for kind, field in FIELDS])
def test_an_edited_claim_is_refused_or_said_not_checked(kind, field, real_bundles):
    bundle = copy.deepcopy(real_bundles[kind])
    assert edit_field(bundle["claims"], field), field
    try:
        verified = check_bundle(bundle, real_bundles["key"])
    except Refused as refused:
        assert refused.check in ("state", "postings"), refused
        return
    assert field in NOT_CHECKED, f"{field} was edited and the bundle still verified"
    assert verified.lines[-1].startswith("not checked: ") and field in verified.lines[-1]


@pytest.mark.parametrize("kind", CLAIM_FIELDS)
def test_a_real_bundle_names_exactly_what_it_did_not_check(kind, real_bundles):
    verified = check_bundle(real_bundles[kind], real_bundles["key"])
    fields = set(claim_fields(claims_of(real_bundles[kind], kind)))
    expected = sorted(f for f in NOT_CHECKED if f in fields)
    assert verified.lines[-1] == ("not checked: " + "; ".join(
        f"{f} ({NOT_CHECKED[f]})" for f in expected) if expected else
        "not checked: nothing, every claim was re-derived from the events")


def test_an_unknown_claim_is_said_not_checked(real_bundles):
    bundle = copy.deepcopy(real_bundles["order"])
    bundle["claims"]["order"]["vip"] = True
    bundle["claims"]["delivery_note"] = "left at the door"
    last = check_bundle(bundle, real_bundles["key"]).lines[-1]
    assert "order.vip (unknown to this verifier)" in last
    assert "claims.delivery_note (not a claim this verifier knows)" in last


def test_a_bundle_made_before_tenants_books_claims_no_tenant_and_still_verifies(real_bundles):
    bundle = copy.deepcopy(real_bundles["order"])
    for posting in bundle["claims"]["postings"]:
        assert posting.pop("tenant") is None
    verified = check_bundle(bundle, real_bundles["key"])
    assert verified.lines == check_bundle(real_bundles["order"], real_bundles["key"]).lines
