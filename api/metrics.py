"""Prometheus metrics: request counts and latencies per route template, and the engine's
log position, projection lag, projection errors and whether the projections are failing, and
the same of the audit follower (tree size, lag, errors, failing)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            key = (method, route)
            self.sums[key] += seconds
            self.counts[key] += 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[key][i] += 1

    def render(self, runtime: Any) -> str:
        lines = ["# TYPE quanyi_http_requests_total counter"]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f'quanyi_http_requests_total{{method="{method}",route="{route}",'
                             f'status="{status}"}} {n}')
            lines.append("# TYPE quanyi_http_request_seconds histogram")
            for (method, route), counts in sorted(self.buckets.items()):
                labels = f'method="{method}",route="{route}"'
                for bound, n in zip(BUCKETS, counts):
                    lines.append(f'quanyi_http_request_seconds_bucket{{{labels},le="{bound}"}} {n}')
                total = self.counts[(method, route)]
                lines.append(f'quanyi_http_request_seconds_bucket{{{labels},le="+Inf"}} {total}')
                lines.append(f"quanyi_http_request_seconds_sum{{{labels}}} "
                             f"{self.sums[(method, route)]:.6f}")
                lines.append(f"quanyi_http_request_seconds_count{{{labels}}} {total}")
        position = runtime.store.last_position()
        health = runtime.runner.health
        lines += ["# TYPE quanyi_event_log_position gauge",
                  f"quanyi_event_log_position {position}",
                  "# TYPE quanyi_projection_lag_events gauge",
                  f"quanyi_projection_lag_events {max(0, position - runtime.runner.position())}",
                  "# TYPE quanyi_projection_errors_total counter",
                  f"quanyi_projection_errors_total {health.errors}",
                  "# TYPE quanyi_projection_failing gauge",
                  f"quanyi_projection_failing {int(health.failing)}",
                  "# TYPE quanyi_projection_consecutive_failures gauge",
                  f"quanyi_projection_consecutive_failures {health.consecutive_failures}"]
        audit = runtime.audit_follower.health
        lines += ["# TYPE quanyi_audit_tree_size gauge",
                  f"quanyi_audit_tree_size {runtime.audit.size}",
                  "# TYPE quanyi_audit_lag_events gauge",
                  f"quanyi_audit_lag_events {max(0, position - runtime.audit.position())}",
                  "# TYPE quanyi_audit_errors_total counter",
                  f"quanyi_audit_errors_total {audit.errors}",
                  "# TYPE quanyi_audit_failing gauge",
                  f"quanyi_audit_failing {int(audit.failing)}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.observe(scope["method"], template, status,
                                 time.perf_counter() - started)
