"""The rollout controller end to end on the simulated cluster: blue-green and canary updates, promote,
abort and the progress deadline, driven the way ``kubectl argo rollouts`` drives them (status patches).

Acceptance data: argo-rollouts' examples/rollout-bluegreen.yaml and rollout-canary.yaml (through
``TUGBOAT_EXAMPLES``), applied with real kubectl.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent.parent))

from clusterproc import ClusterProcess, start_rollouts_controller, stop_process
from examples_support import example_dir

EXAMPLES = example_dir("argo-rollouts")
HASH = "rollouts-pod-template-hash"


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_rollouts_controller(sim_cluster, tmp_path_factory.mktemp("rollouts-controller"))
    yield proc
    stop_process(proc)


def rollout(cluster: ClusterProcess, namespace: str, name: str) -> dict[str, Any]:
    with cluster.client() as client:
        response = client.get(f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/{name}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def service_hash(cluster: ClusterProcess, namespace: str, name: str) -> str | None:
    with cluster.client() as client:
        svc = client.get(f"/api/v1/namespaces/{namespace}/services/{name}").json()
    return (svc["spec"].get("selector") or {}).get(HASH)


def replicasets(cluster: ClusterProcess, namespace: str) -> dict[str, dict[str, Any]]:
    with cluster.client() as client:
        items = client.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets").json()["items"]
    return {rs["metadata"]["labels"][HASH]: rs for rs in items if HASH in rs["metadata"].get("labels", {})}


def wait_rollout(
    cluster: ClusterProcess,
    namespace: str,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    *,
    what: str,
    timeout: float = 60,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    ro: dict[str, Any] = {}
    while time.monotonic() < deadline:
        ro = rollout(cluster, namespace, name)
        if check(ro):
            return ro
        time.sleep(0.1)
    raise AssertionError(
        f"timed out waiting for {what}:\n{yaml.safe_dump(ro.get('status'), sort_keys=False)}"
    )


def phase_is(expected: str, message: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(ro: dict[str, Any]) -> bool:
        status = ro.get("status") or {}
        if status.get("observedGeneration") != str(ro["metadata"]["generation"]):
            return False
        return status.get("phase") == expected and (
            message is None or status.get("message", "").startswith(message)
        )

    return check


def patch_status(cluster: ClusterProcess, namespace: str, name: str, status: dict[str, Any]) -> None:
    with cluster.client() as client:
        response = client.patch(
            f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/{name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text


def set_image(cluster: ClusterProcess, namespace: str, name: str, image: str) -> None:
    cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "rollout",
        name,
        "--type",
        "json",
        "-p",
        f'[{{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"{image}"}}]',
    )


@pytest.mark.skipif(EXAMPLES is None, reason="TUGBOAT_EXAMPLES is not set")
def test_blue_green_example_update_promote_and_scale_down(
    sim_cluster: ClusterProcess,
    sim_namespace: str,
    controller: subprocess.Popen[bytes],
    kubectl_available: None,
) -> None:
    ns, name = sim_namespace, "rollout-bluegreen"
    manifest = Path(str(EXAMPLES)) / "examples" / "rollout-bluegreen.yaml"
    sim_cluster.kubectl("-n", ns, "apply", "-f", str(manifest))
    sim_cluster.kubectl(
        "-n",
        ns,
        "patch",
        "rollout",
        name,
        "--type",
        "merge",
        "-p",
        '{"spec":{"strategy":{"blueGreen":{"scaleDownDelaySeconds":2}}}}',
    )
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="the first revision Healthy")
    first = ro["status"]["stableRS"]
    assert (
        ro["status"]["currentPodHash"] == first
        and service_hash(sim_cluster, ns, "rollout-bluegreen-active") == first
    )
    assert ro["status"]["blueGreen"]["activeSelector"] == first
    assert (
        ro["status"]["availableReplicas"] == 2
        and ro["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "1"
    )
    assert replicasets(sim_cluster, ns)[first]["metadata"]["name"] == f"{name}-{first}"

    set_image(sim_cluster, ns, name, "argoproj/rollouts-demo:green")
    ro = wait_rollout(
        sim_cluster, ns, name, phase_is("Paused", "BlueGreenPause"), what="paused before promotion"
    )
    second = ro["status"]["currentPodHash"]
    assert second != first and ro["status"]["stableRS"] == first
    assert service_hash(sim_cluster, ns, "rollout-bluegreen-preview") == second
    assert service_hash(sim_cluster, ns, "rollout-bluegreen-active") == first
    assert (
        ro["status"]["pauseConditions"][0]["reason"] == "BlueGreenPause" and ro["status"]["controllerPause"]
    )
    table = sim_cluster.kubectl("-n", ns, "get", "rollout", name).stdout
    assert table.split()[:5] == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE"]

    patch_status(sim_cluster, ns, name, {"pauseConditions": None})  # kubectl argo rollouts promote
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="promoted")
    assert (
        ro["status"]["stableRS"] == second
        and service_hash(sim_cluster, ns, "rollout-bluegreen-active") == second
    )
    old = replicasets(sim_cluster, ns)[first]
    assert old["metadata"]["annotations"].get("scale-down-deadline")
    deadline = time.monotonic() + 30
    while replicasets(sim_cluster, ns)[first]["spec"]["replicas"] != 0:
        assert time.monotonic() < deadline, "the old ReplicaSet was not scaled down after its delay"
        time.sleep(0.2)


def bluegreen_manifests(name: str, image: str) -> str:
    return f"""apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  replicas: 2
  progressDeadlineSeconds: 4
  progressDeadlineAbort: true
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
  strategy:
    blueGreen:
      activeService: {name}-active
      previewService: {name}-preview
      abortScaleDownDelaySeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: {name}-active
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}-preview
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
"""


def test_blue_green_progress_deadline_aborts_back_to_stable(
    sim_cluster: ClusterProcess,
    sim_namespace: str,
    controller: subprocess.Popen[bytes],
    kubectl_available: None,
) -> None:
    ns, name = sim_namespace, "bg-abort"
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=bluegreen_manifests(name, "demo:v1"))
    stable = wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="v1 Healthy")["status"]["stableRS"]
    set_image(sim_cluster, ns, name, "demo:crash-v2")
    ro = wait_rollout(
        sim_cluster,
        ns,
        name,
        phase_is("Degraded", "RolloutAborted: Rollout aborted update to revision 2"),
        what="aborted by the progress deadline",
    )
    assert ro["status"]["message"].endswith("has timed out progressing.")
    assert ro["status"]["abort"] is True and ro["status"]["stableRS"] == stable
    assert service_hash(sim_cluster, ns, f"{name}-active") == stable
    assert service_hash(sim_cluster, ns, f"{name}-preview") == ro["status"]["currentPodHash"]
    progressing = next(c for c in ro["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "RolloutAborted")
    # The aborted ReplicaSet goes away after abortScaleDownDelaySeconds.
    deadline = time.monotonic() + 30
    while replicasets(sim_cluster, ns)[ro["status"]["currentPodHash"]]["spec"]["replicas"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # A fixed image (a new template) leaves the aborted state.
    set_image(sim_cluster, ns, name, "demo:v3")
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="v3 Healthy")
    assert (
        "abort" not in ro["status"]
        and service_hash(sim_cluster, ns, f"{name}-active") == ro["status"]["stableRS"]
    )


@pytest.mark.skipif(EXAMPLES is None, reason="TUGBOAT_EXAMPLES is not set")
def test_canary_example_steps_pause_promote_and_abort(
    sim_cluster: ClusterProcess,
    sim_namespace: str,
    controller: subprocess.Popen[bytes],
    kubectl_available: None,
) -> None:
    ns, name = sim_namespace, "rollout-canary"
    docs = list(yaml.safe_load_all((Path(str(EXAMPLES)) / "examples" / "rollout-canary.yaml").read_text()))
    ro_doc = next(d for d in docs if d and d.get("kind") == "Rollout")
    ro_doc["spec"]["replicas"] = 4
    ro_doc["spec"]["strategy"]["canary"]["steps"] = [
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 75},
        {"pause": {"duration": 1}},
    ]
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump(ro_doc))
    stable = wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="initial deploy Healthy")[
        "status"
    ]["stableRS"]
    ro = rollout(sim_cluster, ns, name)
    assert ro["status"]["currentStepIndex"] == 4  # the first deploy skips the steps

    set_image(sim_cluster, ns, name, "argoproj/rollouts-demo:yellow")
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Paused", "CanaryPauseStep"), what="paused at step 1")
    canary = ro["status"]["currentPodHash"]
    assert ro["status"]["currentStepIndex"] == 1
    sets = replicasets(sim_cluster, ns)
    assert (sets[canary]["spec"]["replicas"], sets[stable]["spec"]["replicas"]) == (2, 2)

    patch_status(sim_cluster, ns, name, {"pauseConditions": None})  # promote
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="all steps done")
    assert ro["status"]["stableRS"] == canary and ro["status"]["currentStepIndex"] == 4
    sets = replicasets(sim_cluster, ns)
    assert (sets[canary]["spec"]["replicas"], sets[stable]["spec"]["replicas"]) == (4, 0)

    set_image(sim_cluster, ns, name, "argoproj/rollouts-demo:red")
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Paused"), what="paused again")
    third = ro["status"]["currentPodHash"]
    patch_status(sim_cluster, ns, name, {"abort": True})  # kubectl argo rollouts abort
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Degraded", "RolloutAborted"), what="aborted")
    assert ro["status"]["stableRS"] == canary and "pauseConditions" not in ro["status"]
    deadline = time.monotonic() + 30
    while True:
        sets = replicasets(sim_cluster, ns)
        if (sets[third]["spec"]["replicas"], sets[canary]["spec"]["replicas"]) == (0, 4):
            break
        assert time.monotonic() < deadline, "the abort did not scale back to stable"
        time.sleep(0.2)
    patch_status(sim_cluster, ns, name, {"abort": False})  # retry
    wait_rollout(
        sim_cluster, ns, name, phase_is("Paused", "CanaryPauseStep"), what="retried, paused at step 1"
    )


@pytest.mark.skipif(EXAMPLES is None, reason="TUGBOAT_EXAMPLES is not set")
def test_workload_ref_example_follows_the_deployment_template(
    sim_cluster: ClusterProcess,
    sim_namespace: str,
    controller: subprocess.Popen[bytes],
    kubectl_available: None,
) -> None:
    ns, name = sim_namespace, "rollout-ref-deployment"
    manifest = Path(str(EXAMPLES)) / "examples" / "workload-ref" / "workload-ref.yaml"
    sim_cluster.kubectl("-n", ns, "apply", "-f", str(manifest))
    ro = wait_rollout(
        sim_cluster, ns, name, phase_is("Healthy"), what="the referenced template Healthy", timeout=90
    )
    assert ro["status"]["availableReplicas"] == 5
    assert ro["status"]["workloadObservedGeneration"] == "1"
    assert ro["metadata"]["annotations"]["rollout.argoproj.io/workload-generation"] == "1"
    assert "template" not in ro["spec"]  # resolved, never persisted
    # A new image in the Deployment is a new revision of the Rollout: 20 %, a 10 s pause, then done.
    sim_cluster.kubectl(
        "-n", ns, "set", "image", f"deployment/{name}", "rollouts-demo=argoproj/rollouts-demo:green"
    )
    ro = wait_rollout(sim_cluster, ns, name, phase_is("Paused", "CanaryPauseStep"), what="paused at 20 %")
    sets = replicasets(sim_cluster, ns)
    assert sets[ro["status"]["currentPodHash"]]["spec"]["replicas"] == 1
    wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="green Healthy after the pause", timeout=60)


def test_restart_replaces_every_pod(
    sim_cluster: ClusterProcess,
    sim_namespace: str,
    controller: subprocess.Popen[bytes],
    kubectl_available: None,
) -> None:
    ns, name = sim_namespace, "bg-restart"
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=bluegreen_manifests(name, "demo:v1"))
    wait_rollout(sim_cluster, ns, name, phase_is("Healthy"), what="Healthy")
    with sim_cluster.client() as client:
        before = {p["metadata"]["name"] for p in client.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]}
    restart_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    sim_cluster.kubectl(
        "-n",
        ns,
        "patch",
        "rollout",
        name,
        "--type",
        "merge",
        "-p",
        f'{{"spec":{{"restartAt":"{restart_at}"}}}}',
    )
    ro = wait_rollout(
        sim_cluster,
        ns,
        name,
        lambda r: (r.get("status") or {}).get("restartedAt") == restart_at,
        what="restarted",
    )
    assert ro["status"]["phase"] in ("Healthy", "Progressing")
    with sim_cluster.client() as client:
        pods = client.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
    live = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
    assert len(live) == 2 and not live & before
