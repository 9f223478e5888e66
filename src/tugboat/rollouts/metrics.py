"""Prometheus metrics of the rollout controller process, under Argo Rollouts' names and labels.

Dashboards and alerts written for Argo Rollouts read ``rollout_info``, ``rollout_info_replicas_*``,
``analysis_run_info``, ``analysis_run_metric_phase`` and ``experiment_info``; ``tugboat
rollouts-controller --metrics-port`` serves the same series. They all describe objects, so
:class:`RolloutsCollector` computes them when Prometheus scrapes, from the informer caches the
controllers already keep: nothing is counted between scrapes. The deprecated ``rollout_phase``,
``analysis_run_phase`` and ``experiment_phase`` families are served too, as upstream still does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import core, registry

from tugboat.rollouts import conditions
from tugboat.rollouts.analysis import metrics as analysis_metrics
from tugboat.rollouts.analysis import templates

__all__ = [
    "RolloutsCollector",
    "make_registry",
    "metric_type",
    "rollout_phase",
    "strategy_and_router",
]

# The phases of ``rollout_info`` (Argo Rollouts' metrics phases, not ``status.phase``).
COMPLETED = "Completed"
PROGRESSING = "Progressing"
PAUSED = "Paused"
TIMEOUT = "Timeout"
ERROR = "Error"
ABORT = "Abort"
INVALID_SPEC = "InvalidSpec"
_DEPRECATED_ROLLOUT_PHASES = (COMPLETED, PROGRESSING, PAUSED, TIMEOUT, ERROR, ABORT)
_PROGRESS_REASONS = {
    conditions.NEW_RS_AVAILABLE: COMPLETED,
    conditions.ROLLOUT_PAUSED: PAUSED,
    conditions.RS_CREATE_ERROR: ERROR,
    conditions.PROGRESS_DEADLINE_EXCEEDED: TIMEOUT,
    conditions.ROLLOUT_ABORTED: ABORT,
}
# Later keys win when several are set, as upstream.
_ROUTERS = (
    ("alb", "ALB"),
    ("ambassador", "Ambassador"),
    ("istio", "Istio"),
    ("nginx", "Nginx"),
    ("smi", "SMI"),
    ("appMesh", "AppMesh"),
)
_PROVIDER_TYPES = {
    "prometheus": "Prometheus",
    "job": "Job",
    "kayenta": "Kayenta",
    "web": "Web",
    "datadog": "Datadog",
    "wavefront": "Wavefront",
    "newRelic": "NewRelic",
    "cloudWatch": "CloudWatch",
    "graphite": "Graphite",
    "influxdb": "Influxdb",
    "skywalking": "skywalking",
    "plugin": "RPCPlugin",
}
_ANALYSIS_PHASES = ("Pending", "Error", "Failed", "Successful", "Running", "Inconclusive")
_EXPERIMENT_PHASES = ("Pending", "Error", "Successful", "Running", "Inconclusive")
_NAME = ("namespace", "name")


class ObjectSource(Protocol):
    """What the collector reads: anything listing cached objects (an ``Informer``)."""

    def objects(self, namespace: str | None = None) -> Iterable[Mapping[str, Any]]: ...


def strategy_and_router(ro: Mapping[str, Any]) -> tuple[str, str]:
    """``(strategy, traffic_router)`` labels: ``blueGreen``/``canary``/``none`` and the router's name."""
    strategy = (ro.get("spec") or {}).get("strategy") or {}
    if strategy.get("blueGreen") is not None:
        return "blueGreen", ""
    canary = strategy.get("canary")
    if canary is None:
        return "none", ""
    routing = (canary or {}).get("trafficRouting") or {}
    router = ""
    for key, label in _ROUTERS:
        if routing.get(key) is not None:
            router = label
    return "canary", router


def rollout_phase(ro: Mapping[str, Any]) -> str:
    """The metrics phase: from the Progressing condition's reason, ``InvalidSpec`` over everything."""
    found = {c.get("type"): c for c in (ro.get("status") or {}).get("conditions") or []}
    if conditions.INVALID_SPEC in found:
        return INVALID_SPEC
    reason = (found.get(conditions.PROGRESSING) or {}).get("reason")
    return _PROGRESS_REASONS.get(str(reason), PROGRESSING)


def metric_type(metric: Mapping[str, Any]) -> str:
    """An analysis metric's provider type, as Argo Rollouts names it."""
    provider = metric.get("provider") or {}
    for key, label in _PROVIDER_TYPES.items():
        if provider.get(key) is not None:
            return label
    return "Unknown Provider"


def _names(obj: Mapping[str, Any]) -> list[str]:
    meta = obj.get("metadata") or {}
    return [str(meta.get("namespace") or ""), str(meta.get("name") or "")]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _gauge(name: str, text: str, labels: Iterable[str] = ()) -> core.GaugeMetricFamily:
    return core.GaugeMetricFamily(name, text, labels=[*_NAME, *labels])


class _Families:
    """The gauge families of one scrape, by name, created in a fixed order."""

    def __init__(self) -> None:
        self.rollout_info = _gauge(
            "rollout_info", "Information about rollout.", ("strategy", "traffic_router", "phase")
        )
        self.available = _gauge(
            "rollout_info_replicas_available", "The number of available replicas per rollout."
        )
        self.unavailable = _gauge(
            "rollout_info_replicas_unavailable", "The number of unavailable replicas per rollout."
        )
        self.desired = _gauge("rollout_info_replicas_desired", "The number of desired replicas per rollout.")
        self.updated = _gauge("rollout_info_replicas_updated", "The number of updated replicas per rollout.")
        self.rollout_phase = _gauge(
            "rollout_phase",
            "Information on the state of the rollout (DEPRECATED - use rollout_info)",
            ("strategy", "phase"),
        )
        self.run_info = _gauge("analysis_run_info", "Information about analysis run.", ("phase",))
        self.run_phase = _gauge(
            "analysis_run_phase",
            "Information on the state of the Analysis Run (DEPRECATED - use analysis_run_info)",
            ("phase",),
        )
        self.metric_type = _gauge(
            "analysis_run_metric_type",
            "Information on the type of a specific metric in the Analysis Runs",
            ("metric", "type"),
        )
        self.metric_phase = _gauge(
            "analysis_run_metric_phase",
            "Information on the duration of a specific metric in the Analysis Run",
            ("metric", "type", "dry_run", "phase"),
        )
        self.experiment_info = _gauge("experiment_info", "Information about Experiment.", ("phase",))
        self.experiment_phase = _gauge(
            "experiment_phase",
            "Information on the state of the experiment (DEPRECATED - use experiment_info)",
            ("phase",),
        )

    def all(self) -> list[core.GaugeMetricFamily]:
        return list(vars(self).values())


class RolloutsCollector(registry.Collector):
    """The object-describing families, read at scrape time from whichever caches the process has."""

    def __init__(
        self,
        *,
        rollouts: ObjectSource | None = None,
        analysis_runs: ObjectSource | None = None,
        experiments: ObjectSource | None = None,
    ) -> None:
        self.rollouts = rollouts
        self.analysis_runs = analysis_runs
        self.experiments = experiments

    def describe(self) -> Iterator[core.Metric]:
        yield from _Families().all()

    def collect(self) -> Iterator[core.Metric]:
        families = _Families()
        for ro in self.rollouts.objects() if self.rollouts is not None else ():
            _add_rollout(families, ro)
        for run in self.analysis_runs.objects() if self.analysis_runs is not None else ():
            _add_run(families, run)
        for ex in self.experiments.objects() if self.experiments is not None else ():
            _add_experiment(families, ex)
        yield from families.all()


def _add_rollout(families: _Families, ro: Mapping[str, Any]) -> None:
    names = _names(ro)
    strategy, router = strategy_and_router(ro)
    phase = rollout_phase(ro)
    status = ro.get("status") or {}
    available = _int(status.get("availableReplicas"))
    families.rollout_info.add_metric([*names, strategy, router, phase], 1.0)
    families.available.add_metric(names, float(available))
    families.unavailable.add_metric(names, float(_int(status.get("replicas")) - available))
    families.desired.add_metric(names, float(_int((ro.get("spec") or {}).get("replicas"), 1)))
    families.updated.add_metric(names, float(_int(status.get("updatedReplicas"))))
    for candidate in _DEPRECATED_ROLLOUT_PHASES:
        families.rollout_phase.add_metric([*names, strategy, candidate], float(phase == candidate))


def _add_run(families: _Families, run: Mapping[str, Any]) -> None:
    names = _names(run)
    status = run.get("status") or {}
    phase = str(status.get("phase") or "")
    families.run_info.add_metric([*names, phase], 1.0)
    for candidate in _ANALYSIS_PHASES:
        families.run_phase.add_metric([*names, candidate], float((phase or "Pending") == candidate))
    spec = run.get("spec") or {}
    spec_metrics = [m for m in spec.get("metrics") or [] if isinstance(m, Mapping)]
    dry_run = _dry_run_metrics(spec.get("dryRun") or [], spec_metrics)
    results = {r.get("name"): r for r in status.get("metricResults") or [] if isinstance(r, Mapping)}
    for metric in spec_metrics:
        name = str(metric.get("name") or "")
        kind = metric_type(metric)
        families.metric_type.add_metric([*names, name, kind], 1.0)
        result_phase = str((results.get(name) or {}).get("phase") or "Pending")
        flag = "true" if name in dry_run else "false"
        for candidate in _ANALYSIS_PHASES:
            families.metric_phase.add_metric(
                [*names, name, kind, flag, candidate], float(result_phase == candidate)
            )


def _dry_run_metrics(rules: list[Mapping[str, Any]], spec_metrics: list[Mapping[str, Any]]) -> set[str]:
    """Names of the metrics a ``dryRun`` rule matches (none when the rules are invalid: the run says why)."""
    try:
        return set(analysis_metrics.matching_rules(rules, spec_metrics, "dryRun"))
    except templates.AnalysisSpecError:
        return set()


def _add_experiment(families: _Families, ex: Mapping[str, Any]) -> None:
    names = _names(ex)
    phase = str((ex.get("status") or {}).get("phase") or "")
    families.experiment_info.add_metric([*names, phase], 1.0)
    for candidate in _EXPERIMENT_PHASES:
        families.experiment_phase.add_metric([*names, candidate], float((phase or "Pending") == candidate))


def make_registry(
    *,
    rollouts: ObjectSource | None = None,
    analysis_runs: ObjectSource | None = None,
    experiments: ObjectSource | None = None,
) -> registry.CollectorRegistry:
    """A fresh registry holding a :class:`RolloutsCollector` over the given caches."""
    out = registry.CollectorRegistry()
    out.register(RolloutsCollector(rollouts=rollouts, analysis_runs=analysis_runs, experiments=experiments))
    return out
