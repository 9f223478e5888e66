"""What the API server asks the GitOps controller to do to an Application: roll back to a history entry,
delete with or without its resources, terminate a running sync; and the Git metadata of a revision.
In-process over the simulated cluster, with the real controller and a real git repository."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "gitops_e2e"))

import server_support
from gitops_support import (
    ControllerProcess,
    GitRepo,
    application,
    create_app,
    get_app,
    git,
    start_controller,
    unique,
)

from clusterproc import ClusterProcess
from tugboat.gitops import crds
from tugboat.kube import kinds
from tugboat.kube.client import Client

NAMESPACE = "argocd"


def _configmap(name: str, value: str, *, wave: int = 0) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  annotations:
    argocd.argoproj.io/sync-wave: "{wave}"
data:
  value: {value}
"""


def _slow_deployment(name: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations:
        sim.tugboat.dev/ready-after: 60s
    spec:
      containers:
      - name: main
        image: nginx:1.25
"""


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("ops-controller"))
    yield proc
    proc.stop()


@pytest.fixture
async def client(sim_cluster: ClusterProcess, controller: ControllerProcess) -> AsyncIterator[Client]:
    async with server_support.argo_client(sim_cluster, "test-app-ops") as c:
        yield c


async def _until(check: Callable[[], Any], *, timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _phase(cluster: ClusterProcess, name: str) -> str | None:
    app = get_app(cluster, name) or {}
    return ((app.get("status") or {}).get("operationState") or {}).get("phase")


async def test_rollback_history_and_revision_metadata(
    sim_cluster: ClusterProcess, client: Client, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    first = repo.commit(
        {"app/cm.yaml": _configmap("settings", "one")}, message="first version\n\nwith a body"
    )
    git(repo.path, "tag", "v1")
    name = unique("rollback")
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name, automated=False))

    async def synced_to(revision: str, count: int) -> Any:
        app = get_app(sim_cluster, name) or {}
        history = (app.get("status") or {}).get("history") or []
        return len(history) == count and history[-1]["revision"] == revision and app

    async with server_support.logged_in_api(client, NAMESPACE) as api:
        base = f"/api/v1/applications/{name}"
        assert (await api.post(f"{base}/sync", json={})).status_code == 200
        await _until(lambda: synced_to(first, 1), what="first sync")
        second = repo.commit({"app/cm.yaml": _configmap("settings", "two")}, message="second")
        assert (await api.post(f"{base}/sync", json={"revision": second})).status_code == 200
        app = await _until(lambda: synced_to(second, 2), what="second sync")
        assert (await client.get(kinds.CONFIGMAP, "settings", name))["data"]["value"] == "two"

        missing = await api.post(f"{base}/rollback", json={"id": 99})
        assert (
            missing.status_code == 400 and "does not have deployment with id 99" in missing.json()["message"]
        )
        async with server_support.denied_to_admin(client, NAMESPACE, f"applications, sync, default/{name}"):
            assert (await api.post(f"{base}/rollback", json={"id": 0})).status_code == 403
        first_id = app["status"]["history"][0]["id"]
        rolled = await api.post(f"{base}/rollback", json={"id": str(first_id), "prune": True})
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["operation"]["sync"]["revision"] == first
        assert rolled.json()["operation"]["initiatedBy"] == {"username": "admin"}
        await _until(lambda: synced_to(first, 3), what="rollback")
        assert (await client.get(kinds.CONFIGMAP, "settings", name))["data"]["value"] == "one"

        meta = await api.get(f"{base}/revisions/{first}/metadata")
        assert meta.status_code == 200, meta.text
        body = meta.json()
        assert body["author"] == "Test <test@example.com>"
        assert body["message"] == "first version\n\nwith a body"
        assert body["tags"] == ["v1"] and body["date"].startswith("20")
        assert (await api.get(f"{base}/revisions/{second}/metadata")).json()["tags"] == []
        assert (await api.get(f"{base}/revisions/{'0' * 40}/metadata")).status_code == 404

        # automated apps refuse rollbacks, as Argo CD does
        await client.patch(
            crds.APPLICATION,
            name,
            {"spec": {"syncPolicy": {"automated": {"prune": True}}}},
            namespace=NAMESPACE,
        )
        refused = await api.post(f"{base}/rollback", json={"id": first_id})
        assert refused.status_code == 400
        assert refused.json()["message"] == "rollback cannot be initiated when auto-sync is enabled"


async def test_delete_with_and_without_cascade(
    sim_cluster: ClusterProcess, client: Client, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app/cm.yaml": _configmap("settings", "one")})
    kept, cascaded = unique("keep"), unique("cascade")
    create_app(sim_cluster, application(kept, repo.url, "app", namespace=kept, finalizer=True))
    create_app(sim_cluster, application(cascaded, repo.url, "app", namespace=cascaded, finalizer=False))

    async def deployed(namespace: str) -> bool:
        return await client.get_or_none(kinds.CONFIGMAP, "settings", namespace) is not None

    await _until(lambda: deployed(kept), what="first app synced")
    await _until(lambda: deployed(cascaded), what="second app synced")
    async with server_support.logged_in_api(client, NAMESPACE) as api:
        async with server_support.denied_to_admin(client, NAMESPACE, f"applications, delete, default/{kept}"):
            assert (await api.delete(f"/api/v1/applications/{kept}")).status_code == 403
        bad = await api.delete(
            f"/api/v1/applications/{kept}", params={"cascade": "true", "propagationPolicy": "x"}
        )
        assert bad.status_code == 400

        gone = await api.delete(f"/api/v1/applications/{kept}", params={"cascade": "false"})
        assert gone.status_code == 200, gone.text
        await _until(lambda: _absent(sim_cluster, kept), what="non-cascading delete")
        assert await deployed(kept)  # its resources stay

        cascading = await api.delete(
            f"/api/v1/applications/{cascaded}", params={"cascade": "true", "propagationPolicy": "background"}
        )
        assert cascading.status_code == 200, cascading.text
        await _until(lambda: _absent(sim_cluster, cascaded), what="cascading delete")
        assert not await deployed(cascaded)  # the controller deleted them before letting the app go
        assert (await api.delete(f"/api/v1/applications/{cascaded}")).status_code == 404


async def _absent(cluster: ClusterProcess, name: str) -> bool:
    return get_app(cluster, name) is None


async def test_terminate_running_operation(
    sim_cluster: ClusterProcess, client: Client, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app/web.yaml": _slow_deployment("web"), "app/cm.yaml": _configmap("after", "x", wave=1)})
    name = unique("terminate")
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name, automated=False))
    async with server_support.logged_in_api(client, NAMESPACE) as api:
        base = f"/api/v1/applications/{name}"
        idle = await api.delete(f"{base}/operation")
        assert idle.status_code == 400 and "No operation is in progress" in idle.json()["message"]
        assert (await api.post(f"{base}/sync", json={})).status_code == 200

        async def running() -> bool:
            return _phase(sim_cluster, name) == "Running"

        await _until(running, what="sync running")
        async with server_support.denied_to_admin(client, NAMESPACE, f"applications, sync, default/{name}"):
            assert (await api.delete(f"{base}/operation")).status_code == 403
        terminated = await api.delete(f"{base}/operation")
        assert terminated.status_code == 200, terminated.text

        async def failed() -> bool:
            return _phase(sim_cluster, name) == "Failed"

        await _until(failed, what="operation terminated")
        state = (get_app(sim_cluster, name) or {})["status"]["operationState"]
        assert "terminated" in state["message"].lower()
        assert await client.get_or_none(kinds.CONFIGMAP, "after", name) is None  # wave 1 never ran
