"""Liveness, projection health, and Prometheus metrics (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.responses import rfc3339
from api.schemas import HealthOut
from engine.kernel.errors import Unavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, response_model_exclude_none=True,
            responses={503: {"model": HealthOut, "description": "degraded: the projections "
                             "or the audit follower are failing or lag beyond "
                             "QUANYI_HEALTH_MAX_LAG; unavailable: the store cannot be "
                             "reached (answered at once, without waiting for it)"}})
def healthz(request: Request) -> JSONResponse:
    """The store in use, how far the projections and the audit tree trail the log, and
    whether they fail."""
    runtime = request.app.state.runtime
    try:
        if runtime.store.watch is not None:
            runtime.store.watch.check()
        position = runtime.store.last_position()
    except Unavailable as exc:
        return JSONResponse({"status": "unavailable", "store": runtime.store.kind,
                             "detail": exc.detail}, status_code=503,
                            headers={"Retry-After": str(exc.retry_after_seconds)})
    lag = max(0, position - runtime.runner.position())
    audit_lag = max(0, position - runtime.audit.position())
    health, audit = runtime.runner.health, runtime.audit_follower.health
    body: dict[str, Any] = {"status": "ok", "store": runtime.store.kind,
                            "projection_lag": lag, "position": position,
                            "audit_lag": audit_lag}
    if health.failing:
        body["projection_failure"] = _failure(health)
    if audit.failing:
        body["audit_failure"] = _failure(audit)
    if max(lag, audit_lag) > runtime.settings.health_max_lag:
        body["max_lag"] = runtime.settings.health_max_lag
    degraded = health.failing or audit.failing or "max_lag" in body
    if degraded:
        body["status"] = "degraded"
    return JSONResponse(body, status_code=503 if degraded else 200)


def _failure(health: Any) -> dict[str, Any]:
    return {"position": health.failing_position, "error": health.error,
            "consecutive_failures": health.consecutive_failures,
            "last_success": rfc3339(health.last_success) if health.last_success else None}


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {
    "text/plain": {"example": "quanyi_event_log_position 1042\n"}}}})
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format."""
    return PlainTextResponse(request.app.state.metrics.render(request.app.state.runtime),
                             media_type="text/plain; version=0.0.4")
