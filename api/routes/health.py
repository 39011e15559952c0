"""Liveness, projection lag, and Prometheus metrics (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from api.schemas import HealthOut

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, response_model_exclude_none=True,
            responses={503: {"model": HealthOut, "description": "degraded: a projection "
                                                                "cannot get past an event"}})
def healthz(request: Request) -> dict[str, Any]:
    """The store in use and how many events the projections are behind."""
    runtime = request.app.state.runtime
    position = runtime.store.last_position()
    return {"status": "ok", "store": runtime.store.kind,
            "projection_lag": max(0, position - runtime.runner.position()),
            "position": position}


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {
    "text/plain": {"example": "quanyi_event_log_position 1042\n"}}}})
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format."""
    return PlainTextResponse(request.app.state.metrics.render(request.app.state.runtime),
                             media_type="text/plain; version=0.0.4")
