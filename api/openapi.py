"""The OpenAPI document as a contract a client can be generated from.

FastAPI's document is post-processed here, in one place, rather than route by route:
every error answer is `application/problem+json` (FastAPI's HTTPValidationError is never
sent, so it is removed), the statuses each operation can really answer are derived from its
route (a key needed: 401/403; a path id: 404; a POST or PUT: Idempotency-Key and its 409/422; a
body: 413) and from the table of engine errors below, keyed operations carry the bearer
scheme, and bodies read by hand (batch import) get their schema registered.

The pages at /docs and /redoc load their scripts from this server (assets shipped by the
`fastapi-offline` package), so they work where no CDN can be reached.
"""

from __future__ import annotations

import inspect
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from api import auth, problems
from api.idempotency import COMMANDS
from api.schemas import (
    BatchIn,
    BatchOut,
    BundleOut,
    CancelIn,
    ChannelPriceIn,
    CodeOut,
    DailyStatementOut,
    DistributorIn,
    DistributorOut,
    GeneratedOut,
    GenerateIn,
    InventoryOut,
    IssuedKeyOut,
    KeyIn,
    KeyListOut,
    KeyOut,
    LookupIn,
    MerchantCodeOut,
    OffersIn,
    OffersOut,
    OrderOut,
    OrderReconciliationOut,
    PaymentIn,
    Problem,
    ProviderReconciliationOut,
    ReasonIn,
    RedeemIn,
    RedemptionOut,
    RefundIn,
    RefundOut,
    ResolveTopupIn,
    RevealOut,
    SupplierCallbackIn,
    SupplierIn,
    SupplierOut,
)
from api.webhook_schemas import EXAMPLES as WEBHOOK_EXAMPLES
from engine.kernel import errors

SCHEMAS = "#/components/schemas/"
PROBLEM_JSON = "application/problem+json"
UNSENT = ("HTTPValidationError", "ValidationError")
BEARER = {"type": "http", "scheme": "bearer",
          "description": "an API key: `Authorization: Bearer <key>`; a platform key may "
                         "add `Quanyi-Tenant: <tenant>` to act in that tenant"}
# the routes of money: each works in one book (x-book), the caller's tenant's
BOOK_TAGS = {"ledger", "reconciliation", "payouts"}
BOOK = ("Book: a tenant's key (finance, or admin of the tenant) works in its tenant's book "
        "only; a platform key in the consolidated book of every tenant, or with "
        "`Quanyi-Tenant` in that tenant's.")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "the same key and body replay the first answer (header "
                   "`Idempotent-Replayed: true`) and act once; kept 48 hours per API key",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "example": "shop-order-778-pay"}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait",
                               "schema": {"type": "integer"}}}

# Engine errors an operation can raise beyond those its shape implies (401/403/404/422).
RAISES: dict[str, tuple[type[errors.QuanyiError], ...]] = {
    "POST /v1/products": (errors.AlreadyExists, errors.PriceBelowCost),
    "PUT /v1/products/{sku}/channel-prices/{channel}": (errors.ConcurrentUpdate,),
    "POST /v1/products/{sku}/batches": (errors.InvalidState, errors.PriceBelowCost,
                                        errors.ConcurrentUpdate),
    "POST /v1/products/{sku}/batches/generate": (errors.InvalidState, errors.PatternTooSmall,
                                                 errors.ConcurrentUpdate),
    "POST /v1/codes/lookup": (errors.NotFound,),
    "POST /v1/codes/{code_id}/void": (errors.InvalidState, errors.ConcurrentUpdate),
    "POST /v1/redemptions": (errors.NotFound, errors.AlreadyRedeemed, errors.InvalidState,
                             errors.ConcurrentUpdate, errors.CodeExpired, errors.CodeVoided),
    "POST /v1/redemptions/{redemption_id}/rollback": (
        errors.Forbidden, errors.AlreadyRolledBack, errors.ConcurrentUpdate),
    "POST /v1/keys/{key_id}/revoke": (errors.InvalidState,),
    "POST /v1/orders": (errors.NotFound, errors.SoldOut, errors.PurchaseLimitExceeded,
                        errors.InvalidState, errors.PriceBelowCost, errors.ConcurrentUpdate,
                        errors.ExternalRefReused),
    "GET /v1/orders/{order_id}": (errors.ConcurrentUpdate,),
    "POST /v1/orders/{order_id}/payments": (errors.AmountMismatch, errors.InvalidState,
                                            errors.OrderExpired, errors.ConcurrentUpdate,
                                            errors.PaymentRefReused),
    "POST /v1/orders/{order_id}/cancel": (errors.InvalidState, errors.OrderExpired,
                                          errors.ConcurrentUpdate),
    "POST /v1/orders/{order_id}/reveal": (errors.InvalidState, errors.ConcurrentUpdate,
                                          errors.CodeVoided, errors.CodeExpired),
    "GET /v1/orders/{order_id}/codes.csv": (errors.InvalidState, errors.ConcurrentUpdate,
                                            errors.CodeVoided, errors.CodeExpired),
    "POST /v1/distributors": (errors.NotFound, errors.AlreadyExists, errors.InvalidState),
    "GET /v1/ledger/accounts/{account_id}": (errors.ValidationFailed,),
    "POST /v1/payouts": (errors.InsufficientBalance, errors.InvalidState,
                         errors.ConcurrentUpdate, errors.PayoutRefReused),
    "POST /v1/suppliers/{supplier_id}/settlements": (
        errors.InsufficientBalance, errors.InvalidState, errors.ConcurrentUpdate,
        errors.SettlementRefReused),
    "POST /v1/orders/{order_id}/refunds": (errors.AlreadyRefunded, errors.AlreadyRedeemed,
                                           errors.InvalidState, errors.ConcurrentUpdate,
                                           errors.CodeVoided, errors.CodeExpired),
    "GET /v1/reconciliation/orders/{order_id}": (errors.ConcurrentUpdate,),
    "POST /v1/suppliers": (errors.AlreadyExists,),
    "POST /v1/orders/{order_id}/topup/resolve": (errors.InvalidState, errors.ConcurrentUpdate),
    "POST /v1/suppliers/{supplier_id}/callbacks": (errors.CallbackRejected,
                                                   errors.SignatureInvalid,
                                                   errors.ConcurrentUpdate),
    "PUT /v1/products/{sku}/offers": (errors.InvalidState, errors.PriceBelowCost,
                                      errors.ConcurrentUpdate),
    "POST /v1/webhooks/{endpoint_id}/disable": (errors.InvalidState, errors.ConcurrentUpdate),
    "POST /v1/webhooks": (errors.TooManyWebhooks,),
    "POST /v1/webhooks/{endpoint_id}/enable": (errors.InvalidState, errors.ConcurrentUpdate,
                                               errors.TooManyWebhooks),
    "POST /v1/webhooks/{endpoint_id}/rotate-secret": (errors.ConcurrentUpdate,),
    "POST /v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": (
        errors.ConcurrentUpdate,),
    "PUT /v1/products/{sku}/low-stock": (errors.ConcurrentUpdate,),
    "GET /v1/audit/orders/{order_id}/bundle": (errors.ConcurrentUpdate,),
    "GET /v1/audit/codes/{code_id}/bundle": (errors.ConcurrentUpdate,),
}
# Operations that take a code string and so count misses (api/limits.py).
RATE_LIMITED = frozenset({"POST /v1/codes/lookup", "POST /v1/redemptions"})

KEY_EXAMPLE = {"key_id": "3f9a1c2b7d4e", "name": "storefront", "role": "app",
           "merchant_id": None, "tenant": "shop-1", "created_at": "2026-11-23T10:22:23Z",
           "expires_at": None, "revoked": False}

# A direct top-up's order, paid: its first supplier's breaker was open, so the second was
# asked first and failed, the third credited it.
TOPUP_ORDER = {
    "order_id": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69", "status": "delivered",
    "buyer_id": "u-1001", "amount": 10000, "currency": "CNY",
    "items": [{"sku": "MOBILE-100", "quantity": 1, "unit_price": 10000}], "channel": None,
    "distributor_id": None, "external_ref": "shop-order-779",
    "expires_at": "2026-11-23T10:37:23.123456Z", "placed_at": "2026-11-23T10:22:23.123456Z",
    "codes": [], "released": [], "refunds": [],
    "payments": [{"payment_ref": "wx-4200001235", "amount": 10000, "currency": "CNY",
                  "provider": "wechat", "late": False, "at": "2026-11-23T10:23:01.000002Z"}],
    "recharge_account": "13****78",
    "topup": {"status": "succeeded", "supplier_id": "sup-3", "attempts": [
        {"number": 1, "reference": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69-1",
         "supplier_id": "sup-2", "outcome": "failed",
         "started_at": "2026-11-23T10:23:01.100000Z", "late_success": False},
        {"number": 2, "reference": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69-2",
         "supplier_id": "sup-3", "outcome": "succeeded",
         "started_at": "2026-11-23T10:23:01.300000Z", "late_success": False}],
        "skipped": [{"supplier_id": "sup-1", "supplier_sku": "CM-100",
                     "reason": "circuit breaker open: 5 failed or unknown answers in a row "
                               "from this supplier; skipped for 23 s more",
                     "at": "2026-11-23T10:23:01.100000Z", "before_attempt": 1}]}}

# Examples for bodies whose models carry none of their own.
EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    ChannelPriceIn: {"price": 1890},
    GenerateIn: {"count": 10, "pattern": "VIP-####-####"},
    LookupIn: {"code": "AQZX-7781-KKP0"},
    ReasonIn: {"reason": "reported stolen by the supplier"},
    RedeemIn: {"code": "AQZX-7781-KKP0", "merchant_id": "m-7", "terminal_id": "t-1",
               "location": "Shanghai"},
    PaymentIn: {"payment_ref": "wx-4200001234", "amount": 1990, "currency": "CNY",
                "provider": "wechat"},
    CancelIn: {"reason": "buyer changed their mind"},
    ResolveTopupIn: {"outcome": "failed", "note": "the supplier confirmed nothing was credited"},
    BatchOut: {"batch_id": "6f1c2a9e-3b7d-5e2a-9c41-0d8b7e6f5a31", "sku": "VIP-1M",
               "imported": 2, "rejected": [{"index": 2, "reason": "duplicate"}]},
    GeneratedOut: {"batch_id": "6f1c2a9e-3b7d-5e2a-9c41-0d8b7e6f5a31", "sku": "VIP-1M",
                   "generated": 10},
    InventoryOut: {"sku": "VIP-1M", "total": 10, "available": 6, "reserved": 1, "sold": 2,
                   "redeemed": 1, "voided": 0, "expired": 0},
    CodeOut: {"code_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50", "sku": "VIP-1M",
              "status": "redeemed", "batch_id": "6f1c2a9e-3b7d-5e2a-9c41-0d8b7e6f5a31",
              "origin": "imported", "order_id": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69",
              "holder": "u-1001", "expires_at": None,
              "redemption_id": "5a4b3c2d-1e0f-5a9b-8c7d-6e5f4a3b2c1d",
              "redeemed_at": "2026-11-24T08:01:02.000001Z", "redeemed_by": "m-7",
              "terminal_id": "t-1", "location": "Shanghai", "version": 4,
              "updated_at": "2026-11-24T08:01:02.000001Z"},
    MerchantCodeOut: {"code_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50", "sku": "VIP-1M",
                      "status": "redeemed", "redeemed_at": "2026-11-24T08:01:02.000001Z",
                      "redeemed_by": "m-7"},
    RedemptionOut: {"redemption_id": "5a4b3c2d-1e0f-5a9b-8c7d-6e5f4a3b2c1d",
                    "code_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50", "sku": "VIP-1M",
                    "redeemed_at": "2026-11-24T08:01:02.000001Z", "merchant_id": "m-7",
                    "terminal_id": "t-1", "location": "Shanghai"},
    OrderOut: {"order_id": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69", "status": "delivered",
               "buyer_id": "u-1001", "amount": 1990, "currency": "CNY",
               "items": [{"sku": "VIP-1M", "quantity": 1, "unit_price": 1990}],
               "channel": None, "distributor_id": None, "external_ref": "shop-order-778",
               "expires_at": "2026-11-23T10:37:23.123456Z",
               "placed_at": "2026-11-23T10:22:23.123456Z",
               "codes": [{"code_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50", "sku": "VIP-1M",
                          "status": "sold", "masked": "AQ********P0"}],
               "payments": [{"payment_ref": "wx-4200001234", "amount": 1990,
                             "currency": "CNY", "provider": "wechat", "late": False,
                             "at": "2026-11-23T10:23:01.000002Z"}], "refunds": [],
               "released": [], "recharge_account": None, "topup": None},
    RefundIn: {"code_ids": ["0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50"],
               "reason": "buyer changed their mind"},
    RefundOut: {"refund_id": "2c9d7e1a-4b3f-5a60-8e21-9f0a1b2c3d4e",
                "order_id": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69", "amount": 1990,
                "currency": "CNY", "code_ids": ["0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50"],
                "reason": "buyer changed their mind",
                "refunded_at": "2026-11-23T11:02:45.000003Z"},
    KeyIn: {"role": "merchant", "name": "Coffee shop 7", "merchant_id": "m-7",
            "expires_in_days": 365},
    KeyOut: KEY_EXAMPLE,
    IssuedKeyOut: {**KEY_EXAMPLE, "secret": "qy_3f9a1c2b7d4e_<shown once>"},
    KeyListOut: {"items": [KEY_EXAMPLE], "next_cursor": None},
    DistributorIn: {"distributor_id": "shop-1-east", "name": "East district shop",
                    "parent_id": "shop-1"},
    DistributorOut: {"distributor_id": "shop-1-east", "name": "East district shop",
                     "parent_id": "shop-1", "level": 2,
                     "registered_at": "2026-11-23T10:22:23.123456Z"},
    SupplierIn: {"supplier_id": "sup-1", "name": "Mobile top-ups Ltd", "adapter": "http-json",
                 "endpoint": "https://api.supplier.example/quanyi",
                 "credentials": {"api_key": "<issued by the supplier>",
                                 "callback_secret": "<agreed with the supplier>"}},
    SupplierOut: {"supplier_id": "sup-1", "name": "Mobile top-ups Ltd", "adapter": "http-json",
                  "endpoint": "https://api.supplier.example/quanyi",
                  "credential_names": ["api_key", "callback_secret"],
                  "registered_at": "2026-11-23T10:22:23.123456Z"},
    OffersIn: {"offers": [
        {"supplier_id": "sup-1", "supplier_sku": "CM-100", "cost": 9800, "currency": "CNY",
         "priority": 10},
        {"supplier_id": "sup-2", "supplier_sku": "cmcc_100", "cost": 9850, "currency": "CNY",
         "priority": 20}]},
    OffersOut: {"sku": "CM-TOPUP-100", "offers": [
        {"supplier_id": "sup-1", "supplier_sku": "CM-100", "cost": 9800, "currency": "CNY",
         "priority": 10},
        {"supplier_id": "sup-2", "supplier_sku": "cmcc_100", "cost": 9850, "currency": "CNY",
         "priority": 20}]},
    RevealOut: {"order_id": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69", "codes": [
        {"code_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50", "sku": "VIP-1M",
         "code": "AQZX-7781-KKP0", "pin": "440921"}]},
    OrderReconciliationOut: {
        "order_id": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69", "currency": "CNY", "paid": 9999,
        "refunded": 3333, "revenue": 6666, "cost": 4200,
        "commissions": [{"distributor_id": "d-1", "level": 1, "amount": 666},
                        {"distributor_id": "d-2", "level": 2, "amount": 333},
                        {"distributor_id": "d-3", "level": 3, "amount": 166}],
        "margin": 1301, "consistent": True, "flags": []},
    DailyStatementOut: {
        "date": "2026-11-23",
        "suppliers": [{"supplier_id": "sup-1", "currency": "CNY", "units_delivered": 2,
                       "units_returned": 0, "cost_owed": 2000, "settled": 0}],
        "distributors": [{"distributor_id": "d-1", "currency": "CNY", "commission": 199,
                          "clawback": 0, "paid_out": 0}],
        "providers": [{"provider": "wechat", "currency": "CNY", "captured": 1990,
                       "refunded": 0}],
        "totals": [{"currency": "CNY", "units_delivered": 2, "units_returned": 0,
                    "cost_owed": 2000, "settled": 0, "commission": 199, "clawback": 0,
                    "paid_out": 0, "captured": 1990, "refunded": 0}]},
    ProviderReconciliationOut: {
        "provider": "wechat", "period_from": "2026-11-23T00:00:01.000000Z",
        "period_to": "2026-11-23T23:59:58.000000Z", "matched": 41,
        "missing_in_ledger": [{"payment_ref": "wx-4200009999", "type": "capture",
                               "amount": 1990}],
        "missing_in_statement": [],
        "amount_differences": [{"payment_ref": "wx-4200001234", "type": "refund",
                                "statement": 990, "ledger": 995}]},
    **WEBHOOK_EXAMPLES,
}

# A code's bundle, cut to one event of each kind (a real one carries every event).
EXAMPLES[BundleOut] = {
    "format": "quanyi-dispute-bundle/1",
    "subject": {"kind": "code", "id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50"},
    "exported_at": "2026-11-24T09:00:00.000001Z",
    "public_key": "WXIZKGJQuEM8288gey5/p63rvfaOedw8ZyxLuoxm8J8=",
    "head": {"tree_size": 23,
             "root_hash": "71340fe5419415281df5962040ee8105d0879a8d80f3ca3f877f03a80fa2c5f6",
             "signed_at": "2026-11-24T09:00:00.000001Z",
             "signature": "UI2dFcOLSge3WNnDIztJhkQIRLdJ1gp7DdF9wNs7eMxZ6rT4MeufU5ZDrlbGQocJz5"
                          "prWf1SCODCrknb96VmDg=="},
    "streams": [{"originator_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50", "versions": 1}],
    "events": [{"position": 5, "originator_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50",
                "originator_version": 1, "topic": "quanyi:code.imported",
                "state": "eyJ0aW1lc3RhbXAiOnsiX3R5cGVfIjoiZGF0ZXRpbWUiLCJfZGF0YV8iOiIyMDI2LTEx"
                         "LTIzVDEwOjAwOjAwKzAwOjAwIn0sInNrdSI6IlZJUC0xTSIsInNlYWxlZCI6Ijxz"
                         "ZWFsZWQ+In0=",
                "leaf_index": 4,
                "proof": ["12a8f5be7d46d2c761560cdb7902dbd22d1ee9a494bd6aaf86e2bebf0e5e6880"]}],
    "claims": {"order": None,
               "code": {**EXAMPLES[CodeOut], "status": "available", "order_id": None,
                        "holder": None, "redemption_id": None, "redeemed_at": None,
                        "redeemed_by": None, "terminal_id": None, "location": None,
                        "version": 1},
               "postings": []},
}
# Further examples of a model beside its first.
MORE_EXAMPLES: dict[type[BaseModel], list[dict[str, Any]]] = {OrderOut: [TOPUP_ORDER]}


DOC_ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Serve the post-processed document at /openapi.json (built once, then cached), and
    the documentation pages from local assets. The app is made with docs_url=None."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(DOC_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")),
              name="doc-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI over /openapi.json, its scripts served from here."""
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            swagger_js_url=f"{root}{DOC_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOC_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOC_ASSETS}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        """ReDoc over /openapi.json, its script served from here."""
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            redoc_js_url=f"{root}{DOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOC_ASSETS}/favicon.png", with_google_fonts=False)


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document made into the contract described in the module docstring."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes, openapi_version=app.openapi_version,
                      tags=app.openapi_tags, servers=app.servers,
                      separate_input_output_schemas=app.separate_input_output_schemas)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (Problem, BatchIn, SupplierCallbackIn):
        _register(schemas, model)
    for name in UNSENT:
        schemas.pop(name, None)
    for model, example in EXAMPLES.items():
        schemas.get(model.__name__, {}).setdefault("examples", [example])
    for model, more in MORE_EXAMPLES.items():
        schemas.get(model.__name__, {}).setdefault("examples", []).extend(more)
    components["securitySchemes"] = {"bearer": BEARER}
    taken: set[str] = set()
    for route in _routes(app):
        for method in sorted(route.methods):
            operation = doc["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _contract(operation, route, method, taken)
    return doc


def _routes(app: FastAPI) -> list[Any]:
    """The documented API routes, with their full paths (newer FastAPI keeps included
    routers nested and offers `iter_route_contexts` to see through them)."""
    flatten = getattr(routing, "iter_route_contexts", list)
    return [route for route in flatten(app.routes)
            if getattr(route, "include_in_schema", False) and hasattr(route, "dependant")]


def _register(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema


def _contract(operation: dict[str, Any], route: Any, method: str, taken: set[str]) -> None:
    key = f"{method} {route.path_format}"
    if route.name not in taken:  # short ids name the generated client's functions
        operation["operationId"] = route.name
        taken.add(route.name)
    roles = _roles(route)
    if roles is not None:
        operation["security"] = [{"bearer": []}]
        operation["x-roles"] = roles
        operation["description"] = (f"{operation.get('description', '')}\n\n"
                                    f"Roles: {', '.join(roles)} (admin always).").strip()
        if BOOK_TAGS & set(route.tags):
            operation["x-book"] = "tenant"
            operation["description"] += f"\n\n{BOOK}"
    _name_optional_body(operation)
    if method in COMMANDS:
        parameters = operation.setdefault("parameters", [])
        if not any(p["name"].lower() == "idempotency-key" for p in parameters):
            parameters.append(IDEMPOTENCY_KEY)
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's HTTPValidationError, which is never sent
    for status, codes in sorted(_problems(key, route, operation, roles is not None).items()):
        responses[str(status)] = _problem_answer(status, codes)


def _name_optional_body(operation: dict[str, Any]) -> None:
    """An optional body (`CancelIn | None`) is its model's schema in a body not required,
    rather than an unnamed anyOf with null."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        choices = media.get("schema", {}).get("anyOf", [])
        refs = [c for c in choices if "$ref" in c]
        if len(refs) == 1 and len(choices) == 2 and {"type": "null"} in choices:
            media["schema"] = refs[0]
            operation["requestBody"]["required"] = False


def _roles(route: Any) -> list[str] | None:
    """The roles the route's key dependency admits; None when it needs no key."""
    for dependency in route.dependant.dependencies:
        call = dependency.call
        if getattr(call, "__module__", None) == auth.__name__:
            return list(inspect.getclosurevars(call).nonlocals.get("roles", ()))
    return None


def _problems(key: str, route: Any, operation: dict[str, Any],
              keyed: bool) -> dict[int, list[str]]:
    """Each status the operation can answer with a problem, and the codes it then carries."""
    found: dict[int, list[str]] = {}

    def add(status: int, code: str) -> None:
        if code not in found.setdefault(status, []):
            found[status].append(code)

    if keyed:
        add(401, "unauthorized")
        add(403, "forbidden")
    if keyed or operation.get("parameters") or "requestBody" in operation:
        add(422, "validation_error")
    if route.dependant.path_params:
        add(404, "not_found")
    if key.split(" ", 1)[0] in COMMANDS:
        add(409, "idempotency_key_in_progress")
        add(422, "idempotency_key_reused")
    if "requestBody" in operation:
        add(413, "too_large")
    for error in RAISES.get(key, ()):
        add(_status_of(error), error.code)
    if key in RATE_LIMITED:
        add(429, "rate_limited")
    if "503" not in operation.get("responses", {}):  # /healthz answers 503 its own way
        add(503, errors.StoreUnavailable.code)
    if key.split(" ", 1)[0] in COMMANDS:
        add(507, errors.StorageFull.code)
    return found


def _status_of(error: type[errors.QuanyiError]) -> int:
    """The status api/problems.py answers the error with (400 for an unmapped one)."""
    return next((problems.STATUS[c] for c in error.__mro__ if c in problems.STATUS), 400)


def _problem_answer(status: int, codes: list[str]) -> dict[str, Any]:
    title = problems.TITLES.get(status, "Error")
    example = {"type": f"https://quanyi.dev/problems/{codes[0]}", "title": title,
               "status": status, "detail": f"{title.lower()}: see code", "code": codes[0]}
    answer: dict[str, Any] = {
        "description": f"{title}: {', '.join(f'`{c}`' for c in codes)}",
        "content": {PROBLEM_JSON: {"schema": {"$ref": SCHEMAS + "Problem"},
                                   "example": example}}}
    if status in (503, 507) or "rate_limited" in codes:
        answer["headers"] = RETRY_AFTER
    return answer
