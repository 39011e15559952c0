"""A tenant is a wall: every operation of the OpenAPI document, tried with keys of every role
of tenant B against what tenant A made, reads nothing of A's and changes nothing of A's.

Tenant A makes one of everything (products, codes, stock settings, a supplier and offers
naming it, a distributor,
orders delivered, revealed and redeemed, a webhook endpoint, a key). Then each of B's keys
calls every operation with A's ids and names: an operation that names one of A's things
answers 403 (B's role may not) or 404 exactly as the same call with an unknown id does; an
operation that names none (a list, the feed, a creation) never shows any of A's ids; and
A's things read the same afterwards as before."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

ROLES = ("admin", "app", "support", "finance", "merchant")
SUPPLIER = "sup-wall"
CARD, TOPUP = "WALL-CARD", "WALL-TOPUP"
PUBLIC = {"/healthz", "/metrics", "/v1/suppliers/{supplier_id}/callbacks"}
# names a payment provider, which no tenant owns: what B reads there is its own book's
SHARED = {"/v1/reconciliation/providers/{provider}/statements"}
PARAM = re.compile(r"{(\w+)}")
TODAY = datetime.now(timezone.utc).date().isoformat()


@dataclass
class Tenant:
    name: str
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)


def keys_of(runtime, name: str) -> dict[str, dict[str, str]]:
    issued = {role: runtime.engine.keys.issue(
        role=role, name=f"{name}-{role}", tenant=name,
        **({"merchant_id": f"m-{name}"} if role == "merchant" else {})) for role in ROLES}
    return {role: {"Authorization": f"Bearer {key.secret}"} for role, key in issued.items()}


def ok(answer, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


def stock(client, a: Tenant) -> None:
    app = a.keys["app"]
    ok(client.post("/v1/products", headers=app, json={
        "sku": CARD, "name": "A's VIP", "delivery": "card", "price": 1990,
        "commission_rates_bp": [1000]}), 201)
    a.codes = [f"WALL-{a.name}-{uuid.uuid4().hex[:10]}" for _ in range(4)]
    ok(client.post(f"/v1/products/{CARD}/batches", headers=app, json={
        "supplier_id": "sup-a", "unit_cost": 1000,
        "codes": [{"code": c, "pin": "1234"} for c in a.codes]}), 201)
    ok(client.put(f"/v1/products/{CARD}/channel-prices/wholesale", headers=app,
                  json={"price": 1800}))
    ok(client.put(f"/v1/products/{CARD}/low-stock", headers=app, json={"threshold": 2}))
    ok(client.post("/v1/products", headers=app, json={
        "sku": TOPUP, "name": "A's top-up", "delivery": "topup", "price": 10000}), 201)
    ok(client.put(f"/v1/products/{TOPUP}/offers", headers=app, json={"offers": [
        {"supplier_id": SUPPLIER, "supplier_sku": "CM", "cost": 9800, "priority": 1}]}))
    ok(client.post("/v1/distributors", headers=app,
                   json={"distributor_id": "d-wall", "name": "A's shop"}), 201)


def buy(client, a: Tenant, ref: str) -> dict:
    app = a.keys["app"]
    placed = ok(client.post("/v1/orders", headers=app, json={
        "buyer_id": f"buyer-{a.name}", "items": [{"sku": CARD, "quantity": 1}],
        "distributor_id": "d-wall", "external_ref": ref}), 201)
    return ok(client.post(f"/v1/orders/{placed['order_id']}/payments", headers=app, json={
        "payment_ref": f"pay-{a.name}-{ref}", "amount": placed["amount"],
        "currency": "CNY", "provider": "wechat"}))


def sales(client, a: Tenant) -> None:
    app = a.keys["app"]
    order = buy(client, a, "kept")
    redeemed = buy(client, a, "redeemed")
    shown = ok(client.post(f"/v1/orders/{redeemed['order_id']}/reveal", headers=app))
    redemption = ok(client.post("/v1/redemptions", headers=a.keys["merchant"], json={
        "code": shown["codes"][0]["code"], "merchant_id": f"m-{a.name}"}), 201)
    reserved = ok(client.post("/v1/orders", headers=app, json={
        "buyer_id": f"buyer-{a.name}", "items": [{"sku": CARD, "quantity": 1}]}), 201)
    hook = ok(client.post("/v1/webhooks", headers=app, json={
        "url": f"https://hooks.example.com/{a.name}", "event_types": ["order.delivered"]}), 201)
    key = ok(client.post("/v1/keys", headers=a.keys["admin"],
                         json={"role": "app", "name": "another"}), 201)
    a.ids = {"sku": CARD, "order_id": order["order_id"],
             "code_id": order["codes"][0]["code_id"],
             "redemption_id": redemption["redemption_id"], "endpoint_id": hook["endpoint_id"],
             "delivery_id": str(uuid.uuid4()), "key_id": key["key_id"],
             "distributor_id": "d-wall", "supplier_id": SUPPLIER, "channel": "wholesale",
             "account_id": "liabilities:distributors:d-wall", "provider": "wechat",
             "reserved_order": reserved["order_id"]}


@pytest.fixture
def world(client, runtime):
    a, b = Tenant("ta", keys_of(runtime, "ta")), Tenant("tb", keys_of(runtime, "tb"))
    ok(client.post("/v1/suppliers", headers=a.keys["admin"], json={
        "supplier_id": SUPPLIER, "name": "Top-ups", "adapter": "http-json",
        "endpoint": "https://api.supplier.example/q",
        "credentials": {"api_key": "k", "callback_secret": "s"}}), 201)
    stock(client, a)
    sales(client, a)
    return a, b


def bodies(a: Tenant) -> dict[tuple[str, str], dict]:
    """A valid body for each operation that takes one, naming A's things where it can."""
    return {
        ("POST", "/v1/products"): {"sku": "B-OWN", "name": "B's", "delivery": "card",
                                   "price": 1},
        ("PUT", "/v1/products/{sku}/channel-prices/{channel}"): {"price": 1},
        ("POST", "/v1/products/{sku}/batches"): {
            "supplier_id": "invented", "unit_cost": 1, "codes": [{"code": "B-NEW-CODE-1"}]},
        ("POST", "/v1/products/{sku}/batches/generate"): {"count": 1},
        ("POST", "/v1/codes/lookup"): {"code": a.codes[0]},
        ("POST", "/v1/codes/{code_id}/void"): {"reason": "wreck it"},
        ("POST", "/v1/redemptions"): {"code": a.codes[0], "merchant_id": "m-tb"},
        ("POST", "/v1/redemptions/{redemption_id}/rollback"): {"reason": "wreck it"},
        ("POST", "/v1/orders"): {"buyer_id": "b", "items": [{"sku": CARD, "quantity": 1}],
                                 "distributor_id": "d-wall"},
        ("POST", "/v1/orders/{order_id}/payments"): {
            "payment_ref": "b-pay", "amount": 1990, "currency": "CNY"},
        ("POST", "/v1/orders/{order_id}/cancel"): {"reason": "wreck it"},
        ("POST", "/v1/orders/{order_id}/topup/resolve"): {"outcome": "failed", "note": "x"},
        ("POST", "/v1/orders/{order_id}/reveal"): {},
        ("POST", "/v1/orders/{order_id}/refunds"): {"reason": "wreck it"},
        ("POST", "/v1/keys"): {"role": "admin", "name": "mine", "tenant": a.name},
        ("POST", "/v1/keys/{key_id}/revoke"): {},
        ("POST", "/v1/distributors"): {"distributor_id": "d-b", "name": "B",
                                       "parent_id": "d-wall"},
        ("POST", "/v1/payouts"): {"distributor_id": "d-wall", "amount": 1,
                                  "payout_ref": "b-po"},
        ("POST", "/v1/suppliers/{supplier_id}/settlements"): {"amount": 1,
                                                              "settlement_ref": "b-st"},
        ("POST", "/v1/reconciliation/providers/{provider}/statements"): None,
        ("GET", "/v1/reconciliation/daily"): {"date": TODAY},
        ("POST", "/v1/suppliers"): {
            "supplier_id": "sup-b", "name": "B", "adapter": "http-json",
            "endpoint": "https://b.example/q", "credentials": {"api_key": "k"}},
        ("PUT", "/v1/products/{sku}/offers"): {"offers": []},
        ("POST", "/v1/webhooks"): {"url": "https://hooks.example.com/b",
                                   "event_types": ["order.delivered"]},
        ("POST", "/v1/webhooks/{endpoint_id}/disable"): {"reason": "wreck it"},
        ("POST", "/v1/webhooks/{endpoint_id}/enable"): {},
        ("POST", "/v1/webhooks/{endpoint_id}/rotate-secret"): {},
        ("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): {},
        ("PUT", "/v1/products/{sku}/low-stock"): {"threshold": 1},
    }


def operations(client) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops
            if path not in PUBLIC]


def call(client, headers, method: str, path: str, params: dict, body):
    url = PARAM.sub(lambda m: params[m.group(1)], path)
    if body is None and method in ("POST", "PUT"):
        return client.request(method, url, headers={**headers, "Content-Type": "text/csv"},
                              content=f"payment_ref,amount,type,at\npay-ta-kept,1990,capture,"
                                      f"{TODAY}T00:00:00Z\nb-pay,1,capture,{TODAY}T23:59:59Z\n")
    if method == "GET":
        return client.request(method, url, headers=headers, params=body)
    return client.request(method, url, headers=headers, json=body)


def unknown(params: dict[str, str]) -> dict[str, str]:
    return {**params, "sku": "NO-SUCH-SKU", "distributor_id": "no-such-d",
            "account_id": "liabilities:distributors:no-such-d",
            "supplier_id": "no-such-supplier",
            **{k: str(uuid.uuid4()) for k in ("order_id", "code_id", "redemption_id",
                                              "endpoint_id")},
            "key_id": uuid.uuid4().hex[:12]}


def as_unknown(answer, params: dict[str, str]) -> dict:
    """The answer with the ids it names blanked, to compare with an unknown id's."""
    text = answer.text
    for value in params.values():
        text = text.replace(value, "ID")
    return {"status": answer.status_code, "text": text}


def leaks(answer, a: Tenant) -> list[str]:
    """A's ids, code strings, buyer and webhook URL in the answer, beyond what was asked."""
    asked = str(answer.request.url) + answer.request.content.decode()
    secrets = [a.ids[k] for k in ("order_id", "code_id", "redemption_id", "endpoint_id",
                                  "key_id", "reserved_order")]
    # A's payment refs, payees and book: B's ledger reads show none of them
    book = [f"pay-{a.name}-redeemed", "sup-a", "distributors:d-wall", f"{a.name}:d-wall"]
    return [s for s in [*secrets, *a.codes, f"buyer-{a.name}", f"hooks.example.com/{a.name}",
                        *book] if s in answer.text and s not in asked]


def snapshot(client, a: Tenant) -> dict[str, str]:
    admin, ids = a.keys["admin"], a.ids
    reads = [f"/v1/products/{CARD}", f"/v1/products/{CARD}/inventory",
             f"/v1/products/{TOPUP}/offers", f"/v1/suppliers/{SUPPLIER}",
             f"/v1/orders/{ids['order_id']}",
             f"/v1/orders/{ids['reserved_order']}", f"/v1/codes/{ids['code_id']}",
             f"/v1/webhooks/{ids['endpoint_id']}", "/v1/distributors/d-wall", "/v1/keys"]
    return {url: client.get(url, headers=admin).text for url in reads}


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_of_tenant_b_reads_or_changes_tenant_a(client, runtime, world, role):
    a, b = world
    before = snapshot(client, a)
    known = bodies(a)
    crossed = []
    for method, path in operations(client):
        assert method == "GET" or (method, path) in known, f"no body for {method} {path}"
        body = known.get((method, path), {})
        answer = call(client, b.keys[role], method, path, a.ids, body)
        assert answer.status_code < 500, (method, path, answer.text)
        crossed += [f"{method} {path} shows {s}" for s in leaks(answer, a)]
        if not PARAM.search(path) or path in SHARED:
            continue
        if answer.status_code not in (403, 404):
            crossed.append(f"{method} {path} answered {answer.status_code}")
        elif answer.status_code == 404:
            stranger = unknown(a.ids)
            blind = call(client, b.keys[role], method, path, stranger, body)
            if as_unknown(answer, a.ids) != as_unknown(blind, stranger):
                crossed.append(f"{method} {path}: 404 unlike an unknown id's")
    assert crossed == [], "\n".join(crossed)
    assert snapshot(client, a) == before


def test_b_reads_and_sells_its_own_sku_of_the_same_name(client, world):
    a, b = world
    app = b.keys["app"]
    ok(client.post("/v1/products", headers=app, json={
        "sku": CARD, "name": "B's VIP", "delivery": "card", "price": 500}), 201)
    assert ok(client.get(f"/v1/products/{CARD}", headers=app))["name"] == "B's VIP"
    theirs = ok(client.post(f"/v1/products/{CARD}/batches", headers=app, json={
        "supplier_id": "sup-b", "unit_cost": 100,
        "codes": [{"code": a.codes[1]}, {"code": "B-OWN-CODE-1"}]}), 201)
    assert theirs["imported"] == 1 and theirs["rejected"] == [{"index": 0,
                                                              "reason": "duplicate"}]
    placed = ok(client.post("/v1/orders", headers=app, json={
        "buyer_id": "b", "items": [{"sku": CARD, "quantity": 1}]}), 201)
    assert placed["amount"] == 500 and placed["items"][0]["sku"] == CARD
    stock_a = ok(client.get(f"/v1/products/{CARD}/inventory", headers=a.keys["app"]))
    assert (stock_a["total"], stock_a["reserved"]) == (4, 1)


def test_a_platform_key_names_the_tenant_it_acts_in(client, runtime, world):
    a, _ = world
    support = {"Authorization": "Bearer " + runtime.engine.keys.issue(
        role="support", name="platform-support").secret}
    assert client.get(f"/v1/products/{CARD}", headers=support).status_code == 404
    named = client.get(f"/v1/products/{CARD}", headers={**support, "Quanyi-Tenant": "ta"})
    assert named.status_code == 200 and named.json()["tenant"] == "ta"
    assert client.get(f"/v1/orders/{a.ids['order_id']}", headers=support).status_code == 200


def test_the_feed_shows_a_tenant_only_its_own_events(client, world):
    a, b = world
    mine = ok(client.get("/v1/events", headers=a.keys["app"], params={"limit": 1000}))
    streams = {item["stream_id"] for item in mine["items"]}
    assert {a.ids["order_id"], a.ids["code_id"], a.ids["endpoint_id"]} <= streams
    theirs = ok(client.get("/v1/events", headers=b.keys["finance"], params={"limit": 1000}))
    assert not streams & {item["stream_id"] for item in theirs["items"]}



def test_b_sees_and_offers_only_its_own_suppliers(client, runtime, world):
    a, b = world
    ok(client.post("/v1/products", headers=b.keys["app"], json={
        "sku": TOPUP, "name": "B's top-up", "delivery": "topup", "price": 10000}), 201)

    def offer(supplier_id: str):
        return client.put(f"/v1/products/{TOPUP}/offers", headers=b.keys["app"], json={
            "offers": [{"supplier_id": supplier_id, "supplier_sku": "CM", "cost": 9800,
                        "priority": 1}]})
    runtime.engine.suppliers.register(
        supplier_id="sup-platform", name="Platform's", adapter="http-json",
        endpoint="https://platform.example/q",
        credentials={"api_key": "k", "callback_secret": "s"}, actor="t")
    for foreign in (SUPPLIER, "sup-platform"):
        refused, blind = offer(foreign), offer("no-such-supplier")
        assert refused.status_code == blind.status_code == 422, refused.text
        assert refused.json()["detail"].replace(foreign, "ID") == \
            blind.json()["detail"].replace("no-such-supplier", "ID")
        seen = client.get(f"/v1/suppliers/{foreign}", headers=b.keys["app"])
        assert seen.status_code == 404 and foreign in seen.json()["detail"]
    ok(client.post("/v1/suppliers", headers=b.keys["admin"], json={
        "supplier_id": "sup-b", "name": "B's", "adapter": "http-json",
        "endpoint": "https://b.example/q",
        "credentials": {"api_key": "k", "callback_secret": "s"}}), 201)
    assert ok(offer("sup-b"))["offers"][0]["supplier_id"] == "sup-b"
    assert ok(client.get(f"/v1/products/{TOPUP}/offers", headers=a.keys["app"]))[
        "offers"][0]["supplier_id"] == SUPPLIER
