"""A Rollout's phase and message: the one-line answer to "how is this rollout doing?".

The controller computes ``status.phase``/``status.message`` on every status write and clients show them
verbatim: Argo CD's health check maps the phase (``Paused`` → Suspended), ``kubectl argo rollouts status``
exits on ``Degraded``. The rules and the exact messages are Argo Rollouts' (research/rollouts.md §2.3,
upstream ``utils/rollout/rolloututil.go``): :func:`calculate_phase` is the controller side,
:func:`client_phase` what a client shows (it first checks that the controller has seen the latest spec).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from tugboat.rollouts import conditions, defaults

HEALTHY = "Healthy"
PROGRESSING = "Progressing"
PAUSED = "Paused"
DEGRADED = "Degraded"

WORKLOAD_GENERATION_ANNOTATION = "rollout.argoproj.io/workload-generation"

_COMPLETED_ANALYSIS_PHASES = frozenset({"Successful", "Failed", "Error", "Inconclusive"})


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _status(ro: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(ro.get("status"))


def _count(status: Mapping[str, Any], key: str) -> int:
    value = status.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def is_fully_promoted(ro: Mapping[str, Any]) -> bool:
    """``status.stableRS == status.currentPodHash`` (true for a Rollout with neither, as upstream)."""
    status = _status(ro)
    return (status.get("stableRS") or "") == (status.get("currentPodHash") or "")


def _same_time(a: Any, b: Any) -> bool:
    """Whether two RFC 3339 timestamps are the same instant (``spec.restartAt``, ``status.restartedAt``)."""
    if a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    try:
        return datetime.datetime.fromisoformat(a) == datetime.datetime.fromisoformat(b)
    except ValueError:
        return False


def _waiting_for_post_promotion_analysis(ro: Mapping[str, Any]) -> bool:
    bg = defaults.blue_green(ro) or {}
    if bg.get("postPromotionAnalysis") is None:
        return False
    run = _dict(_dict(_status(ro).get("blueGreen")).get("postPromotionAnalysisRunStatus"))
    return not run or run.get("status") not in _COMPLETED_ANALYSIS_PHASES


def calculate_phase(ro: Mapping[str, Any]) -> tuple[str, str]:
    """The controller's ``(phase, message)`` from ``ro["spec"]`` and ``ro["status"]``.

    The first matching rule wins: a Degraded condition, a manual pause, a pause condition, a pending
    restart, replica counts, then the strategy's own cutover/promotion state; otherwise Healthy.
    """
    spec = defaults.spec(ro)
    status = _status(ro)
    for cond in status.get("conditions") or []:
        if not isinstance(cond, Mapping):
            continue
        if cond.get("type") == conditions.INVALID_SPEC:
            return DEGRADED, f"{conditions.INVALID_SPEC}: {cond.get('message', '')}"
        if cond.get("reason") in (conditions.ROLLOUT_ABORTED, conditions.PROGRESS_DEADLINE_EXCEEDED):
            return DEGRADED, f"{cond['reason']}: {cond.get('message', '')}"
    if spec.get("paused") is True:
        return PAUSED, "manually paused"
    for pause in status.get("pauseConditions") or []:
        return PAUSED, str(_dict(pause).get("reason", ""))
    restart_at = spec.get("restartAt")
    if restart_at and not _same_time(restart_at, status.get("restartedAt")):
        return PROGRESSING, "rollout is restarting"
    updated = _count(status, "updatedReplicas")
    if updated < defaults.replicas(ro):
        return PROGRESSING, "more replicas need to be updated"
    if _count(status, "availableReplicas") < updated:
        return PROGRESSING, "updated replicas are still becoming available"
    current = status.get("currentPodHash") or ""
    stable = status.get("stableRS") or ""
    if defaults.blue_green(ro) is not None:
        active = _dict(status.get("blueGreen")).get("activeSelector") or ""
        if not active or active != current:
            return PROGRESSING, "active service cutover pending"
        if not stable or not is_fully_promoted(ro):
            if _waiting_for_post_promotion_analysis(ro):
                return PROGRESSING, "waiting for analysis to complete"
            return PROGRESSING, "waiting for post-promotion verification to complete"
    elif defaults.canary(ro) is not None:
        if defaults.traffic_routing(ro) is None and _count(status, "replicas") > updated:
            return PROGRESSING, "old replicas are pending termination"
        if not stable or not is_fully_promoted(ro):
            return PROGRESSING, "waiting for all steps to complete"
    return HEALTHY, ""


def is_generation_observed(ro: Mapping[str, Any]) -> bool:
    """Whether ``status.observedGeneration`` covers ``metadata.generation``.

    A non-numeric value (a v0.9 spec hash) or a number larger than the generation counts as observed.
    """
    observed = _status(ro).get("observedGeneration")
    try:
        observed_number = int(str(observed), 10)
    except ValueError:
        return True
    generation = _dict(ro.get("metadata")).get("generation") or 0
    return observed_number >= generation


def is_unpausing(ro: Mapping[str, Any]) -> bool:
    """A client cleared the pause conditions and the controller has not reacted yet."""
    status = _status(ro)
    return status.get("controllerPause") is True and not status.get("pauseConditions")


def is_workload_generation_observed(ro: Mapping[str, Any]) -> bool:
    """For a ``workloadRef`` Rollout: whether the referenced workload's generation has been observed."""
    annotations = _dict(_dict(ro.get("metadata")).get("annotations"))
    wanted = annotations.get(WORKLOAD_GENERATION_ANNOTATION)
    if wanted is None:
        return True
    try:
        observed = int(str(_status(ro).get("workloadObservedGeneration")), 10)
        return observed == int(str(wanted), 10)
    except ValueError:
        return True


def client_phase(ro: Mapping[str, Any]) -> tuple[str, str]:
    """The ``(phase, message)`` a client shows: "not observed yet" states first, then ``status.phase``
    (falling back to :func:`calculate_phase` for controllers that do not write one)."""
    if not is_generation_observed(ro):
        return PROGRESSING, "waiting for rollout spec update to be observed"
    if is_unpausing(ro):
        return PROGRESSING, "waiting for rollout to unpause"
    if defaults.spec(ro).get("workloadRef") is not None and not is_workload_generation_observed(ro):
        return PROGRESSING, "waiting for rollout spec update to be observed for the reference workload"
    status = _status(ro)
    if status.get("phase"):
        return str(status["phase"]), str(status.get("message") or "")
    return calculate_phase(ro)
