"""The FastAPI application: routes, auth, idempotency, problem+json, metrics."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import openapi, problems
from api.auth import AuthMiddleware
from api.body_limit import BodyLimitMiddleware
from api.idempotency import IdempotencyMiddleware
from api.limits import MissLimiter
from api.metrics import Metrics, MetricsMiddleware
from api.responses import OrjsonResponse
from api.routes import (
    bundles,
    catalog,
    codes,
    distributors,
    feed,
    health,
    journal,
    keys,
    ledger,
    orders,
    payouts,
    reconciliation,
    redemptions,
    supplier_callbacks,
    suppliers,
    webhooks,
)
from engine.topups.supplier_port import MAX_CALLBACK_BYTES
from runtime import Runtime

DESCRIPTION = """Event-sourced engine for card codes (卡密), redemption codes (兑换码) and
their sale. Bearer API keys with roles; `Idempotency-Key` on every POST; errors are
`application/problem+json` with a stable `code`; money is integer minor units.

Tenants: a key bound to a tenant (any role) sees and changes only its tenant's things;
anything else answers 404 exactly as an unknown id. A platform key (no tenant) acts across
tenants by id, and names the tenant of a SKU or distributor with the `Quanyi-Tenant`
header (it then acts as a key of that tenant and its role)."""
# Paths with a body ceiling lower than QUANYI_MAX_BODY_BYTES.
LOWER_BODY_CEILINGS = {re.compile(r"/v1/suppliers/[^/]+/callbacks/?"): MAX_CALLBACK_BYTES}


def create_app(runtime: Runtime, *, manage_runtime: bool = False) -> FastAPI:
    """Build the app over a runtime; with ``manage_runtime`` it starts and closes it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                runtime.close()

    app = FastAPI(title="Quanyi", version="1.0", description=DESCRIPTION,
                  default_response_class=OrjsonResponse, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # served offline by api/openapi.py
    app.state.runtime = runtime
    app.state.metrics = Metrics()
    app.state.misses = MissLimiter.for_runtime(runtime)
    problems.install(app)
    openapi.install(app)
    for module in (catalog, codes, redemptions, orders, feed, health, keys, distributors,
                   ledger, payouts, reconciliation, journal, suppliers, supplier_callbacks,
                   webhooks, bundles):
        app.include_router(module.router)
    app.include_router(webhooks.stock_router)
    # the last added runs first: metrics see every answer; the body ceiling holds before
    # anything reads a body; a store that cannot be reached is a 503 wherever it is met;
    # the caller is known before idempotency or a route runs
    app.add_middleware(IdempotencyMiddleware, runtime=runtime)
    app.add_middleware(AuthMiddleware, runtime=runtime)
    app.add_middleware(problems.UnavailableMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.settings.max_body_bytes,
                       lower=LOWER_BODY_CEILINGS)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
