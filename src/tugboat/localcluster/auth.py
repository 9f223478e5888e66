"""Bearer-token authentication for the local cluster when it serves HTTPS.

Over plain HTTP on loopback every client is an anonymous administrator (kubectl sends no credentials
there). Over HTTPS, requests must carry either the static admin token generated into the state
directory or a service-account token this server issued (``serviceaccounts/<name>/token``); anything
else is 401. Issued tokens are HMAC-signed, so they survive restarts without being stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

_PREFIX = "tbsa1"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


ANONYMOUS_ADMIN = User("system:admin", ("system:masters", "system:authenticated"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Authenticator:
    """Checks bearer tokens; ``enabled=False`` accepts every request as the admin."""

    def __init__(self, *, admin_token: str | None, signing_key: bytes) -> None:
        self.admin_token = admin_token
        self.signing_key = signing_key

    @property
    def enabled(self) -> bool:
        return self.admin_token is not None

    def authenticate(self, authorization: str | None) -> User | None:
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = authorization[7:].strip()
        if self.admin_token is not None and hmac.compare_digest(token, self.admin_token):
            return User("admin", ("system:masters", "system:authenticated"))
        return self._verify(token)

    def issue(
        self, namespace: str, service_account: str, *, expiration_seconds: int, uid: str = ""
    ) -> tuple[str, int]:
        """A signed token for a service account; returns it with its expiry (Unix seconds)."""
        expires = int(time.time()) + expiration_seconds
        payload = _b64(orjson.dumps({"ns": namespace, "sa": service_account, "exp": expires, "uid": uid}))
        signature = _b64(hmac.new(self.signing_key, payload.encode(), hashlib.sha256).digest())
        return f"{_PREFIX}.{payload}.{signature}", expires

    def _verify(self, token: str) -> User | None:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        expected = _b64(hmac.new(self.signing_key, parts[1].encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if int(claims.get("exp", 0)) < time.time():
            return None
        name = f"system:serviceaccount:{claims['ns']}:{claims['sa']}"
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{claims['ns']}", "system:authenticated")
        return User(name, groups, str(claims.get("uid", "")))
