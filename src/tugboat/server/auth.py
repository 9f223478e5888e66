"""Local accounts and sessions of the API server, kept where Argo CD keeps them.

Argo CD stores the ``admin`` account's bcrypt hash in the Secret ``argocd-secret`` (key
``admin.password``), the key that signs its session tokens in the same Secret (``server.secretkey``), and
the generated first password in ``argocd-initial-admin-secret`` (key ``password``). Tugboat uses the
same objects, so ``kubectl`` recipes written for Argo CD (reading the initial password, resetting the
admin hash) work here too. Sessions are HS256 JWTs; failed logins are counted per user and throttled.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bcrypt
import jwt

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj

DEFAULT_NAMESPACE = "argocd"
SETTINGS_SECRET = "argocd-secret"
INITIAL_SECRET = "argocd-initial-admin-secret"
ADMIN = "admin"
ISSUER = "argocd"
TOKEN_COOKIE = "argocd.token"
TOKEN_LIFETIME = datetime.timedelta(hours=24)
_PASSWORD_KEY = "admin.password"
_MTIME_KEY = "admin.passwordMtime"
_SECRET_KEY = "server.secretkey"
_INITIAL_PASSWORD_LENGTH = 16
_WRITE_ATTEMPTS = 5


class AuthError(Exception):
    """A login or a token that is not accepted."""


def _decode(secret: Obj | None, key: str) -> str | None:
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value).decode() if isinstance(value, str) else None


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def check_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # not a bcrypt hash
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(_INITIAL_PASSWORD_LENGTH)[:_INITIAL_PASSWORD_LENGTH]


async def _create_secret(client: Client, namespace: str, name: str, data: dict[str, str]) -> Obj | None:
    """Create a Secret; ``None`` when someone else created it first."""
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: _encode(value) for key, value in data.items()},
    }
    try:
        return await client.create(kinds.SECRET, body)
    except errors.ApiError as exc:
        if exc.already_exists:
            return None
        raise


async def _initial_password(client: Client, namespace: str) -> str:
    """The password in the initial admin Secret, created with a fresh one when missing."""
    for _ in range(_WRITE_ATTEMPTS):
        existing = _decode(await client.get_or_none(kinds.SECRET, INITIAL_SECRET, namespace), "password")
        if existing:
            return existing
        password = generate_password()
        if await _create_secret(client, namespace, INITIAL_SECRET, {"password": password}) is not None:
            return password
    raise errors.KubeError(f"secret '{namespace}/{INITIAL_SECRET}' kept changing")


def _missing_settings(secret: Obj | None) -> list[str]:
    return [key for key in (_SECRET_KEY, _PASSWORD_KEY) if not _decode(secret, key)]


async def _settings_values(client: Client, namespace: str, missing: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    if _SECRET_KEY in missing:
        values[_SECRET_KEY] = base64.b64encode(secrets.token_bytes(32)).decode()
    if _PASSWORD_KEY in missing:
        values[_PASSWORD_KEY] = hash_password(await _initial_password(client, namespace))
        values[_MTIME_KEY] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return values


async def bootstrap(client: Client, *, namespace: str = DEFAULT_NAMESPACE) -> bytes:
    """Make sure the server key and the admin password exist (generating the initial password on first
    start, as Argo CD does); returns the key that signs session tokens."""
    for _ in range(_WRITE_ATTEMPTS):
        secret = await client.get_or_none(kinds.SECRET, SETTINGS_SECRET, namespace)
        missing = _missing_settings(secret)
        if missing:
            values = await _settings_values(client, namespace, missing)
            if secret is None:
                if await _create_secret(client, namespace, SETTINGS_SECRET, values) is None:
                    continue
            else:
                patch = {
                    "metadata": {"resourceVersion": secret["metadata"]["resourceVersion"]},
                    "data": {key: _encode(value) for key, value in values.items()},
                }
                try:
                    await client.patch(kinds.SECRET, SETTINGS_SECRET, patch, namespace=namespace)
                except errors.ApiError as exc:
                    if exc.conflict:
                        continue
                    raise
            continue  # read back what was stored
        key = _decode(secret, _SECRET_KEY)
        assert key is not None
        return key.encode()
    raise errors.KubeError(f"secret '{namespace}/{SETTINGS_SECRET}' kept changing")


async def initial_password(client: Client, *, namespace: str = DEFAULT_NAMESPACE) -> str | None:
    """The generated first admin password, or ``None`` when its Secret does not exist (yet, or any more)."""
    return _decode(await client.get_or_none(kinds.SECRET, INITIAL_SECRET, namespace), "password")


async def verify_login(client: Client, username: str, password: str, *, namespace: str) -> bool:
    """Whether ``password`` is the password of the local account ``username`` (only ``admin`` so far)."""
    if username != ADMIN:
        return False
    hashed = _decode(await client.get_or_none(kinds.SECRET, SETTINGS_SECRET, namespace), _PASSWORD_KEY)
    return hashed is not None and check_password(password, hashed)


def issue_token(username: str, key: bytes, *, now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now(datetime.UTC)
    claims = {
        "iss": ISSUER,
        "sub": username,
        "iat": moment,
        "nbf": moment,
        "exp": moment + TOKEN_LIFETIME,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, key, algorithm="HS256")


def verify_token(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a valid session token issued by this server; :class:`AuthError` otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid session: {exc}") from exc
    return claims


async def authenticate(client: Client, token: str, key: bytes, *, namespace: str) -> dict[str, Any]:
    """The claims of a session token (or API key) that this server accepts; :class:`AuthError` otherwise."""
    return verify_token(token, key)


@dataclass
class LoginLimiter:
    """Counts failed logins per user name in a sliding window; at ``max_failures`` the user is refused
    until the oldest failure leaves the window."""

    max_failures: int = 5
    window_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, username: str) -> deque[float]:
        failures = self._failures.setdefault(username, deque())
        horizon = self.clock() - self.window_seconds
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures

    def blocked(self, username: str) -> bool:
        return len(self._recent(username)) >= self.max_failures

    def failed(self, username: str) -> None:
        self._recent(username).append(self.clock())

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)
