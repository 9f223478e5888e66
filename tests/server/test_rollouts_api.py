"""The Rollouts API (``tugboat.server.rolloutsapi``) in-process over the simulated cluster with the real
rollout controller: RolloutInfo with Pods, AnalysisRuns and the managing Application, and the undo,
restart and set-image actions with what they write.

The analysis metric comes from a tiny Web endpoint served by the test (the stand-in for an external
metrics system)."""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
import server_support

from clusterproc import ClusterProcess, start_rollouts_controller, stop_process
from tugboat.gitops import crds as gitops_crds
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds as rollout_crds


class Metrics:
    """``GET /<anything>`` answers ``{"ok": true}`` from a thread of its own."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ok"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def metrics() -> Iterator[Metrics]:
    service = Metrics()
    yield service
    service.close()


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_rollouts_controller(sim_cluster, tmp_path_factory.mktemp("rollouts-api"))
    yield proc
    stop_process(proc)


@pytest.fixture
async def client(sim_cluster: ClusterProcess, sim_namespace: str) -> AsyncIterator[Client]:
    async with server_support.argo_client(
        sim_cluster, "test-rollouts-api", gitops=True, rollouts=True, control_namespace=sim_namespace
    ) as c:
        yield c


def _template(url: str) -> Any:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "ok"},
        "spec": {
            "metrics": [
                {
                    "name": "ok",
                    "successCondition": "result == true",
                    "provider": {"web": {"url": url, "jsonPath": "{$.ok}"}},
                }
            ]
        },
    }


def _rollout(namespace: str, name: str, **spec: Any) -> Any:
    """Two ``demo:1`` pods, a canary step analysis with the ``ok`` template, then a pause."""
    steps = [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "ok"}]}}, {"pause": {}}]
    pods = {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
    }
    body = server_support.rollout(namespace, name, replicas=2, steps=steps, template=pods, **spec)
    body["metadata"]["labels"] = {"app.kubernetes.io/instance": name}
    return body


def _application(namespace: str, name: str) -> Any:
    reverted = {
        "type": "RevertOnAbort",
        "message": "Git not reverted: the Application has no automated sync policy",
    }
    status = {"sync": {"status": "Synced"}, "health": {"status": "Degraded"}, "conditions": [reverted]}
    app = server_support.application(namespace, name, destination_namespace=namespace)
    return {**app, "status": status}


async def _info_when(
    api: httpx.AsyncClient, path: str, check: Callable[[Any], bool], *, what: str, timeout: float = 30
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    info: Any = None
    while asyncio.get_running_loop().time() < deadline:
        response = await api.get(path)
        assert response.status_code == 200, response.text
        info = response.json()
        if check(info):
            return info
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {json.dumps(info, indent=1)[:3000]}")


async def test_info_and_actions_on_a_live_rollout(
    client: Client, sim_namespace: str, controller: subprocess.Popen[bytes], metrics: Metrics
) -> None:
    ns = sim_namespace
    await client.create(
        rollout_crds.ANALYSISTEMPLATE, {**_template(metrics.url), "metadata": {"name": "ok", "namespace": ns}}
    )
    await client.create(rollout_crds.ROLLOUT, _rollout(ns, "shop"))
    await client.create(gitops_crds.APPLICATION, _application(ns, "shop"))
    base = f"/api/v1/rollouts/{ns}/shop"
    async with server_support.logged_in_api(client, ns) as api:

        def healthy(info: Any) -> bool:
            pods = [p for rs in info["replicaSets"] for p in rs["pods"]]
            return (
                info["status"] == "Healthy" and len(pods) == 2 and all(p["status"] == "Running" for p in pods)
            )

        info = await _info_when(api, f"{base}/info", healthy, what="a healthy first revision")
        [rs] = info["replicaSets"]
        assert rs["stable"] and rs["revision"] == 1
        assert {(p["ready"], p["restarts"]) for p in rs["pods"]} == {("1/1", 0)}
        assert all(p["objectMeta"]["name"].startswith(rs["objectMeta"]["name"]) for p in rs["pods"])
        assert info["application"] == {
            "name": "shop",
            "namespace": ns,
            "project": "default",
            "syncStatus": "Synced",
            "healthStatus": "Degraded",
            "revertOnAbort": {
                "status": "NotReverted",
                "message": "Git not reverted: the Application has no automated sync policy",
            },
        }
        assert info["analysisRuns"] == [] and info["experiments"] == []

        # set image: a new revision, a canary, a successful step analysis, then the pause step.
        response = await api.put(f"{base}/set/app/demo:2")
        assert response.status_code == 200, response.text
        live = await client.get(rollout_crds.ROLLOUT, "shop", ns)
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "demo:2"

        def paused_after_analysis(info: Any) -> bool:
            runs = info["analysisRuns"]
            return info["currentStepIndex"] == 2 and bool(runs) and runs[0]["status"] == "Successful"

        info = await _info_when(api, f"{base}/info", paused_after_analysis, what="the analysis and the pause")
        assert info["step"] == "2/3" and info["status"] == "Paused"
        [run] = info["analysisRuns"]
        assert run["revision"] == 2
        [metric] = run["metrics"]
        assert metric["name"] == "ok" and metric["phase"] == "Successful" and metric["successful"] >= 1
        assert metric["measurements"][-1]["phase"] == "Successful"
        assert [rs["revision"] for rs in info["replicaSets"]] == [2, 1]
        assert info["replicaSets"][0]["canary"] and info["replicaSets"][1]["stable"]

        listed = (await api.get(f"/api/v1/rollouts/{ns}/info")).json()["rollouts"]
        assert [ro["objectMeta"]["name"] for ro in listed] == ["shop"]
        assert listed[0]["analysisRuns"][0]["objectMeta"]["name"] == run["objectMeta"]["name"]

        # undo (0: the previous revision) copies revision 1's template back, without the hash label.
        assert (await api.put(f"{base}/undo/0")).status_code == 200
        live = await client.get(rollout_crds.ROLLOUT, "shop", ns)
        template = live["spec"]["template"]
        assert template["spec"]["containers"][0]["image"] == "demo:1"
        assert "rollouts-pod-template-hash" not in template["metadata"].get("labels", {})

        # restart: spec.restartAt = now.
        assert (await api.put(f"{base}/restart")).status_code == 200
        live = await client.get(rollout_crds.ROLLOUT, "shop", ns)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", live["spec"]["restartAt"])

        # errors
        unknown = await api.put(f"{base}/undo/9")
        assert unknown.status_code == 404 and "revision 9" in unknown.json()["message"]
        assert (await api.put(f"{base}/undo/x")).status_code == 400
        no_container = await api.put(f"{base}/set/nope/demo:3")
        assert no_container.status_code == 404 and no_container.json()["code"] == 5
        assert (await api.put(f"/api/v1/rollouts/{ns}/nope/restart")).status_code == 404


async def test_set_image_of_workload_ref_and_images_with_slashes(client: Client, sim_namespace: str) -> None:
    ns = sim_namespace
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-template", "namespace": ns},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:1"}, {"name": "side", "image": "s:1"}]
                },
            },
        },
    }
    await client.create(kinds.DEPLOYMENT, deployment)
    rollout = _rollout(
        ns, "web", workloadRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-template"}
    )
    del rollout["spec"]["template"]
    await client.create(rollout_crds.ROLLOUT, rollout)
    await client.create(
        rollout_crds.ROLLOUT, {**_rollout(ns, "plain"), "metadata": {"name": "plain", "namespace": ns}}
    )
    async with server_support.logged_in_api(client, ns) as api:
        response = await api.put(f"/api/v1/rollouts/{ns}/web/set/web/registry.example/team/web:2")
        assert response.status_code == 200, response.text
        live = await client.get(kinds.DEPLOYMENT, "web-template", ns)
        images = [c["image"] for c in live["spec"]["template"]["spec"]["containers"]]
        assert images == ["registry.example/team/web:2", "s:1"]

        assert (await api.put(f"/api/v1/rollouts/{ns}/plain/set/*/busybox:2")).status_code == 200
        live = await client.get(rollout_crds.ROLLOUT, "plain", ns)
        assert [c["image"] for c in live["spec"]["template"]["spec"]["containers"]] == ["busybox:2"]

        info = (await api.get(f"/api/v1/rollouts/{ns}/plain/info")).json()
        assert info["application"] is None and isinstance(info["currentStepIndex"], int)
