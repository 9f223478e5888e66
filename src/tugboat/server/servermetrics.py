"""Prometheus metrics of the API server: one count and one duration per request, by route template.

Operators watch the API server the way they watch any HTTP service (request rate, error rate, latency),
so every request is measured by a small ASGI middleware around the whole app. The ``route`` label is the
matched route's template (``/api/v1/applications/{name}``), never the raw path, so the number of series
stays bounded however many Applications there are. ``argocd_info`` carries the version, and
``argocd_login_request_total`` counts logins by outcome, as Argo CD's server does. Each instrumented app
has its own registry (kept on ``app.state``), so several apps can live in one process (the tests do);
``GET /metrics`` in :mod:`tugboat.server.serverinfo` serves it.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import core, registry
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import tugboat

__all__ = ["LOGIN_ROUTE", "UNMATCHED", "MetricsMiddleware", "ServerMetrics", "instrument", "of_app"]

LOGIN_ROUTE = "/api/v1/session"
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404 of the router)
_STATE_KEY = "server_metrics"
# Seconds; API answers are mostly milliseconds, a large list or a slow cluster takes seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """The API server's registry and the series the middleware updates."""

    def __init__(self, *, version: str = tugboat.__version__) -> None:
        self.registry = registry.CollectorRegistry()
        self.requests = core.Counter(
            "http_server_requests",
            "Number of HTTP requests the API server answered.",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.durations = core.Histogram(
            "http_server_request_duration_seconds",
            "Time the API server took to answer a request (streams: until they end).",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.logins = core.Counter(
            "argocd_login_request", "Number of login requests.", ["status"], registry=self.registry
        )
        info = core.Gauge("argocd_info", "Version of the API server.", ["version"], registry=self.registry)
        info.labels(version).set(1)

    def observe(self, *, method: str, route: str, code: int, seconds: float) -> None:
        """One answered request."""
        self.requests.labels(method, route, str(code)).inc()
        self.durations.labels(method, route).observe(seconds)
        if route == LOGIN_ROUTE and method == "POST":
            self.logins.labels("success" if code == 200 else "failure").inc()


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request (set on the scope by Starlette's router)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    """Counts and times every HTTP request of the app it wraps."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(
                method=str(scope.get("method", "")),
                route=route_template(scope),
                code=code,
                seconds=time.perf_counter() - started,
            )


def instrument(app: Starlette) -> None:
    """Measure every request of ``app`` (before it starts serving); idempotent."""
    if of_app(app) is not None:
        return
    metrics = ServerMetrics()
    setattr(app.state, _STATE_KEY, metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)


def of_app(app: Any) -> ServerMetrics | None:
    """The metrics of an instrumented app (``None`` when :func:`instrument` was not called)."""
    value = getattr(app.state, _STATE_KEY, None)
    return value if isinstance(value, ServerMetrics) else None
