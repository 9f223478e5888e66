"""The API server's ASGI application: routes, authentication and error mapping.

It is a plain Starlette app over one :class:`~tugboat.kube.client.Client`, so it runs under uvicorn
(``tugboat server``) and under an in-process transport in tests alike. Every ``/api`` route but the
login needs a session token, as a bearer header (API, CLI) or the ``argocd.token`` cookie (browser).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tugboat.kube import errors
from tugboat.kube.client import Client
from tugboat.server import applications, auth, rollouts
from tugboat.server.problems import Problem, from_api_error

Handler = Callable[[Request], Awaitable[Response]]


class _Settings:
    def __init__(self, client: Client, secret_key: bytes, namespace: str, limiter: auth.LoginLimiter) -> None:
        self.client = client
        self.secret_key = secret_key
        self.namespace = namespace
        self.limiter = limiter


def _settings(request: Request) -> _Settings:
    settings: _Settings = request.app.state.settings
    return settings


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise Problem(400, f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Problem(400, "request body must be a JSON object")
    return body


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(auth.TOKEN_COOKIE)


def _guarded(handler: Handler, *, public: bool = False) -> Handler:
    """``handler`` with the session check (unless ``public``) and errors turned into JSON answers."""

    async def run(request: Request) -> Response:
        try:
            if not public:
                token = _token(request)
                if token is None:
                    raise Problem(401, "no session information")
                try:
                    request.state.claims = auth.verify_token(token, _settings(request).secret_key)
                except auth.AuthError as exc:
                    raise Problem(401, str(exc)) from exc
            return await handler(request)
        except errors.ApiError as exc:
            problem = from_api_error(exc)
            return JSONResponse(problem.body(), status_code=problem.status)
        except Problem as problem:
            return JSONResponse(problem.body(), status_code=problem.status)

    return run


def _username(request: Request) -> str:
    return str(request.state.claims.get("sub") or "")


# -------------------------------------------------------------------------------------------- session


async def login(request: Request) -> Response:
    settings = _settings(request)
    body = await _json_body(request)
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
        {"loggedIn": True, "username": claims.get("sub"), "iss": claims.get("iss"), "groups": []}
    )


async def logout(request: Request) -> Response:
    response = JSONResponse({})
    response.delete_cookie(auth.TOKEN_COOKIE)
    return response


# --------------------------------------------------------------------------------------- applications


def _app_namespace(request: Request) -> str:
    return request.query_params.get("appNamespace") or _settings(request).namespace


async def list_applications(request: Request) -> Response:
    query = request.query_params
    listed = await applications.list_applications(
        _settings(request).client,
        _app_namespace(request),
        projects=applications.split_list([*query.getlist("projects"), *query.getlist("project")]),
        selector=query.get("selector", ""),
        search=query.get("search", ""),
    )
    fields = applications.split_list(query.getlist("fields"))
    return JSONResponse(applications.select_fields(listed, fields))


async def get_application(request: Request) -> Response:
    client, namespace = _settings(request).client, _app_namespace(request)
    name = request.path_params["name"]
    mode = request.query_params.get("refresh")
    if mode:
        return JSONResponse(await applications.refresh(client, namespace, name, mode))
    return JSONResponse(await applications.get_application(client, namespace, name))


async def sync_application(request: Request) -> Response:
    body = await _json_body(request)
    namespace = str(body.get("appNamespace") or _app_namespace(request))
    operation = applications.sync_operation(body, username=_username(request))
    app = await applications.request_operation(
        _settings(request).client, namespace, request.path_params["name"], operation
    )
    return JSONResponse(app)


# ------------------------------------------------------------------------------------------- rollouts


async def list_rollouts(request: Request) -> Response:
    return JSONResponse(
        await rollouts.list_infos(_settings(request).client, request.path_params["namespace"])
    )


async def get_rollout(request: Request) -> Response:
    params = request.path_params
    return JSONResponse(
        await rollouts.get_info(_settings(request).client, params["namespace"], params["name"])
    )


async def promote_rollout(request: Request) -> Response:
    full = (await _json_body(request)).get("full") is True
    params = request.path_params
    client = _settings(request).client
    return JSONResponse(await rollouts.promote(client, params["namespace"], params["name"], full=full))


async def abort_rollout(request: Request) -> Response:
    params = request.path_params
    return JSONResponse(await rollouts.abort(_settings(request).client, params["namespace"], params["name"]))


async def retry_rollout(request: Request) -> Response:
    params = request.path_params
    return JSONResponse(await rollouts.retry(_settings(request).client, params["namespace"], params["name"]))


async def pause_rollout(request: Request) -> Response:
    paused = (await _json_body(request)).get("paused", True)
    if not isinstance(paused, bool):
        raise Problem(400, "paused must be true or false")
    params = request.path_params
    client = _settings(request).client
    return JSONResponse(await rollouts.set_paused(client, params["namespace"], params["name"], paused=paused))


async def healthz(request: Request) -> Response:
    return Response("ok", media_type="text/plain")


# ------------------------------------------------------------------------------------------------ app


def create_app(
    client: Client,
    *,
    secret_key: bytes,
    namespace: str = auth.DEFAULT_NAMESPACE,
    limiter: auth.LoginLimiter | None = None,
) -> Starlette:
    """The API server over ``client``: Applications and settings live in ``namespace``; session tokens
    are signed with ``secret_key`` (``auth.bootstrap`` returns the one kept in ``argocd-secret``)."""
    rollout = "/api/v1/rollouts/{namespace}/{name}"
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/v1/session", _guarded(login, public=True), methods=["POST"]),
        Route("/api/v1/session", _guarded(logout), methods=["DELETE"]),
        Route("/api/v1/session/userinfo", _guarded(userinfo), methods=["GET"]),
        Route("/api/v1/applications", _guarded(list_applications), methods=["GET"]),
        Route("/api/v1/applications/{name}", _guarded(get_application), methods=["GET"]),
        Route("/api/v1/applications/{name}/sync", _guarded(sync_application), methods=["POST"]),
        Route("/api/v1/rollouts/{namespace}/info", _guarded(list_rollouts), methods=["GET"]),
        Route(f"{rollout}/info", _guarded(get_rollout), methods=["GET"]),
        Route(f"{rollout}/promote", _guarded(promote_rollout), methods=["PUT"]),
        Route(f"{rollout}/abort", _guarded(abort_rollout), methods=["PUT"]),
        Route(f"{rollout}/retry", _guarded(retry_rollout), methods=["PUT"]),
        Route(f"{rollout}/pause", _guarded(pause_rollout), methods=["PUT"]),
    ]
    app = Starlette(routes=routes)
    app.state.settings = _Settings(client, secret_key, namespace, limiter or auth.LoginLimiter())
    return app
