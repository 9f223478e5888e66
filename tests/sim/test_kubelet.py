"""The simulated kubelet: pod lifecycle, the behaviours of DESIGN.md §5, events, logs, graceful deletion.

One cluster runs only nodes, scheduler and kubelet. The staged pods of every behaviour are created once,
together, so that the whole table costs the time of its slowest row; each test then checks one row as
kubectl (and the raw API) would see it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sim_support
import yaml

from clusterproc import ClusterProcess, have_kubectl, start_cluster

pytestmark = pytest.mark.skipif(not have_kubectl(), reason="kubectl is not on the PATH")

Obj = dict[str, Any]
NS = "staged"


# The checks here mostly run kubectl: poll them every 0.1 s.
wait_for = partial(sim_support.wait_for, interval=0.1)


def _pod(name: str, image: str, annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": image}], **spec},
    }
    return pod


STAGED = [
    _pod("good", "nginx:1.27"),
    _pod("crash-tag", "registry.example/app:crash"),
    _pod("crash-note", "registry.example/app:v1", {"sim.tugboat.dev/crash-loop": "true"}),
    _pod("pull-tag", "nginx:does-not-exist"),
    _pod("pull-note", "nginx:1.27", {"sim.tugboat.dev/image-pull": "fail"}),
    _pod("unready-tag", "registry.example/app:unready"),
    _pod("unready-note", "registry.example/app:v1", {"sim.tugboat.dev/never-ready": "true"}),
    _pod("bad", "registry.example/app:bad-v2"),
    _pod("slow", "registry.example/app:slow-v2"),
    _pod("late", "registry.example/app:v1", {"sim.tugboat.dev/ready-after": "4s"}),
    _pod("job-ok", "busybox:1.36", {"sim.tugboat.dev/exit-code": "0"}, restartPolicy="Never"),
    _pod(
        "job-fail",
        "busybox:1.36",
        {"sim.tugboat.dev/exit-code": "3", "sim.tugboat.dev/run-for": "2s"},
        restartPolicy="Never",
    ),
    _pod("job-retry", "busybox:1.36", {"sim.tugboat.dev/exit-code": "2"}, restartPolicy="OnFailure"),
    _pod(
        "with-sidecar",
        "nginx:1.27",
        initContainers=[{"name": "proxy", "image": "envoyproxy/envoy:v1.31", "restartPolicy": "Always"}],
    ),
    _pod(
        "with-init",
        "nginx:1.27",
        initContainers=[
            {"name": "setup", "image": "busybox:1.36"},
            {"name": "migrate", "image": "busybox:1.36"},
        ],
    ),
    _pod(
        "probed",
        "nginx:1.27",
        containers=[
            {
                "name": "app",
                "image": "nginx:1.27",
                "readinessProbe": {"initialDelaySeconds": 3, "httpGet": {"path": "/", "port": 80}},
            }
        ],
    ),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from sim_support.controllers_cluster(tmp_path_factory, "kubelet", "nodes,scheduler,kubelet")


@pytest.fixture(scope="module")
def staged(cluster: ClusterProcess) -> dict[str, float]:
    """Create every staged pod at once; returns when each was created (monotonic)."""
    with cluster.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        created = {}
        for pod in STAGED:
            response = client.post(f"/api/v1/namespaces/{NS}/pods", json=pod)
            assert response.status_code == 201, response.text
            created[pod["metadata"]["name"]] = time.monotonic()
    return created


def get_pod(cluster: ClusterProcess, name: str, namespace: str = NS) -> Obj | None:
    with cluster.client() as client:
        response = client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return dict(response.json())


def condition(pod: Obj, type_: str) -> Obj:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def container(pod: Obj, name: str = "app", key: str = "containerStatuses") -> Obj:
    for status in pod.get("status", {}).get(key) or []:
        if status["name"] == name:
            return dict(status)
    return {}


def row(cluster: ClusterProcess, name: str, namespace: str = NS) -> dict[str, str]:
    """The pod's row of ``kubectl get pods`` (NAME, READY, STATUS, RESTARTS, AGE)."""
    out = cluster.kubectl("get", "pods", "-n", namespace, name, "--no-headers").stdout.split()
    restarts = out[3] if len(out) < 6 else " ".join(out[3:-1])
    return {"name": out[0], "ready": out[1], "status": out[2], "restarts": restarts}


def events(cluster: ClusterProcess, name: str, namespace: str = NS) -> list[Obj]:
    with cluster.client() as client:
        response = client.get(
            f"/api/v1/namespaces/{namespace}/events", params={"fieldSelector": f"involvedObject.name={name}"}
        )
    return list(response.json()["items"])


def reasons(cluster: ClusterProcess, name: str) -> set[str]:
    return {e["reason"] for e in events(cluster, name)}


def wait_row(cluster: ClusterProcess, name: str, status: str, *, timeout: float = 30.0) -> dict[str, str]:
    return wait_for(
        lambda: (r := row(cluster, name))["status"] == status and r, timeout=timeout, what=f"{name} {status}"
    )


# --------------------------------------------------------------------------------------------- tests


def test_good_pod_runs_and_becomes_ready(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    pod = wait_for(
        lambda: (p := get_pod(cluster, "good")) and condition(p, "Ready").get("status") == "True" and p
    )
    status = pod["status"]
    assert status["phase"] == "Running"
    node = pod["spec"]["nodeName"]
    assert node.startswith("tugboat-node-")
    nodes = yaml.safe_load(cluster.kubectl("get", "node", node, "-o", "yaml").stdout)
    assert status["hostIP"] == next(
        a["address"] for a in nodes["status"]["addresses"] if a["type"] == "InternalIP"
    )
    cidr = nodes["spec"]["podCIDR"]
    prefix = ".".join(cidr.split(".")[:2])
    assert status["podIP"].startswith(prefix) and status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["startTime"]
    app = container(pod)
    assert app["ready"] is True and app["started"] is True and app["restartCount"] == 0
    assert app["state"]["running"]["startedAt"]
    assert app["containerID"].startswith("containerd://")
    assert app["image"] == "docker.io/library/nginx:1.27"
    assert app["imageID"].startswith("docker.io/library/nginx@sha256:")
    for type_ in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "PodScheduled"):
        assert condition(pod, type_)["status"] == "True", type_
    assert "reason" not in condition(pod, "Ready")
    assert row(cluster, "good") == {"name": "good", "ready": "1/1", "status": "Running", "restarts": "0"}
    wait_for(lambda: {"Scheduled", "Pulled", "Created", "Started"} <= reasons(cluster, "good"), what="events")
    described = cluster.kubectl("describe", "pod", "-n", NS, "good").stdout
    for text in (
        "Successfully assigned staged/good to",
        "Pulled",
        "Created container: app",
        "Started container app",
    ):
        assert text in described


@pytest.mark.parametrize("name", ["crash-tag", "crash-note"])
def test_crash_loop(cluster: ClusterProcess, staged: dict[str, float], name: str) -> None:
    shown = wait_row(cluster, name, "CrashLoopBackOff")
    assert shown["ready"] == "0/1"
    assert re.fullmatch(r"[1-3] \(\d+s ago\)", shown["restarts"]), shown  # e.g. "1 (2s ago)"
    pod = get_pod(cluster, name)
    assert pod is not None
    app = container(pod)
    waiting = app["state"]["waiting"]
    uid = pod["metadata"]["uid"]
    expected = rf"back-off (10s|20s|40s) restarting failed container=app pod={name}_{NS}\({uid}\)"
    assert re.fullmatch(expected, waiting["message"]), waiting
    terminated = app["lastState"]["terminated"]
    assert terminated["exitCode"] == 1 and terminated["reason"] == "Error"
    assert terminated["startedAt"] and terminated["finishedAt"]
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready")["reason"] == "ContainersNotReady"
    backoff = [e for e in events(cluster, name) if e["reason"] == "BackOff"]
    assert backoff and backoff[0]["type"] == "Warning"
    assert backoff[0]["message"] == f"Back-off restarting failed container app in pod {name}_{NS}({uid})"
    logs = cluster.kubectl("logs", "-n", NS, name).stdout
    assert "panic: simulated crash (sim.tugboat.dev)" in logs and "exitCode=1" in logs
    previous = cluster.kubectl("logs", "-n", NS, name, "--previous").stdout
    assert "panic: simulated crash" in previous


@pytest.mark.parametrize("name", ["pull-tag", "pull-note"])
def test_image_pull_failure(cluster: ClusterProcess, staged: dict[str, float], name: str) -> None:
    seen = wait_for(lambda: (r := row(cluster, name))["status"] in ("ErrImagePull", "ImagePullBackOff") and r)
    assert seen["ready"] == "0/1" and seen["restarts"] == "0"
    wait_row(cluster, name, "ImagePullBackOff")
    pod = get_pod(cluster, name)
    assert pod is not None and pod["status"]["phase"] == "Pending"
    assert container(pod)["imageID"] == ""
    failed = [e["message"] for e in events(cluster, name) if e["reason"] == "Failed"]
    image = pod["spec"]["containers"][0]["image"]
    assert any(m.startswith(f'Failed to pull image "{image}": ') and m.endswith("not found") for m in failed)
    assert "Error: ErrImagePull" in failed
    result = cluster.kubectl("logs", "-n", NS, name, check=False)
    assert result.returncode != 0
    assert (
        f'container "app" in pod "{name}" is waiting to start: trying and failing to pull image'
        in result.stderr
    )


@pytest.mark.parametrize("name", ["unready-tag", "unready-note"])
def test_never_ready(cluster: ClusterProcess, staged: dict[str, float], name: str) -> None:
    wait_row(cluster, name, "Running")
    remaining = staged[name] + 3.0 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)  # long past the readiness delay
    assert row(cluster, name) == {"name": name, "ready": "0/1", "status": "Running", "restarts": "0"}
    pod = get_pod(cluster, name)
    assert pod is not None
    ready = condition(pod, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [app]"
    assert condition(pod, "ContainersReady")["status"] == "False"
    unhealthy = wait_for(
        lambda: [e for e in events(cluster, name) if e["reason"] == "Unhealthy"], what="Unhealthy"
    )
    assert unhealthy[0]["type"] == "Warning" and unhealthy[0]["message"].startswith(
        "Readiness probe failed: "
    )


@pytest.mark.parametrize("name", ["bad", "slow"])
def test_traffic_behaviours_are_ready(cluster: ClusterProcess, staged: dict[str, float], name: str) -> None:
    wait_for(lambda: row(cluster, name)["ready"] == "1/1", what=f"{name} ready")


def test_ready_after_annotation_delays_readiness(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    pod = wait_for(
        lambda: (p := get_pod(cluster, "late")) and condition(p, "Ready").get("status") == "True" and p
    )
    started = container(pod)["state"]["running"]["startedAt"]
    became_ready = condition(pod, "Ready")["lastTransitionTime"]
    delay = (datetime.fromisoformat(became_ready) - datetime.fromisoformat(started)).total_seconds()
    assert 3 <= delay <= 9, (started, became_ready)


def test_readiness_probe_initial_delay(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    pod = wait_for(
        lambda: (p := get_pod(cluster, "probed")) and condition(p, "Ready").get("status") == "True" and p
    )
    started = container(pod)["state"]["running"]["startedAt"]
    became_ready = condition(pod, "Ready")["lastTransitionTime"]
    delay = (datetime.fromisoformat(became_ready) - datetime.fromisoformat(started)).total_seconds()
    assert 2 <= delay <= 8, (started, became_ready)


def test_job_pod_succeeds(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    assert wait_row(cluster, "job-ok", "Completed") == {
        "name": "job-ok",
        "ready": "0/1",
        "status": "Completed",
        "restarts": "0",
    }
    pod = get_pod(cluster, "job-ok")
    assert pod is not None and pod["status"]["phase"] == "Succeeded"
    terminated = container(pod)["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert condition(pod, "Ready")["reason"] == "PodCompleted"
    assert "job complete" in cluster.kubectl("logs", "-n", NS, "job-ok").stdout


def test_job_pod_fails_with_exit_code(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    wait_row(cluster, "job-fail", "Error")
    pod = get_pod(cluster, "job-fail")
    assert pod is not None and pod["status"]["phase"] == "Failed"
    terminated = container(pod)["state"]["terminated"]
    ran = datetime.fromisoformat(terminated["finishedAt"]) - datetime.fromisoformat(terminated["startedAt"])
    assert 1 <= ran.total_seconds() <= 3  # run-for: 2s (times have whole seconds)
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert "exitCode=3" in cluster.kubectl("logs", "-n", NS, "job-fail").stdout


def test_job_pod_on_failure_restarts(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    shown = wait_row(cluster, "job-retry", "CrashLoopBackOff")
    assert shown["ready"] == "0/1" and not shown["restarts"].startswith("0")
    pod = get_pod(cluster, "job-retry")
    assert pod is not None and pod["status"]["phase"] == "Running"
    assert container(pod)["lastState"]["terminated"]["exitCode"] == 2


def test_sidecar_runs_alongside(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    wait_for(lambda: row(cluster, "with-sidecar")["ready"] == "2/2", what="sidecar pod 2/2")
    pod = get_pod(cluster, "with-sidecar")
    assert pod is not None
    proxy = container(pod, "proxy", "initContainerStatuses")
    assert proxy["started"] is True and "running" in proxy["state"]
    assert proxy["state"]["running"]["startedAt"] <= container(pod)["state"]["running"]["startedAt"]


def test_init_containers_run_in_order(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    pod = wait_for(
        lambda: (p := get_pod(cluster, "with-init")) and condition(p, "Ready").get("status") == "True" and p
    )
    setup = container(pod, "setup", "initContainerStatuses")["state"]["terminated"]
    migrate = container(pod, "migrate", "initContainerStatuses")["state"]["terminated"]
    assert setup["reason"] == migrate["reason"] == "Completed"
    assert setup["finishedAt"] <= migrate["startedAt"]
    assert migrate["finishedAt"] <= container(pod)["state"]["running"]["startedAt"]
    assert container(pod, "setup", "initContainerStatuses")["ready"] is True
    assert condition(pod, "Initialized")["status"] == "True"
    assert row(cluster, "with-init")["status"] == "Running"
    assert "job complete" in cluster.kubectl("logs", "-n", NS, "with-init", "-c", "setup").stdout


def test_init_progress_shows_in_status_column(cluster: ClusterProcess) -> None:
    cluster.kubectl("create", "namespace", "initwatch")
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "slow-init", "namespace": "initwatch"},
        "spec": {
            "initContainers": [{"name": "wait", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    seen: set[str] = set()

    def running() -> bool:
        seen.add(row(cluster, "slow-init", "initwatch")["status"])
        return "Running" in seen

    wait_for(running, what="slow-init running")
    assert seen & {"Init:0/1", "PodInitializing"}, seen


def test_logs(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    wait_for(lambda: (p := get_pod(cluster, "good")) and p["status"].get("phase") == "Running")
    lines = cluster.kubectl("logs", "-n", NS, "good").stdout.splitlines()
    assert any("nginx/1.27" in line for line in lines)
    assert len(cluster.kubectl("logs", "-n", NS, "good", "--tail=2").stdout.splitlines()) == 2
    stamped = cluster.kubectl("logs", "-n", NS, "good", "--timestamps", "--tail=1").stdout
    assert stamped[:4].isdigit() and "T" in stamped.split()[0] and stamped.split()[0].endswith("Z")
    missing = cluster.kubectl("logs", "-n", NS, "good", "-c", "nope", check=False)
    assert missing.returncode != 0
    with cluster.client() as client:
        response = client.get(f"/api/v1/namespaces/{NS}/pods/good/log", params={"container": "nope"})
        assert response.status_code == 400
        assert response.json()["message"] == "container nope is not valid for pod good"
        response = client.get(f"/api/v1/namespaces/{NS}/pods/good/log", params={"previous": "true"})
        assert response.status_code == 400
        assert response.json()["message"] == 'previous terminated container "app" in pod "good" not found'
        response = client.get(f"/api/v1/namespaces/{NS}/pods/good/log")
        assert response.headers["content-type"].startswith("text/plain")


def test_logs_follow_ends_with_the_container(cluster: ClusterProcess) -> None:
    cluster.kubectl("create", "namespace", "follow")
    cluster.kubectl(
        "run",
        "-n",
        "follow",
        "task",
        "--image=busybox:1.36",
        "--restart=Never",
        "--annotations=sim.tugboat.dev/run-for=3s",
    )
    wait_for(lambda: (p := get_pod(cluster, "task", "follow")) and p["status"].get("phase") == "Running")
    started = time.monotonic()
    out = cluster.kubectl("logs", "-n", "follow", "-f", "task", timeout=30).stdout
    assert time.monotonic() - started >= 1.0  # it streamed until the container ended
    assert out.splitlines()[-1] == 'level=info msg="job complete" exitCode=0'


def test_graceful_deletion_is_quick(cluster: ClusterProcess, staged: dict[str, float]) -> None:
    cluster.kubectl("create", "namespace", "deletion")
    cluster.kubectl("run", "-n", "deletion", "victim", "--image=nginx:1.27")
    wait_for(lambda: row(cluster, "victim", "deletion")["ready"] == "1/1", what="victim ready")
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "-n", "deletion", "victim")  # waits until the pod is gone
    assert time.monotonic() - started < 5.0
    assert get_pod(cluster, "victim", "deletion") is None
    killing = wait_for(lambda: [e for e in events(cluster, "victim", "deletion") if e["reason"] == "Killing"])
    assert killing[0]["message"] == "Stopping container victim"


def test_many_pods_start_quickly(cluster: ClusterProcess) -> None:
    cluster.kubectl("create", "namespace", "many")
    started = time.monotonic()
    with cluster.client() as client:
        for i in range(60):
            pod = _pod(f"p{i}", "nginx:1.27")
            pod["metadata"]["namespace"] = "many"
            assert client.post("/api/v1/namespaces/many/pods", json=pod).status_code == 201

        def all_ready() -> bool:
            items = client.get("/api/v1/namespaces/many/pods").json()["items"]
            return len(items) == 60 and all(condition(p, "Ready").get("status") == "True" for p in items)

        wait_for(all_ready, timeout=60, what="60 pods ready")
        elapsed = time.monotonic() - started
        items = client.get("/api/v1/namespaces/many/pods").json()["items"]
    ips = [p["status"]["podIP"] for p in items]
    assert len(set(ips)) == 60
    assert elapsed < 30, elapsed
    per_node: dict[str, int] = {}
    for p in items:
        per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
    assert len(per_node) == 3 and min(per_node.values()) >= 12, per_node  # spread over the nodes


def test_kubelet_restart_keeps_pods(tmp_path: Path) -> None:
    """A restarted cluster's kubelet adopts its pods from their status instead of starting them again."""
    proc = start_cluster(tmp_path / "restart", "--controllers", "nodes,scheduler,kubelet", simulate=True)
    try:
        proc.kubectl("run", "keeper", "--image=nginx:1.27")
        wait_for(
            lambda: (
                (p := get_pod(proc, "keeper", "default")) and condition(p, "Ready").get("status") == "True"
            )
        )
        before = get_pod(proc, "keeper", "default")
        assert before is not None
    finally:
        proc.stop()
    proc = start_cluster(tmp_path / "restart", "--controllers", "nodes,scheduler,kubelet", simulate=True)
    try:
        time.sleep(2.0)
        after = get_pod(proc, "keeper", "default")
        assert after is not None
        assert container(after, "keeper")["containerID"] == container(before, "keeper")["containerID"]
        assert after["status"]["podIP"] == before["status"]["podIP"]
        assert condition(after, "Ready")["status"] == "True"
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        proc.kubectl("run", "newcomer", "--image=nginx:1.27")
        fresh = wait_for(
            lambda: (p := get_pod(proc, "newcomer", "default")) and p["status"].get("podIP") and p
        )
        assert fresh["status"]["podIP"] != before["status"]["podIP"]
    finally:
        proc.stop()
