"""Analysis driving Rollouts end to end on the simulated cluster, with the controller process running
both the rollout and the AnalysisRun controllers: a canary ``analysis`` step that passes promotes, one
that fails aborts back to stable (Degraded with upstream's message), an inconclusive one pauses,
background analysis aborts mid-update, and blue-green pre-promotion analysis gates the switch.

The metrics come from a Web endpoint served by the test (an external metrics system, which is what may
be stood in for): its answer decides each measurement.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rollouts_e2e_support import (
    JsonEndpoint,
    Obj,
    RolloutHandle,
    apply,
    get,
    items,
    start_controller,
    stop_controller,
    wait_for,
)

from clusterproc import ClusterProcess


class Metrics(JsonEndpoint):
    """A tiny metrics service: ``GET /<name>`` answers ``{"ok": <value>}`` with the value set by the test."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        super().__init__(lambda name: {"ok": self.values.get(name, True)})


@pytest.fixture(scope="module")
def metrics() -> Iterator[Metrics]:
    service = Metrics()
    yield service
    service.close()


@pytest.fixture(scope="module")
def controller(sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("analysis-e2e"))
    yield
    stop_controller(proc)


def template(name: str, url: str, *, interval: str | None = None, count: int | None = None) -> Obj:
    metric: Obj = {
        "name": "ok",
        "successCondition": "result == true",
        "failureCondition": "result == false",
        "provider": {"web": {"url": url, "jsonPath": "{$.ok}"}},
    }
    if interval:
        metric["interval"] = interval
    if count:
        metric["count"] = count
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"metrics": [metric]},
    }


def rollout(name: str, strategy: Obj) -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
            },
            "strategy": strategy,
        },
    }


def service(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name.split("-")[0]}, "ports": [{"port": 80}]},
    }


def runs(cluster: ClusterProcess, namespace: str) -> list[Obj]:
    return items(cluster, f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/analysisruns")


def deployed(
    cluster: ClusterProcess, namespace: str, docs: list[Obj], name: str
) -> tuple[RolloutHandle, str]:
    apply(cluster, namespace, docs)
    ro = RolloutHandle(cluster, namespace, name)
    status = ro.wait_phase("Healthy", timeout=60)["status"]
    return ro, str(status["stableRS"])


def canary_with_analysis_step(name: str) -> Obj:
    return rollout(
        name,
        {"canary": {"steps": [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": name}]}}]}},
    )


@pytest.mark.usefixtures("controller")
def test_analysis_step_passes_and_promotes(
    sim_cluster: ClusterProcess, sim_namespace: str, metrics: Metrics
) -> None:
    docs = [template("pass", metrics.url("pass")), canary_with_analysis_step("pass")]
    ro, rev1 = deployed(sim_cluster, sim_namespace, docs, "pass")
    ro.set_image("demo:2")
    status = ro.wait_update(rev1, "Healthy", timeout=90)["status"]
    assert status["stableRS"] == status["currentPodHash"] != rev1
    (run,) = runs(sim_cluster, sim_namespace)
    assert run["status"]["phase"] == "Successful"
    assert run["metadata"]["name"] == f"pass-{status['currentPodHash']}-2-1"
    labels = run["metadata"]["labels"]
    assert (labels["rollout-type"], labels["step-index"]) == ("Step", "1")
    assert run["status"]["metricResults"][0]["measurements"][0]["value"] == "true"
    assert run["metadata"]["ownerReferences"][0]["name"] == "pass"


@pytest.mark.usefixtures("controller")
def test_failed_analysis_step_aborts_back_to_stable(
    sim_cluster: ClusterProcess, sim_namespace: str, metrics: Metrics
) -> None:
    metrics.values["fail"] = False
    docs = [template("fail", metrics.url("fail")), canary_with_analysis_step("fail")]
    ro, rev1 = deployed(sim_cluster, sim_namespace, docs, "fail")
    ro.set_image("demo:2")
    status = ro.wait_update(rev1, "Degraded", timeout=90)["status"]
    assert status["message"] == (
        "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed: "
        'Metric "ok" assessed Failed due to failed (1) > failureLimit (0)'
    )
    assert status["stableRS"] == rev1 and status["abort"] is True
    # Back on stable: the canary ReplicaSet goes to zero, the stable one is whole.
    canary = status["currentPodHash"]
    wait_for(lambda: ro.pod_count(canary) == 0 and ro.pod_count(rev1) == 2, what="the canary pods gone")
    # Once aborted, the canary lets go of its current run (as upstream); the run itself stays Failed.
    status = ro.status()
    assert "currentStepAnalysisRunStatus" not in status.get("canary", {})
    assert status["currentStepIndex"] == 0 and status["phase"] == "Degraded"
    assert [r["status"]["phase"] for r in runs(sim_cluster, sim_namespace)] == ["Failed"]


@pytest.mark.usefixtures("controller")
def test_inconclusive_analysis_pauses(
    sim_cluster: ClusterProcess, sim_namespace: str, metrics: Metrics
) -> None:
    metrics.values["unsure"] = "maybe"  # neither condition holds
    docs = [template("unsure", metrics.url("unsure")), canary_with_analysis_step("unsure")]
    ro, rev1 = deployed(sim_cluster, sim_namespace, docs, "unsure")
    ro.set_image("demo:2")
    status = ro.wait_update(rev1, "Paused", "InconclusiveAnalysisRun", timeout=90)["status"]
    assert [p["reason"] for p in status["pauseConditions"]] == ["InconclusiveAnalysisRun"]
    # Promote (clears the pause): a fresh run measures again, and this time it passes.
    metrics.values["unsure"] = True
    ro.patch_status({"pauseConditions": None})
    ro.wait_phase("Healthy", timeout=90)
    phases = sorted(r["status"]["phase"] for r in runs(sim_cluster, sim_namespace))
    assert phases == ["Inconclusive", "Successful"]


@pytest.mark.usefixtures("controller")
def test_background_analysis_failure_aborts(
    sim_cluster: ClusterProcess, sim_namespace: str, metrics: Metrics
) -> None:
    metrics.values["bg"] = True
    strategy = {
        "canary": {
            "analysis": {"templates": [{"templateName": "bg"}], "startingStep": 1},
            "steps": [{"setWeight": 50}, {"pause": {}}],
        }
    }
    docs = [template("bg", metrics.url("bg"), interval="1s"), rollout("bg", strategy)]
    ro, rev1 = deployed(sim_cluster, sim_namespace, docs, "bg")
    ro.set_image("demo:2")
    ro.wait_update(rev1, "Paused", "CanaryPauseStep", timeout=90)
    run = wait_for(lambda: runs(sim_cluster, sim_namespace), what="the background run")[0]
    assert run["metadata"]["labels"]["rollout-type"] == "Background"
    metrics.values["bg"] = False
    status = ro.wait_phase("Degraded", timeout=60)["status"]
    assert "Background analysis phase error/failed" in status["message"]
    assert status["stableRS"] == rev1


@pytest.mark.usefixtures("controller")
def test_blue_green_pre_promotion_analysis_gates_the_switch(
    sim_cluster: ClusterProcess, sim_namespace: str, metrics: Metrics
) -> None:
    metrics.values["pre"] = False
    strategy = {
        "blueGreen": {
            "activeService": "pre-active",
            "previewService": "pre-preview",
            "prePromotionAnalysis": {"templates": [{"templateName": "pre"}]},
        }
    }
    docs = [
        template("pre", metrics.url("pre")),
        service("pre-active"),
        service("pre-preview"),
        rollout("pre", strategy),
    ]
    ro, rev1 = deployed(sim_cluster, sim_namespace, docs, "pre")
    ro.set_image("demo:2")
    status = ro.wait_update(rev1, "Degraded", timeout=90)["status"]
    assert "Blue/green pre-promotion analysis phase error/failed" in status["message"]
    assert ro.service_hash("pre-active") == rev1
    assert status["blueGreen"]["prePromotionAnalysisRunStatus"]["status"] == "Failed"
    # Retry with a passing metric: a fresh run, then the switch.
    metrics.values["pre"] = True
    ro.patch_status({"abort": False})
    status = ro.wait_phase("Healthy", timeout=90)["status"]
    assert ro.service_hash("pre-active") == status["currentPodHash"] != rev1
    names = sorted(r["metadata"]["name"] for r in runs(sim_cluster, sim_namespace))
    assert names == [f"pre-{status['currentPodHash']}-2-pre", f"pre-{status['currentPodHash']}-2-pre.1"]
    assert get(sim_cluster, f"/api/v1/namespaces/{sim_namespace}/services/pre-active") is not None
