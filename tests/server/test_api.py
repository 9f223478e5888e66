"""The API server (``tugboat.server.app``) in-process over a real bare cluster: login, sessions, the
Applications and Rollouts endpoints, and the fields each action writes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx2 as httpx
import server_support
from typer.testing import CliRunner

from clusterproc import ClusterProcess
from tugboat.cli import main
from tugboat.gitops import crds as gitops_crds
from tugboat.kube import errors, kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds as rollout_crds
from tugboat.server import app as server_app
from tugboat.server import appcaches, appindex, auth, problems

client = server_support.client_fixture("test-api", gitops=True, rollouts=True)
# A fresh namespace for the settings Secrets, Applications and Rollouts of one test.
namespace = server_support.namespace_fixture("api")


def _api(
    client: Client, namespace: str, *, limiter: auth.LoginLimiter | None = None
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """The API in-process without a session: the tests below present the admin's token themselves."""
    return server_support.logged_in_api(client, namespace, limiter=limiter, login=False)


async def _admin(api: httpx.AsyncClient, client: Client, namespace: str) -> dict[str, str]:
    """Log in as admin (the cookie stays in ``api``); the bearer header of the session."""
    return server_support.bearer(await server_support.admin_token(api, client, namespace))


def _rollout(namespace: str, name: str, **spec: Any) -> Any:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]
    return server_support.rollout(namespace, name, replicas=2, steps=steps, **spec)


# ------------------------------------------------------------------------------------------- auth


async def test_bootstrap_stores_hash_and_key_like_argocd(client: Client, namespace: str) -> None:
    key = await auth.bootstrap(client, namespace=namespace)
    assert await auth.bootstrap(client, namespace=namespace) == key  # stable across restarts
    password = await auth.initial_password(client, namespace=namespace)
    assert password and len(password) == 16
    secret = await client.get(kinds.SECRET, auth.SETTINGS_SECRET, namespace)
    assert {"admin.password", "admin.passwordMtime", "server.secretkey"} <= set(secret["data"])
    assert await auth.verify_login(client, "admin", password, namespace=namespace)
    assert not await auth.verify_login(client, "admin", password + "x", namespace=namespace)


async def test_login_token_cookie_and_userinfo(client: Client, namespace: str) -> None:
    async with _api(client, namespace) as api:
        assert (await api.get("/healthz")).status_code == 200
        unauthenticated = await api.get("/api/v1/session/userinfo")
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["code"] == 16
        assert (await api.get("/api/v1/applications")).status_code == 401
        bad = await api.get("/api/v1/applications", headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401

        password = await auth.initial_password(client, namespace=namespace)
        response = await api.post("/api/v1/session", json={"username": "admin", "password": password})
        assert response.status_code == 200
        token = response.json()["token"]
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{auth.TOKEN_COOKIE}={token}") and "httponly" in cookie.lower()

        # The cookie alone is enough (the client kept it) ...
        info = await api.get("/api/v1/session/userinfo")
        assert info.json() == {"loggedIn": True, "username": "admin", "iss": "argocd", "groups": []}
        # ... and so is the bearer token.
        api.cookies.clear()
        bearer = await api.get("/api/v1/session/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200

        wrong = await api.post("/api/v1/session", json={"username": "admin", "password": "nope"})
        assert wrong.status_code == 401
        unknown = await api.post("/api/v1/session", json={"username": "bob", "password": password})
        assert unknown.status_code == 401


async def test_login_rate_limited_per_user(client: Client, namespace: str) -> None:
    now = [0.0]
    limiter = auth.LoginLimiter(max_failures=5, window_seconds=60, clock=lambda: now[0])
    async with _api(client, namespace, limiter=limiter) as api:
        password = await auth.initial_password(client, namespace=namespace)
        for _ in range(5):
            response = await api.post("/api/v1/session", json={"username": "admin", "password": "bad"})
            assert response.status_code == 401
        good = {"username": "admin", "password": password}
        assert (await api.post("/api/v1/session", json=good)).status_code == 429
        now[0] = 61.0  # the failures left the window
        assert (await api.post("/api/v1/session", json=good)).status_code == 200


def test_admin_initial_password_cli(argo_cluster: ClusterProcess) -> None:
    async def prepare() -> tuple[str, str | None]:
        async with Client.from_kubeconfig(argo_cluster.kubeconfig, field_manager="test-api") as c:
            namespace = await server_support.fresh_namespace(c, "api")
            await auth.bootstrap(c, namespace=namespace)
            return namespace, await auth.initial_password(c, namespace=namespace)

    namespace, password = asyncio.run(prepare())
    kubeconfig = str(argo_cluster.kubeconfig)
    args = ["admin", "initial-password", "--kubeconfig", kubeconfig, "-n", namespace]
    result = CliRunner().invoke(main.app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == password
    missing = CliRunner().invoke(
        main.app, ["admin", "initial-password", "--kubeconfig", kubeconfig, "-n", "nope"]
    )
    assert missing.exit_code == 1


# ----------------------------------------------------------------------------------- applications


async def test_list_filters_and_fields(client: Client, namespace: str) -> None:
    await client.create(
        gitops_crds.APPLICATION, server_support.application(namespace, "web", labels={"team": "a"})
    )
    await client.create(
        gitops_crds.APPLICATION, server_support.application(namespace, "web-api", project="other")
    )
    await client.create(
        gitops_crds.APPLICATION, server_support.application(namespace, "db", labels={"team": "b"})
    )
    async with _api(client, namespace) as api:
        headers = await _admin(api, client, namespace)

        async def names(**params: Any) -> list[str]:
            response = await api.get("/api/v1/applications", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return [app["metadata"]["name"] for app in response.json()["items"]]

        assert await names() == ["db", "web", "web-api"]
        assert await names(projects="other") == ["web-api"]
        assert await names(projects=["default", "other"]) == ["db", "web", "web-api"]
        assert await names(selector="team=a") == ["web"]
        assert await names(selector="team") == ["db", "web"]
        assert await names(search="web") == ["web", "web-api"]
        assert await names(search="web", projects="default") == ["web"]

        full = (await api.get("/api/v1/applications", headers=headers)).json()
        assert full["metadata"]["resourceVersion"]
        fields = "items.metadata.name,items.spec.project"
        trimmed = (await api.get("/api/v1/applications", params={"fields": fields}, headers=headers)).json()
        assert trimmed == {
            "items": [
                {"metadata": {"name": "db"}, "spec": {"project": "default"}},
                {"metadata": {"name": "web"}, "spec": {"project": "default"}},
                {"metadata": {"name": "web-api"}, "spec": {"project": "other"}},
            ]
        }


async def test_get_refresh_and_sync(client: Client, namespace: str) -> None:
    await client.create(gitops_crds.APPLICATION, server_support.application(namespace, "guestbook"))
    async with _api(client, namespace) as api:
        headers = await _admin(api, client, namespace)
        got = await api.get("/api/v1/applications/guestbook", headers=headers)
        assert got.status_code == 200 and got.json()["spec"]["source"]["path"] == "guestbook"
        missing = await api.get("/api/v1/applications/nope", headers=headers)
        assert missing.status_code == 404 and missing.json()["code"] == 5

        refreshed = await api.get(
            "/api/v1/applications/guestbook", params={"refresh": "hard"}, headers=headers
        )
        assert refreshed.status_code == 200
        live = await client.get(gitops_crds.APPLICATION, "guestbook", namespace)
        assert live["metadata"]["annotations"]["argocd.argoproj.io/refresh"] == "hard"
        bad_mode = await api.get("/api/v1/applications/guestbook", params={"refresh": "x"}, headers=headers)
        assert bad_mode.status_code == 400

        body = {
            "revision": "abc123",
            "prune": True,
            "dryRun": True,
            "resources": [{"group": "apps", "kind": "Deployment", "name": "web", "namespace": "guestbook"}],
        }
        synced = await api.post("/api/v1/applications/guestbook/sync", json=body, headers=headers)
        assert synced.status_code == 200, synced.text
        live = await client.get(gitops_crds.APPLICATION, "guestbook", namespace)
        assert live["operation"] == {
            "sync": {
                "revision": "abc123",
                "prune": True,
                "dryRun": True,
                "syncStrategy": {"hook": {}},
                "resources": [
                    {"group": "apps", "kind": "Deployment", "name": "web", "namespace": "guestbook"}
                ],
            },
            "initiatedBy": {"username": "admin"},
        }
        again = await api.post("/api/v1/applications/guestbook/sync", json={}, headers=headers)
        assert again.status_code == 400 and "already in progress" in again.json()["message"]


# --------------------------------------------------------------------------------------- rollouts


async def _status(client: Client, namespace: str, name: str, status: dict[str, Any]) -> None:
    await client.patch(
        rollout_crds.ROLLOUT, name, {"status": status}, namespace=namespace, subresource="status"
    )


async def test_rollout_info_and_actions(client: Client, namespace: str) -> None:
    await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "web"))
    pause = {"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}
    await _status(
        client,
        namespace,
        "web",
        {"currentStepIndex": 1, "pauseConditions": [pause], "currentPodHash": "new", "stableRS": "old"},
    )
    async with _api(client, namespace) as api:
        headers = await _admin(api, client, namespace)
        base = f"/api/v1/rollouts/{namespace}/web"

        listed = await api.get(f"/api/v1/rollouts/{namespace}/info", headers=headers)
        assert listed.status_code == 200
        [info] = listed.json()["rollouts"]
        assert info["objectMeta"]["name"] == "web"
        assert (info["strategy"], info["step"], info["setWeight"], info["desired"]) == (
            "Canary",
            "1/3",
            "20",
            2,
        )
        assert info["containers"] == [{"name": "web", "image": "nginx:1"}]
        one = await api.get(f"{base}/info", headers=headers)
        assert one.status_code == 200 and one.json()["objectMeta"]["name"] == "web"
        assert (await api.get(f"/api/v1/rollouts/{namespace}/nope/info", headers=headers)).status_code == 404

        promoted = await api.put(f"{base}/promote", json={}, headers=headers)
        assert promoted.status_code == 200, promoted.text
        live = await client.get(rollout_crds.ROLLOUT, "web", namespace)
        assert "pauseConditions" not in live["status"] and live["status"]["currentStepIndex"] == 1

        await api.put(f"{base}/promote", json={"full": True}, headers=headers)
        live = await client.get(rollout_crds.ROLLOUT, "web", namespace)
        assert live["status"]["promoteFull"] is True

        await api.put(f"{base}/abort", json={}, headers=headers)
        assert (await client.get(rollout_crds.ROLLOUT, "web", namespace))["status"]["abort"] is True
        await api.put(f"{base}/retry", json={}, headers=headers)
        assert (await client.get(rollout_crds.ROLLOUT, "web", namespace))["status"]["abort"] is False

        await api.put(f"{base}/pause", json={"paused": True}, headers=headers)
        assert (await client.get(rollout_crds.ROLLOUT, "web", namespace))["spec"]["paused"] is True
        await _status(client, namespace, "web", {"pauseConditions": [pause]})
        resumed = await api.put(f"{base}/pause", json={"paused": False}, headers=headers)
        assert resumed.status_code == 200
        live = await client.get(rollout_crds.ROLLOUT, "web", namespace)
        assert live["spec"]["paused"] is False and "pauseConditions" not in live["status"]

        api.cookies.clear()  # the login's cookie would authenticate too
        assert (await api.put(f"{base}/abort", json={})).status_code == 401


async def test_promote_skips_running_step_without_pause(client: Client, namespace: str) -> None:
    await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "api", paused=True))
    await _status(client, namespace, "api", {"currentStepIndex": 0})
    async with _api(client, namespace) as api:
        headers = await _admin(api, client, namespace)
        response = await api.put(
            f"/api/v1/rollouts/{namespace}/api/promote", json={"full": False}, headers=headers
        )
        assert response.status_code == 200
    live = await client.get(rollout_crds.ROLLOUT, "api", namespace)
    assert live["status"]["currentStepIndex"] == 1 and live["spec"]["paused"] is False


async def test_unreachable_cluster_answers_503() -> None:
    async with Client.for_url("http://127.0.0.1:9", field_manager="test-api") as unreachable:
        key = b"k" * 32
        app = server_app.create_app(unreachable, secret_key=key, namespace="argocd")
        async with server_support.asgi_client(app) as api:
            token = auth.issue_token("admin", key)
            response = await api.get("/api/v1/applications", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503
            assert response.json()["code"] == 14
            assert "not reachable" in response.json()["message"]


async def test_analysis_runs_listed_by_rollout_and_authorized_by_it(client: Client, namespace: str) -> None:
    ro = await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "web"))
    uid = ro["metadata"]["uid"]
    owner = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": uid}
    for name, owners in (("web-1-1", [owner]), ("standalone", [])):
        run = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": owners},
            "spec": {"metrics": [{"name": "m", "provider": {"job": {"spec": {}}}}]},
        }
        await client.create(rollout_crds.ANALYSISRUN, run)
    async with server_support.logged_in_api(client, namespace) as api:
        base = f"/api/v1/analysisruns/{namespace}"
        listed = await api.get(base)
        assert listed.status_code == 200
        assert sorted(r["metadata"]["name"] for r in listed.json()["items"]) == ["standalone", "web-1-1"]
        of_web = await api.get(base, params={"rollout": "web"})
        assert [r["metadata"]["name"] for r in of_web.json()["items"]] == ["web-1-1"]
        assert (await api.get(f"{base}/web-1-1")).json()["spec"]["metrics"][0]["name"] == "m"
        assert (await api.get(f"{base}/nope")).status_code == 404
        async with server_support.denied_to_admin(client, namespace, f"rollouts, get, {namespace}/web"):
            assert (await api.get(f"{base}/web-1-1")).status_code == 403  # named by its Rollout
            assert [r["metadata"]["name"] for r in (await api.get(base)).json()["items"]] == ["standalone"]


async def test_session_hardening(client: Client, namespace: str) -> None:
    """Cookie changes must be JSON (no cross-site form posts), logout ends the token itself, Applications
    are served from the server's namespace only, auto-synced apps keep to Git's revision, and the
    Kubernetes API's client errors stay client errors."""
    auto = server_support.application(namespace, "auto", syncPolicy={"automated": {}})
    await client.create(gitops_crds.APPLICATION, auto)
    await client.create(gitops_crds.APPLICATION, server_support.application(namespace, "manual"))
    async with _api(client, namespace) as api:
        headers = await _admin(api, client, namespace)  # the session cookie stays in `api` too
        sync = f"/api/v1/applications/manual/sync?appNamespace={namespace}"
        form = await api.post(sync, content=b"prune=true", headers={"Content-Type": "text/plain"})
        assert form.status_code == 415  # what a page of another site could send with the cookie
        assert (await api.post(sync, json={"dryRun": True})).status_code == 200  # the UI's way
        with_bearer = {**headers, "Content-Type": "text/plain"}
        assert (await api.post(sync, content=b"", headers=with_bearer)).status_code == 400  # running

        elsewhere = await api.get("/api/v1/applications", params={"appNamespace": "kube-system"})
        assert elsewhere.status_code == 403 and "not permitted" in elsewhere.json()["message"]
        moved = await api.post(
            "/api/v1/applications/auto/sync", json={"revision": "v0.1", "appNamespace": "x"}
        )
        assert moved.status_code == 403

        pinned = await api.post("/api/v1/applications/auto/sync", json={"revision": "v0.1"})
        assert pinned.status_code == 400 and "auto-sync currently set to HEAD" in pinned.json()["message"]
        assert (
            await api.post("/api/v1/applications/auto/sync", json={"revision": "v0.1", "dryRun": True})
        ).status_code == 200

        huge = b'{"expiresIn": 1e400}'  # a float JSON allows, too big for any expiry time
        bad = await api.post(
            "/api/v1/account/admin/token", content=huge, headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400

        assert (
            await api.delete("/api/v1/session", headers={"Content-Type": "application/json"})
        ).status_code == 200
        api.cookies.clear()
        assert (await api.get("/api/v1/applications", headers=headers)).status_code == 401


def test_cluster_client_errors_stay_client_errors() -> None:
    invalid = problems.from_api_error(errors.ApiError(422, "Invalid", "spec.x: Invalid value"))
    assert (invalid.status, invalid.body()["code"]) == (400, 3)
    assert problems.from_api_error(errors.ApiError(410, "Expired", "too old")).status == 400
    assert problems.from_api_error(errors.ApiError(502, "BadGateway", "")).status == 500


def test_login_limiter_forgets_names_without_recent_failures() -> None:
    now = [0.0]
    limiter = auth.LoginLimiter(max_failures=2, window_seconds=60, max_tracked=3, clock=lambda: now[0])
    for name in ("a", "b", "c", "d", "e"):
        assert not limiter.blocked(name)  # asking does not store anything
        limiter.failed(name)
    assert len(limiter._failures) == 3  # a flood of made-up names stays bounded
    limiter.failed("e")
    assert limiter.blocked("e")
    now[0] = 61.0
    assert not limiter.blocked("e") and "e" not in limiter._failures


async def test_shutdown_stops_watches_and_removes_checkouts(client: Client, namespace: str) -> None:
    await client.create(gitops_crds.APPLICATION, server_support.application(namespace, "web"))
    app = await server_support.api_app(client, namespace)
    async with app.router.lifespan_context(app):
        async with server_support.asgi_client(app) as api:
            headers = await _admin(api, client, namespace)
            assert (await api.get("/api/v1/applications", headers=headers)).status_code == 200
            tree = await api.get("/api/v1/applications/web/resource-tree", headers=headers)
            assert tree.status_code == 200
        caches = appcaches.current(app.state)
        assert caches is not None and caches.root.is_dir()
        assert appindex.of(app.state, client, namespace)._informer is not None  # the list's watch runs
    assert not caches.root.exists()
    assert appcaches.current(app.state) is None
    assert getattr(app.state, "app_index", None) is None


async def test_rollout_info_shows_its_application_only_to_who_may_get_it(
    client: Client, namespace: str
) -> None:
    await client.create(
        gitops_crds.APPLICATION, server_support.application(namespace, "shop", project="team")
    )
    ro = _rollout(namespace, "web")
    ro["metadata"]["labels"] = {"app.kubernetes.io/instance": "shop"}  # Argo CD's label tracking
    await client.create(rollout_crds.ROLLOUT, ro)
    async with server_support.logged_in_api(client, namespace) as api:
        info = f"/api/v1/rollouts/{namespace}/web/info"
        link = (await api.get(info)).json()["application"]
        assert (link["name"], link["project"]) == ("shop", "team")
        async with server_support.denied_to_admin(client, namespace, "applications, get, team/shop"):
            assert (await api.get(info)).json()["application"] is None
            [listed] = (await api.get(f"/api/v1/rollouts/{namespace}/info")).json()["rollouts"]
            assert listed["application"] is None
