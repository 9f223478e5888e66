"""Simulated nodes (registration, conditions, Lease heartbeats) and the scheduler (fit, spread, failures).

One cluster runs only nodes, scheduler and kubelet; tests that change nodes (labels, taints) use keys of
their own and undo them. The pure parts (CIDRs, the FitError text, Go durations) are checked directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any

import pytest
import sim_support

from clusterproc import ClusterProcess, have_kubectl
from tugboat.localcluster.controllers import kubelet, nodes, scheduler

Obj = dict[str, Any]
NODES = ["tugboat-node-1", "tugboat-node-2", "tugboat-node-3"]
AFFINITY_MESSAGE = (
    "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
)

needs_kubectl = pytest.mark.skipif(not have_kubectl(), reason="kubectl is not on the PATH")


# The checks here mostly run kubectl: poll them every 0.1 s.
wait_for = partial(sim_support.wait_for, interval=0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from sim_support.controllers_cluster(tmp_path_factory, "nodes", "nodes,scheduler,kubelet")


_namespaces = iter(range(1000))


@pytest.fixture
def ns(cluster: ClusterProcess) -> str:
    name = f"sched{next(_namespaces)}"
    with cluster.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    return name


def get(cluster: ClusterProcess, path: str) -> Obj:
    with cluster.client() as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return dict(response.json())


def create_pod(cluster: ClusterProcess, ns: str, name: str, **spec: Any) -> Obj:
    body = {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec},
    }
    with cluster.client() as client:
        response = client.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def pod(cluster: ClusterProcess, ns: str, name: str) -> Obj:
    return get(cluster, f"/api/v1/namespaces/{ns}/pods/{name}")


def scheduled(cluster: ClusterProcess, ns: str, name: str) -> Obj:
    for cond in pod(cluster, ns, name).get("status", {}).get("conditions") or []:
        if cond["type"] == "PodScheduled":
            return dict(cond)
    return {}


def events(cluster: ClusterProcess, ns: str, name: str, reason: str) -> list[Obj]:
    with cluster.client() as client:
        response = client.get(
            f"/api/v1/namespaces/{ns}/events", params={"fieldSelector": f"involvedObject.name={name}"}
        )
    return [e for e in response.json()["items"] if e["reason"] == reason]


# ---------------------------------------------------------------------------------------------- nodes


@needs_kubectl
def test_nodes_are_ready(cluster: ClusterProcess) -> None:
    def listed() -> list[list[str]]:
        out = cluster.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
        rows = [line.split() for line in out]
        return rows if len(rows) == 3 and all(r[1] == "Ready" for r in rows) else []

    rows = wait_for(listed, what="3 Ready nodes")
    assert [r[0] for r in rows] == NODES
    assert all(r[4] == "v1.32.0" for r in rows)
    wide = cluster.kubectl("get", "nodes", "-o", "wide", "--no-headers").stdout
    assert "containerd://" in wide and "172.18.0." in wide


def test_node_object(cluster: ClusterProcess) -> None:
    node = get(cluster, "/api/v1/nodes/tugboat-node-2")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "tugboat-node-2"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    assert labels["node.kubernetes.io/instance-type"] == "tugboat-sim"
    assert labels["topology.kubernetes.io/zone"] and labels["topology.kubernetes.io/region"]
    status = node["status"]
    for key in ("cpu", "memory", "pods", "ephemeral-storage"):
        assert status["capacity"][key] == status["allocatable"][key]
    assert status["capacity"]["cpu"] == "32" and status["capacity"]["pods"] == "1100"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "KubeletReady"
    assert conditions["Ready"]["message"] == "kubelet is posting ready status"
    assert conditions["MemoryPressure"]["reason"] == "KubeletHasSufficientMemory"
    assert conditions["DiskPressure"]["reason"] == "KubeletHasNoDiskPressure"
    assert conditions["PIDPressure"]["reason"] == "KubeletHasSufficientPID"
    assert all(c["status"] == "False" for t, c in conditions.items() if t != "Ready")
    addresses = {a["type"]: a["address"] for a in status["addresses"]}
    assert addresses["Hostname"] == "tugboat-node-2" and addresses["InternalIP"].startswith("172.18.0.")
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.32.0" and info["containerRuntimeVersion"].startswith("containerd://")
    assert info["operatingSystem"] == "linux" and info["architecture"] == "amd64" and info["osImage"]
    assert node["spec"]["podCIDR"] == node["spec"]["podCIDRs"][0]
    cidrs = {get(cluster, f"/api/v1/nodes/{n}")["spec"]["podCIDR"] for n in NODES}
    assert len(cidrs) == 3


def test_node_leases_renew(cluster: ClusterProcess) -> None:
    leases = get(cluster, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")["items"]
    by_name = {lease["metadata"]["name"]: lease for lease in leases}
    assert sorted(by_name) == NODES
    lease = by_name["tugboat-node-1"]
    assert lease["spec"]["holderIdentity"] == "tugboat-node-1"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = lease["spec"]["renewTime"]
    assert "." in first  # a MicroTime

    def renewed() -> str | None:
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/tugboat-node-1"
        now = get(cluster, path)["spec"]["renewTime"]
        return now if now != first else None

    later = wait_for(renewed, timeout=25, what="a lease renewal")
    gap = datetime.fromisoformat(later) - datetime.fromisoformat(first)
    assert 5 <= gap.total_seconds() <= 20  # every 10 s


# ------------------------------------------------------------------------------------------ scheduler


def test_pods_spread_over_nodes(cluster: ClusterProcess, ns: str) -> None:
    for i in range(6):
        create_pod(cluster, ns, f"p{i}")

    def bound() -> list[Obj]:
        items = get(cluster, f"/api/v1/namespaces/{ns}/pods")["items"]
        return items if all(p["spec"].get("nodeName") for p in items) else []

    placed = wait_for(bound, what="all pods bound")
    counts: dict[str, int] = {}
    for p in placed:
        counts[p["spec"]["nodeName"]] = counts.get(p["spec"]["nodeName"], 0) + 1
    assert set(counts) == set(NODES)
    first = placed[0]
    cond = wait_for(lambda: scheduled(cluster, ns, first["metadata"]["name"]))
    assert cond["status"] == "True" and "reason" not in cond
    event = wait_for(lambda: events(cluster, ns, first["metadata"]["name"], "Scheduled"))[0]
    assert (
        event["message"]
        == f"Successfully assigned {ns}/{first['metadata']['name']} to {first['spec']['nodeName']}"
    )
    assert event["source"]["component"] == "default-scheduler"


@needs_kubectl
def test_unschedulable_pod_reports_and_retries(cluster: ClusterProcess, ns: str) -> None:
    create_pod(cluster, ns, "picky", nodeSelector={"sim.example/disk": "ssd"})
    cond = wait_for(lambda: (c := scheduled(cluster, ns, "picky")) and c.get("reason") and c)
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"] == AFFINITY_MESSAGE
    failed = wait_for(lambda: events(cluster, ns, "picky", "FailedScheduling"))
    assert failed[0]["type"] == "Warning" and failed[0]["message"] == AFFINITY_MESSAGE
    row = cluster.kubectl("get", "pods", "-n", ns, "picky", "--no-headers").stdout.split()
    assert row[1:3] == ["0/1", "Pending"]
    described = cluster.kubectl("describe", "pod", "-n", ns, "picky").stdout
    assert "FailedScheduling" in described and "didn't match Pod's node affinity/selector" in described

    cluster.kubectl("label", "node", "tugboat-node-3", "sim.example/disk=ssd")
    try:
        bound = wait_for(
            lambda: pod(cluster, ns, "picky")["spec"].get("nodeName"), what="binding after label"
        )
        assert bound == "tugboat-node-3"
        cond = wait_for(lambda: (c := scheduled(cluster, ns, "picky")) and c["status"] == "True" and c)
        assert "reason" not in cond and "message" not in cond
        wait_for(
            lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod(cluster, ns, "picky")["status"]["conditions"]
            ),
            what="picky ready",
        )
    finally:
        cluster.kubectl("label", "node", "tugboat-node-3", "sim.example/disk-")


@needs_kubectl
def test_taints_and_tolerations(cluster: ClusterProcess, ns: str) -> None:
    cluster.kubectl("taint", "node", "tugboat-node-1", "sim.example/dedicated=batch:NoSchedule")
    try:
        here = {"kubernetes.io/hostname": "tugboat-node-1"}
        create_pod(cluster, ns, "intolerant", nodeSelector=here)
        cond = wait_for(lambda: (c := scheduled(cluster, ns, "intolerant")) and c.get("reason") and c)
        assert cond["message"] == (
            "0/3 nodes are available: 1 node(s) had untolerated taint {sim.example/dedicated: batch}, "
            "2 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        )
        toleration = {
            "key": "sim.example/dedicated",
            "operator": "Equal",
            "value": "batch",
            "effect": "NoSchedule",
        }
        create_pod(cluster, ns, "tolerant", nodeSelector=here, tolerations=[toleration])
        assert wait_for(lambda: pod(cluster, ns, "tolerant")["spec"].get("nodeName")) == "tugboat-node-1"
    finally:
        cluster.kubectl("taint", "node", "tugboat-node-1", "sim.example/dedicated-")
    assert wait_for(lambda: pod(cluster, ns, "intolerant")["spec"].get("nodeName")) == "tugboat-node-1"


def test_required_node_affinity(cluster: ClusterProcess, ns: str) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["tugboat-node-2"]}
                        ]
                    },
                ]
            }
        }
    }
    create_pod(cluster, ns, "aff", affinity=affinity)
    assert wait_for(lambda: pod(cluster, ns, "aff")["spec"].get("nodeName")) == "tugboat-node-2"
    by_field = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": ["tugboat-node-3"]}
                        ]
                    }
                ]
            }
        }
    }
    create_pod(cluster, ns, "aff-field", affinity=by_field)
    assert wait_for(lambda: pod(cluster, ns, "aff-field")["spec"].get("nodeName")) == "tugboat-node-3"


def test_insufficient_resources(cluster: ClusterProcess, ns: str) -> None:
    body = {
        "metadata": {"name": "huge"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.27",
                    "resources": {"requests": {"cpu": "40", "memory": "1Gi"}},
                }
            ]
        },
    }
    with cluster.client() as client:
        assert client.post(f"/api/v1/namespaces/{ns}/pods", json=body).status_code == 201
    cond = wait_for(lambda: (c := scheduled(cluster, ns, "huge")) and c.get("reason") and c)
    assert cond["message"] == (
        "0/3 nodes are available: 3 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    )
    # Requests count against capacity: two 20-CPU pods fill a 32-CPU node each.
    body["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "20"
    with cluster.client() as client:
        for i in range(3):
            body["metadata"]["name"] = f"big{i}"
            assert client.post(f"/api/v1/namespaces/{ns}/pods", json=body).status_code == 201
    nodes_used = {wait_for(lambda i=i: pod(cluster, ns, f"big{i}")["spec"].get("nodeName")) for i in range(3)}
    assert len(nodes_used) == 3
    body["metadata"]["name"] = "big3"
    with cluster.client() as client:
        assert client.post(f"/api/v1/namespaces/{ns}/pods", json=body).status_code == 201
    cond = wait_for(lambda: (c := scheduled(cluster, ns, "big3")) and c.get("reason") and c)
    assert cond["message"].startswith("0/3 nodes are available: 3 Insufficient cpu.")
    with cluster.client() as client:  # freeing capacity retries the pending pod
        assert client.delete(f"/api/v1/namespaces/{ns}/pods/big0").status_code == 200
    assert wait_for(lambda: pod(cluster, ns, "big3")["spec"].get("nodeName"), what="big3 bound")


def test_other_schedulers_pods_are_left_alone(cluster: ClusterProcess, ns: str) -> None:
    create_pod(cluster, ns, "mine", schedulerName="my-scheduler")
    create_pod(cluster, ns, "marker")
    wait_for(lambda: pod(cluster, ns, "marker")["spec"].get("nodeName"))
    time.sleep(0.3)
    assert not pod(cluster, ns, "mine")["spec"].get("nodeName")


# ----------------------------------------------------------------------------------------- pure parts


def test_pod_cidrs() -> None:
    assert nodes.pod_cidr(1, 110) == "10.244.1.0/24"
    assert nodes.pod_cidr(3, 200) == "10.244.3.0/24"
    assert nodes.pod_cidr(1, 1100) == "10.244.8.0/21"  # 1100 pods need more than a /24
    assert nodes.pod_cidr(2, 1100) == "10.244.16.0/21"


def test_fit_error_text() -> None:
    fits = {
        "a": scheduler.Fit(["node(s) had untolerated taint {x: }"]),
        "b": scheduler.Fit(["Insufficient cpu", "Insufficient memory"], resources_only=True),
        "c": scheduler.Fit([scheduler.AFFINITY_REASON]),
    }
    assert scheduler._fit_error({"spec": {}}, fits) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {x: }. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )
    assert scheduler._fit_error({"spec": {}}, {}) == "no nodes available to schedule pods"


def test_go_durations_and_images() -> None:
    assert kubelet.go_duration(0.3) == "300ms"
    assert [kubelet.go_duration(s) for s in (10, 20, 40, 80, 160, 300)] == [
        "10s",
        "20s",
        "40s",
        "1m20s",
        "2m40s",
        "5m0s",
    ]
    assert kubelet.normalize_image("nginx") == "docker.io/library/nginx:latest"
    assert kubelet.normalize_image("bitnami/redis:7") == "docker.io/bitnami/redis:7"
    assert kubelet.normalize_image("ghcr.io/org/app:v1") == "ghcr.io/org/app:v1"
    assert kubelet.normalize_image("localhost:5000/app") == "localhost:5000/app:latest"
