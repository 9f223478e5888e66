"""Local accounts, sessions and API keys of the API server, kept where Argo CD keeps them.

Argo CD stores the ``admin`` account's bcrypt hash in the Secret ``argocd-secret`` (key
``admin.password``), the key that signs its session tokens in the same Secret (``server.secretkey``), and
the generated first password in ``argocd-initial-admin-secret`` (key ``password``). Other local accounts
are declared in the ConfigMap ``argocd-cm`` (``accounts.<name>: apiKey, login``,
``accounts.<name>.enabled: "false"``; ``admin.enabled: "false"`` disables ``admin``) and keep their hash
and the ids of their API keys in ``argocd-secret`` (``accounts.<name>.password``, ``.passwordMtime``,
``.tokens``). Tugboat uses the same objects, so ``kubectl`` recipes written for Argo CD (reading the
initial password, resetting a hash, adding an account) work here too.

Sessions and API keys are HS256 JWTs signed with the server key. Every request re-checks the account:
a disabled or removed account loses its sessions at once, a password change ends the sessions issued
before it, and an API key works only while its id is listed for the account (deleting it revokes it).
Failed logins are counted per user and throttled.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import functools
import json
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
SETTINGS_CONFIGMAP = "argocd-cm"
LOGIN = "login"
API_KEY = "apiKey"
CAPABILITY_CLAIM = "capability"  # "apiKey" in API keys; sessions have none
DEFAULT_PASSWORD_PATTERN = "^.{8,32}$"
_ACCOUNTS_PREFIX = "accounts"
_PASSWORD_KEY = "admin.password"
_MTIME_KEY = "admin.passwordMtime"
_SECRET_KEY = "server.secretkey"
_INITIAL_PASSWORD_LENGTH = 16
_WRITE_ATTEMPTS = 5
_BCRYPT_COST = 10  # what Argo CD uses (Go's bcrypt.DefaultCost)


class AuthError(Exception):
    """A login or a token that is not accepted."""


def _decode(secret: Obj | None, key: str) -> str | None:
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value).decode() if isinstance(value, str) else None


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_BCRYPT_COST)).decode()


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
        values[_PASSWORD_KEY] = await asyncio.to_thread(
            hash_password, await _initial_password(client, namespace)
        )
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


# ------------------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Token:
    """One API key of an account, as Argo CD lists it in ``argocd-secret`` (``exp`` 0: never expires)."""

    id: str
    issued_at: int
    expires_at: int = 0

    def stored(self) -> dict[str, Any]:
        value: dict[str, Any] = {"id": self.id, "iat": self.issued_at}
        if self.expires_at:
            value["exp"] = self.expires_at
        return value


@dataclass(frozen=True)
class Account:
    """A local account: declared in ``argocd-cm`` (``admin`` always exists), secrets in ``argocd-secret``."""

    name: str
    enabled: bool
    capabilities: tuple[str, ...]
    password_hash: str | None = field(default=None, repr=False)
    password_mtime: datetime.datetime | None = None
    tokens: tuple[Token, ...] = ()

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    def token(self, token_id: str) -> Token | None:
        return next((token for token in self.tokens if token.id == token_id), None)


@dataclass(frozen=True)
class AccountSettings:
    """Every local account, and the pattern new passwords must match (``password.pattern``)."""

    accounts: dict[str, Account]
    password_pattern: str = DEFAULT_PASSWORD_PATTERN


def secret_keys(name: str) -> tuple[str, str, str]:
    """The ``argocd-secret`` keys of an account's password hash, its change time and its API keys."""
    prefix = "admin" if name == ADMIN else f"{_ACCOUNTS_PREFIX}.{name}"
    return f"{prefix}.password", f"{prefix}.passwordMtime", f"{prefix}.tokens"


def _capabilities(value: str) -> tuple[str, ...]:
    return tuple(c for c in (part.strip() for part in value.split(",")) if c in (LOGIN, API_KEY))


def _enabled(value: str | None) -> bool:
    return (value or "true").strip().lower() not in ("false", "0", "f", "no")


def _declared(data: dict[str, Any]) -> dict[str, tuple[bool, tuple[str, ...]]]:
    """``{name: (enabled, capabilities)}`` of the accounts in ``argocd-cm`` data, ``admin`` included."""
    declared: dict[str, tuple[bool, tuple[str, ...]]] = {
        ADMIN: (_enabled(data.get("admin.enabled")), (LOGIN,)),
    }
    for key, value in data.items():
        parts = str(key).split(".")
        if parts[0] != _ACCOUNTS_PREFIX or len(parts) not in (2, 3) or not parts[1]:
            continue
        name = parts[1]
        enabled, capabilities = declared.get(name, (True, ()))
        if len(parts) == 2:
            capabilities = _capabilities(str(value))
        elif parts[2] == "enabled" and name != ADMIN:
            enabled = _enabled(str(value))
        declared[name] = (enabled, capabilities)
    return declared


def _mtime(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _tokens(value: str | None) -> tuple[Token, ...]:
    try:
        raw = json.loads(value) if value else []
    except ValueError:
        return ()
    tokens = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        try:
            tokens.append(Token(str(item["id"]), int(item.get("iat") or 0), int(item.get("exp") or 0)))
        except (TypeError, ValueError):
            continue  # an entry no tool of ours wrote; it cannot be a valid key
    return tuple(tokens)


def parse_accounts(configmap: Obj | None, secret: Obj | None) -> AccountSettings:
    """The accounts that ``argocd-cm`` declares, with what ``argocd-secret`` keeps for each."""
    data = dict((configmap or {}).get("data") or {})
    accounts = {}
    for name, (enabled, capabilities) in _declared(data).items():
        password_key, mtime_key, tokens_key = secret_keys(name)
        accounts[name] = Account(
            name=name,
            enabled=enabled,
            capabilities=capabilities,
            password_hash=_decode(secret, password_key),
            password_mtime=_mtime(_decode(secret, mtime_key)),
            tokens=_tokens(_decode(secret, tokens_key)),
        )
    pattern = str(data.get("password.pattern") or DEFAULT_PASSWORD_PATTERN)
    return AccountSettings(accounts, pattern)


async def load_accounts(client: Client, *, namespace: str) -> AccountSettings:
    configmap, secret = await asyncio.gather(
        client.get_or_none(kinds.CONFIGMAP, SETTINGS_CONFIGMAP, namespace),
        client.get_or_none(kinds.SECRET, SETTINGS_SECRET, namespace),
    )
    return parse_accounts(configmap, secret)


async def get_account(client: Client, name: str, *, namespace: str) -> Account | None:
    return (await load_accounts(client, namespace=namespace)).accounts.get(name)


async def verify_login(client: Client, username: str, password: str, *, namespace: str) -> bool:
    """Whether ``password`` is the password of ``username``, an enabled local account that may log in."""
    account = await get_account(client, username, namespace=namespace)
    # bcrypt takes ~0.1 s of CPU: in a thread, so that logins never stall the server's other requests.
    if account is None or not account.enabled or not account.can(LOGIN) or not account.password_hash:
        await asyncio.to_thread(check_password, password, _unmatchable_hash())  # as slow as a real account
        return False
    return await asyncio.to_thread(check_password, password, account.password_hash)


@functools.lru_cache(maxsize=1)
def _unmatchable_hash() -> str:
    return hash_password(secrets.token_urlsafe(32))


async def _update_secret(
    client: Client, namespace: str, change: Callable[[Obj | None], dict[str, str | None]]
) -> None:
    """Write what ``change`` computes from the current ``argocd-secret`` (``None`` removes a key),
    retrying when someone else wrote the Secret in between."""
    for _ in range(_WRITE_ATTEMPTS):
        secret = await client.get_or_none(kinds.SECRET, SETTINGS_SECRET, namespace)
        values = change(secret)
        if secret is None:
            kept = {key: value for key, value in values.items() if value is not None}
            if await _create_secret(client, namespace, SETTINGS_SECRET, kept) is not None:
                return
            continue
        patch = {
            "metadata": {"resourceVersion": secret["metadata"]["resourceVersion"]},
            "data": {key: None if value is None else _encode(value) for key, value in values.items()},
        }
        try:
            await client.patch(kinds.SECRET, SETTINGS_SECRET, patch, namespace=namespace)
            return
        except errors.ApiError as exc:
            if not exc.conflict:
                raise
    raise errors.KubeError(f"secret '{namespace}/{SETTINGS_SECRET}' kept changing")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def set_password(client: Client, name: str, password: str, *, namespace: str) -> None:
    """Store a new bcrypt hash for ``name``; sessions issued before now stop being accepted."""
    password_key, mtime_key, _ = secret_keys(name)
    hashed = await asyncio.to_thread(hash_password, password)
    mtime = _now().isoformat(timespec="microseconds").replace("+00:00", "Z")
    await _update_secret(client, namespace, lambda _secret: {password_key: hashed, mtime_key: mtime})


async def _change_tokens(
    client: Client, name: str, namespace: str, change: Callable[[list[Token]], list[Token]]
) -> None:
    _, _, tokens_key = secret_keys(name)

    def values(secret: Obj | None) -> dict[str, str | None]:
        tokens = change(list(_tokens(_decode(secret, tokens_key))))
        return {tokens_key: json.dumps([token.stored() for token in tokens])}

    await _update_secret(client, namespace, values)


async def add_token(client: Client, name: str, token: Token, *, namespace: str) -> None:
    """List ``token`` among the API keys of ``name`` (:class:`ValueError` when its id is taken)."""

    def add(tokens: list[Token]) -> list[Token]:
        if any(existing.id == token.id for existing in tokens):
            raise ValueError(f"account '{name}' already has a token with id '{token.id}'")
        return [*tokens, token]

    await _change_tokens(client, name, namespace, add)


async def remove_token(client: Client, name: str, token_id: str, *, namespace: str) -> bool:
    """Revoke the API key ``token_id`` of ``name``; whether it was listed."""
    found = False

    def remove(tokens: list[Token]) -> list[Token]:
        nonlocal found
        kept = [token for token in tokens if token.id != token_id]
        found = len(kept) != len(tokens)
        return kept

    await _change_tokens(client, name, namespace, remove)
    return found


# --------------------------------------------------------------------------------------------- tokens


def issue_token(username: str, key: bytes, *, now: datetime.datetime | None = None) -> str:
    """A session token for ``username`` (its ``iat`` keeps sub-second precision, so a password change
    revokes exactly the sessions issued before it)."""
    moment = now or _now()
    claims = {
        "iss": ISSUER,
        "sub": username,
        "iat": moment.timestamp(),
        "nbf": int(moment.timestamp()),
        "exp": moment + TOKEN_LIFETIME,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, key, algorithm="HS256")


def issue_api_key(
    name: str, key: bytes, *, token_id: str, expires_in: int = 0, now: datetime.datetime | None = None
) -> tuple[str, Token]:
    """An API key of account ``name`` (``expires_in`` seconds, 0: never) and the entry to store for it."""
    issued = int((now or _now()).timestamp())
    token = Token(token_id, issued, issued + expires_in if expires_in > 0 else 0)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": name,
        "iat": issued,
        "nbf": issued,
        "jti": token_id,
        CAPABILITY_CLAIM: API_KEY,
    }
    if token.expires_at:
        claims["exp"] = token.expires_at
    return jwt.encode(claims, key, algorithm="HS256"), token


def verify_token(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a token signed by this server; :class:`AuthError` otherwise (sessions must expire)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=["HS256"], issuer=ISSUER, options={"require": ["sub", "iat"]}
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid session: {exc}") from exc
    if claims.get(CAPABILITY_CLAIM) != API_KEY and "exp" not in claims:
        raise AuthError('invalid session: Token is missing the "exp" claim')
    return claims


def _check_claims(account: Account | None, claims: dict[str, Any]) -> None:
    name = claims["sub"]
    if account is None:
        raise AuthError(f"account '{name}' does not exist")
    if not account.enabled:
        raise AuthError(f"account '{name}' is disabled")
    if claims.get(CAPABILITY_CLAIM) == API_KEY:
        if not account.can(API_KEY):
            raise AuthError(f"account '{name}' does not have the {API_KEY} capability")
        if account.token(str(claims.get("jti") or "")) is None:
            raise AuthError(f"account '{name}' has no token with id '{claims.get('jti')}' (revoked?)")
        return
    if not account.can(LOGIN):
        raise AuthError(f"account '{name}' does not have the {LOGIN} capability")
    mtime = account.password_mtime
    if mtime is not None and float(claims["iat"]) < mtime.timestamp():
        raise AuthError("account password has changed since the token was issued")


async def authenticate(client: Client, token: str, key: bytes, *, namespace: str) -> dict[str, Any]:
    """The claims of a session token (or API key) that this server accepts; :class:`AuthError` otherwise.

    Besides the signature and expiry, the account must still exist and be enabled; a session must be
    younger than the account's last password change, an API key must still be listed for the account.
    """
    claims = verify_token(token, key)
    _check_claims(await get_account(client, str(claims["sub"]), namespace=namespace), claims)
    return claims


@dataclass
class LoginLimiter:
    """Counts failed logins per user name in a sliding window; at ``max_failures`` the user is refused
    until the oldest failure leaves the window."""

    max_failures: int = 5
    window_seconds: float = 60.0
    max_tracked: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, username: str) -> deque[float]:
        failures = self._failures.get(username, deque())
        horizon = self.clock() - self.window_seconds
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            self._failures.pop(username, None)  # no entry for names without recent failures
        return failures

    def blocked(self, username: str) -> bool:
        return len(self._recent(username)) >= self.max_failures

    def failed(self, username: str) -> None:
        failures = self._recent(username)
        failures.append(self.clock())
        self._failures[username] = failures
        if len(self._failures) > self.max_tracked:  # a flood of made-up names: forget the oldest ones
            for name in list(self._failures)[: len(self._failures) - self.max_tracked]:
                del self._failures[name]

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)
