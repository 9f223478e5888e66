"""A canary Rollout's ``experiment`` step end to end (argo-rollouts' examples/rollout-experiment-step.yaml):
the Rollout starts an Experiment that runs a canary ReplicaSet with its own AnalysisRun, waits for it, and
moves on when it succeeds - or aborts back to stable when its analysis fails.

Adaptations: the example's ``random-fail`` AnalysisTemplate (examples/analysis-templates.yaml) flips a coin
in a Job; the simulated kubelet runs no commands, so the Job's pod is told its exit code
(``sim.tugboat.dev/exit-code``) - 0 for the passing case, 1 for the failing one - and its 5 s interval
becomes 1 s. The example's experiment has neither a ``duration`` nor an analysis ``requiredForCompletion``,
so (as upstream, docs/features/experiment.md) it would run until terminated and the step would never
end on success: the passing case marks its analysis ``requiredForCompletion``.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rollouts_e2e_support import (
    EXAMPLES,
    Obj,
    RolloutHandle,
    apply,
    find,
    items,
    load_manifest,
    start_controller,
    stop_controller,
    wait_for,
)

from clusterproc import ClusterProcess

pytestmark = pytest.mark.skipif(EXAMPLES is None, reason="TUGBOAT_EXAMPLES is not set")
SIM = "sim.tugboat.dev/"


@pytest.fixture(scope="module")
def controller(sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("experiment-step"))
    yield
    stop_controller(proc)


def manifests(exit_code: str) -> list[Obj]:
    template = copy.deepcopy(
        find(load_manifest("examples/analysis-templates.yaml"), "AnalysisTemplate", "random-fail")
    )
    metric = template["spec"]["metrics"][0]
    metric["interval"] = "1s"
    pod = metric["provider"]["job"]["spec"]["template"]
    pod.setdefault("metadata", {}).setdefault("annotations", {}).update(
        {f"{SIM}exit-code": exit_code, f"{SIM}run-for": "0s"}
    )
    rollout = find(load_manifest("examples/rollout-experiment-step.yaml"), "Rollout")
    if exit_code == "0":
        step = rollout["spec"]["strategy"]["canary"]["steps"][1]["experiment"]
        step["analyses"][0]["requiredForCompletion"] = True
    return [template, rollout]


def experiments(cluster: ClusterProcess, namespace: str) -> list[Obj]:
    return items(cluster, f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/experiments")


@pytest.mark.usefixtures("controller")
def test_experiment_step_passes_and_the_rollout_completes(
    sim_cluster: ClusterProcess, sim_namespace: str
) -> None:
    apply(sim_cluster, sim_namespace, manifests("0"))
    ro = RolloutHandle(sim_cluster, sim_namespace, "rollout-experiment-step")
    rev1 = str(ro.wait_phase("Healthy", timeout=60)["status"]["stableRS"])
    ro.set_image("argoproj/rollouts-demo:yellow")
    ex = wait_for(lambda: experiments(sim_cluster, sim_namespace), what="the step's Experiment", timeout=60)[
        0
    ]
    assert ex["metadata"]["ownerReferences"][0]["name"] == "rollout-experiment-step"
    status = ro.wait_update(rev1, "Healthy", timeout=120)["status"]
    assert status["stableRS"] == status["currentPodHash"] != rev1
    (ex,) = experiments(sim_cluster, sim_namespace)
    assert ex["status"]["phase"] == "Successful", ex["status"]
    runs = items(sim_cluster, f"/apis/argoproj.io/v1alpha1/namespaces/{sim_namespace}/analysisruns")
    assert [r["status"]["phase"] for r in runs] == ["Successful"]


@pytest.mark.usefixtures("controller")
def test_failed_experiment_aborts_the_rollout(sim_cluster: ClusterProcess, sim_namespace: str) -> None:
    apply(sim_cluster, sim_namespace, manifests("1"))
    ro = RolloutHandle(sim_cluster, sim_namespace, "rollout-experiment-step")
    rev1 = str(ro.wait_phase("Healthy", timeout=60)["status"]["stableRS"])
    ro.set_image("argoproj/rollouts-demo:yellow")
    status = ro.wait_update(rev1, "Degraded", timeout=120)["status"]
    assert "Experiment analysis phase is error/failed" in status["message"], status["message"]
    assert status["stableRS"] == rev1
    (ex,) = experiments(sim_cluster, sim_namespace)
    assert ex["status"]["phase"] == "Failed"
