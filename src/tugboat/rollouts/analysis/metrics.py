"""The rules of an AnalysisRun's metrics, as pure functions over Argo's JSON shapes.

What makes a metric valid, when its next measurement is due, what its phase is after each measurement
(failureLimit, inconclusiveLimit, consecutiveErrorLimit, count, consecutiveSuccessLimit), and what the run's
phase and message are from its metrics (the worst completed phase wins; a failing metric stops the
others). Kept apart from the reconciler (``run.py``) so that every rule of research/rollouts.md §1.5 is
tested without a cluster or a provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tugboat.rollouts import defaults
from tugboat.rollouts import replicasets as rsutil
from tugboat.rollouts.analysis import templates

Obj = dict[str, Any]

PENDING, RUNNING, SUCCESSFUL = "Pending", "Running", "Successful"
FAILED, ERROR, INCONCLUSIVE = "Failed", "Error", "Inconclusive"
COMPLETED = frozenset({SUCCESSFUL, FAILED, ERROR, INCONCLUSIVE})
_SEVERITY = {SUCCESSFUL: 0, RUNNING: 1, PENDING: 2, INCONCLUSIVE: 3, ERROR: 4, FAILED: 5}

DEFAULT_MEASUREMENT_HISTORY = 10
ERROR_RETRY_SECONDS = 10.0
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4


def is_worse(a: str, b: str) -> bool:
    """Whether phase ``b`` is worse than ``a``."""
    return _SEVERITY.get(b, 0) > _SEVERITY.get(a, 0)


def int_field(value: Any, *, default: int | None = None) -> int | None:
    """An IntOrString field (``count``, ``failureLimit``, ...) after arg substitution."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise templates.AnalysisSpecError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    raise templates.AnalysisSpecError(f"expected an integer, got {value!r}")


def duration(value: Any, what: str) -> float | None:
    """A Go duration field in seconds (None when unset)."""
    if value is None or value == "":
        return None
    try:
        return defaults.parse_go_duration(str(value))
    except ValueError as exc:
        raise templates.AnalysisSpecError(f"invalid {what} string: {exc}") from exc


# ------------------------------------------------------------------------------------ validation


def validate(metrics: list[Mapping[str, Any]]) -> None:
    """Upstream's ValidateMetrics: names unique, limits consistent, exactly one provider."""
    if not metrics:
        raise templates.AnalysisSpecError("no metrics specified")
    names: set[str] = set()
    for index, metric in enumerate(metrics):
        name = str(metric.get("name") or "")
        if name in names:
            raise templates.AnalysisSpecError(f"metrics[{index}]: duplicate name '{name}'")
        names.add(name)
        try:
            _validate_metric(metric)
        except templates.AnalysisSpecError as exc:
            raise templates.AnalysisSpecError(f"metrics[{index}]: {exc}") from exc


def _validate_metric(metric: Mapping[str, Any]) -> None:
    count = int_field(metric.get("count"), default=0) or 0
    failure_limit = int_field(metric.get("failureLimit"), default=0) or 0
    success_limit = int_field(metric.get("consecutiveSuccessLimit"), default=0) or 0
    inconclusive_limit = int_field(metric.get("inconclusiveLimit"), default=0) or 0
    error_limit = int_field(metric.get("consecutiveErrorLimit"))
    if success_limit < 0:
        raise templates.AnalysisSpecError("consecutiveSuccessLimit must be >= 0")
    if failure_limit < -1:
        raise templates.AnalysisSpecError("failureLimit must be >= 0, or -1 to be disabled")
    if success_limit == 0 and failure_limit == -1:
        raise templates.AnalysisSpecError("failureLimit and consecutiveSuccessLimit cannot both be disabled")
    if inconclusive_limit < 0:
        raise templates.AnalysisSpecError("inconclusiveLimit must be >= 0")
    if error_limit is not None and error_limit < 0:
        raise templates.AnalysisSpecError("consecutiveErrorLimit must be >= 0")
    if count > 0:
        if failure_limit >= 0 and count < failure_limit + success_limit:
            raise templates.AnalysisSpecError(
                f"count ({count}) must be >= failureLimit + consecutiveSuccessLimit "
                f"({failure_limit} + {success_limit}) if both >= 0"
            )
        if failure_limit < 0 and count < success_limit:
            raise templates.AnalysisSpecError("count must be >= consecutiveSuccessLimit")
        if count < inconclusive_limit:
            raise templates.AnalysisSpecError("count must be >= inconclusiveLimit")
    if count > 1 and not metric.get("interval"):
        raise templates.AnalysisSpecError("interval must be specified when count > 1")
    duration(metric.get("interval"), "interval")
    duration(metric.get("initialDelay"), "startDelay")
    provider = metric.get("provider")
    if not isinstance(provider, dict) or not [k for k, v in provider.items() if v is not None]:
        raise templates.AnalysisSpecError("no provider specified")
    if len([k for k, v in provider.items() if v is not None]) > 1:
        raise templates.AnalysisSpecError("multiple providers specified")


def matching_rules(
    rules: Iterable[Mapping[str, Any]], metrics: list[Mapping[str, Any]], what: str
) -> dict[str, Mapping[str, Any]]:
    """Metric name → the last ``dryRun``/``measurementRetention`` rule whose ``metricName`` (a regular
    expression, ``.*`` for all) matches it, as upstream; a rule matching no metric is an error."""
    out: dict[str, Mapping[str, Any]] = {}
    for index, rule in enumerate(rules):
        pattern = str(rule.get("metricName") or "")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise templates.AnalysisSpecError(
                f"{what}[{index}]: invalid metricName '{pattern}': {exc}"
            ) from exc
        matched = False
        for metric in metrics:
            name = str(metric.get("name"))
            if pattern == ".*" or compiled.search(name):
                out[name] = rule
                matched = True
        if not matched:
            raise templates.AnalysisSpecError(f"{what}[{index}]: Rule didn't match any metric name(s)")
    return out


# ------------------------------------------------------------------------------------ scheduling


def result_of(status: Mapping[str, Any], name: str) -> Obj | None:
    for result in status.get("metricResults") or []:
        if result.get("name") == name:
            return dict(result)
    return None


def last_measurement(result: Mapping[str, Any] | None) -> Obj | None:
    measurements = (result or {}).get("measurements") or []
    return dict(measurements[-1]) if measurements else None


parse_time = rsutil.parse_time


def is_terminating(spec: Mapping[str, Any], status: Mapping[str, Any], dry_run: Mapping[str, Any]) -> bool:
    """Terminate requested, or a metric that counts has failed: no new measurements are started."""
    if spec.get("terminate"):
        return True
    for result in status.get("metricResults") or []:
        if result.get("name") in dry_run:
            continue
        if result.get("phase") in (FAILED, ERROR, INCONCLUSIVE):
            return True
    return False


def due(
    metric: Mapping[str, Any], status: Mapping[str, Any], *, now: datetime, terminating: bool
) -> tuple[bool, Obj | None, datetime | None]:
    """Whether ``metric`` needs a measurement now: (take one, the in-flight measurement to resume or
    terminate, when to look again if not now)."""
    name = str(metric.get("name"))
    result = result_of(status, name)
    if result is not None and result.get("phase") in COMPLETED:
        return False, None, None
    last = last_measurement(result)
    if last is not None and not last.get("finishedAt"):
        resume_at = parse_time(last.get("resumeAt"))
        if not terminating and resume_at is not None and resume_at > now:
            return False, None, resume_at
        return True, last, None
    if terminating:
        return False, None, None
    if last is None:
        delay = duration(metric.get("initialDelay"), "startDelay")
        started = parse_time(status.get("startedAt")) or now
        if delay and started + timedelta(seconds=delay) > now:
            return False, None, started + timedelta(seconds=delay)
        return True, None, None
    count = int_field(metric.get("count"))
    if count is not None and count > 0 and int((result or {}).get("count") or 0) >= count:
        return False, None, None
    if last.get("phase") == ERROR:
        interval = ERROR_RETRY_SECONDS
    else:
        parsed = duration(metric.get("interval"), "interval")
        if parsed is None:
            return False, None, None  # one measurement was all it wanted
        interval = parsed
    finished = parse_time(last.get("finishedAt")) or now
    when = finished + timedelta(seconds=interval)
    if now >= when:
        return True, None, None
    return False, None, when


def effective_count(metric: Mapping[str, Any]) -> int | None:
    """How many measurements the metric takes: ``count``, else 1 without an interval, else unbounded."""
    count = int_field(metric.get("count"))
    if count is not None and count > 0:
        return count
    if not metric.get("interval"):
        return 1
    return None


# ------------------------------------------------------------------------------------ assessment


def record(result: Obj, measurement: Mapping[str, Any]) -> None:
    """Count a completed measurement into its metric result."""
    phase = measurement.get("phase")
    if phase not in COMPLETED:
        return
    if phase == ERROR:
        result["error"] = int(result.get("error") or 0) + 1
        result["consecutiveError"] = int(result.get("consecutiveError") or 0) + 1
        result["consecutiveSuccess"] = 0
        return
    key = {SUCCESSFUL: "successful", FAILED: "failed", INCONCLUSIVE: "inconclusive"}[str(phase)]
    result[key] = int(result.get(key) or 0) + 1
    result["count"] = int(result.get("count") or 0) + 1
    result["consecutiveError"] = 0
    result["consecutiveSuccess"] = (
        int(result.get("consecutiveSuccess") or 0) + 1 if phase == SUCCESSFUL else 0
    )


def failure_phase(metric: Mapping[str, Any], result: Mapping[str, Any]) -> tuple[str, str]:
    """(Failed|Inconclusive|Error, why) when a limit is exceeded, else ("", "")."""
    phase, message = "", ""
    failure_limit = int_field(metric.get("failureLimit"), default=0) or 0
    failed = int(result.get("failed") or 0)
    if failure_limit >= 0 and failed > failure_limit:
        phase, message = FAILED, f"failed ({failed}) > failureLimit ({failure_limit})"
    inconclusive_limit = int_field(metric.get("inconclusiveLimit"), default=0) or 0
    inconclusive = int(result.get("inconclusive") or 0)
    if inconclusive > inconclusive_limit:
        phase = INCONCLUSIVE
        message = f"inconclusive ({inconclusive}) > inconclusiveLimit ({inconclusive_limit})"
    error_limit = int_field(metric.get("consecutiveErrorLimit"), default=DEFAULT_CONSECUTIVE_ERROR_LIMIT)
    assert error_limit is not None
    errors = int(result.get("consecutiveError") or 0)
    if errors > error_limit:
        phase = ERROR
        message = f"consecutiveErrors ({errors}) > consecutiveErrorLimit ({error_limit})"
    return phase, message


def metric_phase(metric: Mapping[str, Any], result: Mapping[str, Any], *, terminating: bool) -> str:
    """A metric's phase from its result (upstream's assessMetricStatus)."""
    if result.get("phase") in COMPLETED:
        return str(result["phase"])
    measurements = result.get("measurements") or []
    if not measurements:
        return SUCCESSFUL if terminating else PENDING
    if measurements[-1].get("phase") not in COMPLETED:
        return RUNNING
    phase, _ = failure_phase(metric, result)
    if phase:
        return phase
    success_limit = int_field(metric.get("consecutiveSuccessLimit"), default=0) or 0
    if success_limit > 0 and int(result.get("consecutiveSuccess") or 0) >= success_limit:
        return SUCCESSFUL
    count = effective_count(metric)
    if count is not None and int(result.get("count") or 0) >= count:
        failure_limit = int_field(metric.get("failureLimit"), default=0) or 0
        if success_limit > 0:
            return INCONCLUSIVE if failure_limit >= 0 else FAILED
        return SUCCESSFUL
    return SUCCESSFUL if terminating else RUNNING


def summary_key(phase: str) -> str:
    return {FAILED: "failed", ERROR: "error", INCONCLUSIVE: "inconclusive"}.get(phase, "successful")
