"""/openapi.json is a contract: every reference resolves, every error is problem+json, keyed
operations carry the bearer scheme and the statuses they can answer, every POST takes an
Idempotency-Key, every JSON body and answer is a named schema with an example; /docs works
with no network; and no answer spells UTC as `+00:00`."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from typing import Any, Iterator

import pytest

from api.app import create_app
from engine.settings import Settings
from runtime import Runtime
from tests.conftest import TEST_KEY
from tests.e2e.conftest import import_codes, sold_code

OPEN = {("get", "/healthz"), ("get", "/metrics")}
SIGNED = {("post", "/v1/suppliers/{supplier_id}/callbacks")}  # the supplier's signature
PROBLEM = "#/components/schemas/Problem"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The document as the app builds it (the same over either store: one SQLite file)."""
    env = {"QUANYI_DATA_DIR": str(tmp_path_factory.mktemp("doc") / "data"),
           "QUANYI_SECRET_KEY": TEST_KEY}
    runtime = Runtime.open(Settings.from_env(env))
    try:
        yield create_app(runtime).openapi()
    finally:
        runtime.close()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _keyed(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    return ((m, p, o) for m, p, o in _operations(doc) if (m, p) not in OPEN | SIGNED)


def test_every_reference_resolves(doc):
    schemas = doc["components"]["schemas"]
    dangling = {ref for ref in _refs(doc) if ref.removeprefix("#/components/schemas/")
                not in schemas}
    assert dangling == set()


def test_batch_import_body_is_typed(doc):
    body = doc["paths"]["/v1/products/{sku}/batches"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/BatchIn"}
    assert doc["components"]["schemas"]["BatchIn"]["properties"]["codes"]["items"] == {
        "$ref": "#/components/schemas/CodeIn"}


def test_errors_are_declared_as_problems_never_as_fastapi_validation_errors(doc):
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert problem["additionalProperties"] is True
    for method, path, operation in _operations(doc):
        for status, answer in operation["responses"].items():
            if status.startswith("4"):
                assert list(answer["content"]) == ["application/problem+json"], (method, path)
                assert answer["content"]["application/problem+json"]["schema"] == {
                    "$ref": PROBLEM}


def test_keyed_operations_need_a_bearer_key_and_declare_401_403_422(doc):
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "an API key: `Authorization: Bearer <key>`; a platform key may "
                       "add `Quanyi-Tenant: <tenant>` to act in that tenant"}
    for method, path, operation in _keyed(doc):
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert {"401", "403", "422"} <= set(operation["responses"]), (method, path)
        assert operation["x-roles"], (method, path)
    for method, path in OPEN:
        assert "security" not in doc["paths"][path][method]
        assert not {"401", "403"} & set(doc["paths"][path][method]["responses"])
    for method, path in SIGNED:
        responses = doc["paths"][path][method]["responses"]
        assert "security" not in doc["paths"][path][method] and "403" not in responses
        assert "`signature_invalid`" in responses["401"]["description"]


def test_the_webhook_cap_is_documented_where_it_is_met(doc):
    for path in ("/v1/webhooks", "/v1/webhooks/{endpoint_id}/enable"):
        capped = doc["paths"][path]["post"]["responses"]["429"]
        assert "`too_many_webhooks`" in capped["description"]
        assert "headers" not in capped  # no wait helps: an endpoint must be disabled first


def test_statuses_follow_path_ids_bodies_and_engine_errors(doc):
    for method, path, operation in _keyed(doc):
        statuses = set(operation["responses"])
        assert ("404" in statuses) == ("{" in path or path in (
            "/v1/codes/lookup", "/v1/redemptions", "/v1/orders", "/v1/distributors")), \
            (method, path)
        assert ("413" in statuses) == ("requestBody" in operation), (method, path)
    redeem = doc["paths"]["/v1/redemptions"]["post"]["responses"]
    assert {"409", "410", "429"} <= set(redeem)
    assert "`already_redeemed`" in redeem["409"]["description"]
    assert "`code_voided`" in redeem["410"]["description"]
    assert "Retry-After" in redeem["429"]["headers"]
    assert "429" in doc["paths"]["/v1/codes/lookup"]["post"]["responses"]
    assert "`amount_mismatch`" in (
        doc["paths"]["/v1/orders/{order_id}/payments"]["post"]["responses"]["422"]
        ["description"])
    assert "`sold_out`" in doc["paths"]["/v1/orders"]["post"]["responses"]["409"]["description"]
    register = doc["paths"]["/v1/distributors"]["post"]["responses"]
    assert "`already_exists`, `invalid_state`" in register["409"]["description"]


def test_every_post_declares_the_idempotency_key_header(doc):
    posts = [(path, op) for method, path, op in _operations(doc) if method == "post"]
    assert len(posts) >= 10
    for path, operation in posts:
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert [h["name"] for h in headers] == ["Idempotency-Key"], path
        assert headers[0]["required"] is False


def _json_schemas(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for method, path, operation in _operations(doc):
        bodies = [operation.get("requestBody", {}).get("content", {})]
        bodies += [answer.get("content", {}) for answer in operation["responses"].values()]
        for content in bodies:
            for media_type, media in content.items():
                if "json" in media_type:
                    yield f"{method} {path} {media_type}", media


def test_every_json_body_and_answer_is_a_named_schema_with_an_example(doc):
    schemas = doc["components"]["schemas"]
    seen = 0
    for where, media in _json_schemas(doc):
        schema = media["schema"]
        # one named schema, or a choice between named schemas (look-up: by role)
        refs = [schema.get("$ref")] if "$ref" in schema else [
            branch.get("$ref") for branch in schema.get("anyOf", schema.get("oneOf", [None]))]
        assert refs and all(refs), where
        for ref in refs:
            named = schemas[ref.removeprefix("#/components/schemas/")]
            assert "example" in media or named.get("examples"), where
        seen += 1
    assert seen > 60


def test_operation_ids_are_the_route_names(doc):
    ids = [operation["operationId"] for _, _, operation in _operations(doc)]
    assert len(ids) == len(set(ids))
    assert doc["paths"]["/v1/redemptions"]["post"]["operationId"] == "redeem"


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_documentation_pages_load_only_local_assets(client, page):
    answer = client.get(page)
    assert answer.status_code == 200
    assert "://" not in answer.text and "cdn" not in answer.text.lower()
    parser = _Assets()
    parser.feed(answer.text)
    assert len(parser.urls) >= 2
    for url in parser.urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200 and asset.content, url
    assert "url: '/openapi.json'" in answer.text or "/openapi.json" in answer.text


def _times(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _times(value)
    elif isinstance(node, list):
        for item in node:
            yield from _times(item)
    elif isinstance(node, str) and LOOKS_LIKE_TIME.match(node):
        yield node


def _answers(client, keys) -> Iterator[Any]:
    """A sale through every kind of answer that carries a time, a conflict included."""
    sku = f"TZ-{uuid.uuid4().hex[:8]}"
    app = keys["app"]
    yield client.post("/v1/products", headers=app, json={
        "sku": sku, "name": "Video VIP", "delivery": "card", "price": 1990})
    code, paid = sold_code(client, keys, sku)
    import_codes(client, keys, sku, [f"TZ-{uuid.uuid4().hex[:10]}"],
                 expires_at="2030-01-01T00:00:00+00:00")
    yield client.get(f"/v1/orders/{paid['order_id']}", headers=app)
    yield client.post("/v1/orders", headers=app, json={
        "buyer_id": "b-tz", "items": [{"sku": sku, "quantity": 1}]})
    yield client.post(f"/v1/orders/{paid['order_id']}/payments", headers=app, json={
        "payment_ref": paid["payments"][0]["payment_ref"], "amount": paid["amount"]})
    redeemed = client.post("/v1/redemptions", headers=keys["merchant"],
                           json={"code": code, "merchant_id": "m-1"})
    yield redeemed
    yield client.post("/v1/redemptions", headers=keys["merchant"],
                      json={"code": code, "merchant_id": "m-1"})
    code_id = redeemed.json()["code_id"]
    yield client.get(f"/v1/codes/{code_id}", headers=keys["support"])
    yield client.get(f"/v1/codes/{code_id}/history", headers=keys["support"])
    yield client.get(f"/v1/products/{sku}", headers=app)
    yield client.get(f"/v1/products/{sku}/batches", headers=app)
    yield client.get("/v1/events?limit=1000", headers=app)


def test_every_answer_spells_time_in_utc_with_z(client, keys):
    statuses, times = set(), []
    for answer in _answers(client, keys):
        statuses.add(answer.status_code)
        assert "+00:00" not in answer.text, answer.text
        times += list(_times(answer.json()))
    assert {200, 201, 409} <= statuses
    assert len(times) > 20
    assert [t for t in times if not TIMESTAMP.match(t)] == []


def test_the_table_of_engine_errors_names_only_real_operations(doc):
    from api.openapi import RAISES, RATE_LIMITED

    operations = {f"{m.upper()} {p}" for m, p, _ in _operations(doc)}
    assert set(RAISES) | RATE_LIMITED <= operations


def test_text_answers_and_bodies_carry_examples(doc):
    texts = 0
    for method, path, operation in _operations(doc):
        contents = [operation.get("requestBody", {}).get("content", {})]
        contents += [a.get("content", {}) for a in operation["responses"].values()]
        for content in contents:
            for media_type, media in content.items():
                if media_type.startswith("text/"):
                    assert media.get("example"), (method, path, media_type)
                    texts += 1
    # CSV import, CSV export, Prometheus metrics, the daily statement's CSV, a provider's
    # CSV statement, the journal as CSV and as Beancount
    assert texts == 7


def test_every_route_of_money_says_a_tenants_finance_key_works_in_its_own_book(doc):
    money = [(path, method, op) for path, ops in doc["paths"].items()
             for method, op in ops.items()
             if path.startswith(("/v1/ledger", "/v1/reconciliation", "/v1/payouts"))
             or path.endswith("/settlements")]
    assert len(money) == 10
    for path, method, op in money:
        assert "finance" in op["x-roles"] and op["x-book"] == "tenant", (method, path)
        assert "its tenant's book" in op["description"], (method, path)
