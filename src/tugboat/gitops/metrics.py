"""Prometheus metrics of the GitOps controller, under Argo CD's names and labels.

Dashboards and alerts written for Argo CD's application controller read ``argocd_app_info``,
``argocd_app_sync_total`` and ``argocd_app_reconcile``; the controller process serves the same series
(``tugboat gitops-controller --metrics-port``, research/argocd.md). ``argocd_app_info`` is computed when
Prometheus scrapes, from the controller's Application informer, so keeping it costs nothing between
scrapes; the sync counter moves once per finished operation and the histogram once per refresh.
Each :class:`ControllerMetrics` has its own registry, so several controllers can live in one process
(the tests do).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import core, registry

from tugboat.gitops import comparison

__all__ = ["RECONCILE_BUCKETS", "AppInfoCollector", "ControllerMetrics", "dest_server", "normalize_repo"]

# Argo CD's buckets for refresh durations, in seconds.
RECONCILE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

_APP_LABELS = ("namespace", "name", "project")
_INFO_LABELS = (
    *_APP_LABELS,
    "autosync_enabled",
    "repo",
    "dest_server",
    "dest_namespace",
    "sync_status",
    "health_status",
    "operation",
)


class AppSource(Protocol):
    """What the collector reads: anything listing the Applications it caches (an ``Informer``)."""

    def objects(self, namespace: str | None = None) -> Iterable[Mapping[str, Any]]: ...


def dest_server(app: Mapping[str, Any]) -> str:
    """The destination's server URL (``in-cluster`` by name resolves to the in-cluster URL)."""
    dest = (app.get("spec") or {}).get("destination") or {}
    server = str(dest.get("server") or "")
    if server:
        return server
    name = str(dest.get("name") or "")
    return comparison.IN_CLUSTER_SERVER if name == comparison.IN_CLUSTER_NAME else name


def normalize_repo(url: str) -> str:
    """A repository URL in a canonical spelling, so one repository is one label value."""
    text = url.strip().lower().rstrip("/")
    return text.removesuffix(".git")


def _project(app: Mapping[str, Any]) -> str:
    return str((app.get("spec") or {}).get("project") or "default")


def _app_labels(app: Mapping[str, Any]) -> list[str]:
    meta = app.get("metadata") or {}
    return [str(meta.get("namespace") or ""), str(meta.get("name") or ""), _project(app)]


def _autosync(app: Mapping[str, Any]) -> bool:
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    return isinstance(automated, Mapping) and automated.get("enabled") is not False


def _operation(app: Mapping[str, Any]) -> str:
    if (app.get("metadata") or {}).get("deletionTimestamp"):
        return "delete"
    operation = app.get("operation")
    if isinstance(operation, Mapping) and operation.get("sync") is not None:
        return "sync"
    return ""


def info_labels(app: Mapping[str, Any]) -> list[str]:
    """The label values of ``argocd_app_info`` for ``app``, in :data:`_INFO_LABELS` order."""
    status = app.get("status") or {}
    sources, _ = comparison.app_sources(app)
    repo = normalize_repo(str(sources[0].get("repoURL") or "")) if sources else ""
    dest = (app.get("spec") or {}).get("destination") or {}
    return [
        *_app_labels(app),
        "true" if _autosync(app) else "false",
        repo,
        dest_server(app),
        str(dest.get("namespace") or ""),
        str((status.get("sync") or {}).get("status") or "Unknown"),
        str((status.get("health") or {}).get("status") or "Unknown"),
        _operation(app),
    ]


class AppInfoCollector(registry.Collector):
    """``argocd_app_info``: one gauge of 1 per cached Application, computed at scrape time."""

    def __init__(self, apps: AppSource) -> None:
        self.apps = apps

    def describe(self) -> Iterator[core.Metric]:
        yield self._family()

    def collect(self) -> Iterator[core.Metric]:
        family = self._family()
        for app in self.apps.objects():
            family.add_metric(info_labels(app), 1.0)
        yield family

    @staticmethod
    def _family() -> core.GaugeMetricFamily:
        return core.GaugeMetricFamily(
            "argocd_app_info", "Information about application.", labels=_INFO_LABELS
        )


class ControllerMetrics:
    """The controller's registry: the app-info collector, the sync counter and the refresh histogram."""

    def __init__(self, apps: AppSource) -> None:
        self.registry = registry.CollectorRegistry()
        self.registry.register(AppInfoCollector(apps))
        self.syncs = core.Counter(
            "argocd_app_sync",
            "Number of application syncs.",
            [*_APP_LABELS, "dest_server", "phase", "dry_run"],
            registry=self.registry,
        )
        self.reconciles = core.Histogram(
            "argocd_app_reconcile",
            "Application reconciliation performance in seconds.",
            ["namespace", "dest_server"],
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )

    def count_sync(self, app: Mapping[str, Any], state: Mapping[str, Any]) -> None:
        """An operation of ``app`` ended with ``state`` (its ``operationState``)."""
        sync_op = (state.get("operation") or {}).get("sync") or {}
        dry_run = "true" if sync_op.get("dryRun") else "false"
        phase = str(state.get("phase") or "")
        self.syncs.labels(*_app_labels(app), dest_server(app), phase, dry_run).inc()

    def observe_refresh(self, app: Mapping[str, Any], seconds: float) -> None:
        """A refresh (comparison and status write) of ``app`` took ``seconds``."""
        namespace = str((app.get("metadata") or {}).get("namespace") or "")
        self.reconciles.labels(namespace, dest_server(app)).observe(seconds)
