"""The API server's ASGI application: the session endpoints and the routes of every part of the API.

It is a plain Starlette app over one :class:`~tugboat.kube.client.Client`, so it runs under uvicorn
(``tugboat server``) and under an in-process transport in tests alike. Every ``/api`` route but the
login and the Git webhook needs a session token (see :mod:`tugboat.server.context`); each part of the
API (applications, rollouts, accounts, webhooks, live streams, the web UI) brings its own routes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tugboat.kube.client import Client
from tugboat.server import (
    accountsapi,
    appcaches,
    appindex,
    applicationsapi,
    appresources,
    auth,
    context,
    projectsapi,
    rbac,
    rolloutsapi,
    serverinfo,
    servermetrics,
    streams,
    ui,
    webhooks,
)
from tugboat.server.problems import Problem

# -------------------------------------------------------------------------------------------- session


async def login(request: Request) -> Response:
    settings = context.settings(request)
    body = await context.json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise Problem(400, "username and password are required")
    if settings.limiter.blocked(username):
        raise Problem(429, "too many failed login attempts; try again later")
    if not await auth.verify_login(settings.client, username, password, namespace=settings.namespace):
        settings.limiter.failed(username)
        raise Problem(401, "Invalid username or password")
    settings.limiter.succeeded(username)
    token = auth.issue_token(username, settings.secret_key)
    response = JSONResponse({"token": token})
    response.set_cookie(
        auth.TOKEN_COOKIE,
        token,
        max_age=int(auth.TOKEN_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def userinfo(request: Request) -> Response:
    claims = request.state.claims
    return JSONResponse(
        {
            "loggedIn": True,
            "username": context.username(request),
            "iss": claims.get("iss"),
            "groups": context.groups(request),
        }
    )


async def logout(request: Request) -> Response:
    context.settings(request).revoke(request.state.claims)  # the token stops working, not only the cookie
    response = JSONResponse({})
    response.delete_cookie(auth.TOKEN_COOKIE)
    return response


async def healthz(request: Request) -> Response:
    return Response("ok", media_type="text/plain")


def _session_routes() -> list[BaseRoute]:
    guarded = context.guarded
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/v1/session", guarded(login, public=True), methods=["POST"]),
        Route("/api/v1/session", guarded(logout), methods=["DELETE"]),
        Route("/api/v1/session/userinfo", guarded(userinfo), methods=["GET"]),
    ]


# ------------------------------------------------------------------------------------------------ app


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Nothing to start (every cache starts on first use); at shutdown, stop the watches and remove the
    repository checkouts the server kept."""
    yield
    hub = streams.hub_of(app)
    if hub is not None:
        await hub.close()
    await appindex.release(app.state)
    appcaches.release(app.state)


def create_app(
    client: Client,
    *,
    secret_key: bytes,
    namespace: str = auth.DEFAULT_NAMESPACE,
    limiter: auth.LoginLimiter | None = None,
    policy: rbac.Policy | None = None,
) -> Starlette:
    """The API server over ``client``: Applications and settings live in ``namespace``; session tokens
    are signed with ``secret_key`` (``auth.bootstrap`` returns the one kept in ``argocd-secret``)."""
    routes = [
        *_session_routes(),
        *accountsapi.routes(),
        *applicationsapi.routes(),
        *appresources.routes(),
        *projectsapi.routes(),
        *rolloutsapi.routes(),
        *serverinfo.routes(),
        *webhooks.routes(),
        *streams.routes(),
        *ui.routes(),  # last: it serves the single-page app for every other path
    ]
    app = Starlette(routes=routes, lifespan=_lifespan)
    servermetrics.instrument(app)
    app.state.settings = context.Settings(
        client, secret_key, namespace, limiter=limiter or auth.LoginLimiter(), policy=policy
    )
    return app
