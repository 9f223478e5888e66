"""Endpoints and EndpointSlices follow a Service's pods (research/kubeapi.md §4 item 5, §5 check 37).

Most tests run a cluster with only the networking controllers and play kubelet themselves: they create
pods and set ``podIP`` and the Ready condition through ``/status``. The last one runs check 37 on the full
simulation with the real kubectl.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sim_support import controllers_cluster, eventually, new_namespace

from clusterproc import ClusterProcess, have_kubectl
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.localcluster.controllers.endpoints import (
    MAX_ENDPOINTS_PER_SLICE,
    desired_slice_endpoints,
    desired_subsets,
    plan_slices,
)

Obj = dict[str, Any]
_counter = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def net_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "endpoints", "endpoints,services")


@pytest.fixture
async def client(net_cluster: ClusterProcess) -> Any:
    async with Client.from_kubeconfig(net_cluster.kubeconfig, field_manager="test") as c:
        yield c


@pytest.fixture
async def ns(client: Client) -> str:
    return await new_namespace(client, f"ep{next(_counter)}")


def _ready_condition(ready: bool) -> Obj:
    return {
        "type": "Ready",
        "status": "True" if ready else "False",
        "lastTransitionTime": "2024-01-01T00:00:00Z",
    }


async def make_pod(
    client: Client,
    ns: str,
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    node: str = "node-1",
    finalizers: list[str] | None = None,
) -> Obj:
    """A pod as the kubelet would have made it: bound, Running, with an IP and a Ready condition."""
    meta: Obj = {"name": name, "namespace": ns, "labels": labels or {"app": "web"}}
    if finalizers:
        meta["finalizers"] = finalizers
    body = {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "c", "image": "app:v1", "ports": [{"name": "http", "containerPort": 8080}]}
            ],
        },
    }
    pod = await client.create(kinds.POD, body)
    if ip is not None:
        await set_pod_status(client, ns, name, ip, ready=ready)
    return pod


async def set_pod_status(client: Client, ns: str, name: str, ip: str, *, ready: bool) -> None:
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [_ready_condition(ready)],
    }
    await client.patch_status(kinds.POD, name, status, namespace=ns)


async def make_service(client: Client, ns: str, name: str = "web", **spec: Any) -> Obj:
    body_spec: Obj = {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        **spec,
    }
    return await client.create(
        kinds.SERVICE, {"metadata": {"name": name, "namespace": ns}, "spec": body_spec}
    )


def ips(addresses: list[Obj] | None) -> list[str]:
    return [a["ip"] for a in addresses or []]


async def managed_slices(client: Client, ns: str, service: str = "web") -> list[Obj]:
    items, _ = await client.list(kinds.ENDPOINTSLICE, ns, labels=f"kubernetes.io/service-name={service}")
    return items


# -------------------------------------------------------------------------------------- pure functions


def _pod(name: str, ip: str, *, ready: bool = True, port_name: str = "http", number: int = 8080) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "n", "uid": f"uid-{name}", "labels": {"app": "web"}},
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": number}]}],
        },
        "status": {"phase": "Running", "podIP": ip, "conditions": [_ready_condition(ready)]},
    }


_SERVICE: Obj = {
    "metadata": {"name": "web", "namespace": "n", "uid": "svc-uid"},
    "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    },
}


def test_subsets_group_pods_by_resolved_port() -> None:
    pods = [
        _pod("a", "10.0.0.2"),
        _pod("b", "10.0.0.1", ready=False),
        _pod("c", "10.0.0.3", number=9090),
        _pod("d", "10.0.0.4", port_name="other"),  # the named port does not resolve: left out
    ]
    subsets = desired_subsets(_SERVICE, pods)
    assert subsets == [
        {
            "addresses": [
                {
                    "ip": "10.0.0.2",
                    "nodeName": "node-1",
                    "targetRef": {"kind": "Pod", "namespace": "n", "name": "a", "uid": "uid-a"},
                }
            ],
            "notReadyAddresses": [
                {
                    "ip": "10.0.0.1",
                    "nodeName": "node-1",
                    "targetRef": {"kind": "Pod", "namespace": "n", "name": "b", "uid": "uid-b"},
                }
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        },
        {
            "addresses": [
                {
                    "ip": "10.0.0.3",
                    "nodeName": "node-1",
                    "targetRef": {"kind": "Pod", "namespace": "n", "name": "c", "uid": "uid-c"},
                }
            ],
            "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}],
        },
    ]


def test_publish_not_ready_addresses_and_terminating_pods() -> None:
    terminating = _pod("t", "10.0.0.9")
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    service = {**_SERVICE, "spec": {**_SERVICE["spec"], "publishNotReadyAddresses": True}}
    pods = [_pod("a", "10.0.0.1", ready=False), terminating]
    assert [ips(s.get("addresses")) for s in desired_subsets(service, pods)] == [["10.0.0.1", "10.0.0.9"]]
    assert [ips(s.get("addresses")) for s in desired_subsets(_SERVICE, pods)] == [[]]
    groups = desired_slice_endpoints(_SERVICE, pods)
    (ports, endpoints), *_ = groups.values()
    assert ports == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert endpoints["uid-t"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert endpoints["uid-a"]["conditions"] == {"ready": False, "serving": False, "terminating": False}


def test_slice_plan_keeps_endpoints_in_place_and_splits_at_100() -> None:
    pods = [_pod(f"p{i}", f"10.0.{i // 200}.{i % 200 + 1}") for i in range(MAX_ENDPOINTS_PER_SLICE + 5)]
    desired = desired_slice_endpoints(_SERVICE, pods)
    plan = plan_slices(_SERVICE, [], desired)
    assert [len(endpoints) for _, endpoints, _ in plan.creates] == [MAX_ENDPOINTS_PER_SLICE, 5]
    # Pretend those were written; drop one pod from the first slice: only that slice changes.
    key = next(iter(desired))
    written = [
        {"metadata": {"name": f"web-{i}"}, "addressType": "IPv4", "endpoints": eps, "ports": ports}
        for i, (_, eps, ports) in enumerate(plan.creates)
    ]
    gone = written[0]["endpoints"][3]["targetRef"]["uid"]
    fewer = desired_slice_endpoints(_SERVICE, [p for p in pods if p["metadata"]["uid"] != gone])
    assert next(iter(fewer)) == key
    replan = plan_slices(_SERVICE, written, fewer)
    assert not replan.creates and not replan.deletes
    first, second = replan.updates
    assert len(first[1]) == MAX_ENDPOINTS_PER_SLICE - 1
    assert gone not in {e["targetRef"]["uid"] for e in first[1]}
    assert second[1] == written[1]["endpoints"]
    # No pods at all: one empty placeholder slice stays, the other goes.
    empty = plan_slices(_SERVICE, written, {})
    assert [(s["metadata"]["name"], eps, ports) for s, eps, ports in empty.updates] == [("web-0", [], [])]
    assert [s["metadata"]["name"] for s in empty.deletes] == ["web-1"]


# ----------------------------------------------------------------------------------- against a server


async def test_endpoints_list_ready_pods_and_follow_changes(client: Client, ns: str) -> None:
    service = await make_service(client, ns)
    await make_pod(client, ns, "a", "10.1.0.1")
    await make_pod(client, ns, "b", "10.1.0.2", ready=False)
    await make_pod(client, ns, "other", "10.1.0.3", labels={"app": "db"})
    await make_pod(client, ns, "pending", None)

    async def both_seen() -> Obj:
        endpoints = await client.get(kinds.ENDPOINTS, "web", ns)
        (subset,) = endpoints["subsets"]
        assert ips(subset.get("addresses")) == ["10.1.0.1"]
        assert ips(subset.get("notReadyAddresses")) == ["10.1.0.2"]
        return endpoints

    endpoints = await eventually(both_seen)
    (subset,) = endpoints["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    address = subset["addresses"][0]
    assert address["nodeName"] == "node-1"
    assert address["targetRef"]["kind"] == "Pod" and address["targetRef"]["name"] == "a"
    assert endpoints["metadata"]["labels"] == {"endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in endpoints["metadata"]["annotations"]
    assert "ownerReferences" not in endpoints["metadata"]

    slices = await eventually(lambda: managed_slices(client, ns))
    (endpoint_slice,) = slices
    assert endpoint_slice["metadata"]["name"].startswith("web-")
    assert endpoint_slice["metadata"]["labels"] == {
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    (owner,) = endpoint_slice["metadata"]["ownerReferences"]
    assert owner["kind"] == "Service" and owner["uid"] == service["metadata"]["uid"] and owner["controller"]
    assert endpoint_slice["addressType"] == "IPv4"
    assert endpoint_slice["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    conditions = {e["addresses"][0]: e["conditions"] for e in endpoint_slice["endpoints"]}
    assert conditions == {
        "10.1.0.1": {"ready": True, "serving": True, "terminating": False},
        "10.1.0.2": {"ready": False, "serving": False, "terminating": False},
    }

    # b becomes Ready, a new pod appears, a goes away.
    await set_pod_status(client, ns, "b", "10.1.0.2", ready=True)
    await make_pod(client, ns, "c", "10.1.0.4")
    await client.delete(kinds.POD, "a", ns, grace_period=0)

    async def updated() -> bool:
        endpoints = await client.get(kinds.ENDPOINTS, "web", ns)
        (subset,) = endpoints["subsets"]
        assert ips(subset.get("addresses")) == ["10.1.0.2", "10.1.0.4"]
        assert "notReadyAddresses" not in subset
        (endpoint_slice,) = await managed_slices(client, ns)
        assert sorted(e["addresses"][0] for e in endpoint_slice["endpoints"]) == ["10.1.0.2", "10.1.0.4"]
        return True

    await eventually(updated)


async def test_terminating_pods_leave_endpoints_but_stay_in_slices(client: Client, ns: str) -> None:
    await make_service(client, ns)
    await make_pod(client, ns, "a", "10.2.0.1")
    await make_pod(client, ns, "b", "10.2.0.2", finalizers=["example.com/hold"])

    async def two_ready() -> bool:
        (subset,) = (await client.get(kinds.ENDPOINTS, "web", ns))["subsets"]
        assert ips(subset.get("addresses")) == ["10.2.0.1", "10.2.0.2"]
        return True

    await eventually(two_ready)
    await client.delete(kinds.POD, "b", ns, grace_period=0)

    async def terminating() -> bool:
        (subset,) = (await client.get(kinds.ENDPOINTS, "web", ns))["subsets"]
        assert ips(subset.get("addresses")) == ["10.2.0.1"] and "notReadyAddresses" not in subset
        (endpoint_slice,) = await managed_slices(client, ns)
        conditions = {e["addresses"][0]: e["conditions"] for e in endpoint_slice["endpoints"]}
        assert conditions["10.2.0.2"] == {"ready": False, "serving": True, "terminating": True}
        return True

    await eventually(terminating)
    await client.patch(kinds.POD, "b", {"metadata": {"finalizers": None}}, namespace=ns)


async def test_service_without_pods_and_headless_and_selectorless(client: Client, ns: str) -> None:
    await make_service(client, ns, "empty")
    await make_service(client, ns, "headless", clusterIP="None")
    manual = {"metadata": {"name": "manual", "namespace": ns}, "spec": {"ports": [{"port": 80}]}}
    await client.create(kinds.SERVICE, manual)

    async def empty_endpoints() -> Obj:
        endpoints = await client.get_or_none(kinds.ENDPOINTS, "empty", ns)  # may not be written yet
        assert endpoints is not None
        assert "subsets" not in endpoints or not endpoints["subsets"]
        return endpoints

    await eventually(empty_endpoints)
    (placeholder,) = await eventually(lambda: managed_slices(client, ns, "empty"))
    assert placeholder["endpoints"] == [] and not placeholder.get("ports")
    headless = await eventually(lambda: client.get_or_none(kinds.ENDPOINTS, "headless", ns))
    assert headless["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    (headless_slice,) = await eventually(lambda: managed_slices(client, ns, "headless"))
    assert headless_slice["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    # A Service without a selector is the user's to fill: nothing is created for it.
    await asyncio.sleep(0.5)
    assert await client.get_or_none(kinds.ENDPOINTS, "manual", ns) is None
    assert await managed_slices(client, ns, "manual") == []

    # The placeholder gives way to real endpoints when a pod appears.
    await make_pod(client, ns, "a", "10.3.0.1")

    async def filled() -> bool:
        slices = await managed_slices(client, ns, "empty")
        assert [[e["addresses"] for e in s["endpoints"]] for s in slices] == [[["10.3.0.1"]]]
        return True

    await eventually(filled)


async def test_idle_service_is_not_rewritten(client: Client, ns: str) -> None:
    await make_service(client, ns)
    await make_pod(client, ns, "a", "10.4.0.1")

    async def settled() -> Obj:
        endpoints = await client.get_or_none(kinds.ENDPOINTS, "web", ns)
        assert endpoints is not None
        assert ips(endpoints["subsets"][0].get("addresses")) == ["10.4.0.1"]
        return endpoints

    before = await eventually(settled)

    async def one_slice() -> Obj:
        (endpoint_slice,) = await managed_slices(client, ns)
        assert [e["addresses"] for e in endpoint_slice["endpoints"]] == [["10.4.0.1"]]
        return endpoint_slice

    slice_before = await eventually(one_slice)
    # Changes that do not concern endpoints: a pod annotation, a Service annotation.
    await client.patch(kinds.POD, "a", {"metadata": {"annotations": {"x": "1"}}}, namespace=ns)
    await client.patch(kinds.SERVICE, "web", {"metadata": {"annotations": {"x": "1"}}}, namespace=ns)
    await asyncio.sleep(1.0)
    after = await client.get(kinds.ENDPOINTS, "web", ns)
    (slice_after,) = await managed_slices(client, ns)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert slice_after["metadata"]["resourceVersion"] == slice_before["metadata"]["resourceVersion"]
    # Deleted by someone, the Endpoints come back.
    await client.delete(kinds.ENDPOINTS, "web", ns)
    await eventually(settled)


async def test_deleting_a_service_removes_its_endpoints(client: Client, ns: str) -> None:
    await make_service(client, ns)
    await make_pod(client, ns, "a", "10.5.0.1")
    await eventually(lambda: client.get_or_none(kinds.ENDPOINTS, "web", ns))
    await eventually(lambda: managed_slices(client, ns))
    await client.delete(kinds.SERVICE, "web", ns)

    async def gone() -> bool:
        assert await client.get_or_none(kinds.ENDPOINTS, "web", ns) is None
        assert await managed_slices(client, ns) == []
        return True

    await eventually(gone)


async def test_kubernetes_service_points_at_the_api_server(
    client: Client, net_cluster: ClusterProcess
) -> None:
    port = int(net_cluster.url.rsplit(":", 1)[1])
    endpoints = await eventually(lambda: client.get_or_none(kinds.ENDPOINTS, "kubernetes", "default"))
    assert endpoints["subsets"] == [
        {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    ]
    endpoint_slice = await eventually(
        lambda: client.get_or_none(kinds.ENDPOINTSLICE, "kubernetes", "default")
    )
    assert endpoint_slice["endpoints"][0]["addresses"] == ["127.0.0.1"]
    # Deleted, it comes back.
    await client.delete(kinds.ENDPOINTS, "kubernetes", "default")
    await eventually(lambda: client.get_or_none(kinds.ENDPOINTS, "kubernetes", "default"))


@pytest.mark.kubectl
async def test_kubectl_describe_service_shows_endpoints(
    client: Client, ns: str, net_cluster: ClusterProcess
) -> None:
    if not have_kubectl():
        pytest.skip("kubectl is not on the PATH")
    await make_service(client, ns)
    await make_pod(client, ns, "a", "10.6.0.1")
    await eventually(lambda: client.get_or_none(kinds.ENDPOINTS, "web", ns))

    def described() -> str:
        return net_cluster.kubectl("describe", "svc", "web", "-n", ns).stdout

    deadline = time.monotonic() + 20
    while "10.6.0.1:8080" not in described() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    out = described()
    assert any(line.startswith("Endpoints:") and "10.6.0.1:8080" in line for line in out.splitlines()), out
    got = net_cluster.kubectl(
        "get", "endpoints", "web", "-n", ns, "-o", "jsonpath={.subsets[0].addresses[*].ip}"
    )
    assert got.stdout == "10.6.0.1"


# ------------------------------------------------------------------------------- full simulation (§5 #37)

_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{name: http, containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


def _ready_pod_ips(cluster: ClusterProcess, ns: str) -> list[str]:
    out = cluster.kubectl(
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        "app=web",
        "-o",
        'jsonpath={range .items[*]}{.status.podIP} {.status.conditions[?(@.type=="Ready")].status}'
        " {.metadata.deletionTimestamp}{'\\n'}{end}",
    ).stdout
    ready = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1] == "True":
            ready.append(fields[0])
    return sorted(ready)


def _endpoint_ips(cluster: ClusterProcess, ns: str) -> list[str]:
    out = cluster.kubectl(
        "get", "endpoints", "web", "-n", ns, "-o", "jsonpath={.subsets[0].addresses[*].ip}", check=False
    ).stdout
    return sorted(out.split())


def _wait_endpoints_match(cluster: ClusterProcess, ns: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ready = _ready_pod_ips(cluster, ns)
        got = _endpoint_ips(cluster, ns)
        if len(ready) == count and got == ready:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoints {got} != ready pod IPs {ready} (want {count})")
        time.sleep(0.2)


@pytest.mark.kubectl
def test_check_37_endpoints_follow_a_deployment(sim_cluster: ClusterProcess, sim_namespace: str) -> None:
    if not have_kubectl():
        pytest.skip("kubectl is not on the PATH")
    ns = sim_namespace
    sim_cluster.kubectl("apply", "-n", ns, "-f", "-", input=_DEPLOYMENT)
    cluster_ip = sim_cluster.kubectl("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    assert cluster_ip and cluster_ip != "None"
    sim_cluster.kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=60s")
    _wait_endpoints_match(sim_cluster, ns, 2)
    sim_cluster.kubectl("scale", "deploy/web", "-n", ns, "--replicas=3")
    _wait_endpoints_match(sim_cluster, ns, 3)
    sim_cluster.kubectl("scale", "deploy/web", "-n", ns, "--replicas=1")
    _wait_endpoints_match(sim_cluster, ns, 1)
    slices = sim_cluster.kubectl(
        "get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web", "-o", "name"
    ).stdout.split()
    assert len(slices) == 1
    # The namespace still terminates cleanly, although controllers keep writing into it until the end.
    sim_cluster.kubectl("delete", "namespace", ns, "--timeout=60s")
    assert sim_cluster.kubectl("get", "namespace", ns, check=False).returncode != 0
