"""Accounts, API keys and RBAC through the API server (in-process, over a real bare cluster): local
accounts from ``argocd-cm``, passwords and API-key ids in ``argocd-secret``, policies from
``argocd-rbac-cm`` applied to the Applications, Rollouts and account endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2 as httpx
import jwt
import pytest
import server_support

from tugboat.gitops import crds as gitops_crds
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds as rollout_crds
from tugboat.server import auth

PASSWORD = "s3cret-pass"


client = server_support.client_fixture("test-accounts", gitops=True, rollouts=True)
namespace = server_support.namespace_fixture("acct")


@pytest.fixture
async def api(client: Client, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    async with server_support.logged_in_api(client, namespace, login=False) as c:
        yield c


async def _login(api: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    token = await server_support.session_token(api, username, password)
    api.cookies.clear()  # every request below says who it is with its bearer header
    return server_support.bearer(token)


async def _admin(api: httpx.AsyncClient, client: Client, namespace: str) -> dict[str, str]:
    return await _login(api, "admin", await server_support.admin_password(client, namespace))


async def _user(client: Client, namespace: str, name: str, capabilities: str = "login") -> None:
    """Declare account ``name`` (keeping the ones declared before) with the test password."""
    existing = await client.get_or_none(kinds.CONFIGMAP, auth.SETTINGS_CONFIGMAP, namespace)
    data = dict((existing or {}).get("data") or {})
    await server_support.set_accounts(client, namespace, {**data, f"accounts.{name}": capabilities})
    await auth.set_password(client, name, PASSWORD, namespace=namespace)


# ----------------------------------------------------------------------------------- account settings


def test_parse_accounts_like_argocd() -> None:
    configmap = {
        "data": {
            "accounts.alice": "apiKey, login",
            "accounts.bob": "login, unknown",
            "accounts.bob.enabled": "false",
            "accounts.admin": "apiKey, login",
            "accounts.carol.enabled": "true",
            "accounts.x.y.z": "login",  # not an account key
            "password.pattern": "^.{12,}$",
        }
    }
    tokens = json.dumps(
        [{"id": "t1", "iat": 100, "exp": 200}, {"id": "t2", "iat": 150}, {"bad": 1}, {"id": "t3", "iat": "x"}]
    )
    secret = {
        "data": {
            "accounts.alice.password": auth._encode(auth.hash_password(PASSWORD)),
            "accounts.alice.passwordMtime": auth._encode("2026-01-02T03:04:05.123456Z"),
            "accounts.alice.tokens": auth._encode(tokens),
            "accounts.bob.tokens": auth._encode("not json"),
        }
    }
    settings = auth.parse_accounts(configmap, secret)
    accounts = settings.accounts
    assert sorted(accounts) == ["admin", "alice", "bob", "carol"]
    assert accounts["admin"].capabilities == ("apiKey", "login") and accounts["admin"].enabled
    alice = accounts["alice"]
    assert alice.password_hash and auth.check_password(PASSWORD, alice.password_hash)
    assert alice.password_mtime is not None and alice.password_mtime.microsecond == 123456
    assert alice.tokens == (auth.Token("t1", 100, 200), auth.Token("t2", 150, 0))
    assert "$2b$" not in repr(alice)
    assert accounts["bob"].capabilities == ("login",) and not accounts["bob"].enabled
    assert accounts["bob"].tokens == ()
    assert accounts["carol"].capabilities == () and accounts["carol"].enabled
    assert settings.password_pattern == "^.{12,}$"
    # No argocd-cm at all: just the admin account, which may log in.
    bare = auth.parse_accounts(None, None).accounts
    assert list(bare) == ["admin"] and bare["admin"].capabilities == ("login",)


# ---------------------------------------------------------------------------------------------- RBAC


async def test_readonly_user_reads_but_may_not_act(
    api: httpx.AsyncClient, client: Client, namespace: str
) -> None:
    await client.create(gitops_crds.APPLICATION, server_support.application(namespace, "guestbook"))
    await client.create(rollout_crds.ROLLOUT, server_support.rollout(namespace, "demo"))
    await _user(client, namespace, "viewer")
    await server_support.set_rbac(client, namespace, {"policy.csv": "g, viewer, role:readonly"})
    viewer = await _login(api, "viewer", PASSWORD)

    listed = await api.get("/api/v1/applications", headers=viewer)
    assert [a["metadata"]["name"] for a in listed.json()["items"]] == ["guestbook"]
    assert (await api.get("/api/v1/applications/guestbook", headers=viewer)).status_code == 200
    assert (await api.get(f"/api/v1/rollouts/{namespace}/demo/info", headers=viewer)).status_code == 200

    sync = await api.post("/api/v1/applications/guestbook/sync", json={}, headers=viewer)
    assert sync.status_code == 403 and sync.json()["code"] == 7
    assert "permission denied: applications, sync, default/guestbook" in sync.json()["message"]
    promote = await api.put(f"/api/v1/rollouts/{namespace}/demo/promote", json={}, headers=viewer)
    assert promote.status_code == 403

    # The policy is read on every call: granting admin applies to the very next request.
    await server_support.set_rbac(
        client, namespace, {"policy.csv": "g, viewer, role:readonly\ng, viewer, role:admin"}
    )
    sync = await api.post("/api/v1/applications/guestbook/sync", json={}, headers=viewer)
    assert sync.status_code == 200, sync.text


async def test_project_scoped_deployer(api: httpx.AsyncClient, client: Client, namespace: str) -> None:
    await client.create(gitops_crds.APPLICATION, server_support.application(namespace, "web"))
    await client.create(
        gitops_crds.APPLICATION, server_support.application(namespace, "payments", project="prod")
    )
    await _user(client, namespace, "dev")
    policy = """
    p, role:deployer, applications, get, */*, allow
    p, role:deployer, applications, sync, default/*, allow
    g, deployers, role:deployer
    g, dev, deployers
    """
    await server_support.set_rbac(client, namespace, {"policy.csv": policy})
    dev = await _login(api, "dev", PASSWORD)

    assert (await api.post("/api/v1/applications/web/sync", json={}, headers=dev)).status_code == 200
    refused = await api.post("/api/v1/applications/payments/sync", json={}, headers=dev)
    assert refused.status_code == 403
    assert "applications, sync, prod/payments" in refused.json()["message"]


async def test_default_role_and_no_policy(api: httpx.AsyncClient, client: Client, namespace: str) -> None:
    await client.create(gitops_crds.APPLICATION, server_support.application(namespace, "guestbook"))
    await _user(client, namespace, "nobody")
    nobody = await _login(api, "nobody", PASSWORD)
    # No argocd-rbac-cm: built-in policy only, and no default role.
    assert (await api.get("/api/v1/applications", headers=nobody)).json()["items"] == []
    assert (await api.get("/api/v1/applications/guestbook", headers=nobody)).status_code == 403
    await server_support.set_rbac(client, namespace, {"policy.default": "role:readonly"})
    assert (await api.get("/api/v1/applications/guestbook", headers=nobody)).status_code == 200


async def test_can_i(api: httpx.AsyncClient, client: Client, namespace: str) -> None:
    await _user(client, namespace, "viewer")
    await server_support.set_rbac(
        client,
        namespace,
        {"policy.csv": "g, viewer, role:readonly\np, viewer, applications, action/*, default/*, allow"},
    )
    viewer = await _login(api, "viewer", PASSWORD)

    async def can(path: str) -> str:
        response = await api.get(f"/api/v1/account/can-i/{path}", headers=viewer)
        assert response.status_code == 200, response.text
        value: str = response.json()["value"]
        return value

    assert await can("applications/get/default/guestbook") == "yes"
    assert await can("applications/sync/default/guestbook") == "no"
    assert await can("rollouts/get/ns/demo") == "yes"
    assert await can("rollouts/promote/ns/demo") == "no"
    # Sub-resources with slashes (the action is one path segment, the object keeps its slashes).
    assert (await api.get("/api/v1/account/can-i/applications/get/*", headers=viewer)).json()[
        "value"
    ] == "yes"
    assert (await api.get("/api/v1/account/can-i/applications/get/a/b/c", headers=viewer)).status_code == 200
    assert (await api.get("/api/v1/account/can-i/applications/get/x")).status_code == 401


# ------------------------------------------------------------------------------------------ accounts


async def test_list_and_get_accounts_show_no_secrets(
    api: httpx.AsyncClient, client: Client, namespace: str
) -> None:
    await _user(client, namespace, "ci", "apiKey")
    await _user(client, namespace, "viewer", "login, apiKey")
    await server_support.set_accounts(
        client,
        namespace,
        {
            "accounts.ci": "apiKey",
            "accounts.viewer": "login, apiKey",
            "accounts.old": "login",
            "accounts.old.enabled": "false",
        },
    )
    admin = await _admin(api, client, namespace)
    listed = await api.get("/api/v1/account", headers=admin)
    assert listed.status_code == 200
    assert listed.json()["items"] == [
        {"name": "admin", "enabled": True, "capabilities": ["login"], "tokens": []},
        {"name": "ci", "enabled": True, "capabilities": ["apiKey"], "tokens": []},
        {"name": "old", "enabled": False, "capabilities": ["login"], "tokens": []},
        {"name": "viewer", "enabled": True, "capabilities": ["login", "apiKey"], "tokens": []},
    ]
    assert "$2b$" not in listed.text and "password" not in listed.text.lower()
    assert (await api.get("/api/v1/account/ci", headers=admin)).json()["name"] == "ci"
    assert (await api.get("/api/v1/account/nope", headers=admin)).status_code == 404

    # Without RBAC on accounts, a user sees only itself.
    viewer = await _login(api, "viewer", PASSWORD)
    own = await api.get("/api/v1/account", headers=viewer)
    assert [a["name"] for a in own.json()["items"]] == ["viewer"]
    assert (await api.get("/api/v1/account/viewer", headers=viewer)).status_code == 200
    assert (await api.get("/api/v1/account/admin", headers=viewer)).status_code == 403


async def test_api_key_create_use_and_revoke(api: httpx.AsyncClient, client: Client, namespace: str) -> None:
    await _user(client, namespace, "ci", "apiKey")
    await _user(client, namespace, "viewer", "login")
    await server_support.set_rbac(client, namespace, {"policy.csv": "g, ci, role:readonly"})
    admin = await _admin(api, client, namespace)

    created = await api.post(
        "/api/v1/account/ci/token", json={"expiresIn": "3600", "id": "build"}, headers=admin
    )
    assert created.status_code == 200, created.text
    token = created.json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "ci" and claims["jti"] == "build" and claims["exp"] - claims["iat"] == 3600
    secret = await client.get(kinds.SECRET, auth.SETTINGS_SECRET, namespace)
    stored = json.loads(auth._decode(secret, "accounts.ci.tokens") or "[]")
    assert stored == [{"id": "build", "iat": claims["iat"], "exp": claims["exp"]}]
    tokens = (await api.get("/api/v1/account/ci", headers=admin)).json()["tokens"]
    assert tokens == [{"id": "build", "issuedAt": claims["iat"], "expiresAt": claims["exp"]}]

    key = {"Authorization": f"Bearer {token}"}
    info = await api.get("/api/v1/session/userinfo", headers=key)
    assert info.status_code == 200 and info.json()["username"] == "ci"
    assert (await api.get("/api/v1/applications", headers=key)).status_code == 200
    duplicate = await api.post("/api/v1/account/ci/token", json={"id": "build"}, headers=admin)
    assert duplicate.status_code == 400

    # An account may make keys for itself; for another account it needs accounts/update.
    own = await api.post("/api/v1/account/ci/token", json={}, headers=key)
    assert own.status_code == 200
    own_claims = jwt.decode(own.json()["token"], options={"verify_signature": False})
    assert "exp" not in own_claims  # expiresIn 0: never expires
    viewer = await _login(api, "viewer", PASSWORD)
    assert (await api.post("/api/v1/account/ci/token", json={}, headers=viewer)).status_code == 403
    no_capability = await api.post("/api/v1/account/viewer/token", json={}, headers=viewer)
    assert no_capability.status_code == 400 and "apiKey" in no_capability.json()["message"]
    # An API key is not a password: the account cannot log in without the login capability.
    bad_login = await api.post("/api/v1/session", json={"username": "ci", "password": PASSWORD})
    assert bad_login.status_code == 401

    deleted = await api.delete("/api/v1/account/ci/token/build", headers=admin)
    assert deleted.status_code == 200
    assert (await api.get("/api/v1/session/userinfo", headers=key)).status_code == 401
    assert (await api.delete("/api/v1/account/ci/token/build", headers=admin)).status_code == 404
    # The other key still works until the capability goes away.
    other = {"Authorization": f"Bearer {own.json()['token']}"}
    assert (await api.get("/api/v1/session/userinfo", headers=other)).status_code == 200
    await server_support.set_accounts(client, namespace, {"accounts.ci": "login"})
    assert (await api.get("/api/v1/session/userinfo", headers=other)).status_code == 401


async def test_disabled_or_removed_accounts_are_refused(
    api: httpx.AsyncClient, client: Client, namespace: str
) -> None:
    await _user(client, namespace, "viewer", "login")
    viewer = await _login(api, "viewer", PASSWORD)
    assert (await api.get("/api/v1/session/userinfo", headers=viewer)).status_code == 200

    await server_support.set_accounts(
        client, namespace, {"accounts.viewer": "login", "accounts.viewer.enabled": "false"}
    )
    refused = await api.get("/api/v1/session/userinfo", headers=viewer)
    assert refused.status_code == 401 and "disabled" in refused.json()["message"]
    login = await api.post("/api/v1/session", json={"username": "viewer", "password": PASSWORD})
    assert login.status_code == 401

    await server_support.set_accounts(client, namespace, {})
    assert (await api.get("/api/v1/session/userinfo", headers=viewer)).status_code == 401

    admin = await _admin(api, client, namespace)
    await server_support.set_accounts(client, namespace, {"admin.enabled": "false"})
    assert (await api.get("/api/v1/session/userinfo", headers=admin)).status_code == 401
    password = await auth.initial_password(client, namespace=namespace)
    assert (
        await api.post("/api/v1/session", json={"username": "admin", "password": password})
    ).status_code == 401


async def test_password_change(api: httpx.AsyncClient, client: Client, namespace: str) -> None:
    await _user(client, namespace, "viewer", "login")
    viewer = await _login(api, "viewer", PASSWORD)
    path = "/api/v1/account/password"

    wrong = await api.put(
        path, json={"currentPassword": "nope", "newPassword": "new-password-1"}, headers=viewer
    )
    assert wrong.status_code == 400
    short = await api.put(path, json={"currentPassword": PASSWORD, "newPassword": "short"}, headers=viewer)
    assert short.status_code == 400 and "pattern" in short.json()["message"]
    others = {"currentPassword": PASSWORD, "newPassword": "new-password-1", "name": "admin"}
    assert (await api.put(path, json=others, headers=viewer)).status_code == 403

    changed = await api.put(
        path, json={"currentPassword": PASSWORD, "newPassword": "new-password-1"}, headers=viewer
    )
    assert changed.status_code == 200, changed.text
    # Sessions issued before the change end; the new password logs in, the old one does not.
    assert (await api.get("/api/v1/session/userinfo", headers=viewer)).status_code == 401
    old = await api.post("/api/v1/session", json={"username": "viewer", "password": PASSWORD})
    assert old.status_code == 401
    viewer = await _login(api, "viewer", "new-password-1")
    assert (await api.get("/api/v1/session/userinfo", headers=viewer)).status_code == 200

    # The admin sets another account's password, proving itself with its own current password.
    admin_password = await auth.initial_password(client, namespace=namespace)
    admin = await _admin(api, client, namespace)
    reset = {"currentPassword": admin_password, "newPassword": "reset-by-admin", "name": "viewer"}
    assert (await api.put(path, json=reset, headers=admin)).status_code == 200
    assert (await api.get("/api/v1/session/userinfo", headers=admin)).status_code == 200
    await _login(api, "viewer", "reset-by-admin")
    missing = {**reset, "name": "ghost"}
    assert (await api.put(path, json=missing, headers=admin)).status_code == 404
