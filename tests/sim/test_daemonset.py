"""The DaemonSet controller: one pod per fitting node, reacting to nodes, rolling updates.

A cluster running only the daemonset controller gets Nodes created by the test (each test labels its own
nodes and selects them, since nodes are cluster-wide), and the test plays the kubelet; the full simulation
is then driven with ``kubectl rollout status ds/…``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sim_support import controllers_cluster, wait_for
from workload_support import Api, live

from clusterproc import ClusterProcess
from tugboat.localcluster.controllers.daemonset import scaled, should_run, target_node, with_node_affinity


def node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def daemonset_obj(**template_spec: object) -> dict:
    return {"metadata": {"name": "ds"}, "spec": {"template": {"spec": {"containers": [], **template_spec}}}}


def test_which_nodes_run_a_daemon_pod() -> None:
    plain = daemonset_obj()
    assert should_run(plain, node("a")) == (True, True)
    no_schedule = node("b", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    assert should_run(plain, no_schedule) == (False, True)  # may keep a running pod
    no_execute = node("c", taints=[{"key": "dedicated", "effect": "NoExecute"}])
    assert should_run(plain, no_execute) == (False, False)
    tolerant = daemonset_obj(tolerations=[{"key": "dedicated", "operator": "Exists"}])
    assert should_run(tolerant, no_execute) == (True, True)
    # Daemon pods tolerate the node-condition taints, e.g. unschedulable nodes.
    cordoned = node("d", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    assert should_run(plain, cordoned) == (True, True)
    selective = daemonset_obj(nodeSelector={"disk": "ssd"})
    assert should_run(selective, node("e", {"disk": "ssd"})) == (True, True)
    assert should_run(selective, node("f", {"disk": "hdd"})) == (False, False)


def test_node_pinning_and_budgets() -> None:
    spec = with_node_affinity({}, "n1")
    assert target_node({"spec": spec}) == "n1"
    assert target_node({"spec": {"nodeName": "n2", **spec}}) == "n2"
    assert scaled("25%", 10, default=1) == 3  # rounded up
    assert scaled(2, 10, default=1) == 2 and scaled(None, 10, default=1) == 1


@pytest.fixture(scope="module")
def ds_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "ds", "daemonset")


_namespaces = itertools.count()


@pytest.fixture
def api(ds_cluster: ClusterProcess) -> Api:
    namespace = f"ds-{next(_namespaces)}"
    with ds_cluster.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).status_code == 201
    return Api(ds_cluster, namespace)


def add_node(api: Api, name: str, **labels: str) -> None:
    api.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})


def daemonset(pool: str, image: str = "agent:1", **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"nodeSelector": {"pool": pool}, "containers": [{"name": "c", "image": image}]},
            },
            **spec,
        },
    }


def by_node(api: Api) -> dict[str, list[dict]]:
    result: dict[str, list[dict]] = {}
    for pod in live(api.pods(app="agent")):
        result.setdefault(str(target_node(pod)), []).append(pod)
    return result


def nodes_with_pods(api: Api, expected: set[str]) -> dict[str, list[dict]]:
    return wait_for(
        lambda: (
            (pods := by_node(api))
            and set(pods) == expected
            and all(len(p) == 1 for p in pods.values())
            and pods
        ),
        what=f"one pod on each of {sorted(expected)}",
    )


def ds_status(api: Api) -> dict:
    return api.get("daemonsets", "agent").get("status") or {}


def image_of(pod: dict) -> str:
    return str(pod["spec"]["containers"][0]["image"])


def test_one_pod_per_fitting_node(api: Api) -> None:
    pool = api.namespace
    for i in range(3):
        add_node(api, f"{pool}-n{i}", pool=pool)
    add_node(api, f"{pool}-other", pool="elsewhere")
    api.create("daemonsets", daemonset(pool))
    pods = nodes_with_pods(api, {f"{pool}-n0", f"{pool}-n1", f"{pool}-n2"})
    pod = pods[f"{pool}-n0"][0]
    assert pod["metadata"]["generateName"] == "agent-"
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [f"{pool}-n0"]}]}
    ]
    keys = {t["key"] for t in pod["spec"]["tolerations"]}
    assert {"node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready"} <= keys
    status = wait_for(lambda: (s := ds_status(api)) and s.get("currentNumberScheduled") == 3 and s)
    assert status["desiredNumberScheduled"] == 3 and status["numberMisscheduled"] == 0
    assert status["numberReady"] == 0 and status["numberUnavailable"] == 3
    for pods_on_node in pods.values():
        api.ready(pods_on_node[0]["metadata"]["name"])
    status = wait_for(lambda: (s := ds_status(api)) and s.get("numberAvailable") == 3 and s)
    assert (
        status["numberReady"] == 3
        and status["updatedNumberScheduled"] == 3
        and status["observedGeneration"] == 1
    )
    assert "numberUnavailable" not in status
    revisions = api.list("controllerrevisions")
    assert len(revisions) == 1 and revisions[0]["revision"] == 1
    assert (
        revisions[0]["metadata"]["labels"]["controller-revision-hash"]
        == pod["metadata"]["labels"]["controller-revision-hash"]
    )
    assert any(
        r == "SuccessfulCreate" and m.startswith("Created pod: agent-") for r, m in api.events("agent")
    )


def test_reacts_to_nodes(api: Api) -> None:
    pool = api.namespace
    add_node(api, f"{pool}-a", pool=pool)
    api.create("daemonsets", daemonset(pool))
    nodes_with_pods(api, {f"{pool}-a"})
    add_node(api, f"{pool}-b", pool=pool)
    nodes_with_pods(api, {f"{pool}-a", f"{pool}-b"})
    # A NoExecute taint the pod does not tolerate evicts it; a new NoSchedule one would not.
    api.patch("nodes", f"{pool}-a", {"spec": {"taints": [{"key": "maintenance", "effect": "NoSchedule"}]}})
    nodes_with_pods(api, {f"{pool}-a", f"{pool}-b"})
    api.patch("nodes", f"{pool}-a", {"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}})
    nodes_with_pods(api, {f"{pool}-b"})
    api.patch("nodes", f"{pool}-b", {"metadata": {"labels": {"pool": "gone"}}})
    wait_for(lambda: not by_node(api), what="pod removed from a node that no longer matches")
    assert wait_for(lambda: (s := ds_status(api)) and s.get("desiredNumberScheduled") == 0 and s)


def test_rolling_update_max_unavailable(api: Api) -> None:
    pool = api.namespace
    nodes = {f"{pool}-n{i}" for i in range(3)}
    for name in sorted(nodes):
        add_node(api, name, pool=pool)
    api.create("daemonsets", daemonset(pool))
    for pods in nodes_with_pods(api, nodes).values():
        api.ready(pods[0]["metadata"]["name"])
    wait_for(lambda: ds_status(api).get("numberAvailable") == 3, what="3 available")
    api.patch(
        "daemonsets",
        "agent",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}},
    )
    for step in range(1, 4):
        updated = wait_for(
            lambda step=step: (
                (new := [p[0] for p in by_node(api).values() if image_of(p[0]) == "agent:2"])
                and len(new) == step
                and len(by_node(api)) == 3
                and new
            ),
            what=f"{step} node(s) updated",
        )
        # maxUnavailable 1: the others keep their available old pod until the new one is ready.
        assert sum(1 for p in by_node(api).values() if image_of(p[0]) == "agent:1") == 3 - step
        for pod in updated:
            if pod["status"].get("phase") != "Running":
                api.ready(pod["metadata"]["name"])
    status = wait_for(
        lambda: (
            (s := ds_status(api))
            and s.get("updatedNumberScheduled") == 3
            and s.get("numberAvailable") == 3
            and s
        )
    )
    assert status["observedGeneration"] == 2
    assert sorted(r["revision"] for r in api.list("controllerrevisions")) == [1, 2]


def test_rolling_update_with_surge(api: Api) -> None:
    pool = api.namespace
    add_node(api, f"{pool}-n0", pool=pool)
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    api.create("daemonsets", daemonset(pool, updateStrategy=strategy))
    (old,) = nodes_with_pods(api, {f"{pool}-n0"})[f"{pool}-n0"]
    api.ready(old["metadata"]["name"])
    wait_for(lambda: ds_status(api).get("numberAvailable") == 1, what="available")
    api.patch(
        "daemonsets",
        "agent",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}},
    )
    both = wait_for(lambda: (p := by_node(api).get(f"{pool}-n0", [])) and len(p) == 2 and p, what="surge pod")
    new = next(p for p in both if image_of(p) == "agent:2")
    api.ready(new["metadata"]["name"])
    wait_for(
        lambda: (
            [p["metadata"]["name"] for p in by_node(api).get(f"{pool}-n0", [])] == [new["metadata"]["name"]]
        ),
        what="old pod removed once the new one is available",
    )


# ----------------------------------------------------------------------------- full simulation


@pytest.mark.kubectl
def test_kubectl_rollout_daemonset(sim_cluster: ClusterProcess, sim_namespace: str) -> None:
    ns = sim_namespace
    manifest = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "agent:1"}]
"""
    sim_cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    result = sim_cluster.kubectl("rollout", "status", "-n", ns, "ds/agent", "--timeout=60s")
    assert 'daemon set "agent" successfully rolled out' in result.stdout
    nodes = sim_cluster.kubectl("get", "nodes", "-o", "name").stdout.split()
    placed = sim_cluster.kubectl(
        "get", "pods", "-n", ns, "-l", "app=agent", "-o", "jsonpath={.items[*].spec.nodeName}"
    ).stdout.split()
    assert sorted(placed) == sorted(n.removeprefix("node/") for n in nodes)
    sim_cluster.kubectl("set", "image", "-n", ns, "ds/agent", "agent=agent:2")
    result = sim_cluster.kubectl("rollout", "status", "-n", ns, "ds/agent", "--timeout=90s")
    assert 'daemon set "agent" successfully rolled out' in result.stdout
    images = sim_cluster.kubectl(
        "get", "pods", "-n", ns, "-l", "app=agent", "-o", "jsonpath={.items[*].spec.containers[0].image}"
    ).stdout.split()
    assert images == ["agent:2"] * len(nodes)
    sim_cluster.kubectl("rollout", "undo", "-n", ns, "ds/agent")
    sim_cluster.kubectl("rollout", "status", "-n", ns, "ds/agent", "--timeout=90s")
    images = sim_cluster.kubectl(
        "get", "pods", "-n", ns, "-l", "app=agent", "-o", "jsonpath={.items[*].spec.containers[0].image}"
    ).stdout.split()
    assert images == ["agent:1"] * len(nodes)
    history = sim_cluster.kubectl("rollout", "history", "-n", ns, "ds/agent").stdout.split()
    assert history[-2:] == ["3", "<none>"]  # the first template came back as revision 3
    row = sim_cluster.kubectl("get", "ds", "agent", "-n", ns, "--no-headers").stdout.split()
    count = str(len(nodes))
    assert row[1:6] == [count] * 5  # DESIRED CURRENT READY UP-TO-DATE AVAILABLE
