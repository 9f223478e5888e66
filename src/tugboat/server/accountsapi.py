"""The HTTP handlers of ``/api/v1/account``: Argo CD's account service (list, password, API keys, can-i).

Authorization follows Argo CD: a user may always read and update its own account (change its password,
create and delete its own API keys); anything about another account needs RBAC ``accounts, get`` or
``accounts, update`` on that account's name. Password hashes and key material are never returned:
an API key is shown once, in the answer that creates it, and only its id is stored.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tugboat.server import auth, context
from tugboat.server.problems import Problem


def account_json(account: auth.Account) -> dict[str, Any]:
    """What the API shows of an account (Argo CD's ``Account`` message, without secrets)."""
    return {
        "name": account.name,
        "enabled": account.enabled,
        "capabilities": list(account.capabilities),
        "tokens": [
            {"id": token.id, "issuedAt": token.issued_at, "expiresAt": token.expires_at}
            for token in account.tokens
        ],
    }


async def _may(request: Request, action: str, name: str) -> bool:
    """Whether the caller may ``action`` (get or update) the account ``name``: its own, or by RBAC."""
    return context.username(request) == name or await context.allowed(request, "accounts", action, name)


async def _ensure(request: Request, action: str, name: str) -> None:
    if context.username(request) != name:
        await context.authorize(request, "accounts", action, name)


async def _accounts(request: Request) -> auth.AccountSettings:
    state = context.settings(request)
    return await auth.load_accounts(state.client, namespace=state.namespace)


async def _account(request: Request, name: str) -> auth.Account:
    account = (await _accounts(request)).accounts.get(name)
    if account is None:
        raise Problem(404, f"account '{name}' does not exist")
    return account


async def list_accounts(request: Request) -> Response:
    accounts = (await _accounts(request)).accounts
    items = [account_json(a) for name, a in sorted(accounts.items()) if await _may(request, "get", name)]
    return JSONResponse({"items": items})


async def get_account(request: Request) -> Response:
    name = request.path_params["name"]
    await _ensure(request, "get", name)
    return JSONResponse(account_json(await _account(request, name)))


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Problem(400, f"{key} must be a string")
    return value


async def _check_current_password(request: Request, password: str) -> None:
    """The caller proves who it is with its own password (as Argo CD asks), throttled like a login."""
    state = context.settings(request)
    caller = context.username(request)
    if state.limiter.blocked(caller):
        raise Problem(429, "too many failed password attempts; try again later")
    if not await auth.verify_login(state.client, caller, password, namespace=state.namespace):
        state.limiter.failed(caller)
        raise Problem(400, "current password does not match")
    state.limiter.succeeded(caller)


def _check_pattern(pattern: str, password: str) -> None:
    try:
        fits = re.fullmatch(pattern, password) is not None
    except re.error as exc:
        where = f"password.pattern in {auth.SETTINGS_CONFIGMAP}"
        raise Problem(500, f"{where} is not a valid regular expression: {exc}") from exc
    if not fits:
        raise Problem(400, f"new password does not match the password pattern {pattern}")


async def update_password(request: Request) -> Response:
    body = await context.json_body(request)
    caller = context.username(request)
    name = _string(body, "name") or caller
    new_password = _string(body, "newPassword")
    await _ensure(request, "update", name)
    settings = await _accounts(request)
    if name not in settings.accounts:
        raise Problem(404, f"account '{name}' does not exist")
    _check_pattern(settings.password_pattern, new_password)
    await _check_current_password(request, _string(body, "currentPassword"))
    state = context.settings(request)
    await auth.set_password(state.client, name, new_password, namespace=state.namespace)
    return JSONResponse({})


_MAX_EXPIRES_IN = 100 * 365 * 24 * 3600  # a century: later expiry times overflow the JWT libraries


def _expires_in(body: dict[str, Any]) -> int:
    value = body.get("expiresIn", 0)
    try:
        seconds = int(value or 0)  # Argo CD's gateway sends int64 values as strings
    except (TypeError, ValueError, OverflowError):
        raise Problem(400, f"expiresIn must be a number of seconds, got {value!r}") from None
    if not 0 <= seconds <= _MAX_EXPIRES_IN:
        raise Problem(400, f"expiresIn must be between 0 and {_MAX_EXPIRES_IN} seconds")
    return seconds


async def create_token(request: Request) -> Response:
    name = request.path_params["name"]
    body = await context.json_body(request)
    await _ensure(request, "update", name)
    account = await _account(request, name)
    if not account.enabled:
        raise Problem(400, f"account '{name}' is disabled")
    if not account.can(auth.API_KEY):
        raise Problem(400, f"account '{name}' does not have the {auth.API_KEY} capability")
    token_id = _string(body, "id") or str(uuid.uuid4())
    state = context.settings(request)
    token, entry = auth.issue_api_key(name, state.secret_key, token_id=token_id, expires_in=_expires_in(body))
    try:
        await auth.add_token(state.client, name, entry, namespace=state.namespace)
    except ValueError as exc:
        raise Problem(400, str(exc)) from exc
    return JSONResponse({"token": token})


async def delete_token(request: Request) -> Response:
    name, token_id = request.path_params["name"], request.path_params["id"]
    await _ensure(request, "update", name)
    await _account(request, name)
    state = context.settings(request)
    if not await auth.remove_token(state.client, name, token_id, namespace=state.namespace):
        raise Problem(404, f"account '{name}' has no token with id '{token_id}'")
    return JSONResponse({})


async def can_i(request: Request) -> Response:
    params = request.path_params
    allowed = await context.allowed(request, params["resource"], params["action"], params["subresource"])
    return JSONResponse({"value": "yes" if allowed else "no"})


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    return [
        Route("/api/v1/account", guarded(list_accounts), methods=["GET"]),
        Route(
            "/api/v1/account/can-i/{resource}/{action}/{subresource:path}", guarded(can_i), methods=["GET"]
        ),
        Route("/api/v1/account/password", guarded(update_password), methods=["PUT"]),
        Route("/api/v1/account/{name}", guarded(get_account), methods=["GET"]),
        Route("/api/v1/account/{name}/token", guarded(create_token), methods=["POST"]),
        Route("/api/v1/account/{name}/token/{id}", guarded(delete_token), methods=["DELETE"]),
    ]
