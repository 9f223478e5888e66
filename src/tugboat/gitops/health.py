"""Resource health with Argo CD's semantics: per-kind checks, overrides, and the Application roll-up.

An Application reports not only whether Git and the cluster agree but whether what runs is well. Argo CD
answers that per resource with a built-in check chosen by group and kind (``ge:pkg/health``), lets users
override or add checks (custom Lua, see :mod:`tugboat.gitops.luahealth`), and rolls the results up into
the Application's health (``controller/health.go``). This module holds all three; the checks read plain
dicts and never touch the cluster, so the controller can call them on cached objects.

Statuses and their severity order (``health.IsWorse``): Healthy < Suspended < Progressing < Missing <
Degraded < Unknown. The messages are Argo CD's own, so users see the same text in both tools.

A deliberate difference: Argo CD 1.8+ has no built-in check for ``argoproj.io/Application`` (app of
apps users add the Lua override from ``health.md``); we ship that override as a built-in, switchable off
with ``HealthChecks(application_health=False)``. Child Applications that are Missing or Unknown are still
left out of the parent's health, as Argo CD does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tugboat.gitops import resourcekey
from tugboat.util import jsondata

log = logging.getLogger(__name__)

HEALTHY = "Healthy"
SUSPENDED = "Suspended"
PROGRESSING = "Progressing"
MISSING = "Missing"
DEGRADED = "Degraded"
UNKNOWN = "Unknown"

ORDER: tuple[str, ...] = (HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN)
"""Health codes from most to least healthy (gitops-engine's ``healthOrder``)."""
STATUSES = frozenset(ORDER)

HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"
IGNORE_HEALTHCHECK_ANNOTATION = "argocd.argoproj.io/ignore-healthcheck"
IGNORE_RESTART_POLICY_ANNOTATION = "argocd.argoproj.io/ignore-restart-policy"
HOOK_ANNOTATIONS = ("argocd.argoproj.io/hook", "helm.sh/hook")


@dataclass(frozen=True)
class HealthStatus:
    """The health of one resource or of an Application: a status code and a human message."""

    status: str
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        """The ``{status, message}`` object Argo CD writes (``message`` omitted when empty)."""
        out = {"status": self.status}
        if self.message:
            out["message"] = self.message
        return out


Check = Callable[[Mapping[str, Any]], HealthStatus | None]
"""A health check: the live object in, its health out (``None``: no opinion on this object)."""


def severity(status: str) -> int:
    """Position of a code in :data:`ORDER`; unrecognised codes rank as Healthy, as in ``IsWorse``."""
    try:
        return ORDER.index(status)
    except ValueError:
        return 0


def is_worse(current: str, new: str) -> bool:
    """Whether ``new`` is a worse health than ``current`` (gitops-engine's ``IsWorse``)."""
    return severity(new) > severity(current)


class MalformedObject(ValueError):
    """A field a built-in check reads has the wrong type; the check reports Unknown with this message."""


# ---------------------------------------------------------------------------------------------------
# Field access that tolerates missing structure but not wrong types


_get = jsondata.dig


def _int(obj: Any, *path: str, default: int = 0) -> int:
    value = _get(obj, *path)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise MalformedObject(f"{'.'.join(path)} must be an integer")
    return int(value)


def _opt_int(obj: Any, *path: str) -> int | None:
    return None if _get(obj, *path) is None else _int(obj, *path)


def _str(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedObject(f"{'.'.join(path)} must be a string")
    return value


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedObject(f"{'.'.join(path)} must be a list")
    return value


def _conditions(obj: Any, *path: str) -> list[Mapping[str, Any]]:
    return [c for c in _list(obj, *path) if isinstance(c, Mapping)]


def _condition(obj: Any, cond_type: str, *path: str) -> Mapping[str, Any] | None:
    for cond in _conditions(obj, *path):
        if cond.get("type") == cond_type:
            return cond
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _quoted(text: str) -> str:
    """Go's ``%q`` for the names Kubernetes allows."""
    return json.dumps(text)


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = _get(obj, "metadata", "annotations")
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return _text(_get(obj, "metadata", "name"))


def is_hook(obj: Mapping[str, Any]) -> bool:
    """Whether an object is a sync hook (Argo CD or Helm hook annotation)."""
    annotations = _annotations(obj)
    return any(key in annotations for key in HOOK_ANNOTATIONS)


# ---------------------------------------------------------------------------------------------------
# apps


def deployment_health(obj: Mapping[str, Any]) -> HealthStatus:
    """apps/Deployment, after ``kubectl rollout status``."""
    if _get(obj, "spec", "paused") is True:
        return HealthStatus(SUSPENDED, "Deployment is paused")
    if _int(obj, "metadata", "generation") > _int(obj, "status", "observedGeneration"):
        return HealthStatus(
            PROGRESSING,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        )
    progressing = _condition(obj, "Progressing", "status", "conditions")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return HealthStatus(DEGRADED, f"Deployment {_quoted(_name(obj))} exceeded its progress deadline")
    desired = _opt_int(obj, "spec", "replicas")
    updated = _int(obj, "status", "updatedReplicas")
    replicas = _int(obj, "status", "replicas")
    available = _int(obj, "status", "availableReplicas")
    if desired is not None and updated < desired:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated...",
        )
    if replicas > updated:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {replicas - updated} old replicas are pending termination...",
        )
    if available < updated:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...",
        )
    return HealthStatus(HEALTHY)


def statefulset_health(obj: Mapping[str, Any]) -> HealthStatus:
    """apps/StatefulSet, after ``kubectl rollout status``."""
    observed = _int(obj, "status", "observedGeneration")
    if observed == 0 or _int(obj, "metadata", "generation") > observed:
        return HealthStatus(PROGRESSING, "Waiting for statefulset spec update to be observed...")
    desired = _opt_int(obj, "spec", "replicas")
    ready = _int(obj, "status", "readyReplicas")
    updated = _int(obj, "status", "updatedReplicas")
    if desired is not None and ready < desired:
        return HealthStatus(PROGRESSING, f"Waiting for {desired - ready} pods to be ready...")
    strategy = _text(_get(obj, "spec", "updateStrategy", "type")) or "RollingUpdate"
    rolling = _get(obj, "spec", "updateStrategy", "rollingUpdate")
    if strategy == "RollingUpdate" and isinstance(rolling, Mapping):
        partition = _opt_int(rolling, "partition")
        if desired is not None and partition is not None and updated < desired - partition:
            return HealthStatus(
                PROGRESSING,
                f"Waiting for partitioned roll out to finish: {updated} out of {desired - partition} "
                "new pods have been updated...",
            )
        return HealthStatus(
            HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated..."
        )
    if strategy == "OnDelete":
        return HealthStatus(HEALTHY, f"statefulset has {ready} ready pods")
    update_revision = _str(obj, "status", "updateRevision")
    current_revision = _str(obj, "status", "currentRevision")
    if update_revision != current_revision:
        return HealthStatus(
            PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{update_revision}...",
        )
    current = _int(obj, "status", "currentReplicas")
    return HealthStatus(
        HEALTHY, f"statefulset rolling update complete {current} pods at revision {current_revision}..."
    )


def daemonset_health(obj: Mapping[str, Any]) -> HealthStatus:
    """apps/DaemonSet, after ``kubectl rollout status``."""
    if _int(obj, "metadata", "generation") > _int(obj, "status", "observedGeneration"):
        return HealthStatus(
            PROGRESSING,
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        )
    desired = _int(obj, "status", "desiredNumberScheduled")
    updated = _int(obj, "status", "updatedNumberScheduled")
    available = _int(obj, "status", "numberAvailable")
    if _get(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return HealthStatus(HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated")
    name = _quoted(_name(obj))
    if updated < desired:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for daemon set {name} rollout to finish: {updated} out of {desired} new pods have "
            "been updated...",
        )
    if available < desired:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for daemon set {name} rollout to finish: {available} of {desired} updated pods are "
            "available...",
        )
    return HealthStatus(HEALTHY)


def replicaset_health(obj: Mapping[str, Any]) -> HealthStatus:
    """apps/ReplicaSet."""
    if _int(obj, "metadata", "generation") > _int(obj, "status", "observedGeneration"):
        return HealthStatus(
            PROGRESSING,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        )
    failure = _condition(obj, "ReplicaFailure", "status", "conditions")
    if failure is not None and failure.get("status") == "True":
        return HealthStatus(DEGRADED, _text(failure.get("message")))
    desired = _opt_int(obj, "spec", "replicas")
    available = _int(obj, "status", "availableReplicas")
    if desired is not None and available < desired:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {desired} new replicas are available...",
        )
    return HealthStatus(HEALTHY)


# ---------------------------------------------------------------------------------------------------
# core


def _pod_fail_message(status: Mapping[str, Any]) -> str:
    terminated = _get(status, "state", "terminated")
    if not isinstance(terminated, Mapping):
        return ""
    if _text(terminated.get("message")):
        return _text(terminated.get("message"))
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled"
    exit_code = terminated.get("exitCode")
    if isinstance(exit_code, int) and exit_code != 0:
        return f"container {_quoted(_text(status.get('name')))} failed with exit code {exit_code}"
    return ""


def _waiting_in_error(reason: str) -> bool:
    return reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff")


def pod_health(obj: Mapping[str, Any]) -> HealthStatus:
    """Pod: phase, readiness and container errors; restart policy decides whether errors are final."""
    restart_policy = _str(obj, "spec", "restartPolicy") or "Always"
    if IGNORE_RESTART_POLICY_ANNOTATION in _annotations(obj) and not is_hook(obj):
        restart_policy = "Always"
    message = _str(obj, "status", "message")
    container_statuses = _conditions(obj, "status", "containerStatuses")
    if restart_policy == "Always":
        # Errors such as CrashLoopBackOff or ImagePullBackOff are only final for long-running pods:
        # a hook pod (Never/OnFailure) may still recover, and failing it early would break the hook.
        messages = []
        for status in container_statuses:
            waiting = _get(status, "state", "waiting")
            if isinstance(waiting, Mapping) and _waiting_in_error(_text(waiting.get("reason"))):
                messages.append(_text(waiting.get("message")))
        if messages:
            return HealthStatus(DEGRADED, ", ".join(messages))
    phase = _str(obj, "status", "phase")
    if phase == "Pending":
        return HealthStatus(PROGRESSING, message)
    if phase == "Succeeded":
        return HealthStatus(HEALTHY, message)
    if phase == "Failed":
        if message:
            return HealthStatus(DEGRADED, message)
        for status in [*_conditions(obj, "status", "initContainerStatuses"), *container_statuses]:
            fail = _pod_fail_message(status)
            if fail:
                return HealthStatus(DEGRADED, fail)
        return HealthStatus(DEGRADED, "")
    if phase == "Running":
        if restart_policy == "Always":
            ready = _condition(obj, "Ready", "status", "conditions")
            if ready is not None and ready.get("status") == "True":
                return HealthStatus(HEALTHY, message)
            if any(isinstance(_get(s, "lastState", "terminated"), Mapping) for s in container_statuses):
                return HealthStatus(DEGRADED, message)
            return HealthStatus(PROGRESSING, message)
        if restart_policy in ("OnFailure", "Never"):
            # Pods with a finite life are typically hooks: running is not done yet.
            return HealthStatus(PROGRESSING, message)
    return HealthStatus(UNKNOWN, message)


def pvc_health(obj: Mapping[str, Any]) -> HealthStatus:
    """PersistentVolumeClaim: Bound, Pending or Lost."""
    phase = _str(obj, "status", "phase")
    if phase == "Bound":
        return HealthStatus(HEALTHY)
    if phase == "Pending":
        return HealthStatus(PROGRESSING)
    if phase == "Lost":
        return HealthStatus(DEGRADED)
    return HealthStatus(UNKNOWN)


def _has_lb_ingress(obj: Mapping[str, Any]) -> bool:
    return len(_list(obj, "status", "loadBalancer", "ingress")) > 0


def service_health(obj: Mapping[str, Any]) -> HealthStatus:
    """Service: a LoadBalancer is Progressing until an ingress point is assigned."""
    if _get(obj, "spec", "type") == "LoadBalancer" and not _has_lb_ingress(obj):
        return HealthStatus(PROGRESSING)
    return HealthStatus(HEALTHY)


def ingress_health(obj: Mapping[str, Any]) -> HealthStatus:
    """Ingress: Healthy once the controller has published a load-balancer address."""
    return HealthStatus(HEALTHY if _has_lb_ingress(obj) else PROGRESSING)


# ---------------------------------------------------------------------------------------------------
# batch, autoscaling, apiregistration


def job_health(obj: Mapping[str, Any]) -> HealthStatus:
    """batch/Job: Complete, Failed or Suspended conditions."""
    failed = complete = suspended = False
    message = fail_message = ""
    for cond in _conditions(obj, "status", "conditions"):
        cond_type = cond.get("type")
        if cond_type == "Failed":
            failed = complete = True
            fail_message = _text(cond.get("message"))
        elif cond_type == "Complete":
            complete = True
            message = _text(cond.get("message"))
        elif cond_type == "Suspended":
            complete = True
            message = _text(cond.get("message"))
            suspended = suspended or cond.get("status") == "True"
    if not complete:
        return HealthStatus(PROGRESSING, message)
    if failed:
        return HealthStatus(DEGRADED, fail_message)
    if suspended:
        return HealthStatus(SUSPENDED, message)
    return HealthStatus(HEALTHY, message)


def cronjob_health(obj: Mapping[str, Any]) -> HealthStatus:
    """batch/CronJob (Argo CD's bundled ``health.lua``): only a failed last run is unhealthy."""
    if _get(obj, "spec", "suspend") is True:
        return HealthStatus(SUSPENDED, "CronJob is Suspended")
    status = _get(obj, "status")
    if not isinstance(status, Mapping):
        return HealthStatus(PROGRESSING, "Waiting for CronJob")
    last_schedule = _str(status, "lastScheduleTime")
    last_success = _str(status, "lastSuccessfulTime")
    if not last_schedule:
        return HealthStatus(HEALTHY, "CronJob has not been scheduled yet")
    if not last_success:
        return HealthStatus(HEALTHY, "The Cronjob never completed succesfully. It may not be healthy")
    if _list(status, "active"):
        return HealthStatus(HEALTHY, "The job is running. Its last execution may not have been successful")
    if last_success < last_schedule:
        return HealthStatus(DEGRADED, "CronJob has not completed its last execution successfully")
    return HealthStatus(HEALTHY, "CronJob has completed its last execution successfully")


_HPA_WAITING = HealthStatus(PROGRESSING, "Waiting to Autoscale")
_HPA_DEGRADED = {
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetContainerResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "FailedComputeMetricsReplicas"),
    ("ScalingActive", "InvalidSelector"),
}


def hpa_health(obj: Mapping[str, Any]) -> HealthStatus:
    """autoscaling/HorizontalPodAutoscaler: its conditions (v1 keeps them in an annotation)."""
    if obj.get("apiVersion") == "autoscaling/v1":
        raw = _annotations(obj).get("autoscaling.alpha.kubernetes.io/conditions")
        if raw is None:
            return _HPA_WAITING
        try:
            decoded = json.loads(raw) if isinstance(raw, str) else None
        except ValueError as exc:
            raise MalformedObject(f"failed to convert conditions annotation to typed: {exc}") from exc
        if not isinstance(decoded, list):
            raise MalformedObject("failed to convert conditions annotation to typed: not a list")
        conditions = [c for c in decoded if isinstance(c, Mapping)]
    else:
        conditions = _conditions(obj, "status", "conditions")
    for cond in conditions:
        cond_type, reason = cond.get("type"), cond.get("reason")
        if (cond_type, reason) in _HPA_DEGRADED:
            return HealthStatus(DEGRADED, _text(cond.get("message")))
        if cond_type in ("AbleToScale", "ScalingLimited") and cond.get("status") == "True":
            return HealthStatus(HEALTHY, _text(cond.get("message")))
    return _HPA_WAITING


def apiservice_health(obj: Mapping[str, Any]) -> HealthStatus:
    """apiregistration.k8s.io/APIService: the Available condition."""
    available = _condition(obj, "Available", "status", "conditions")
    if available is None:
        return HealthStatus(PROGRESSING, "Waiting to be processed")
    message = f"{_text(available.get('reason'))}: {_text(available.get('message'))}"
    return HealthStatus(HEALTHY if available.get("status") == "True" else PROGRESSING, message)


# ---------------------------------------------------------------------------------------------------
# argoproj.io


def workflow_health(obj: Mapping[str, Any]) -> HealthStatus:
    """argoproj.io/Workflow: its phase."""
    phase = _str(obj, "status", "phase")
    message = _str(obj, "status", "message")
    if phase in ("", "Pending", "Running"):
        return HealthStatus(PROGRESSING, message)
    if phase == "Succeeded":
        return HealthStatus(HEALTHY, message)
    if phase in ("Failed", "Error"):
        return HealthStatus(DEGRADED, message)
    return HealthStatus(UNKNOWN, message)


def _number(value: Any) -> float | None:
    """Lua's ``tonumber`` on a JSON value."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _rollout_generation_observed(obj: Mapping[str, Any]) -> bool:
    status = _get(obj, "status")
    if not isinstance(status, Mapping):
        return False
    observed = _number(status.get("observedGeneration"))
    generation = _number(_get(obj, "metadata", "generation"))
    if observed is None or generation is None or observed > generation:
        return True  # Rollouts before v0.10 wrote a hash here, not a number
    return observed == generation


def _rollout_workload_observed(obj: Mapping[str, Any]) -> bool:
    annotations = _get(obj, "metadata", "annotations")
    if _get(obj, "spec", "workloadRef") is None or not isinstance(annotations, Mapping):
        return True
    wanted = _number(annotations.get("rollout.argoproj.io/workload-generation"))
    return wanted == _number(_get(obj, "status", "workloadObservedGeneration"))


def rollout_health(obj: Mapping[str, Any]) -> HealthStatus:
    """argoproj.io/Rollout (Argo CD's bundled ``health.lua``): ``status.phase`` since Rollouts v1.0."""
    if not _rollout_generation_observed(obj) or not _rollout_workload_observed(obj):
        return HealthStatus(PROGRESSING, "Waiting for rollout spec update to be observed")
    status = _get(obj, "status")
    phase = _get(status, "phase")
    if phase is not None:
        code = SUSPENDED if phase == "Paused" else phase
        if code not in STATUSES:
            return HealthStatus(UNKNOWN, f"Rollout reports an unknown phase {phase!r}")
        return HealthStatus(code, _text(_get(status, "message")))
    return _legacy_rollout_health(obj)


def _legacy_rollout_health(obj: Mapping[str, Any]) -> HealthStatus:
    """Rollouts before v1.0 did not record a phase; Argo CD inferred one from replicas and strategy."""
    for cond in _conditions(obj, "status", "conditions"):
        if cond.get("type") == "InvalidSpec" or (
            cond.get("type") == "Progressing"
            and cond.get("reason") in ("RolloutAborted", "ProgressDeadlineExceeded")
        ):
            return HealthStatus(DEGRADED, _text(cond.get("message")))
    if _list(obj, "status", "pauseConditions") or _get(obj, "spec", "paused") is True:
        return HealthStatus(SUSPENDED, "Rollout is paused")
    current_hash = _get(obj, "status", "currentPodHash")
    if current_hash is None:
        return HealthStatus(PROGRESSING, "Waiting for rollout to finish: status has not been reconciled.")
    desired = _int(obj, "spec", "replicas", default=1)
    replicas = _int(obj, "status", "replicas")
    updated = _int(obj, "status", "updatedReplicas")
    available = _int(obj, "status", "availableReplicas")
    if updated < desired:
        return HealthStatus(PROGRESSING, "Waiting for roll out to finish: More replicas need to be updated")
    if available < updated:
        return HealthStatus(
            PROGRESSING, "Waiting for roll out to finish: updated replicas are still becoming available"
        )
    stable = _get(obj, "status", "stableRS")
    if stable is None:
        stable = _get(obj, "status", "canary", "stableRS")
    stable = stable if isinstance(stable, str) else ""
    if _get(obj, "spec", "strategy", "blueGreen") is not None:
        if _get(obj, "status", "blueGreen", "activeSelector") != current_hash:
            return HealthStatus(PROGRESSING, "active service cutover pending")
        if stable and stable != current_hash:
            return HealthStatus(PROGRESSING, "waiting for analysis to complete")
    elif _get(obj, "spec", "strategy", "canary") is not None:
        if replicas > updated:
            return HealthStatus(
                PROGRESSING, "Waiting for roll out to finish: old replicas are pending termination"
            )
        if not stable or stable != current_hash:
            return HealthStatus(PROGRESSING, "Waiting for rollout to finish steps")
    return HealthStatus(HEALTHY)


_ANALYSIS_PHASES = {
    "Pending": (PROGRESSING, None),
    "Running": (PROGRESSING, None),
    "Successful": (HEALTHY, "Analysis run completed successfully"),
    "Failed": (DEGRADED, "Analysis run failed"),
    "Error": (DEGRADED, "Analysis run had an error"),
    "Inconclusive": (UNKNOWN, "Analysis run was inconclusive"),
}


def analysisrun_health(obj: Mapping[str, Any]) -> HealthStatus:
    """argoproj.io/AnalysisRun (Argo CD's bundled ``health.lua``): its phase."""
    status = _get(obj, "status")
    if not isinstance(status, Mapping):
        return HealthStatus(
            PROGRESSING, "Waiting for analysis run to finish: status has not been reconciled."
        )
    phase = status.get("phase")
    if phase not in _ANALYSIS_PHASES:
        return HealthStatus(UNKNOWN, f"AnalysisRun reports an unknown phase {phase!r}")
    code, default = _ANALYSIS_PHASES[phase]
    if default is None:
        return HealthStatus(code, "Analysis run is running")
    message = status.get("message")
    return HealthStatus(code, message if isinstance(message, str) else default)


def child_application_health(obj: Mapping[str, Any]) -> HealthStatus:
    """argoproj.io/Application (app of apps): the child Application's own health, as ``health.md``'s
    Lua override reports it."""
    health = _get(obj, "status", "health")
    if not isinstance(health, Mapping):
        return HealthStatus(PROGRESSING)
    status = health.get("status")
    if status not in STATUSES:
        return (
            HealthStatus(PROGRESSING)
            if status is None
            else HealthStatus(UNKNOWN, f"unknown health {status!r}")
        )
    return HealthStatus(status, _text(health.get("message")))


# ---------------------------------------------------------------------------------------------------
# The registry


BUILTIN: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): deployment_health,
    ("apps", "StatefulSet"): statefulset_health,
    ("apps", "DaemonSet"): daemonset_health,
    ("apps", "ReplicaSet"): replicaset_health,
    ("", "Pod"): pod_health,
    ("", "PersistentVolumeClaim"): pvc_health,
    ("", "Service"): service_health,
    ("extensions", "Ingress"): ingress_health,
    ("networking.k8s.io", "Ingress"): ingress_health,
    ("batch", "Job"): job_health,
    ("batch", "CronJob"): cronjob_health,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa_health,
    ("apiregistration.k8s.io", "APIService"): apiservice_health,
    ("argoproj.io", "Workflow"): workflow_health,
    ("argoproj.io", "Rollout"): rollout_health,
    ("argoproj.io", "AnalysisRun"): analysisrun_health,
}
"""Built-in checks by (group, kind); any API version of the group is accepted."""

APPLICATION = ("argoproj.io", "Application")


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


class HealthChecks:
    """Health checks by group and kind: the built-ins plus overrides, an override winning over a built-in.

    ``overrides`` maps ``(group, kind)`` to a check (for example a
    :class:`~tugboat.gitops.luahealth.LuaCheck`); group and kind may hold ``*``/``?`` wildcards,
    consulted after exact keys, in insertion order. An override that returns ``None`` defers to the
    built-in check. A check that raises gives Unknown.
    """

    def __init__(
        self,
        overrides: Mapping[tuple[str, str], Check] | None = None,
        *,
        builtins: bool = True,
        application_health: bool = True,
    ) -> None:
        self._builtin: dict[tuple[str, str], Check] = dict(BUILTIN) if builtins else {}
        if application_health:
            self._builtin[APPLICATION] = child_application_health
        self._exact: dict[tuple[str, str], Check] = {}
        self._patterns: list[tuple[str, str, Check]] = []
        for (group, kind), check in (overrides or {}).items():
            self.register(group, kind, check)

    def register(self, group: str, kind: str, check: Check) -> None:
        """Add (or replace) the override for ``group``/``kind`` (wildcards allowed)."""
        if _is_pattern(group) or _is_pattern(kind):
            self._patterns = [p for p in self._patterns if (p[0], p[1]) != (group, kind)]
            self._patterns.append((group, kind, check))
        else:
            self._exact[(group, kind)] = check

    def override_for(self, group: str, kind: str) -> Check | None:
        """The override that applies to ``group``/``kind``, if any."""
        check = self._exact.get((group, kind))
        if check is not None:
            return check
        for pattern_group, pattern_kind, candidate in self._patterns:
            if resourcekey.glob_match(pattern_group, group) and resourcekey.glob_match(pattern_kind, kind):
                return candidate
        return None

    def has_check(self, group: str, kind: str) -> bool:
        """Whether objects of ``group``/``kind`` get any health at all."""
        return (group, kind) in self._builtin or self.override_for(group, kind) is not None

    def health_of(self, obj: Mapping[str, Any]) -> HealthStatus | None:
        """The health of a live object, or ``None`` when no check knows its kind (it then doesn't count)."""
        metadata = obj.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("deletionTimestamp"):
            finalizers = metadata.get("finalizers")
            if not (isinstance(finalizers, list) and HOOK_FINALIZER in finalizers):
                return HealthStatus(PROGRESSING, "Pending deletion")
        group, kind = resourcekey.group_kind_of(obj)
        override = self.override_for(group, kind)
        if override is not None:
            result = _run(override, obj, group, kind)
            if result is not None:
                return result
        builtin = self._builtin.get((group, kind))
        return None if builtin is None else _run(builtin, obj, group, kind)


def _run(check: Check, obj: Mapping[str, Any], group: str, kind: str) -> HealthStatus | None:
    try:
        return check(obj)
    except MalformedObject as exc:
        return HealthStatus(UNKNOWN, f"failed to assess the health of {kind}: {exc}")
    except Exception as exc:  # a check is user-extensible code; one bad check must not stop the roll-up
        key = resourcekey.ResourceKey.of(obj)
        log.warning("health check for %s failed: %s", key, type(exc).__name__)
        return HealthStatus(UNKNOWN, f"health check for {group}/{kind} failed: {type(exc).__name__}: {exc}")


DEFAULT = HealthChecks()
"""The built-in checks with no overrides."""


def health_of(obj: Mapping[str, Any]) -> HealthStatus | None:
    """The health of a live object by the built-in checks (``None``: no health for this kind)."""
    return DEFAULT.health_of(obj)


# ---------------------------------------------------------------------------------------------------
# The Application roll-up


def aggregate(
    resources: Iterable[tuple[Mapping[str, Any] | None, HealthStatus | None, bool]],
    *,
    self_key: resourcekey.ResourceKey | None = None,
) -> HealthStatus:
    """An Application's health from its direct managed resources, with Argo CD's rules.

    Each entry is ``(live object or None when missing, its health or None, is_hook)``. Skipped: hooks,
    objects annotated ``argocd.argoproj.io/ignore-healthcheck: "true"``, resources without health, the
    Application itself (``self_key``), and child Applications that are Missing or Unknown. A missing
    resource does not lower the health (OutOfSync already says it is missing) unless *every* resource is
    missing: then the Application is Missing (Argo CD 3.4+). Otherwise the worst status wins. The message
    names the resources that set it.
    """
    app_status = HEALTHY
    causes: dict[str, list[str]] = {}
    contains_resources = contains_live = False
    for live, health, hook in resources:
        if hook:
            continue
        contains_resources = True
        if live is None:
            continue  # missing: reported per resource, not in the roll-up
        contains_live = True
        if _annotations(live).get(IGNORE_HEALTHCHECK_ANNOTATION) == "true":
            continue
        key = resourcekey.ResourceKey.of(live)
        if health is None or (self_key is not None and key == self_key):
            continue
        if (key.group, key.kind) == APPLICATION and health.status in (MISSING, UNKNOWN):
            continue
        causes.setdefault(health.status, []).append(f"{key.group_kind}:{_where(key)}")
        if is_worse(app_status, health.status):
            app_status = health.status
    if contains_resources and not contains_live and is_worse(app_status, MISSING):
        return HealthStatus(MISSING)
    if app_status == HEALTHY:
        return HealthStatus(HEALTHY)
    return HealthStatus(app_status, ", ".join(causes.get(app_status, [])))


def _where(key: resourcekey.ResourceKey) -> str:
    return f"{key.namespace}/{key.name}" if key.namespace else key.name
