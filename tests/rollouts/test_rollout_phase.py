"""Rollout phase and message, rule by rule in upstream's order, and the client-side view."""

from __future__ import annotations

from typing import Any

import pytest

from tugboat.rollouts import conditions, phase

NOW = "2026-08-01T12:00:00Z"


def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return conditions.new_condition(type_, status, reason, message, now=NOW)


def healthy_canary(**status: Any) -> dict[str, Any]:
    """A canary Rollout at rest on revision ``abc``: every rule passes, so it is Healthy."""
    base = {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "currentPodHash": "abc",
        "stableRS": "abc",
    }
    base.update(status)
    return {
        "metadata": {"name": "demo", "generation": 2},
        "spec": {"replicas": 3, "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
        "status": base,
    }


def healthy_blue_green(**status: Any) -> dict[str, Any]:
    ro = healthy_canary(**{"blueGreen": {"activeSelector": "abc"}, **status})
    ro["spec"]["strategy"] = {"blueGreen": {"activeService": "active"}}
    return ro


def test_row_0_healthy() -> None:
    assert phase.calculate_phase(healthy_canary()) == (phase.HEALTHY, "")
    assert phase.calculate_phase(healthy_blue_green()) == (phase.HEALTHY, "")
    assert (phase.HEALTHY, phase.PROGRESSING, phase.PAUSED, phase.DEGRADED) == (
        "Healthy",
        "Progressing",
        "Paused",
        "Degraded",
    )


def test_row_1_invalid_spec_wins_over_everything_below() -> None:
    ro = healthy_canary(
        conditions=[cond("InvalidSpec", "True", "InvalidSpec", 'The Rollout "demo" is invalid: x')],
        pauseConditions=[{"reason": "CanaryPauseStep", "startTime": NOW}],
        updatedReplicas=0,
    )
    ro["spec"]["paused"] = True
    assert phase.calculate_phase(ro) == (phase.DEGRADED, 'InvalidSpec: The Rollout "demo" is invalid: x')


@pytest.mark.parametrize("reason", ["RolloutAborted", "ProgressDeadlineExceeded"])
def test_row_2_aborted_or_timed_out(reason: str) -> None:
    message = conditions.aborted_message(2, "Step-based analysis phase error/failed: boom")
    ro = healthy_canary(
        conditions=[
            cond("Available", "True", "AvailableReason", "Rollout has minimum availability"),
            cond("Progressing", "False", reason, message),
        ],
        pauseConditions=[{"reason": "CanaryPauseStep", "startTime": NOW}],
    )
    ro["spec"]["paused"] = True
    assert phase.calculate_phase(ro) == (phase.DEGRADED, f"{reason}: {message}")


def test_rows_1_2_first_matching_condition_wins() -> None:
    # upstream checks both rules in one pass over the conditions
    aborted = cond("Progressing", "False", "RolloutAborted", "Rollout aborted update to revision 3")
    invalid = cond("InvalidSpec", "True", "InvalidSpec", "bad")
    assert phase.calculate_phase(healthy_canary(conditions=[aborted, invalid]))[1].startswith(
        "RolloutAborted: "
    )
    assert phase.calculate_phase(healthy_canary(conditions=[invalid, aborted]))[1] == "InvalidSpec: bad"


def test_other_conditions_do_not_degrade() -> None:
    ro = healthy_canary(conditions=[cond("Progressing", "True", "NewReplicaSetAvailable", "ok")])
    assert phase.calculate_phase(ro) == (phase.HEALTHY, "")


def test_row_3_manual_pause_before_pause_conditions() -> None:
    ro = healthy_canary(pauseConditions=[{"reason": "CanaryPauseStep", "startTime": NOW}])
    ro["spec"]["paused"] = True
    assert phase.calculate_phase(ro) == (phase.PAUSED, "manually paused")


def test_row_4_first_pause_condition() -> None:
    ro = healthy_blue_green(
        pauseConditions=[
            {"reason": "BlueGreenPause", "startTime": NOW},
            {"reason": "InconclusiveAnalysisRun", "startTime": NOW},
        ],
        updatedReplicas=0,
    )
    assert phase.calculate_phase(ro) == (phase.PAUSED, "BlueGreenPause")


def test_row_5_restart_pending() -> None:
    ro = healthy_canary()
    ro["spec"]["restartAt"] = "2026-08-01T12:00:00Z"
    assert phase.calculate_phase(ro) == (phase.PROGRESSING, "rollout is restarting")
    ro["status"]["restartedAt"] = "2026-08-01T11:00:00Z"
    assert phase.calculate_phase(ro) == (phase.PROGRESSING, "rollout is restarting")
    ro["status"]["restartedAt"] = "2026-08-01T12:00:00+00:00"  # the same instant, spelled differently
    assert phase.calculate_phase(ro) == (phase.HEALTHY, "")


def test_row_6_more_replicas_need_to_be_updated() -> None:
    ro = healthy_canary(updatedReplicas=2)
    assert phase.calculate_phase(ro) == (phase.PROGRESSING, "more replicas need to be updated")
    ro = healthy_canary(replicas=1, updatedReplicas=0, availableReplicas=0)
    del ro["spec"]["replicas"]  # defaults to 1
    assert phase.calculate_phase(ro) == (phase.PROGRESSING, "more replicas need to be updated")


def test_row_7_updated_replicas_becoming_available() -> None:
    ro = healthy_canary(availableReplicas=2)
    assert phase.calculate_phase(ro) == (phase.PROGRESSING, "updated replicas are still becoming available")


def test_row_8_blue_green() -> None:
    pending = (phase.PROGRESSING, "active service cutover pending")
    assert phase.calculate_phase(healthy_blue_green(blueGreen={})) == pending
    assert phase.calculate_phase(healthy_blue_green(blueGreen={"activeSelector": "old"})) == pending
    # switched, but not yet stable
    verifying = (phase.PROGRESSING, "waiting for post-promotion verification to complete")
    assert phase.calculate_phase(healthy_blue_green(stableRS="old")) == verifying
    assert phase.calculate_phase(healthy_blue_green(stableRS="")) == verifying
    # old replicas still running do not matter for blue-green (scale-down delay)
    assert phase.calculate_phase(healthy_blue_green(replicas=6)) == (phase.HEALTHY, "")


def test_row_8_blue_green_post_promotion_analysis() -> None:
    ro = healthy_blue_green(stableRS="old")
    ro["spec"]["strategy"]["blueGreen"]["postPromotionAnalysis"] = {"templates": [{"templateName": "t"}]}
    waiting = (phase.PROGRESSING, "waiting for analysis to complete")
    assert phase.calculate_phase(ro) == waiting
    ro["status"]["blueGreen"]["postPromotionAnalysisRunStatus"] = {"name": "ar", "status": "Running"}
    assert phase.calculate_phase(ro) == waiting
    ro["status"]["blueGreen"]["postPromotionAnalysisRunStatus"]["status"] = "Successful"
    assert phase.calculate_phase(ro) == (
        phase.PROGRESSING,
        "waiting for post-promotion verification to complete",
    )


def test_row_9_canary() -> None:
    old_pending = (phase.PROGRESSING, "old replicas are pending termination")
    assert phase.calculate_phase(healthy_canary(replicas=4)) == old_pending
    steps = (phase.PROGRESSING, "waiting for all steps to complete")
    assert phase.calculate_phase(healthy_canary(stableRS="old")) == steps
    assert phase.calculate_phase(healthy_canary(stableRS="")) == steps
    # with traffic routing, old replicas may stay (scale-down delay): not a reason to be Progressing
    ro = healthy_canary(replicas=4)
    ro["spec"]["strategy"]["canary"]["trafficRouting"] = {"nginx": {"stableIngress": "ing"}}
    assert phase.calculate_phase(ro) == (phase.HEALTHY, "")
    ro["status"]["stableRS"] = "old"
    assert phase.calculate_phase(ro) == steps


def test_no_strategy_and_empty_status() -> None:
    assert phase.calculate_phase({"spec": {"replicas": 0}, "status": {}}) == (phase.HEALTHY, "")
    assert phase.calculate_phase({"spec": {}}) == (phase.PROGRESSING, "more replicas need to be updated")


def test_is_fully_promoted() -> None:
    assert phase.is_fully_promoted(healthy_canary())
    assert not phase.is_fully_promoted(healthy_canary(stableRS="old"))
    assert phase.is_fully_promoted({"status": {}})  # as upstream: "" == ""


def test_client_phase_waits_for_the_controller() -> None:
    ro = healthy_canary(observedGeneration="1", phase="Healthy", message="")
    assert phase.client_phase(ro) == (phase.PROGRESSING, "waiting for rollout spec update to be observed")
    ro["status"]["observedGeneration"] = "2"
    assert phase.client_phase(ro) == (phase.HEALTHY, "")
    ro["status"]["observedGeneration"] = "3"  # larger: a v0.9-style numeric hash, treated as observed
    assert phase.is_generation_observed(ro)
    ro["status"]["observedGeneration"] = "7f899f9d76"  # a v0.9 spec hash
    assert phase.is_generation_observed(ro)
    assert phase.client_phase(ro) == (phase.HEALTHY, "")


def test_client_phase_unpausing_then_status() -> None:
    ro = healthy_canary(
        observedGeneration="2", controllerPause=True, phase="Paused", message="CanaryPauseStep"
    )
    assert phase.client_phase(ro) == (phase.PROGRESSING, "waiting for rollout to unpause")
    ro["status"]["pauseConditions"] = [{"reason": "CanaryPauseStep", "startTime": NOW}]
    assert not phase.is_unpausing(ro)
    assert phase.client_phase(ro) == (phase.PAUSED, "CanaryPauseStep")


def test_client_phase_falls_back_to_calculation() -> None:
    ro = healthy_canary(observedGeneration="2", updatedReplicas=1)
    assert phase.client_phase(ro) == (phase.PROGRESSING, "more replicas need to be updated")


def test_client_phase_workload_ref_generation() -> None:
    ro = healthy_canary(observedGeneration="2", phase="Healthy", workloadObservedGeneration="4")
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}
    ro["metadata"]["annotations"] = {"rollout.argoproj.io/workload-generation": "5"}
    assert phase.client_phase(ro) == (
        phase.PROGRESSING,
        "waiting for rollout spec update to be observed for the reference workload",
    )
    ro["status"]["workloadObservedGeneration"] = "5"
    assert phase.client_phase(ro) == (phase.HEALTHY, "")
