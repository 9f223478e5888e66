"""The StatefulSet controller: ordered creation, scaling, rolling updates, revisions, claims.

A cluster running only the statefulset controller lets the test play the kubelet (pods become Running
and Ready when the test says so), so ordering is checked step by step; the full simulation is then driven
with kubectl (``rollout status``, ``set image``, ``rollout history``/``undo``, ``scale``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sim_support import controllers_cluster, wait_for
from workload_support import Api, live, names

from clusterproc import ClusterProcess
from tugboat.localcluster.controllers.revisions import fnv1_32, hash_data, safe_encode, template_patch


def test_revision_hashing() -> None:
    assert fnv1_32(b"") == 0x811C9DC5
    assert fnv1_32(b"a") == 0x050C5D7E  # the FNV-1 test vector
    assert safe_encode("0123456789") == "456789bcdf"  # byte value modulo the vowel-free alphabet
    data = template_patch({"metadata": {"labels": {"app": "web"}}, "spec": {}})
    assert data["spec"]["template"]["$patch"] == "replace"
    assert hash_data(data, 0) != hash_data(data, 1)
    assert hash_data(data, 0) == hash_data(
        template_patch({"spec": {}, "metadata": {"labels": {"app": "web"}}}), 0
    )


@pytest.fixture(scope="module")
def sts_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "sts", "statefulset")


_namespaces = itertools.count()


@pytest.fixture
def api(sts_cluster: ClusterProcess) -> Api:
    namespace = f"sts-{next(_namespaces)}"
    with sts_cluster.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).status_code == 201
    return Api(sts_cluster, namespace)


def statefulset(
    name: str = "web", replicas: int = 3, image: str = "nginx:1.25", **spec: object
) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
            **spec,
        },
    }


def pods_now(api: Api, expected: list[str]) -> list[dict[str, object]]:
    """Wait until exactly ``expected`` pods (by name) exist and are not being deleted."""
    return wait_for(
        lambda: (pods := live(api.pods(app="web"))) and names(pods) == expected and pods,
        what=f"pods {expected}",
    )


def image_of(pod: dict[str, object]) -> str:
    return str(pod["spec"]["containers"][0]["image"])  # type: ignore[index]


def test_ordered_ready_creation_and_identity(api: Api) -> None:
    claim = {
        "metadata": {"name": "www"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    sts = api.create("statefulsets", statefulset(volumeClaimTemplates=[claim]))
    (web0,) = pods_now(api, ["web-0"])
    labels = web0["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert labels["apps.kubernetes.io/pod-index"] == "0"
    assert web0["spec"]["hostname"] == "web-0" and web0["spec"]["subdomain"] == "web"
    assert web0["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
    volume = next(v for v in web0["spec"]["volumes"] if v["name"] == "www")
    assert volume["persistentVolumeClaim"]["claimName"] == "www-web-0"
    pvc = wait_for(lambda: api.get("pvcs", "www-web-0"), what="claim www-web-0")
    assert pvc["metadata"]["labels"] == {"app": "web"}
    status = wait_for(
        lambda: (s := api.get("statefulsets", "web")["status"]) and s.get("updateRevision") and s
    )
    revision = labels["controller-revision-hash"]
    assert status["updateRevision"] == revision == status["currentRevision"]
    assert revision.startswith("web-")
    revisions = api.list("controllerrevisions")
    assert [(r["metadata"]["name"], r["revision"]) for r in revisions] == [(revision, 1)]
    # Running but not Ready blocks the next ordinal.
    api.set_pod("web-0", "Running", ready=False)
    pods_now(api, ["web-0"])
    api.ready("web-0")
    pods_now(api, ["web-0", "web-1"])
    api.ready("web-1")
    pods_now(api, ["web-0", "web-1", "web-2"])
    api.ready("web-2")
    status = wait_for(
        lambda: (s := api.get("statefulsets", "web")["status"]) and s.get("readyReplicas") == 3 and s
    )
    assert status["replicas"] == 3 and status["availableReplicas"] == 3 and status["currentReplicas"] == 3
    assert (
        status["updatedReplicas"] == 3 and status["observedGeneration"] == 1 and status["collisionCount"] == 0
    )
    assert names(api.list("pvcs")) == ["www-web-0", "www-web-1", "www-web-2"]
    events = api.events("web")
    assert ("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") in events
    assert ("SuccessfulCreate", "create Claim www-web-0 Pod web-0 in StatefulSet web success") in events


def test_parallel_creation(api: Api) -> None:
    api.create("statefulsets", statefulset(replicas=3, podManagementPolicy="Parallel"))
    pods_now(api, ["web-0", "web-1", "web-2"])  # all at once, without waiting for readiness


def test_ordinals_start(api: Api) -> None:
    api.create("statefulsets", statefulset(replicas=2, ordinals={"start": 5}))
    pods_now(api, ["web-5"])
    api.ready("web-5")
    (web6,) = [p for p in pods_now(api, ["web-5", "web-6"]) if p["metadata"]["name"] == "web-6"]
    assert web6["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "6"


def test_scale_down_in_reverse_order(api: Api) -> None:
    api.create("statefulsets", statefulset(replicas=3))
    for existing in (["web-0"], ["web-0", "web-1"], ["web-0", "web-1", "web-2"]):
        pods_now(api, existing)
        api.ready(existing[-1])
    wait_for(lambda: api.get("statefulsets", "web")["status"].get("readyReplicas") == 3, what="3 ready")
    api.patch("statefulsets", "web", {"spec": {"replicas": 1}})
    pods_now(api, ["web-0"])
    deletes = [m for r, m in api.events("web") if r == "SuccessfulDelete"]
    assert deletes == [
        "delete Pod web-2 in StatefulSet web successful",
        "delete Pod web-1 in StatefulSet web successful",
    ]


def test_ordered_scale_down_waits_for_health(api: Api) -> None:
    api.create("statefulsets", statefulset(replicas=2))
    pods_now(api, ["web-0"])
    api.ready("web-0")
    pods_now(api, ["web-0", "web-1"])
    api.ready("web-1")
    api.set_pod("web-0", "Running", ready=False)
    api.patch("statefulsets", "web", {"spec": {"replicas": 1}})
    # web-0 is unhealthy and is not the pod to delete: scale-down waits.
    wait_for(lambda: api.get("statefulsets", "web")["status"].get("readyReplicas") == 1, what="status")
    pods_now(api, ["web-0", "web-1"])
    api.ready("web-0")
    pods_now(api, ["web-0"])


def test_rolling_update_in_reverse_order_with_partition(api: Api) -> None:
    api.create("statefulsets", statefulset(replicas=3, podManagementPolicy="Parallel"))
    pods_now(api, ["web-0", "web-1", "web-2"])
    for name in ("web-0", "web-1", "web-2"):
        api.ready(name)
    first = wait_for(
        lambda: (s := api.get("statefulsets", "web")["status"]) and s.get("readyReplicas") == 3 and s
    )
    api.patch(
        "statefulsets",
        "web",
        {
            "spec": {
                "updateStrategy": {"rollingUpdate": {"partition": 1}},
                "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]}},
            }
        },
    )
    status = wait_for(
        lambda: (
            (s := api.get("statefulsets", "web")["status"])
            and s["updateRevision"] != first["updateRevision"]
            and s
        )
    )
    update = status["updateRevision"]
    # web-2 goes first; web-1 waits until the new web-2 is available.
    new2 = wait_for(
        lambda: (
            (p := api.get("pods", "web-2"))
            and p["metadata"]["labels"]["controller-revision-hash"] == update
            and p
        ),
        what="web-2 recreated at the update revision",
    )
    assert image_of(new2) == "nginx:1.26"
    assert image_of(api.get("pods", "web-1")) == "nginx:1.25"
    api.ready("web-2")
    new1 = wait_for(
        lambda: (p := api.get("pods", "web-1")) and image_of(p) == "nginx:1.26" and p, what="web-1 updated"
    )
    api.ready(new1["metadata"]["name"])
    status = wait_for(
        lambda: (
            (s := api.get("statefulsets", "web")["status"])
            and s.get("updatedReplicas") == 2
            and s.get("readyReplicas") == 3
            and s
        )
    )
    assert image_of(api.get("pods", "web-0")) == "nginx:1.25"  # below the partition
    assert status["currentRevision"] == first["updateRevision"] and status["currentReplicas"] == 1
    # Partition 0 finishes the rollout; then current and update revisions agree.
    api.patch("statefulsets", "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
    wait_for(lambda: (p := api.get("pods", "web-0")) and image_of(p) == "nginx:1.26", what="web-0 updated")
    api.ready("web-0")
    status = wait_for(
        lambda: (s := api.get("statefulsets", "web")["status"]) and s["currentRevision"] == update and s
    )
    assert status["currentReplicas"] == status["updatedReplicas"] == 3
    revisions = sorted((r["revision"], r["metadata"]["name"]) for r in api.list("controllerrevisions"))
    assert revisions == [(1, first["updateRevision"]), (2, update)]


def test_on_delete_strategy(api: Api) -> None:
    api.create("statefulsets", statefulset(replicas=1, updateStrategy={"type": "OnDelete"}))
    pods_now(api, ["web-0"])
    api.ready("web-0")
    api.patch(
        "statefulsets",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]}}}},
    )
    wait_for(lambda: api.get("statefulsets", "web")["status"].get("observedGeneration") == 2, what="observed")
    assert image_of(api.get("pods", "web-0")) == "nginx:1.25"
    api.delete("pods", "web-0")
    wait_for(
        lambda: (p := api.get("pods", "web-0")) and image_of(p) == "nginx:1.26",
        what="recreated with the new template",
    )


def test_failed_pod_is_recreated(api: Api) -> None:
    api.create("statefulsets", statefulset(replicas=1))
    (old,) = pods_now(api, ["web-0"])
    api.set_pod("web-0", "Failed")
    wait_for(
        lambda: (p := api.get("pods", "web-0")) and p["metadata"]["uid"] != old["metadata"]["uid"],
        what="new web-0",
    )


# ----------------------------------------------------------------------------- full simulation


@pytest.mark.kubectl
def test_kubectl_rollout_statefulset(sim_cluster: ClusterProcess, sim_namespace: str) -> None:
    ns = sim_namespace
    manifest = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.25"}]
"""
    sim_cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    result = sim_cluster.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=60s")
    assert "partitioned roll out complete" in result.stdout or "rolling update complete" in result.stdout
    pods = sim_cluster.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "name").stdout.split()
    assert pods == ["pod/web-0", "pod/web-1", "pod/web-2"]
    sim_cluster.kubectl("set", "image", "-n", ns, "sts/web", "nginx=nginx:1.26")
    result = sim_cluster.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=60s")
    # partition defaults to 0, so kubectl reports through its partitioned branch (as on a real cluster)
    assert "partitioned roll out complete: 3 new pods have been updated" in result.stdout
    status = sim_cluster.kubectl(
        "get", "sts", "web", "-n", ns, "-o", "jsonpath={.status.currentRevision} {.status.updateRevision}"
    ).stdout.split()
    assert status[0] == status[1]
    images = sim_cluster.kubectl(
        "get", "pods", "-n", ns, "-l", "app=web", "-o", "jsonpath={.items[*].spec.containers[0].image}"
    ).stdout
    assert images.split() == ["nginx:1.26"] * 3
    history = sim_cluster.kubectl("rollout", "history", "-n", ns, "sts/web").stdout
    assert "1" in history and "2" in history
    sim_cluster.kubectl("rollout", "undo", "-n", ns, "sts/web")
    sim_cluster.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=60s")
    image = sim_cluster.kubectl(
        "get", "pod", "web-0", "-n", ns, "-o", "jsonpath={.spec.containers[0].image}"
    ).stdout
    assert image == "nginx:1.25"
    sim_cluster.kubectl("scale", "-n", ns, "sts/web", "--replicas=1")
    wait_for(
        lambda: (
            sim_cluster.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "name").stdout.split()
            == ["pod/web-0"]
        ),
        timeout=60,
        what="scaled down to web-0",
    )
    table = sim_cluster.kubectl("get", "sts", "web", "-n", ns).stdout
    assert "1/1" in table
