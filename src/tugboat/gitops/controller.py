"""The Application controller: refreshes, automated sync, sync operations and cascade deletion.

Argo CD's application controller in one asyncio process (research/argocd.md §3.3). Two work queues:

- **refresh** (status processors): compare the app (``comparison``), write ``status`` (sync, health,
  resources, conditions, reconciledAt, summary), run the automated-sync policy, and handle deletion.
  An app is refreshed when it or its spec changes, when the refresh annotation is set, when one of its
  managed objects changes (``clustercache`` callbacks), when its local repository gets a commit
  (``repowatch``), and every ``reconciliation`` seconds otherwise.
- **operation** (operation processors): advance a sync (``sync.SyncContext``) one step at a time, writing
  ``status.operationState`` after each step, so a restarted controller continues the same operation; on
  completion record ``history`` and clear ``operation`` in the same write.

The controller owns ``status`` (the Application has no status subresource, so it writes with a merge
patch on the object that touches only the keys it owns) and never writes ``spec``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tugboat.gitops import (
    clustercache,
    comparison,
    crds,
    hooks,
    metrics,
    projects,
    repos,
    repowatch,
    revert,
    settings,
    sync,
    syncoptions,
)
from tugboat.gitops.errors import GitOpsError
from tugboat.gitops.render import ManifestCache
from tugboat.kube import errors as kube_errors
from tugboat.kube import events, informers, kinds, workqueue
from tugboat.kube.client import Client, Obj
from tugboat.util import jsondata
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
BACKGROUND_FINALIZER = "resources-finalizer.argocd.argoproj.io/background"
SKIP_RECONCILE_ANNOTATION = "argocd.argoproj.io/skip-reconcile"

SYNC_ERROR = "SyncError"
DELETION_ERROR = "DeletionError"

# Refresh levels, lowest first: a managed object changed; compare with the latest Git; also re-render.
LEVEL_RESOURCES = 1
LEVEL_LATEST = 2
LEVEL_HARD = 3

_STATUS_KEYS = (
    "sync",
    "health",
    "resources",
    "conditions",
    "reconciledAt",
    "sourceType",
    "sourceTypes",
    "summary",
    "controllerNamespace",
)
_SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ControllerOptions:
    """Knobs of the controller process (``tugboat gitops-controller`` flags)."""

    namespace: str = "argocd"
    state_dir: Path = Path("/tmp/tugboat-gitops")
    status_processors: int = 20
    operation_processors: int = 10
    reconciliation: float | None = None
    self_heal_backoff: float = 2.0
    self_heal_factor: float = 3.0
    self_heal_max: float = 300.0
    repo_watch_interval: float = 0.5
    min_fetch_interval: float = 5.0
    install_crds: bool = True


class ApplicationController:
    """Reconciles the Applications of one control namespace against the cluster the client reaches."""

    def __init__(self, client: Client, options: ControllerOptions | None = None) -> None:
        self.client = client
        self.options = options or ControllerOptions()
        self.namespace = self.options.namespace
        self.settings = settings.from_configmap(None, reconciliation=self.options.reconciliation)
        self.factory = informers.InformerFactory(client)
        self.apps = informers.Informer(client, crds.APPLICATION, namespace=self.namespace)
        # Prometheus series (served by ``--metrics-port``): app info read from ``apps`` at scrape time.
        self.metrics = metrics.ControllerMetrics(self.apps)
        self.projects = informers.Informer(client, crds.APPPROJECT, namespace=self.namespace)
        self.configmaps = informers.Informer(
            client,
            kinds.CONFIGMAP,
            namespace=self.namespace,
            fields=f"metadata.name={settings.CONFIGMAP_NAME}",
        )
        self.secrets = informers.Informer(
            client, kinds.SECRET, namespace=self.namespace, labels=_SECRET_TYPE_LABEL
        )
        self.cluster = clustercache.ClusterCache(client, on_change=self._resource_changed)
        state_dir = Path(self.options.state_dir)
        self.env = comparison.Environment(
            repo_cache=repos.RepoCache(
                state_dir / "repos", min_fetch_interval=self.options.min_fetch_interval
            ),
            manifest_cache=ManifestCache(),
            cluster=self.cluster,
            control_namespace=self.namespace,
            settings=self.settings,
            client=client,
        )
        self.watcher = repowatch.LocalRepoWatcher(interval=self.options.repo_watch_interval)
        self.reverter = revert.Reverter(client, self.env.repo_cache)
        self.recorder = self.reverter.recorder  # one writer of this controller's Events
        self.refresh_queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(max_delay=30.0)
        self.operation_queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(max_delay=30.0)
        self._levels: dict[str, int] = {}
        self._repo_apps: dict[str, set[str]] = {}
        self._app_repos: dict[str, set[str]] = {}
        self._local_repo: dict[str, bool] = {}
        self._applied: dict[str, dict[tuple[str, str, str, str, str], str]] = {}
        self._retry_at: dict[str, float] = {}
        # The resourceVersion of this process's last operation-state write per app: an operation step
        # waits until the informer has caught up with it, so it never acts on its own stale state.
        self._written: dict[str, str] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self.ready = asyncio.Event()

    # ------------------------------------------------------------------------------------ running

    async def run(self) -> None:
        """Run until cancelled."""
        if self.options.install_crds:
            await crds.install(self.client, namespace=self.namespace)
        self.configmaps.add_handler(self._settings_changed)
        for informer in (self.configmaps, self.secrets, self.projects):
            informer.start()
        await asyncio.gather(
            self.configmaps.wait_synced(), self.secrets.wait_synced(), self.projects.wait_synced()
        )
        self._load_settings()
        await self.cluster.start()
        self.apps.add_handler(self._app_changed)
        self.projects.add_handler(self._project_changed)
        self.apps.start()
        await self.apps.wait_synced()
        await self.watcher.start()
        self._tasks = [
            asyncio.create_task(
                workqueue.run_workers_and_shutdown(
                    self.refresh_queue, self._refresh, workers=self.options.status_processors, name="refresh"
                )
            ),
            asyncio.create_task(
                workqueue.run_workers_and_shutdown(
                    self.operation_queue,
                    self._operate,
                    workers=self.options.operation_processors,
                    name="operation",
                )
            ),
        ]
        self.ready.set()
        log.info("gitops controller: watching Applications in namespace %s", self.namespace)
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    async def stop(self) -> None:
        self.refresh_queue.shutdown()
        self.operation_queue.shutdown()
        await cancel_and_wait(self._tasks)
        with contextlib.suppress(Exception):
            await self.watcher.stop()
        await self.cluster.stop()
        await self.reverter.stop()
        for informer in (self.apps, self.projects, self.configmaps, self.secrets):
            with contextlib.suppress(Exception):
                await informer.stop()

    # ------------------------------------------------------------------------------------ events

    def request_refresh(self, key: str, level: int = LEVEL_LATEST, *, delay: float = 0.0) -> None:
        self._levels[key] = max(self._levels.get(key, 0), level)
        if delay > 0:
            self.refresh_queue.add_after(key, delay)
        else:
            self.refresh_queue.add(key)

    def _app_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            key = informers.object_key(old)
            self._forget(key)
            return
        key = informers.object_key(new)
        if old is None:
            self.request_refresh(key, LEVEL_LATEST)
            if _has_operation(new):
                self.operation_queue.add(key)
            return
        annotations = (new.get("metadata") or {}).get("annotations") or {}
        if annotations.get(REFRESH_ANNOTATION):
            level = LEVEL_HARD if annotations[REFRESH_ANNOTATION] == "hard" else LEVEL_LATEST
            self.request_refresh(key, level)
        elif old.get("spec") != new.get("spec"):
            self.request_refresh(key, LEVEL_LATEST)
        elif (
            (new.get("metadata") or {}).get("deletionTimestamp")
            and not (old.get("metadata") or {}).get("deletionTimestamp")
        ) or (old.get("metadata") or {}).get("finalizers") != (new.get("metadata") or {}).get("finalizers"):
            self.request_refresh(key, LEVEL_RESOURCES)
        moved = new.get("operation") != old.get("operation") or _phase(new) != _phase(old)
        if moved and _has_operation(new):
            self.operation_queue.add(key)
        elif moved and _has_operation(old):
            self.request_refresh(key, LEVEL_RESOURCES)  # an operation ended: compare with its outcome

    def _project_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        name = obj["metadata"]["name"]
        for app in self.apps.objects():
            if ((app.get("spec") or {}).get("project") or "default") == name:
                self.request_refresh(informers.object_key(app), LEVEL_LATEST)

    def _settings_changed(self, old: Obj | None, new: Obj | None) -> None:
        self._load_settings()
        for app in self.apps.objects():
            self.request_refresh(informers.object_key(app), LEVEL_LATEST)

    def _load_settings(self) -> None:
        cm = self.configmaps.get(settings.CONFIGMAP_NAME, self.namespace)
        try:
            self.settings = settings.from_configmap(
                (cm or {}).get("data"), reconciliation=self.options.reconciliation
            )
        except settings.SettingsError as exc:
            log.error(
                "gitops controller: ignoring invalid %s (keeping the previous settings): %s",
                settings.CONFIGMAP_NAME,
                exc,
            )
            return
        self.env.settings = self.settings
        self.cluster.health_checks = self.settings.health_checks
        self.cluster.tracking_method = self.settings.tracking_method

    def _resource_changed(self, instance: str, key: Any) -> None:
        ns, sep, name = instance.partition("_")
        app_key = f"{ns}/{name}" if sep else f"{self.namespace}/{instance}"
        if self.apps.get(app_key.partition("/")[2], app_key.partition("/")[0]) is None:
            return
        self.request_refresh(app_key, LEVEL_RESOURCES, delay=0.05)
        app = self.apps.get(app_key.partition("/")[2], app_key.partition("/")[0])
        if app is not None and _has_operation(app):
            self.operation_queue.add_after(app_key, 0.05)

    async def _repo_changed(self, url: str) -> None:
        for key in list(self._repo_apps.get(url, ())):
            self.request_refresh(key, LEVEL_LATEST)

    def _is_local_repo(self, url: str) -> bool:
        found = self._local_repo.get(url)
        if found is None:
            try:
                found = bool(url) and self.env.repo_cache.location(url).is_local
            except GitOpsError:
                found = False
            if len(self._local_repo) > 10_000:
                self._local_repo.clear()
            self._local_repo[url] = found
        return found

    def _watch_repos(self, key: str, app: Mapping[str, Any]) -> None:
        sources, _ = comparison.app_sources(app)
        urls = {url for s in sources if self._is_local_repo(url := s.get("repoURL") or "")}
        if urls == self._app_repos.get(key):
            return
        old = self._app_repos.get(key, set())
        for url in old - urls:
            self._repo_apps.get(url, set()).discard(key)
        for url in urls - old:
            if url not in self._repo_apps:
                self._repo_apps[url] = set()
                try:
                    self.watcher.watch(url, self._repo_changed)
                except GitOpsError as exc:
                    log.warning("cannot watch repository %s: %s", url, exc)
            self._repo_apps[url].add(key)
        self._app_repos[key] = urls

    def _forget(self, key: str) -> None:
        self._levels.pop(key, None)
        self._applied.pop(key, None)
        self._retry_at.pop(key, None)
        self._written.pop(key, None)
        self.reverter.forget(key)
        for url in self._app_repos.pop(key, set()):
            self._repo_apps.get(url, set()).discard(key)

    def _get_app(self, key: str) -> Obj | None:
        namespace, _, name = key.partition("/")
        return self.apps.get(name, namespace)

    def _project_for(self, app: Mapping[str, Any]) -> tuple[projects.Project | None, str]:
        name = (app.get("spec") or {}).get("project") or "default"
        obj = self.projects.get(name, self.namespace)
        if obj is None:
            return None, projects.missing_project_message(name)
        try:
            return projects.Project.from_object(obj), ""
        except projects.ProjectError as exc:
            return None, str(exc)

    # ------------------------------------------------------------------------------------ refresh

    async def _refresh(self, key: str) -> float | None:
        started_at = time.monotonic()
        app = self._get_app(key)
        level = self._levels.pop(key, LEVEL_LATEST)
        if app is None:
            return None
        meta = app.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return await self._finalize(key, app)
        if (meta.get("annotations") or {}).get(SKIP_RECONCILE_ANNOTATION) == "true":
            return None
        annotation = (meta.get("annotations") or {}).get(REFRESH_ANNOTATION)
        if annotation == "hard":
            level = LEVEL_HARD
        elif annotation:
            level = max(level, LEVEL_LATEST)
        self._watch_repos(key, app)
        self.env.repo_secrets = list(self.secrets.objects())
        project, problem = self._project_for(app)
        if project is None:
            compared = comparison.failed_comparison(app, self.env, comparison.INVALID_SPEC_ERROR, problem)
        else:
            compared = await comparison.compare(app, self.env, project=project, hard=level >= LEVEL_HARD)
        status = self._status_from(app, compared, full=level >= LEVEL_LATEST)
        operation = None
        delay: float | None = None
        if not compared.failed:
            operation, condition, delay = self._auto_sync(app, compared)
            if condition is not None:
                status["conditions"] = _merge_conditions(status.get("conditions") or [], [condition], app)
            # Opt-in: a managed Rollout aborted by itself → revert the synced commit in Git (revert.py).
            reverted = await self.reverter.on_refresh(app, compared, secrets=self.env.repo_secrets)
            if reverted.conditions:
                status["conditions"] = _merge_conditions(
                    status.get("conditions") or [], reverted.conditions, app
                )
            if reverted.wrote:
                self.request_refresh(key, LEVEL_HARD, delay=0.2)
        await self._write_status(app, status, remove_refresh=bool(annotation), operation=operation)
        self.metrics.observe_refresh(app, time.monotonic() - started_at)
        interval = self.settings.reconciliation
        if interval <= 0:
            return delay
        interval += random.uniform(0, self.settings.jitter) if self.settings.jitter else 0
        return min(interval, delay) if delay is not None else interval

    def _status_from(self, app: Mapping[str, Any], compared: comparison.Comparison, *, full: bool) -> Obj:
        old = app.get("status") or {}
        spec = app.get("spec") or {}
        compared_to: Obj = {"destination": dict(spec.get("destination") or {})}
        if compared.multi_source:
            compared_to["sources"] = compared.sources
        elif compared.sources:
            compared_to["source"] = compared.sources[0]
        if spec.get("ignoreDifferences"):
            compared_to["ignoreDifferences"] = spec["ignoreDifferences"]
        sync_status: Obj = {"status": compared.sync_status, "comparedTo": compared_to}
        if compared.multi_source and compared.revisions:
            sync_status["revisions"] = compared.revisions
        elif compared.revision:
            sync_status["revision"] = compared.revision
        app_health = compared.health.to_dict()
        old_health = old.get("health") or {}
        if old_health.get("status") == app_health["status"] and old_health.get("lastTransitionTime"):
            app_health["lastTransitionTime"] = old_health["lastTransitionTime"]
        else:
            app_health["lastTransitionTime"] = now()
        resources = [
            r.to_status()
            for r in sorted(
                compared.resources, key=lambda r: (r.key.group, r.key.kind, r.key.namespace, r.key.name)
            )
        ]
        status: Obj = {
            "sync": sync_status,
            "health": app_health,
            "resources": resources,
            "controllerNamespace": self.namespace,
            "reconciledAt": now() if full or not old.get("reconciledAt") else old["reconciledAt"],
        }
        conditions = _merge_conditions([], compared.conditions, app)
        if conditions:
            status["conditions"] = conditions
        if compared.multi_source:
            status["sourceTypes"] = compared.source_types
        elif compared.source_type:
            status["sourceType"] = compared.source_type
        elif old.get("sourceType"):
            status["sourceType"] = old["sourceType"]
        if compared.images:
            status["summary"] = {"images": compared.images}
        return status

    async def _write_status(
        self, app: Mapping[str, Any], status: Obj, *, remove_refresh: bool, operation: Obj | None
    ) -> None:
        """Write the refresh-owned keys of ``status`` as whole values (a JSON patch), so nothing of an
        earlier write lingers even when the informer's copy of the app is behind."""
        old = app.get("status") or {}
        ops: list[Obj] = []
        changed = False
        for key in _STATUS_KEYS:
            if key in status:
                if old.get(key) != status[key]:
                    changed = changed or key != "reconciledAt"
                    ops.append({"op": "add", "path": f"/status/{key}", "value": status[key]})
            elif key in old:
                changed = True
                ops.extend(_remove_ops(f"/status/{key}"))
        if not changed and not remove_refresh and operation is None and not ops:
            return
        if remove_refresh:
            ops.extend(_remove_ops(f"/metadata/annotations/{_escape(REFRESH_ANNOTATION)}"))
        if operation is not None:
            ops.insert(
                0,
                {
                    "op": "test",
                    "path": "/metadata/resourceVersion",
                    "value": app["metadata"]["resourceVersion"],
                },
            )
            ops.append({"op": "add", "path": "/operation", "value": operation})
        if not ops:
            return
        if await self._patch_app(app, ops):
            self._status_events(app, status)

    async def _patch_app(self, app: Mapping[str, Any], ops: list[Obj]) -> bool:
        """Whether the patch was written (a conflict asks for another refresh instead)."""
        meta = app["metadata"]
        if "status" not in app:
            ops = _with_new_status(ops, meta.get("resourceVersion"))
        try:
            await self.client.patch(
                crds.APPLICATION, meta["name"], ops, namespace=meta["namespace"], patch_type="json"
            )
        except kube_errors.ApiError as exc:
            if exc.not_found:
                return False
            if exc.conflict or exc.code == 422:
                self.request_refresh(informers.object_key(dict(app)), LEVEL_LATEST, delay=0.1)
                return False
            raise
        return True

    def _event(self, app: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        self.recorder.start()
        self.recorder.event(dict(app), event_type, reason, message)

    def _completed_event(self, app: Mapping[str, Any], state: Mapping[str, Any]) -> None:
        result = state.get("syncResult") or {}
        revision = result.get("revision") or ", ".join(result.get("revisions") or []) or "the target revision"
        if state.get("phase") == sync.SUCCEEDED:
            self._event(app, events.NORMAL, "OperationCompleted", f"Sync operation to {revision} succeeded")
        else:
            message = f"Sync operation to {revision} failed: {state.get('message') or state.get('phase')}"
            self._event(app, events.WARNING, "OperationCompleted", message)

    def _status_events(self, app: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Argo CD's ``ResourceUpdated`` events on the Application when its sync or health status moves."""
        old = app.get("status") or {}
        for what, key in (("sync", "sync"), ("health", "health")):
            before = (old.get(key) or {}).get("status")
            after = (status.get(key) or {}).get("status") if key in status else before
            if before and after and before != after:
                self._event(
                    app, events.NORMAL, "ResourceUpdated", f"Updated {what} status: {before} -> {after}"
                )

    # ------------------------------------------------------------------------------------ auto-sync

    def _auto_sync(
        self, app: Mapping[str, Any], compared: comparison.Comparison
    ) -> tuple[Obj | None, Obj | None, float | None]:
        """Argo CD's automated sync policy: ``(operation to start, condition to show, recheck delay)``."""
        spec = app.get("spec") or {}
        policy = spec.get("syncPolicy") or {}
        automated = policy.get("automated")
        if not isinstance(automated, Mapping) or automated.get("enabled") is False:
            return None, None, None
        if _has_operation(app) or (app.get("metadata") or {}).get("deletionTimestamp"):
            return None, None, None
        if compared.sync_status != comparison.OUT_OF_SYNC:
            return None, None, None
        prune = bool(automated.get("prune"))
        wipes_out = not compared.targets() and any(r.live is not None for r in compared.resources)
        if prune and not automated.get("allowEmpty") and wipes_out:
            return None, _condition(SYNC_ERROR, "auto-sync will wipe out all resources"), None
        last = (app.get("status") or {}).get("operationState") or {}
        last_sync = (last.get("operation") or {}).get("sync") or {}
        desired = compared.revisions if compared.multi_source else [compared.revision]
        attempted = desired == (
            last_sync.get("revisions") if compared.multi_source else [last_sync.get("revision")]
        )
        if attempted:
            last_source = (last.get("syncResult") or {}).get("sources" if compared.multi_source else "source")
            wanted = (
                compared.sources
                if compared.multi_source
                else (compared.sources[0] if compared.sources else None)
            )
            attempted = last_source is None or last_source == wanted
        heal_attempts = 0
        resources: list[Obj] = []
        if attempted:
            if last.get("phase") != sync.SUCCEEDED:
                target = desired if compared.multi_source else compared.revision
                message = f"Failed last sync attempt to {target}: {last.get('message', '')}"
                return None, _condition(SYNC_ERROR, message), None
            if not automated.get("selfHeal"):
                return None, None, None
            heal_attempts = int(last_sync.get("autoHealAttemptsCount") or 0)
            backoff = min(
                self.options.self_heal_backoff * (self.options.self_heal_factor**heal_attempts),
                self.options.self_heal_max,
            )
            finished = parse_time(last.get("finishedAt"))
            if finished is not None:
                wait = finished.timestamp() + backoff - time.time()
                if wait > 0:
                    return None, None, wait
            heal_attempts += 1
            for state in compared.resources:
                if state.status != comparison.SYNCED and state.target is not None:
                    item: Obj = {"kind": state.key.kind, "name": state.key.name}
                    if state.key.group:
                        item["group"] = state.key.group
                    if state.key.namespace:
                        item["namespace"] = state.key.namespace
                    resources.append(item)
            if not resources:
                return None, None, None
        sync_op: Obj = {"prune": prune}
        if compared.multi_source:
            sync_op["revisions"] = compared.revisions
        else:
            sync_op["revision"] = compared.revision
        if policy.get("syncOptions"):
            sync_op["syncOptions"] = list(policy["syncOptions"])
        if resources:
            sync_op["resources"] = resources
            sync_op["autoHealAttemptsCount"] = heal_attempts
        operation: Obj = {"sync": sync_op, "initiatedBy": {"automated": True}}
        if policy.get("retry"):
            operation["retry"] = policy["retry"]
        return operation, None, None

    # ------------------------------------------------------------------------------------ operations

    async def _operate(self, key: str) -> float | None:
        app = self._get_app(key)
        if app is None:
            return None
        written = self._written.get(key)
        if written is not None:
            if not _not_older(app["metadata"].get("resourceVersion"), written):
                return 0.05
            del self._written[key]
        operation = app.get("operation")
        state = jsondata.clone((app.get("status") or {}).get("operationState") or {})
        phase = state.get("phase")
        if operation is None and phase not in (sync.RUNNING, sync.TERMINATING):
            return None
        if operation is not None and (not state or phase in sync.COMPLETED):
            if not isinstance(operation, Mapping) or not isinstance(operation.get("sync"), Mapping):
                state = {
                    "operation": operation,
                    "phase": sync.ERROR,
                    "message": "unsupported operation",
                    "startedAt": now(),
                    "finishedAt": now(),
                }
                await self._persist_operation(app, state, done=True)
                self.metrics.count_sync(app, state)
                return None
            state = {
                "operation": jsondata.clone(operation),
                "phase": sync.RUNNING,
                "message": "",
                "startedAt": now(),
            }
            self._applied[key] = {}
            if not await self._persist_operation(app, state, done=False):
                return 0.1
            target = str(operation["sync"].get("revision") or "").strip() or "the target revision"
            user = (operation.get("initiatedBy") or {}).get("username")
            initiated = f"{user} initiated sync to" if user else "Initiated automated sync to"
            self._event(app, events.NORMAL, "OperationStarted", f"{initiated} {target}")
            return 0.0  # continue from the informer's copy, which now holds the persisted state
        retry_at = self._retry_at.get(key)
        if retry_at is not None:
            if time.monotonic() < retry_at:
                return retry_at - time.monotonic()
            del self._retry_at[key]
        started = parse_time(state.get("startedAt")) or datetime.now(UTC)
        request = sync.SyncRequest.from_operation(state.get("operation") or {})
        project, problem = self._project_for(app)
        if project is None:
            compared = comparison.failed_comparison(app, self.env, comparison.INVALID_SPEC_ERROR, problem)
        else:
            self.env.repo_secrets = list(self.secrets.objects())
            compared = await comparison.compare(
                app,
                self.env,
                project=project,
                revision=request.revision or None,
                revisions=request.revisions or None,
                sources=request.sources or None,
            )
        previous = (state.get("syncResult") or {}).get("resources") or []
        if compared.failed:
            new_phase, message = sync.ERROR, "; ".join(c["message"] for c in compared.conditions)
            results = previous
        else:
            spec = app.get("spec") or {}
            policy = spec.get("syncPolicy") or {}
            ctx = sync.SyncContext(
                client=self.client,
                cluster=self.cluster,
                compared=compared,
                request=request,
                app_options=policy.get("syncOptions") or [],
                started_at=started,
                previous=previous,
                health_checks=self.settings.health_checks,
                managed_namespace_metadata=policy.get("managedNamespaceMetadata"),
                applied_versions=self._applied.setdefault(key, {}),
            )
            try:
                new_phase = await ctx.step(terminating=phase == sync.TERMINATING)
                message = ctx.message
            except (kube_errors.KubeError, GitOpsError) as exc:
                new_phase, message = sync.ERROR, str(exc)
            results = ctx.results()
        state["phase"] = new_phase
        state["message"] = message
        sync_result: Obj = {"resources": results}
        if compared.multi_source:
            sync_result["revisions"] = compared.revisions
            sync_result["sources"] = compared.sources
        else:
            sync_result["revision"] = compared.revision
            if compared.sources:
                sync_result["source"] = compared.sources[0]
        state["syncResult"] = sync_result
        if new_phase in (sync.FAILED, sync.ERROR) and phase != sync.TERMINATING:
            delay = self._retry_delay(state)
            if delay is not None:
                state["retryCount"] = int(state.get("retryCount") or 0) + 1
                state["phase"] = sync.RUNNING
                at = datetime.fromtimestamp(time.time() + delay, UTC).strftime("%I:%M%p").lstrip("0")
                state["message"] = f"{message.rstrip('.')}. Retrying attempt #{state['retryCount']} at {at}."
                state["syncResult"]["resources"] = []
                self._applied[key] = {}
                self._retry_at[key] = time.monotonic() + delay
                await self._persist_operation(app, state, done=False)
                return delay
        done = new_phase in sync.COMPLETED
        if done:
            state["finishedAt"] = now()
            if state.get("retryCount") and new_phase != sync.SUCCEEDED:
                state["message"] = f"{message.rstrip('.')} (retried {state['retryCount']} times)."
        persisted = await self._persist_operation(
            app,
            state,
            done=done,
            history=done and new_phase == sync.SUCCEEDED and not request.dry_run and not request.resources,
        )
        if not persisted:
            return 0.1  # the operation changed meanwhile (a terminate request): go on from the new state
        if done:
            self.metrics.count_sync(app, state)
            self._completed_event(app, state)
            self._applied.pop(key, None)
            self.request_refresh(key, LEVEL_LATEST)
            return None
        return 1.0

    def _retry_delay(self, state: Mapping[str, Any]) -> float | None:
        retry = (state.get("operation") or {}).get("retry") or {}
        if not retry:
            return None
        limit = int(retry.get("limit") or 0)
        count = int(state.get("retryCount") or 0)
        if limit >= 0 and count >= limit:
            return None
        backoff = retry.get("backoff") or {}
        try:
            duration = settings.parse_duration(str(backoff.get("duration") or "5s"))
            factor = float(backoff.get("factor") or 2)
            cap = settings.parse_duration(str(backoff.get("maxDuration") or "3m"))
        except (settings.SettingsError, ValueError):
            duration, factor, cap = 5.0, 2.0, 180.0
        return float(min(duration * factor**count, cap))

    async def _persist_operation(
        self, app: Mapping[str, Any], state: Obj, *, done: bool, history: bool = False
    ) -> bool:
        """Write the operation's state; False when it was not written (the app is gone, or the phase
        changed since it was read)."""
        ops: list[Obj] = [{"op": "add", "path": "/status/operationState", "value": state}]
        if done:
            ops.extend(_remove_ops("/operation"))
        if history:
            entries = list((app.get("status") or {}).get("history") or [])
            sync_result = state.get("syncResult") or {}
            entry: Obj = {
                "id": (max((int(e.get("id") or 0) for e in entries), default=-1) + 1),
                "deployStartedAt": state.get("startedAt"),
                "deployedAt": state.get("finishedAt"),
                "initiatedBy": (state.get("operation") or {}).get("initiatedBy") or {},
            }
            for field in ("revision", "revisions", "source", "sources"):
                if field in sync_result:
                    entry[field] = sync_result[field]
            entries.append(entry)
            limit = (app.get("spec") or {}).get("revisionHistoryLimit")
            limit = 10 if limit is None else int(limit)
            ops.append(
                {"op": "add", "path": "/status/history", "value": entries[-limit:] if limit > 0 else []}
            )
        meta = app["metadata"]
        if "status" not in app:
            ops = _with_new_status(ops, meta.get("resourceVersion"))
        read_phase = ((app.get("status") or {}).get("operationState") or {}).get("phase")
        if isinstance(read_phase, str):
            # Only over the phase we acted on: a terminate request (the API server sets Terminating) that
            # came in meanwhile must not be overwritten; the next reconcile then stops the sync.
            ops.insert(0, {"op": "test", "path": "/status/operationState/phase", "value": read_phase})
        try:
            written = await self.client.patch(
                crds.APPLICATION, meta["name"], ops, namespace=meta["namespace"], patch_type="json"
            )
        except kube_errors.ApiError as exc:
            message = exc.message or ""
            lost_race = '"test" operation failed' in message or "testing value" in message
            if exc.code == 422 and isinstance(read_phase, str) and lost_race:
                log.info(
                    "%s/%s: operation phase changed while syncing; continuing from the new state",
                    meta["namespace"],
                    meta["name"],
                )
                self.request_refresh(informers.object_key(dict(app)), LEVEL_LATEST)
                return False
            if not exc.not_found:
                raise
            return False
        self._written[informers.object_key(dict(app))] = str(written["metadata"]["resourceVersion"])
        return True

    # ------------------------------------------------------------------------------------ deletion

    async def _finalize(self, key: str, app: Mapping[str, Any]) -> float | None:
        finalizers = list((app.get("metadata") or {}).get("finalizers") or [])
        cascade = [f for f in finalizers if f in (RESOURCES_FINALIZER, BACKGROUND_FINALIZER)]
        if not cascade:
            return None
        propagation = "Background" if BACKGROUND_FINALIZER in cascade else "Foreground"
        instance = comparison.instance_of_app(app, self.namespace)
        live = self.cluster.managed(instance)
        remaining = []
        for res_key, obj in live.items():
            if (res_key.group, res_key.kind, res_key.name) == (
                "argoproj.io",
                "Application",
                app["metadata"]["name"],
            ):
                continue
            options = syncoptions.SyncOptions.parse([])
            if (syncoptions.resource_option(obj, syncoptions.DELETE, options) or "").lower() == "false":
                continue
            remaining.append((res_key, obj))
        errors: list[str] = []
        for res_key, obj in remaining:
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                if hooks.HOOK_FINALIZER in ((obj.get("metadata") or {}).get("finalizers") or []):
                    await self._drop_hook_finalizer(res_key, obj)
                continue
            kind = self.cluster.kind_for(res_key.group, res_key.kind)
            if kind is None:
                continue
            try:
                await self.client.delete(
                    kind, res_key.name, res_key.namespace or None, propagation=propagation
                )
            except kube_errors.ApiError as exc:
                errors.append(f"{res_key}: {exc}")
        if remaining:
            if errors:
                log.warning("deleting resources of %s: %s", key, "; ".join(errors))
            return 1.0
        patch = {
            "metadata": {
                "finalizers": [f for f in finalizers if f not in cascade] or None,
                "resourceVersion": app["metadata"].get("resourceVersion"),
            }
        }
        try:
            await self.client.patch(
                crds.APPLICATION, app["metadata"]["name"], patch, namespace=app["metadata"]["namespace"]
            )
        except kube_errors.ApiError as exc:
            if exc.conflict:
                return 0.2
            if not exc.not_found:
                raise
        return None

    async def _drop_hook_finalizer(self, res_key: Any, obj: Obj) -> None:
        kind = self.cluster.kind_for(res_key.group, res_key.kind)
        if kind is None:
            return
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != hooks.HOOK_FINALIZER]
        with contextlib.suppress(kube_errors.ApiError):
            await self.client.patch(
                kind,
                res_key.name,
                {"metadata": {"finalizers": finalizers or None}},
                namespace=res_key.namespace or None,
            )


def _not_older(current: Any, written: str) -> bool:
    try:
        return int(current) >= int(written)
    except (TypeError, ValueError):
        return current == written


def _with_new_status(ops: list[Obj], resource_version: Any) -> list[Obj]:
    """``ops`` for an app that has no ``status`` yet (as far as the informer knows): one ``add`` of the
    whole status, guarded by the resourceVersion so that a status written meanwhile is never replaced."""
    status: Obj = {}
    rest: list[Obj] = []
    for op in ops:
        path = str(op.get("path", ""))
        if path.startswith("/status/") and path.count("/") == 2:
            if op["op"] == "add" and op.get("value") != {}:
                status[path.split("/")[2]] = op["value"]
            continue  # removing what does not exist: nothing to do
        rest.append(op)
    guard = [op for op in rest if op["op"] == "test"]
    others = [op for op in rest if op["op"] != "test"]
    if not guard:
        guard = [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}]
    return [*guard, {"op": "add", "path": "/status", "value": status}, *others]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _remove_ops(path: str) -> list[Obj]:
    """Remove ``path`` whether or not it exists: add a placeholder, then remove it."""
    return [{"op": "add", "path": path, "value": {}}, {"op": "remove", "path": path}]


def _has_operation(app: Mapping[str, Any]) -> bool:
    return app.get("operation") is not None or _phase(app) in (sync.RUNNING, sync.TERMINATING)


def _phase(app: Mapping[str, Any]) -> str | None:
    return ((app.get("status") or {}).get("operationState") or {}).get("phase")


def _condition(kind: str, message: str) -> Obj:
    return {"type": kind, "message": message}


def _merge_conditions(base: list[Obj], new: list[Obj], app: Mapping[str, Any]) -> list[Obj]:
    """Conditions with ``lastTransitionTime`` kept from the app's current ones when unchanged."""
    old = {(c.get("type"), c.get("message")): c for c in (app.get("status") or {}).get("conditions") or []}
    out = list(base)
    for condition in new:
        found = old.get((condition.get("type"), condition.get("message")))
        stamped = dict(condition)
        stamped["lastTransitionTime"] = (found or {}).get("lastTransitionTime") or now()
        out.append(stamped)
    return out


__all__ = ["ApplicationController", "ControllerOptions"]
