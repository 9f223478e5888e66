"""What the API server shows under one Application: resource tree, managed resources and diffs, one
resource, manifests, events and pod logs; in-process over the simulated cluster, with the real GitOps
controller syncing a real git repository."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator, Iterator
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
    deployment,
    start_controller,
    synced_healthy,
    unique,
    wait_app,
)

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.server import applogs
from tugboat.server.problems import Problem

NAMESPACE = "argocd"


def _service(name: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
  - port: 80
"""


def _secret(name: str, password: str) -> str:
    encoded = base64.b64encode(password.encode()).decode()
    return f"""apiVersion: v1
kind: Secret
metadata:
  name: {name}
data:
  password: {encoded}
  user: YWRtaW4=
"""


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("tree-controller"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def deployed(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One app (automated, without self-heal, so drift stays) with a Deployment, Service and Secret."""
    repo = GitRepo(tmp_path_factory.mktemp("tree-repo") / "repo")
    name = unique("tree")
    repo.commit(
        {
            "app/web.yaml": deployment("web", replicas=2),
            "app/svc.yaml": _service("web"),
            "app/secret.yaml": _secret("creds", "hunter2"),
        }
    )
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name, automated={"prune": True}))
    app = wait_app(
        sim_cluster, name, synced_healthy, controller=controller, what="Synced+Healthy", timeout=60
    )
    return app


@pytest.fixture
async def client(sim_cluster: ClusterProcess) -> AsyncIterator[Client]:
    async with server_support.argo_client(sim_cluster, "test-app-tree") as c:
        yield c


async def test_resource_tree_links_pods_to_replicasets_to_deployment(
    client: Client, deployed: dict[str, Any]
) -> None:
    name = deployed["metadata"]["name"]
    async with server_support.logged_in_api(client, NAMESPACE) as api:
        response = await api.get(f"/api/v1/applications/{name}/resource-tree")
        assert response.status_code == 200, response.text
        tree = response.json()
        assert tree["orphanedNodes"] == []
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for node in tree["nodes"]:
            by_kind.setdefault(node["kind"], []).append(node)
        [deployment] = by_kind["Deployment"]
        [replicaset] = by_kind["ReplicaSet"]
        pods = by_kind["Pod"]
        assert {node["name"] for node in by_kind["Secret"]} == {"creds"}
        assert by_kind["Service"][0]["networkingInfo"]["targetLabels"] == {"app": "web"}
        assert deployment["parentRefs"] == [] and deployment["health"]["status"] == "Healthy"
        assert deployment["group"] == "apps" and deployment["version"] == "v1" and deployment["createdAt"]
        assert deployment["images"] == ["nginx:1.25"]
        assert [ref["uid"] for ref in replicaset["parentRefs"]] == [deployment["uid"]]
        assert replicaset["parentRefs"][0]["kind"] == "Deployment"
        assert any(item["name"] == "Revision" for item in replicaset["info"])
        assert len(pods) == 2
        for pod in pods:
            assert [ref["uid"] for ref in pod["parentRefs"]] == [replicaset["uid"]]
            assert pod["health"]["status"] == "Healthy"
            info = {item["name"]: item["value"] for item in pod["info"]}
            assert info["Status Reason"] == "Running"
            assert info["Containers"] == "1/1" and info["Restart Count"] == "0"
            assert pod["images"] == ["nginx:1.25"] and pod["namespace"] == name

        async with server_support.denied_to_admin(client, NAMESPACE, f"applications, get, default/{name}"):
            refused = await api.get(f"/api/v1/applications/{name}/resource-tree")
            assert refused.status_code == 403
        missing = await api.get("/api/v1/applications/nope/resource-tree")
        assert missing.status_code == 404


def _by_kind(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["kind"]: item for item in items}


async def test_managed_resources_diff_with_secrets_masked(client: Client, deployed: dict[str, Any]) -> None:
    name = deployed["metadata"]["name"]
    secret_value = base64.b64encode(b"hunter2").decode()
    drifted = base64.b64encode(b"changed!").decode()
    await client.patch(kinds.SECRET, "creds", {"data": {"password": drifted}}, namespace=name)
    async with server_support.logged_in_api(client, NAMESPACE) as api:
        response = await api.get(f"/api/v1/applications/{name}/managed-resources")
        assert response.status_code == 200, response.text
        assert secret_value not in response.text and drifted not in response.text
        items = _by_kind(response.json()["items"])
        assert set(items) == {"Deployment", "Service", "Secret"}
        secret = items["Secret"]
        assert secret["modified"] is True and secret["version"] == "v1" and secret["namespace"] == name
        live, target = json.loads(secret["liveState"]), json.loads(secret["targetState"])
        assert live["data"]["user"] == target["data"]["user"] == "++++++++"
        assert {live["data"]["password"], target["data"]["password"]} == {"++++++++", "++++++++++++"}
        assert "-  password: ++++++++" in secret["diff"] and "+  password: ++++++++++++" in secret["diff"]
        deployment = items["Deployment"]
        assert deployment["modified"] is False and deployment["diff"] == ""
        assert json.loads(deployment["targetState"])["spec"]["replicas"] == 2
        assert json.loads(deployment["liveState"])["status"]
        only = await api.get(f"/api/v1/applications/{name}/managed-resources", params={"kind": "Service"})
        assert [item["kind"] for item in only.json()["items"]] == ["Service"]

        params = {"namespace": name, "resourceName": "creds", "version": "v1", "kind": "Secret", "group": ""}
        one = await api.get(f"/api/v1/applications/{name}/resource", params=params)
        assert one.status_code == 200, one.text
        manifest = json.loads(one.json()["manifest"])
        assert manifest["data"] == {"password": "++++++++", "user": "++++++++"}
        pods, _ = await client.list(kinds.POD, name)
        pod_params = {
            "namespace": name,
            "resourceName": pods[0]["metadata"]["name"],
            "kind": "Pod",
            "version": "v1",
        }
        pod = await api.get(f"/api/v1/applications/{name}/resource", params=pod_params)
        assert pod.status_code == 200 and json.loads(pod.json()["manifest"])["kind"] == "Pod"
        other = {"namespace": "kube-system", "resourceName": "anything", "kind": "Pod", "version": "v1"}
        assert (await api.get(f"/api/v1/applications/{name}/resource", params=other)).status_code == 404

        listed = await api.get(f"/api/v1/applications/{name}/manifests")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["revision"] == deployed["status"]["sync"]["revision"]
        objs = {json.loads(text)["kind"]: json.loads(text) for text in body["manifests"]}
        assert set(objs) == {"Deployment", "Service", "Secret"}
        assert objs["Secret"]["data"] == {"password": "++++++++", "user": "++++++++"}
        assert objs["Deployment"]["metadata"]["namespace"] == name


def _event(namespace: str, name: str, involved: dict[str, Any], reason: str, at: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": reason,
        "type": "Normal",
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    }


async def test_events_of_the_app_and_of_one_resource(client: Client, deployed: dict[str, Any]) -> None:
    name = deployed["metadata"]["name"]
    app_ref = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "name": name,
        "namespace": NAMESPACE,
        "uid": deployed["metadata"]["uid"],
    }
    await client.create(kinds.EVENT, _event(NAMESPACE, f"{name}.b", app_ref, "Later", "2030-01-02T00:00:00Z"))
    await client.create(
        kinds.EVENT, _event(NAMESPACE, f"{name}.a", app_ref, "Earlier", "2030-01-01T00:00:00Z")
    )
    other = {**app_ref, "name": "someone-else", "uid": "x"}
    await client.create(kinds.EVENT, _event(NAMESPACE, f"{name}.c", other, "Other", "2030-01-01T00:00:00Z"))
    web = await client.get(kinds.DEPLOYMENT, "web", name)
    web_ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "namespace": name,
        "uid": web["metadata"]["uid"],
    }
    await client.create(
        kinds.EVENT, _event(name, "web.1", web_ref, "ScalingReplicaSet", "2030-01-01T00:00:00Z")
    )
    async with server_support.logged_in_api(client, NAMESPACE) as api:
        response = await api.get(f"/api/v1/applications/{name}/events")
        assert response.status_code == 200, response.text
        reasons = [event["reason"] for event in response.json()["items"]]
        assert "Other" not in reasons
        assert reasons.index("Earlier") < reasons.index("Later")
        params = {"resourceName": "web", "resourceNamespace": name, "resourceUID": web["metadata"]["uid"]}
        of_web = await api.get(f"/api/v1/applications/{name}/events", params=params)
        assert of_web.status_code == 200, of_web.text
        assert "ScalingReplicaSet" in [event["reason"] for event in of_web.json()["items"]]
        assert all(event["involvedObject"]["name"] == "web" for event in of_web.json()["items"])
        foreign = {"resourceName": "coredns", "resourceNamespace": "kube-system"}
        assert (await api.get(f"/api/v1/applications/{name}/events", params=foreign)).status_code == 404


async def test_pod_logs_only_for_pods_of_the_app(client: Client, deployed: dict[str, Any]) -> None:
    name = deployed["metadata"]["name"]
    pods, _ = await client.list(kinds.POD, name)
    pod = pods[0]["metadata"]["name"]
    async with server_support.logged_in_api(client, NAMESPACE) as api:
        response = await api.get(
            f"/api/v1/applications/{name}/pods/{pod}/logs", params={"namespace": name, "tailLines": 2}
        )
        assert response.status_code == 200, response.text
        lines = [json.loads(line)["result"] for line in response.text.splitlines()]
        assert len(lines) == 3 and lines[-1]["last"] is True
        for line in lines[:2]:
            assert line["podName"] == pod and line["content"] and line["timeStamp"].startswith("20")
            assert line["last"] is False
        by_query = await api.get(f"/api/v1/applications/{name}/logs", params={"podName": pod, "tailLines": 1})
        assert by_query.status_code == 200 and len(by_query.text.splitlines()) == 2
        bad_container = await api.get(
            f"/api/v1/applications/{name}/pods/{pod}/logs", params={"container": "nope"}
        )
        assert bad_container.status_code == 400
        foreign = await api.get(f"/api/v1/applications/{name}/pods/not-ours/logs", params={"namespace": name})
        assert foreign.status_code == 404
        async with server_support.denied_to_admin(client, NAMESPACE, f"logs, get, default/{name}"):
            refused = await api.get(
                f"/api/v1/applications/{name}/pods/{pod}/logs", params={"namespace": name}
            )
            assert refused.status_code == 403


async def test_followed_logs_stream_line_by_line(client: Client, deployed: dict[str, Any]) -> None:
    # The in-process transport buffers whole answers, so the stream is read from the handler's source.
    name = deployed["metadata"]["name"]
    pods, _ = await client.list(kinds.POD, name)
    pod = pods[0]["metadata"]["name"]
    wanted = applogs.LogRequest(namespace=name, pod=pod, tail_lines=1, follow=True)
    stream = await applogs.start_follow(client, wanted)
    try:
        first = json.loads(await anext(stream))["result"]
        assert first["podName"] == pod and first["content"] and first["last"] is False
    finally:
        await stream.aclose()
    with pytest.raises(Problem, match="nope"):
        await applogs.start_follow(
            client, applogs.LogRequest(namespace=name, pod=pod, container="nope", follow=True)
        )
