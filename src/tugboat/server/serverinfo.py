"""What the API server says about itself: its version, its metrics and the description of its API.

These answer without a session, as Argo CD's do: a client checks the version before logging in,
Prometheus scrapes ``/metrics`` with no credentials (the series carry no object names, only route
templates), and ``/api/openapi.json`` lets API explorers and generated clients find every path.
"""

from __future__ import annotations

import platform
import sys

from prometheus_client import exposition
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

import tugboat
from tugboat.server import context, openapi, servermetrics
from tugboat.server.problems import Problem


def version_info() -> dict[str, str]:
    """Argo CD's version answer, with what applies to a Python server."""
    return {
        "Version": f"v{tugboat.__version__}",
        "Platform": f"{sys.platform}/{platform.machine()}",
        "PythonVersion": platform.python_version(),
    }


async def version(request: Request) -> Response:
    """The server's version."""
    return JSONResponse(version_info())


async def metrics(request: Request) -> Response:
    """Prometheus metrics of the server (text exposition format)."""
    measured = servermetrics.of_app(request.app)
    if measured is None:
        raise Problem(404, "this server does not collect metrics")
    body = exposition.generate_latest(measured.registry)
    return Response(body, media_type=exposition.CONTENT_TYPE_LATEST)


async def openapi_document(request: Request) -> Response:
    """The OpenAPI 3.1 description of this API."""
    return JSONResponse(openapi.document(request.app.routes))


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    return [
        Route("/api/version", guarded(version, public=True), methods=["GET"]),
        Route("/metrics", guarded(metrics, public=True), methods=["GET"]),
        Route("/api/openapi.json", guarded(openapi_document, public=True), methods=["GET"]),
    ]
