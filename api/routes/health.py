"""Liveness, projection health, and Prometheus metrics (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.responses import rfc3339
from api.schemas import HealthOut

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, response_model_exclude_none=True,
            responses={503: {"model": HealthOut, "description": "degraded: the projections "
                             "are failing or lag beyond QUANYI_HEALTH_MAX_LAG"}})
def healthz(request: Request) -> JSONResponse:
    """The store in use, how far the projections trail the log, and whether they fail."""
    runtime = request.app.state.runtime
    position = runtime.store.last_position()
    lag = max(0, position - runtime.runner.position())
    health = runtime.runner.health
    body: dict[str, Any] = {"status": "ok", "store": runtime.store.kind,
                            "projection_lag": lag, "position": position}
    if health.failing:
        body["projection_failure"] = {
            "position": health.failing_position, "error": health.error,
            "consecutive_failures": health.consecutive_failures,
            "last_success": rfc3339(health.last_success) if health.last_success else None}
    if lag > runtime.settings.health_max_lag:
        body["max_lag"] = runtime.settings.health_max_lag
    degraded = health.failing or "max_lag" in body
    if degraded:
        body["status"] = "degraded"
    return JSONResponse(body, status_code=503 if degraded else 200)


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {
    "text/plain": {"example": "quanyi_event_log_position 1042\n"}}}})
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format."""
    return PlainTextResponse(request.app.state.metrics.render(request.app.state.runtime),
                             media_type="text/plain; version=0.0.4")
