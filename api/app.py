"""The FastAPI application: routes, auth, idempotency, problem+json, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from api.responses import OrjsonResponse

from api import problems
from api.idempotency import IdempotencyMiddleware
from api.limits import MissLimiter
from api.metrics import Metrics, MetricsMiddleware
from api.routes import catalog, codes, feed, health, orders, redemptions
from api.runtime import Runtime

DESCRIPTION = """Event-sourced engine for card codes (卡密), redemption codes (兑换码) and
their sale. Bearer API keys with roles; `Idempotency-Key` on every POST; errors are
`application/problem+json` with a stable `code`; money is integer minor units."""


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
                  default_response_class=OrjsonResponse, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.metrics = Metrics()
    app.state.misses = MissLimiter.for_runtime(runtime)
    problems.install(app)
    for module in (catalog, codes, redemptions, orders, feed, health):
        app.include_router(module.router)
    app.add_middleware(IdempotencyMiddleware, runtime=runtime)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
