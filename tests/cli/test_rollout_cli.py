"""``tugboat rollout …`` against a real (bare) local cluster, with the tests playing the controller.

Each command must write exactly the fields ``kubectl argo rollouts`` writes, in the same place (spec
through the object, status through ``/status``), so every write test reads the Rollout back and compares
every leaf of ``spec`` and ``status`` before and after. Where a controller would act (report a phase), a
test patches the status itself, sometimes from a thread while a command watches.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clusterproc import ClusterProcess
from tugboat.cli import rolloutcmd
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import actions, crds

runner = CliRunner()
HASH = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
ROLLOUT_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "rollouts.argoproj.io"},
    "spec": {
        "group": "argoproj.io",
        "scope": "Namespaced",
        "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts", "singular": "rollout"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.HPAReplicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }
        ],
    },
}
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": "10s"}}]


def ensure_crd(cluster: ClusterProcess, crd: dict[str, Any]) -> None:
    """Create ``crd`` unless it exists (other test modules may own it: never delete it), then wait until
    its resource is served."""
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    with cluster.client() as http:
        response = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
        assert response.status_code in (201, 409), response.text
        deadline = time.monotonic() + 10
        while http.get(f"/apis/{group}/v1alpha1/{plural}").status_code != 200:
            assert time.monotonic() < deadline, f"{plural}.{group} is not served"
            time.sleep(0.05)


@pytest.fixture(scope="session")
def cluster(argo_cluster: ClusterProcess) -> ClusterProcess:
    """Argo's Rollout CRD lives on its own API server (see tests/conftest.py ``argo_cluster``)."""
    return argo_cluster


@pytest.fixture(scope="module")
def kube(cluster: ClusterProcess) -> ClusterProcess:
    ensure_crd(cluster, ROLLOUT_CRD)
    return cluster


# ------------------------------------------------------------------------------------------ helpers


def cli(kube: ClusterProcess, namespace: str, *args: str) -> Any:
    return runner.invoke(
        rolloutcmd.rollout_cli, [*args, "--kubeconfig", str(kube.kubeconfig), "-n", namespace]
    )


def _path(namespace: str, name: str = "", sub: str = "") -> str:
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts"
    return "/".join(part for part in (base, name, sub) if part)


def get_ro(kube: ClusterProcess, namespace: str, name: str) -> dict[str, Any]:
    with kube.client() as http:
        response = http.get(_path(namespace, name))
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def patch_status(kube: ClusterProcess, namespace: str, name: str, status: dict[str, Any]) -> None:
    with kube.client() as http:
        response = http.patch(
            _path(namespace, name, "status"),
            content=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert response.status_code == 200, response.text


def pod_template(image: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web", **labels}},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def make_rollout(
    kube: ClusterProcess,
    namespace: str,
    name: str = "web",
    *,
    strategy: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    ro = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template("nginx:1.27"),
            "strategy": strategy if strategy is not None else {"canary": {"steps": STEPS}},
            **spec,
        },
    }
    with kube.client() as http:
        response = http.post(_path(namespace), json=ro)
    assert response.status_code == 201, response.text
    if status is not None:
        patch_status(kube, namespace, name, {"observedGeneration": "1", **status})
    return get_ro(kube, namespace, name)


def leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of ``obj`` as ``{"a.b[0].c": value}`` (empty containers are leaves)."""
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(obj, list) and obj:
        out = {}
        for i, value in enumerate(obj):
            out.update(leaves(value, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed in ``spec`` and ``status``: ``{path: new value}`` (``<removed>`` for removed leaves)."""
    old = leaves({"spec": before.get("spec"), "status": before.get("status")})
    new = leaves({"spec": after.get("spec"), "status": after.get("status")})
    changed = {path: value for path, value in new.items() if old.get(path, "<removed>") != value}
    changed.update({path: "<removed>" for path in old if path not in new})
    return changed


def status_writer(ro: dict[str, Any]) -> bool:
    """Whether tugboat's CLI wrote the status through the ``/status`` subresource."""
    return any(
        entry.get("manager") == rolloutcmd.appcmd.FIELD_MANAGER and entry.get("subresource") == "status"
        for entry in ro["metadata"].get("managedFields") or []
    )


@pytest.fixture
def background() -> Iterator[Callable[[Callable[[], None]], None]]:
    """Run a function in a thread (the stand-in controller); its failures fail the test."""
    threads: list[threading.Thread] = []
    failures: list[BaseException] = []

    def start(fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    for thread in threads:
        thread.join(timeout=15)
    if failures:
        raise failures[0]


# ---------------------------------------------------------------------------------------- spec writes


def test_pause_and_restart_write_the_spec(kube: ClusterProcess, namespace: str) -> None:
    before = make_rollout(kube, namespace, status={"phase": "Healthy"})
    result = cli(kube, namespace, "pause", "web")
    assert result.exit_code == 0, result.output
    assert result.stdout == "rollout 'web' paused\n"
    paused = get_ro(kube, namespace, "web")
    assert changes(before, paused) == {"spec.paused": True}
    assert paused["metadata"]["generation"] == before["metadata"]["generation"] + 1

    started = datetime.datetime.now(datetime.UTC)
    result = cli(kube, namespace, "restart", "web", "--in", "1m30s")
    assert result.exit_code == 0, result.output
    assert result.stdout == "rollout 'web' restarts in 1m30s\n"
    restarted = get_ro(kube, namespace, "web")
    assert list(changes(paused, restarted)) == ["spec.restartAt"]
    at = datetime.datetime.strptime(restarted["spec"]["restartAt"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    )
    assert 89 <= (at - started).total_seconds() <= 92
    now = cli(kube, namespace, "restart", "web")
    assert now.exit_code == 0 and now.stdout == "rollout 'web' restarts in 0s\n"


def test_abort_and_retry_write_status_through_the_subresource(kube: ClusterProcess, namespace: str) -> None:
    before = make_rollout(kube, namespace, status={"phase": "Paused", "currentStepIndex": 1})
    result = cli(kube, namespace, "abort", "web")
    assert result.exit_code == 0 and result.stdout == "rollout 'web' aborted\n"
    aborted = get_ro(kube, namespace, "web")
    assert changes(before, aborted) == {"status.abort": True}
    assert aborted["metadata"]["generation"] == before["metadata"]["generation"]
    assert status_writer(aborted)

    result = cli(kube, namespace, "retry", "web")
    assert result.exit_code == 0 and result.stdout == "rollout 'web' retried\n"
    assert changes(aborted, get_ro(kube, namespace, "web")) == {"status.abort": False}


def test_status_writes_fall_back_to_the_object_without_a_status_subresource(
    kube: ClusterProcess, namespace: str
) -> None:
    """A CRD without the status subresource (how Rollouts v0.9 installed it): ``/status`` answers 404, so
    the unified patch goes to the object itself."""
    crd = json.loads(json.dumps(ROLLOUT_CRD).replace("argoproj.io", "legacy.tugboat.test"))
    del crd["spec"]["versions"][0]["subresources"]
    ensure_crd(kube, crd)
    legacy = kinds.Kind("legacy.tugboat.test", "v1alpha1", "Rollout", "rollouts")
    with kube.client() as http:
        body = {"apiVersion": legacy.api_version, "kind": "Rollout", "metadata": {"name": "old"}, "spec": {}}
        assert http.post(legacy.collection_path(namespace), json=body).status_code == 201

    async def promote() -> None:
        async with Client.from_kubeconfig(kube.kubeconfig, field_manager="test") as client:
            await actions.write_status(
                client,
                namespace,
                "old",
                status_patch={"status": {"pauseConditions": None}},
                spec_patch={"spec": {"paused": False}},
                unified_patch={"spec": {"paused": False}, "status": {"promoteFull": True}},
                kind=legacy,
            )

    asyncio.run(promote())
    with kube.client() as http:
        written = http.get(legacy.object_path("old", namespace)).json()
    assert written["spec"] == {"paused": False} and written["status"] == {"promoteFull": True}


# -------------------------------------------------------------------------------------------- promote


PAUSED_AT_STEP = {
    "phase": "Paused",
    "message": "CanaryPauseStep",
    "currentStepIndex": 1,
    "controllerPause": True,
    "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-08-01T10:00:00Z"}],
    "currentPodHash": "new",
    "stableRS": "old",
}

PAUSE_CONDITION = {"status.pauseConditions[0].reason", "status.pauseConditions[0].startTime"}


def promote(kube: ClusterProcess, namespace: str, name: str, *flags: str) -> dict[str, Any]:
    before = get_ro(kube, namespace, name)
    result = cli(kube, namespace, "promote", name, *flags)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"rollout '{name}' {'fully promoted' if flags else 'promoted'}\n"
    return changes(before, get_ro(kube, namespace, name))


def test_promote_clears_pause_conditions_or_skips_a_step(kube: ClusterProcess, namespace: str) -> None:
    make_rollout(kube, namespace, "paused", status=PAUSED_AT_STEP)
    # (With a status subresource the object ignores status changes: a status change went via /status.)
    assert set(promote(kube, namespace, "paused")) == PAUSE_CONDITION

    # Nothing pauses the rollout (an analysis step runs): the step is skipped, capped at len(steps).
    make_rollout(kube, namespace, "analysing", status={"phase": "Progressing", "currentStepIndex": 3})
    assert promote(kube, namespace, "analysing") == {"status.currentStepIndex": 4}
    assert promote(kube, namespace, "analysing") == {}

    # Paused by the user and by the controller: both are cleared.
    make_rollout(kube, namespace, "both", paused=True, status=PAUSED_AT_STEP)
    changed = promote(kube, namespace, "both")
    assert changed.pop("spec.paused") is False
    assert set(changed) == PAUSE_CONDITION

    # An inconclusive step analysis paused it: un-pause and move past the step.
    inconclusive = {
        **PAUSED_AT_STEP,
        "currentStepIndex": 2,
        "pauseConditions": [{"reason": "InconclusiveAnalysisRun", "startTime": "2026-08-01T10:00:00Z"}],
        "canary": {"currentStepAnalysisRunStatus": {"name": "web-new-2-2", "status": "Inconclusive"}},
    }
    make_rollout(kube, namespace, "inconclusive", status=inconclusive)
    changed = promote(kube, namespace, "inconclusive")
    assert changed.pop("status.controllerPause") is False and changed.pop("status.currentStepIndex") == 3
    assert set(changed) == PAUSE_CONDITION

    # Blue-green waiting before the switch.
    blue_green = {"blueGreen": {"activeService": "web-active", "autoPromotionEnabled": False}}
    pause = {
        "phase": "Paused",
        "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2026-08-01T10:00:00Z"}],
    }
    make_rollout(kube, namespace, "bg", strategy=blue_green, status={**pause, "controllerPause": True})
    assert set(promote(kube, namespace, "bg")) == PAUSE_CONDITION


def test_promote_full(kube: ClusterProcess, namespace: str) -> None:
    make_rollout(kube, namespace, "mid", status=PAUSED_AT_STEP)
    assert promote(kube, namespace, "mid", "--full") == {"status.promoteFull": True}
    # Already fully promoted: only un-pause the spec.
    make_rollout(kube, namespace, "done", paused=True, status={"currentPodHash": "a", "stableRS": "a"})
    assert promote(kube, namespace, "done", "--full") == {"spec.paused": False}


def test_resume(kube: ClusterProcess, namespace: str) -> None:
    before = make_rollout(kube, namespace, paused=True, status=PAUSED_AT_STEP)
    result = cli(kube, namespace, "resume", "web")
    assert result.exit_code == 0 and result.stdout == "rollout 'web' resumed\n"
    resumed = get_ro(kube, namespace, "web")
    changed = changes(before, resumed)
    assert changed.pop("spec.paused") is False and set(changed) == PAUSE_CONDITION
    assert resumed["status"]["controllerPause"] is True  # the controller sees the user resumed it
    again = cli(kube, namespace, "resume", "web")
    assert again.exit_code == 0 and again.stdout == "rollout 'web' is not paused\n"
    assert changes(resumed, get_ro(kube, namespace, "web")) == {}


# ------------------------------------------------------------------------------------------ set-image


def test_set_image(kube: ClusterProcess, namespace: str) -> None:
    template = pod_template("nginx:1.27")
    template["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1"}]
    template["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    before = make_rollout(kube, namespace, template=template)
    result = cli(kube, namespace, "set-image", "web", "web=nginx:1.28")
    assert result.exit_code == 0 and result.stdout == 'rollout "web" image updated\n'
    one = get_ro(kube, namespace, "web")
    assert changes(before, one) == {"spec.template.spec.containers[0].image": "nginx:1.28"}
    result = cli(kube, namespace, "set-image", "web", "*=registry.local/all:2")
    assert result.exit_code == 0, result.output
    assert changes(one, get_ro(kube, namespace, "web")) == {
        "spec.template.spec.initContainers[0].image": "registry.local/all:2",
        "spec.template.spec.containers[0].image": "registry.local/all:2",
        "spec.template.spec.containers[1].image": "registry.local/all:2",
    }
    missing = cli(kube, namespace, "set-image", "web", "nope=x:1")
    assert missing.exit_code == 1 and missing.stderr == 'error: unable to find container named "nope"\n'
    malformed = cli(kube, namespace, "set-image", "web", "just-an-image")
    assert malformed.exit_code == 1 and "expected CONTAINER=IMAGE" in malformed.stderr


# ---------------------------------------------------------------------------------------------- undo


def make_replicaset(
    kube: ClusterProcess,
    namespace: str,
    owner: dict[str, Any] | None,
    pod_hash: str,
    revision: int,
    image: str,
) -> dict[str, Any]:
    labels = {"app": "web", HASH: pod_hash}
    meta: dict[str, Any] = {
        "name": f"web-{pod_hash}",
        "labels": labels,
        "annotations": {REVISION: str(revision)},
    }
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": pod_template(image, **{HASH: pod_hash}),
        },
    }
    with kube.client() as http:
        response = http.post(f"/apis/apps/v1/namespaces/{namespace}/replicasets", json=rs)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def without_hash(rs: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(json.dumps(rs["spec"]["template"]))
    del template["metadata"]["labels"][HASH]
    return template


def test_undo(kube: ClusterProcess, namespace: str) -> None:
    ro = make_rollout(kube, namespace, template=pod_template("nginx:3"))
    first = make_replicaset(kube, namespace, ro, "h1", 1, "nginx:1")
    second = make_replicaset(kube, namespace, ro, "h2", 2, "nginx:2")
    make_replicaset(kube, namespace, ro, "h3", 3, "nginx:3")
    make_replicaset(kube, namespace, None, "h9", 9, "nginx:9")  # not the rollout's: ignored

    result = cli(kube, namespace, "undo", "web")
    assert result.exit_code == 0, result.output
    assert result.stdout == "rollout 'web' undo\n"
    undone = get_ro(kube, namespace, "web")
    # The ReplicaSet's template as the API server defaulted it, without the hash label; nothing else.
    assert undone["spec"]["template"] == without_hash(second)
    assert {path for path in changes(ro, undone) if not path.startswith("spec.template.")} == set()

    result = cli(kube, namespace, "undo", "web", "--to-revision", "1")
    assert result.exit_code == 0, result.output
    assert get_ro(kube, namespace, "web")["spec"]["template"] == without_hash(first)
    same = cli(kube, namespace, "undo", "web", "--to-revision", "1")
    assert same.exit_code == 0
    assert same.stdout == "skipped rollback (current template already matches revision 1)\n"
    unknown = cli(kube, namespace, "undo", "web", "--to-revision", "9")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: unable to find specified revision 9 in history\n"


def test_workload_ref_set_image_and_undo(kube: ClusterProcess, namespace: str) -> None:
    """With ``workloadRef`` the pod template lives in the Deployment: set-image and undo write there."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-deploy"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template("nginx:2"),
        },
    }
    with kube.client() as http:
        assert (
            http.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=deployment).status_code == 201
        )
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-deploy"}
    ro = make_rollout(kube, namespace, workloadRef=ref)
    del ro["spec"]["template"]
    with kube.client() as http:
        http.put(_path(namespace, "web"), json=ro).raise_for_status()
    ro = get_ro(kube, namespace, "web")
    first = make_replicaset(kube, namespace, ro, "h1", 1, "nginx:1")
    make_replicaset(kube, namespace, ro, "h2", 2, "nginx:2")

    def deployed() -> dict[str, Any]:
        with kube.client() as http:
            result: dict[str, Any] = http.get(
                f"/apis/apps/v1/namespaces/{namespace}/deployments/web-deploy"
            ).json()
        return result

    result = cli(kube, namespace, "set-image", "web", "web=nginx:3")
    assert result.exit_code == 0 and result.stdout == 'deployment "web-deploy" image updated\n'
    assert deployed()["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:3"
    result = cli(kube, namespace, "undo", "web")
    assert result.exit_code == 0 and result.stdout == "rollout 'web' undo\n"
    assert deployed()["spec"]["template"] == without_hash(first)
    assert changes(ro, get_ro(kube, namespace, "web")) == {}


def test_undo_without_history(kube: ClusterProcess, namespace: str) -> None:
    make_rollout(kube, namespace)
    result = cli(kube, namespace, "undo", "web")
    assert result.exit_code == 1 and result.stderr == 'error: no revision found for rollout "web"\n'


# -------------------------------------------------------------------------------------------- status


def test_status_without_watch(kube: ClusterProcess, namespace: str) -> None:
    make_rollout(kube, namespace, "healthy", status={"phase": "Healthy", "message": ""})
    make_rollout(kube, namespace, "paused", status={"phase": "Paused", "message": "BlueGreenPause"})
    aborted = "RolloutAborted: Rollout aborted update to revision 2"
    make_rollout(kube, namespace, "degraded", status={"phase": "Degraded", "message": aborted})
    make_rollout(kube, namespace, "stale", status={"phase": "Healthy", "observedGeneration": "0"})

    def status(name: str) -> Any:
        return cli(kube, namespace, "status", name, "--no-watch")

    assert (status("healthy").exit_code, status("healthy").stdout) == (0, "Healthy\n")
    watched = cli(kube, namespace, "status", "healthy", "-w")  # already done: no waiting
    assert (watched.exit_code, watched.stdout) == (0, "Healthy\n")
    assert (status("paused").exit_code, status("paused").stdout) == (0, "Paused - BlueGreenPause\n")
    degraded = status("degraded")
    assert (degraded.exit_code, degraded.stdout) == (1, "Degraded\n")
    assert degraded.stderr == f"error: the rollout is in a degraded state with message: {aborted}\n"
    assert status("stale").stdout == "Progressing - waiting for rollout spec update to be observed\n"


def test_status_watch(
    kube: ClusterProcess, namespace: str, background: Callable[[Callable[[], None]], None]
) -> None:
    make_rollout(
        kube, namespace, status={"phase": "Progressing", "message": "more replicas need to be updated"}
    )

    # Each change comes a second after the last: room for the command to start and print on a busy machine.
    def controller() -> None:
        time.sleep(1.0)
        patch_status(kube, namespace, "web", {"phase": "Paused", "message": "CanaryPauseStep"})
        time.sleep(0.5)
        patch_status(kube, namespace, "web", {"replicas": 2})  # no change of phase: nothing printed
        time.sleep(0.5)
        patch_status(kube, namespace, "web", {"phase": "Healthy", "message": ""})

    background(controller)
    result = cli(kube, namespace, "status", "web", "--timeout", "10s")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Progressing - more replicas need to be updated",
        "Paused - CanaryPauseStep",
        "Healthy",
    ]

    patch_status(kube, namespace, "web", {"phase": "Progressing", "message": "rollout is restarting"})
    timed_out = 'ProgressDeadlineExceeded: ReplicaSet "web-h2" has timed out progressing.'
    degrade = {"phase": "Degraded", "message": timed_out}
    background(lambda: (time.sleep(1.0), patch_status(kube, namespace, "web", degrade)))
    degraded = cli(kube, namespace, "status", "web", "-t", "10s")
    assert degraded.exit_code == 1
    assert degraded.stdout.splitlines() == ["Progressing - rollout is restarting", f"Degraded - {timed_out}"]
    assert degraded.stderr.startswith("error: the rollout is in a degraded state")


def test_status_watch_times_out_while_paused(kube: ClusterProcess, namespace: str) -> None:
    make_rollout(kube, namespace, status={"phase": "Paused", "message": "BlueGreenPause"})
    started = time.monotonic()
    result = cli(kube, namespace, "status", "web", "--timeout", "500ms")
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    assert result.stdout == "Paused - BlueGreenPause\n"
    assert result.stderr == "error: rollout status watch exceeded timeout\n"
    bad = cli(kube, namespace, "status", "web", "--timeout", "soon")
    assert bad.exit_code == 1 and "--timeout: 'soon' is not a duration" in bad.stderr


# ------------------------------------------------------------------------------------------ list, get


def test_list(kube: ClusterProcess, namespace: str) -> None:
    empty = cli(kube, namespace, "list")
    assert empty.exit_code == 0 and empty.stdout == "" and empty.stderr == "No resources found.\n"
    progress = {"phase": "Paused", "currentStepIndex": 1, "replicas": 2, "readyReplicas": 2}
    make_rollout(kube, namespace, "canary", status={**progress, "updatedReplicas": 1, "availableReplicas": 2})
    blue_green = {"blueGreen": {"activeService": "bg-active"}}
    make_rollout(kube, namespace, "bg", strategy=blue_green, status={"phase": "Healthy", "replicas": 2})
    result = cli(kube, namespace, "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "NAME        STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE",
        "bg          BlueGreen  Healthy       -     -           0/2    2        0           0",
        "canary      Canary     Paused        1/4   20          2/2    2        1           2",
    ]
    one = cli(kube, namespace, "list", "--name", "bg", "-o", "name")
    assert one.stdout == "rollout.argoproj.io/bg\n"
    data = json.loads(cli(kube, namespace, "list", "-o", "json").stdout)
    assert [ro["metadata"]["name"] for ro in data] == ["bg", "canary"]
    everywhere = runner.invoke(rolloutcmd.rollout_cli, ["list", "-A", "--kubeconfig", str(kube.kubeconfig)])
    lines = everywhere.stdout.splitlines()
    assert lines[0].startswith("NAMESPACE  NAME ")
    assert any(line.split()[:3] == [namespace, "canary", "Canary"] for line in lines)


def make_pod(kube: ClusterProcess, namespace: str, rs: dict[str, Any], suffix: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs['metadata']['name']}-{suffix}",
            "labels": rs["spec"]["template"]["metadata"]["labels"],
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs["metadata"]["name"],
                    "uid": rs["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": rs["spec"]["template"]["spec"],
    }
    with kube.client() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
        assert response.status_code == 201, response.text
        status = {"phase": "Running", "containerStatuses": [
            {"name": "web", "image": "nginx:2", "imageID": "", "ready": True, "restartCount": 0,
             "state": {"running": {"startedAt": "2026-08-01T10:00:00Z"}}}]}  # fmt: skip
        response = http.patch(
            f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/status",
            content=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text


def test_get(kube: ClusterProcess, namespace: str) -> None:
    status = {
        "phase": "Paused",
        "message": "CanaryPauseStep",
        "currentStepIndex": 1,
        "currentPodHash": "h2",
        "stableRS": "h1",
        "replicas": 2,
        "updatedReplicas": 1,
        "readyReplicas": 2,
        "availableReplicas": 2,
    }
    ro = make_rollout(kube, namespace, template=pod_template("nginx:2"), status=status)
    stable = make_replicaset(kube, namespace, ro, "h1", 1, "nginx:1")
    canary = make_replicaset(kube, namespace, ro, "h2", 2, "nginx:2")
    make_pod(kube, namespace, canary, "abcde")
    result = cli(kube, namespace, "get", "web")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:8] == [
        "Name:            web",
        f"Namespace:       {namespace}",
        "Status:          ॥ Paused",
        "Message:         CanaryPauseStep",
        "Strategy:        Canary",
        "  Step:          1/4",
        "  SetWeight:     20",
        "  ActualWeight:  0",  # the ReplicaSets have no status: no controller runs here
    ]
    tree = [line.split() for line in lines[lines.index("") + 1 :]]
    assert tree[0] == ["NAME", "KIND", "STATUS", "AGE", "INFO"]
    assert tree[1][:4] == ["⟳", "web", "Rollout", "॥"]
    assert tree[2] == ["├──#", "revision:2"]
    assert (
        tree[3][:5] == ["│", "└──⧉", canary["metadata"]["name"], "ReplicaSet", "◌"]
        and tree[3][-1] == "canary"
    )
    assert tree[4][:4] == ["│", "└──□", "web-h2-abcde", "Pod"] and tree[4][-1] == "ready:1/1"
    assert tree[5] == ["└──#", "revision:1"]
    assert tree[6][:3] == ["└──⧉", stable["metadata"]["name"], "ReplicaSet"] and tree[6][-1] == "stable"

    data = json.loads(cli(kube, namespace, "get", "web", "-o", "json").stdout)
    assert data["metadata"]["uid"] == ro["metadata"]["uid"]


def test_get_watch_redraws_on_changes(
    kube: ClusterProcess, namespace: str, background: Callable[[Callable[[], None]], None]
) -> None:
    make_rollout(
        kube, namespace, status={"phase": "Progressing", "message": "more replicas need to be updated"}
    )
    background(
        lambda: (time.sleep(1.2), patch_status(kube, namespace, "web", {"phase": "Healthy", "message": ""}))
    )
    started = time.monotonic()
    result = cli(kube, namespace, "get", "web", "--watch", "--timeout-seconds", "3")
    assert 2.9 < time.monotonic() - started < 10
    assert result.exit_code == 0, result.output
    views = result.stdout.split("\n\nName:")
    assert len(views) == 2, result.stdout  # plain output: one view per change, none for clock ticks
    assert "Status:          ◌ Progressing" in views[0] and "Status:          ✔ Healthy" in views[1]


# -------------------------------------------------------------------------------------------- errors


def test_unknown_rollout_and_usage_errors(kube: ClusterProcess, namespace: str) -> None:
    for args in (
        ["get", "nope"],
        ["get", "nope", "-w"],
        ["status", "nope"],
        ["promote", "nope"],
        ["abort", "nope"],
        ["retry", "nope"],
        ["pause", "nope"],
        ["resume", "nope"],
        ["restart", "nope"],
        ["set-image", "nope", "a=b"],
        ["undo", "nope"],
    ):
        result = cli(kube, namespace, *args)
        assert result.exit_code == 1, args
        assert result.stderr == f"error: rollout '{namespace}/nope' not found\n", args
    usage = cli(kube, namespace, "list", "--bogus")
    assert usage.exit_code == 1 and usage.stderr.startswith("error: No such option")
    assert len(usage.stderr.strip().splitlines()) == 1
    bad_in = cli(kube, namespace, "restart", "web", "--in", "10")
    assert bad_in.exit_code == 1 and "--in: '10' is not a duration" in bad_in.stderr


# ---------------------------------------------------------------------------------------------- lint


def test_lint(tmp_path: Path) -> None:
    valid = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template("nginx:1"),
            "strategy": {"canary": {"steps": STEPS}},
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}}
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps(service) + "\n---\n" + json.dumps(valid))
    result = runner.invoke(rolloutcmd.rollout_cli, ["lint", "-f", str(good)])
    assert result.exit_code == 0 and result.output == ""

    invalid = json.loads(json.dumps(valid))
    invalid["spec"]["strategy"]["canary"].update(maxSurge=0, maxUnavailable=0)
    invalid["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(invalid))
    result = runner.invoke(rolloutcmd.rollout_cli, ["lint", "-f", str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        'spec.template.metadata.labels: Invalid value: {"app":"other"}: '
        "`selector` does not match template `labels`",
        "spec.strategy.maxSurge: Invalid value: 0: MaxSurge and MaxUnavailable both can not be zero",
    ]
    assert result.stderr == f"error: {result.stdout.splitlines()[0]}\n"
    missing = runner.invoke(rolloutcmd.rollout_cli, ["lint", "-f", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: cannot read")


# ---------------------------------------------------------------------------- experiments and analysis


@pytest.fixture(scope="module")
def analysis_kube(kube: ClusterProcess) -> ClusterProcess:
    """The cluster with the Experiment and AnalysisRun CRDs as well."""
    for crd in (crds.experiment_crd(), crds.analysisrun_crd()):
        ensure_crd(kube, crd)
    return kube


def create_with_status(
    kube: ClusterProcess, namespace: str, plural: str, obj: dict[str, Any]
) -> dict[str, Any]:
    """Create an ``argoproj.io`` object, then write its status as a controller would: through ``/status``,
    or the object itself where the CRD has no status subresource."""
    body = {key: value for key, value in obj.items() if key != "status"}
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/{plural}"
    headers = {"Content-Type": "application/merge-patch+json"}
    with kube.client() as http:
        created = http.post(base, json=body)
        assert created.status_code == 201, created.text
        path = f"{base}/{obj['metadata']['name']}"
        patch = json.dumps({"status": obj["status"]})
        written = http.patch(f"{path}/status", content=patch, headers=headers)
        if written.status_code == 404:
            written = http.patch(path, content=patch, headers=headers)
        assert written.status_code == 200, written.text
    result: dict[str, Any] = written.json()
    return result


def owned_by(owner: dict[str, Any], **meta: Any) -> dict[str, Any]:
    reference = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    return {"ownerReferences": [reference], **meta}


def job_run(owner: dict[str, Any], name: str, phase: str, **meta: Any) -> dict[str, Any]:
    """An AnalysisRun with one Job metric measured once, with the outcome ``phase``."""
    measured = {
        "phase": phase,
        "startedAt": "2026-08-01T10:00:00Z",
        "finishedAt": "2026-08-01T10:00:05Z",
        "metadata": {"job-name": f"{name}-job-1"},
    }
    result = {"name": "job", "phase": phase, "count": 1, phase.lower(): 1, "measurements": [measured]}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, **owned_by(owner, **meta)},
        "spec": {"metrics": [{"name": "job", "provider": {"job": {"spec": {}}}}]},
        "status": {"phase": phase, "metricResults": [result]},
    }


def tree_without_ages(stdout: str) -> list[list[str]]:
    """The words of the tree's lines below the Rollout's, leaving out ages (they move on)."""
    lines = stdout.splitlines()
    rows = [line.split() for line in lines[lines.index("") + 3 :]]
    return [[word for word in row if not re.fullmatch(r"(\d+[smhdy])+", word)] for row in rows]


def test_get_shows_experiments_analysis_runs_and_jobs(analysis_kube: ClusterProcess, namespace: str) -> None:
    status = {"phase": "Paused", "currentStepIndex": 1, "currentPodHash": "h2", "stableRS": "h1"}
    ro = make_rollout(analysis_kube, namespace, template=pod_template("nginx:2"), status=status)
    make_replicaset(analysis_kube, namespace, ro, "h1", 1, "nginx:1")
    make_replicaset(analysis_kube, namespace, ro, "h2", 2, "nginx:2")
    revision_2 = {"annotations": {REVISION: "2"}, "labels": {HASH: "h2"}}
    exp = create_with_status(
        analysis_kube,
        namespace,
        "experiments",
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": "web-h2-2-0", **owned_by(ro, **revision_2)},
            "spec": {"templates": []},
            "status": {"phase": "Running"},
        },
    )
    create_with_status(
        analysis_kube, namespace, "analysisruns", job_run(exp, "web-h2-2-0-smoke", "Successful")
    )
    create_with_status(
        analysis_kube, namespace, "analysisruns", job_run(ro, "web-h2-2", "Failed", **revision_2)
    )
    other = make_rollout(analysis_kube, namespace, "other", status={})
    create_with_status(analysis_kube, namespace, "analysisruns", job_run(other, "other-1", "Error"))

    result = cli(analysis_kube, namespace, "get", "web", "--no-color")
    assert result.exit_code == 0, result.output
    assert tree_without_ages(result.stdout) == [
        ["├──#", "revision:2"],
        ["│", "├──⧉", "web-h2", "ReplicaSet", "◌", "Progressing", "canary"],
        ["│", "├──Σ", "web-h2-2-0", "Experiment", "◌", "Running"],
        ["│", "│", "└──α", "web-h2-2-0-smoke", "AnalysisRun", "✔", "Successful", "✔", "1"],
        ["│", "│", "└──⊞", "web-h2-2-0-smoke-job-1", "Job", "✔", "Successful"],
        ["│", "└──α", "web-h2-2", "AnalysisRun", "✖", "Failed", "✖", "1"],
        ["│", "└──⊞", "web-h2-2-job-1", "Job", "✖", "Failed"],
        ["└──#", "revision:1"],
        ["└──⧉", "web-h1", "ReplicaSet", "◌", "Progressing", "stable"],
    ]


def test_analysis_kinds_the_server_lacks_list_as_none(kube: ClusterProcess, namespace: str) -> None:
    """Without the Experiment or AnalysisRun CRD (404), ``get`` shows none of them instead of failing."""
    missing = kinds.Kind("missing.tugboat.test", "v1alpha1", "Nothing", "nothings")

    async def listed() -> tuple[list[Any] | None, list[Any] | None]:
        async with Client.from_kubeconfig(kube.kubeconfig, field_manager="test") as client:
            absent = await rolloutcmd.list_if_served(client, missing, namespace)
            present = await rolloutcmd.list_if_served(client, crds.ROLLOUT, namespace)
            return absent, present

    assert asyncio.run(listed()) == (None, [])


def test_get_watch_shows_a_new_analysis_run(
    analysis_kube: ClusterProcess, namespace: str, background: Callable[[Callable[[], None]], None]
) -> None:
    ro = make_rollout(analysis_kube, namespace, status={"phase": "Progressing", "currentPodHash": "h1"})
    make_replicaset(analysis_kube, namespace, ro, "h1", 1, "nginx:1")
    run = job_run(ro, "web-h1-1", "Running", annotations={REVISION: "1"})

    def controller() -> None:
        time.sleep(0.6)
        create_with_status(analysis_kube, namespace, "analysisruns", run)

    background(controller)
    result = cli(analysis_kube, namespace, "get", "web", "--watch", "--timeout-seconds", "2", "--no-color")
    assert result.exit_code == 0, result.output
    views = result.stdout.split("\n\nName:")
    assert len(views) in (2, 3), result.stdout  # the run is created, then its status written
    assert "α web-h1-1" not in views[0]
    assert "└──α web-h1-1" in views[-1] and "└──⊞ web-h1-1-job-1" in views[-1]


def run_on_terminal(kube: ClusterProcess, namespace: str, *args: str) -> str:
    """``tugboat rollout get …`` with its stdout on a pseudo-terminal; what it wrote there."""
    controller, terminal = pty.openpty()
    env = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="200", LINES="50")
    command = [sys.executable, "-m", "tugboat.cli.main", "rollout", "get", *args]
    command += ["-n", namespace, "--kubeconfig", str(kube.kubeconfig)]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=terminal, env=env) as proc:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    os.close(controller)
    return b"".join(chunks).decode()


def test_get_colours_a_terminal_unless_no_color(kube: ClusterProcess, namespace: str) -> None:
    status = {"phase": "Healthy", "currentPodHash": "h1", "stableRS": "h1"}
    ro = make_rollout(kube, namespace, template=pod_template("nginx:1"), status=status)
    make_replicaset(kube, namespace, ro, "h1", 1, "nginx:1")
    coloured = run_on_terminal(kube, namespace, "web")
    plain = run_on_terminal(kube, namespace, "web", "--no-color")
    assert "\x1b[" in coloured and "stable" in coloured
    assert "\x1b[" not in plain and "Status:          ✔ Healthy" in plain
    assert "└──⧉ web-h1" in plain  # rich did not wrap the tree's lines
