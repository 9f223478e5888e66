"""What every API handler shares: the server's settings, the session check, authorization and errors.

Handlers live in modules named after what they serve (applications, rollouts, webhooks, the UI, …);
each module exposes ``routes()`` and wraps its handlers with :func:`guarded`, which authenticates the
caller (bearer header for API and CLI, the ``argocd.token`` cookie for the browser) and turns
:class:`~tugboat.server.problems.Problem` and Kubernetes API errors into Argo CD's error bodies.
Handlers then call :func:`authorize` with the RBAC resource, action and object of what they do.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tugboat.kube import errors
from tugboat.kube.client import Client
from tugboat.server import auth, rbac
from tugboat.server.problems import Problem, from_api_error

Handler = Callable[[Request], Awaitable[Response]]

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """The server's state, kept on ``app.state.settings``."""

    client: Client
    secret_key: bytes
    namespace: str
    limiter: auth.LoginLimiter = field(default_factory=auth.LoginLimiter)
    policy: rbac.Policy | None = None
    revoked: dict[str, float] = field(default_factory=dict)  # jti of logged-out sessions → their expiry

    def revoke(self, claims: dict[str, Any]) -> None:
        """End a session before it expires (logout); forgotten once it would have expired anyway."""
        now = time.time()
        for jti in [jti for jti, expiry in self.revoked.items() if expiry < now]:
            del self.revoked[jti]
        if claims.get("jti"):
            self.revoked[str(claims["jti"])] = float(claims.get("exp") or now + 86_400)

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = rbac.Policy(self.client, namespace=self.namespace)


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def json_body(request: Request) -> dict[str, Any]:
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


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(auth.TOKEN_COOKIE)


async def authenticate(request: Request) -> dict[str, Any]:
    """The claims of the caller's session or API key; :class:`Problem` 401 without a valid one."""
    token = token_of(request)
    if token is None:
        raise Problem(401, "no session information")
    state = settings(request)
    try:
        claims = await auth.authenticate(state.client, token, state.secret_key, namespace=state.namespace)
    except auth.AuthError as exc:
        raise Problem(401, str(exc)) from exc
    if str(claims.get("jti")) in state.revoked:
        raise Problem(401, "invalid session: logged out")
    if request.method not in _SAFE_METHODS and request.headers.get("authorization") is None:
        _check_json_request(request)
    request.state.claims = claims
    return claims


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _check_json_request(request: Request) -> None:
    """A change made with the session cookie must say it sends JSON: browsers send that content type
    across origins only after a CORS preflight, which this server never grants, so a page of another
    site (or a sibling subdomain, which SameSite cookies do not stop) cannot make the change."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Problem(
            415, "requests authenticated by the session cookie must send Content-Type: application/json"
        )


async def reauthenticate(request: Request) -> None:
    """Check a long-lived request's session again, and read the RBAC policy afresh from now on."""
    if hasattr(request.state, "rbac_decider"):
        del request.state.rbac_decider
    await authenticate(request)


def error_response(exc: Exception) -> JSONResponse:
    problem = from_api_error(exc) if isinstance(exc, errors.ApiError) else exc
    assert isinstance(problem, Problem)
    return JSONResponse(problem.body(), status_code=problem.status)


def guarded(handler: Handler, *, public: bool = False) -> Handler:
    """``handler`` with the session check (unless ``public``) and errors turned into JSON answers."""

    async def run(request: Request) -> Response:
        try:
            if not public:
                await authenticate(request)
            return await handler(request)
        except (errors.ApiError, Problem) as exc:
            return error_response(exc)
        except errors.ConnectionFailed as exc:
            log.warning("%s %s: the cluster did not answer: %s", request.method, request.url.path, exc)
            return error_response(Problem(503, "the Kubernetes API server is not reachable; try again"))

    run.__name__ = getattr(handler, "__name__", "handler")
    run.__doc__ = handler.__doc__
    run.public = public  # type: ignore[attr-defined]  # read by the OpenAPI description
    return run


def username(request: Request) -> str:
    return str(request.state.claims.get("sub") or "")


def groups(request: Request) -> list[str]:
    value = request.state.claims.get("groups")
    return [str(group) for group in value] if isinstance(value, list) else []


async def decider(request: Request) -> rbac.Decider:
    """The RBAC policy as it is for this request: read once per request, so a list that checks each of a
    thousand items reads the ConfigMap once, while a policy change applies from the next request on."""
    found = getattr(request.state, "rbac_decider", None)
    if isinstance(found, rbac.Decider):
        return found
    policy = settings(request).policy
    assert policy is not None
    current = await policy.current()
    request.state.rbac_decider = current
    return current


async def allowed(request: Request, resource: str, action: str, obj: str) -> bool:
    """Whether the caller may do ``action`` on ``obj`` (e.g. ``"default/guestbook"``) of ``resource``."""
    return (await decider(request)).enforce(username(request), groups(request), resource, action, obj)


async def authorize(request: Request, resource: str, action: str, obj: str) -> None:
    """Refuse with 403 (Argo CD's "permission denied") unless :func:`allowed`."""
    if not await allowed(request, resource, action, obj):
        raise Problem(403, f"permission denied: {resource}, {action}, {obj}, sub: {username(request)}")
