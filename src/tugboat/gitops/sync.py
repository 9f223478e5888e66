"""The sync operation: a resumable state machine over phases, waves, hooks and prunes.

gitops-engine's ``SyncContext`` (research/argocd.md §3.2). Each call to :meth:`SyncContext.step` moves
the operation as far as it can without waiting and returns the operation phase; the controller persists
the task results in ``status.operationState.syncResult.resources`` after every step, and rebuilds the
context from them on the next one, so a restarted controller continues the same operation where it
stopped. The order is Argo CD's: PreSync, Sync, PostSync phases, waves within a phase, kinds in Helm's
install order within a wave; a wave starts only when every task of the previous one is done (hooks
complete, resources healthy); SyncFail hooks run when a task fails.

Objects are applied with server-side apply as field manager ``argocd-controller`` (``force``), or with a
client-side apply (``ServerSideApply=false``: the ``last-applied-configuration`` three-way merge that
``kubectl apply`` does), or replaced (``Replace=true``). Every apply is preceded, on the operation's first
step, by a server-side dry run of all of them: one invalid manifest fails the operation before anything
changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tugboat.gitops import (
    clustercache,
    comparison,
    health,
    hooks,
    ordering,
    resourcekey,
    respectignore,
    syncoptions,
)
from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds, strategicmerge
from tugboat.kube.client import Client, Obj
from tugboat.util import jsondata

log = logging.getLogger(__name__)

# Operation phases (common.OperationPhase)
RUNNING = "Running"
TERMINATING = "Terminating"
FAILED = "Failed"
ERROR = "Error"
SUCCEEDED = "Succeeded"
COMPLETED = frozenset({FAILED, ERROR, SUCCEEDED})

# Result codes (common.ResultCode)
SYNCED = "Synced"
SYNC_FAILED = "SyncFailed"
PRUNED = "Pruned"
PRUNE_SKIPPED = "PruneSkipped"

SSA_MANAGER = comparison.SSA_MANAGER
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PARALLELISM = 20

MESSAGE_SUCCEEDED = "successfully synced (all tasks run)"
MESSAGE_TASKS_FAILED = "one or more synchronization tasks completed unsuccessfully"
MESSAGE_DRY_RUN_FAILED = "one or more objects failed to apply (dry run)"
MESSAGE_INVALID_TASKS = "one or more synchronization tasks are not valid"
MESSAGE_TERMINATED = "Operation terminated"


@dataclasses.dataclass(frozen=True)
class SyncRequest:
    """``operation.sync`` as the controller understands it."""

    revision: str = ""
    revisions: tuple[str, ...] = ()
    prune: bool = False
    dry_run: bool = False
    force: bool = False
    strategy: str = "hook"
    resources: tuple[tuple[str, str, str, str], ...] = ()
    sync_options: tuple[str, ...] = ()
    sources: tuple[Obj, ...] = ()

    @classmethod
    def from_operation(cls, operation: Mapping[str, Any]) -> SyncRequest:
        sync = operation.get("sync") or {}
        strategy_spec = sync.get("syncStrategy") or {}
        strategy = "apply" if "apply" in strategy_spec else "hook"
        force = bool((strategy_spec.get(strategy) or {}).get("force"))
        resources = tuple(
            (r.get("group") or "", r.get("kind") or "", r.get("namespace") or "", r.get("name") or "")
            for r in sync.get("resources") or []
            if isinstance(r, Mapping)
        )
        sources: tuple[Obj, ...] = ()
        if sync.get("sources"):
            sources = tuple(dict(s) for s in sync["sources"])
        elif sync.get("source"):
            sources = (dict(sync["source"]),)
        return cls(
            revision=str(sync.get("revision") or ""),
            revisions=tuple(str(r) for r in sync.get("revisions") or []),
            prune=bool(sync.get("prune")),
            dry_run=bool(sync.get("dryRun")),
            force=force,
            strategy=strategy,
            resources=resources,
            sync_options=tuple(sync.get("syncOptions") or ()),
            sources=sources,
        )

    def selects(self, key: resourcekey.ResourceKey) -> bool:
        if not self.resources:
            return True
        for group, kind, namespace, name in self.resources:
            if (group, kind, name) == (key.group, key.kind, key.name) and namespace in ("", key.namespace):
                return True
        return False


@dataclasses.dataclass
class Task:
    """One thing to do: apply a resource or hook in a phase and wave, or prune a resource."""

    phase: str
    wave: int
    key: resourcekey.ResourceKey
    target: Obj | None
    live: Obj | None
    hook_type: str = ""
    modified: bool = True
    status: str = ""
    hook_phase: str = ""
    message: str = ""
    version: str = ""
    images: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_hook(self) -> bool:
        return bool(self.hook_type)

    @property
    def is_prune(self) -> bool:
        return self.target is None

    @property
    def result_key(self) -> tuple[str, str, str, str, str]:
        return (self.key.group, self.key.kind, self.key.namespace, self.key.name, self.phase)

    @property
    def started(self) -> bool:
        return bool(self.hook_phase)

    @property
    def running(self) -> bool:
        return self.hook_phase in (RUNNING, TERMINATING)

    @property
    def failed(self) -> bool:
        return self.status == SYNC_FAILED or self.hook_phase in (FAILED, ERROR)

    @property
    def obj(self) -> Obj:
        found = self.target if self.target is not None else self.live
        assert found is not None
        return found

    def to_result(self) -> Obj:
        out: Obj = {}
        if self.key.group:
            out["group"] = self.key.group
        out["version"] = self.version
        out["kind"] = self.key.kind
        if self.key.namespace:
            out["namespace"] = self.key.namespace
        out["name"] = self.key.name
        if self.status:
            out["status"] = self.status
        if self.message:
            out["message"] = self.message
        if self.hook_type:
            out["hookType"] = self.hook_type
        if self.hook_phase:
            out["hookPhase"] = self.hook_phase
        out["syncPhase"] = self.phase
        if self.images:
            out["images"] = self.images
        return out


def resource_name(key: resourcekey.ResourceKey) -> str:
    """kubectl's ``deployment.apps/guestbook-ui`` form."""
    kind = key.kind.lower()
    return f"{kind}.{key.group}/{key.name}" if key.group else f"{kind}/{key.name}"


def _result_key(result: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        result.get("group") or "",
        result.get("kind") or "",
        result.get("namespace") or "",
        result.get("name") or "",
        result.get("syncPhase") or hooks.SYNC,
    )


def _version(api_version: Any) -> str:
    return str(api_version or "").rpartition("/")[2]


def _finalizers(obj: Mapping[str, Any] | None) -> list[str]:
    return list(((obj or {}).get("metadata") or {}).get("finalizers") or [])


class SyncContext:
    """One sync operation of one Application (see the module docstring)."""

    def __init__(
        self,
        *,
        client: Client,
        cluster: clustercache.ClusterCache,
        compared: comparison.Comparison,
        request: SyncRequest,
        app_options: Sequence[str],
        started_at: datetime,
        previous: Iterable[Mapping[str, Any]] = (),
        health_checks: health.HealthChecks | None = None,
        managed_namespace_metadata: Mapping[str, Any] | None = None,
        applied_versions: dict[tuple[str, str, str, str, str], str] | None = None,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.compared = compared
        self.request = request
        self.options = syncoptions.SyncOptions.parse([*app_options, *request.sync_options])
        self.started_at = started_at
        self.health_checks = health_checks or health.DEFAULT
        self.namespace_metadata = managed_namespace_metadata or {}
        self.namespace = compared.destination.get("namespace") or ""
        self.previous = {_result_key(r): r for r in previous}
        # resourceVersions this process wrote, so a step never trusts a cache that has not seen them yet
        self.applied_versions = applied_versions if applied_versions is not None else {}
        self.tasks = self._build_tasks()
        self._unchecked_namespace = ""
        self.message = ""

    # ------------------------------------------------------------------------------------- tasks

    def _build_tasks(self) -> list[Task]:
        tasks: list[Task] = []
        revision = self.compared.revision
        for state in self.compared.resources:
            if not self.request.selects(state.key):
                continue
            if state.target is None and state.live is None:
                continue
            if state.target is None and state.live is not None and hooks.is_hook(state.live):
                continue
            task = Task(
                phase=hooks.SYNC,
                wave=hooks.wave(state.target if state.target is not None else state.live or {}),
                key=state.key,
                target=jsondata.clone(state.target) if state.target is not None else None,
                live=state.live,
                modified=state.status != comparison.SYNCED,
                version=state.version,
            )
            if not state.permitted:
                task.status = SYNC_FAILED
                task.hook_phase = FAILED
                task.message = state.message or f"resource {state.key.group_kind} is not permitted"
            tasks.append(task)
        if self.request.strategy == "hook" and not self.request.resources:
            for hook in self.compared.hooks:
                for hook_type in hooks.hook_types(hook):
                    if hook_type not in ordering.PHASE_ORDER:
                        continue
                    target = jsondata.clone(hook)
                    meta = target.setdefault("metadata", {})
                    if not meta.get("name") and meta.get("generateName"):
                        meta["name"] = hooks.generated_hook_name(
                            meta.pop("generateName"),
                            revision=revision,
                            phase=hook_type,
                            started_at=self.started_at,
                        )
                    elif meta.get("name"):
                        meta.pop("generateName", None)
                    if hooks.HOOK_FINALIZER not in meta.get("finalizers", []):
                        meta["finalizers"] = [*meta.get("finalizers", []), hooks.HOOK_FINALIZER]
                    key = resourcekey.ResourceKey.of(target)
                    tasks.append(
                        Task(
                            phase=hook_type,
                            wave=hooks.wave(target),
                            key=key,
                            target=target,
                            live=self.cluster.get(key),
                            hook_type=hook_type,
                            version=_version(target.get("apiVersion")),
                        )
                    )
        self._place_prunes(tasks)
        placed = ordering.schedule(
            tasks,
            key=lambda t: (t.phase, t.wave, t.key.group, t.key.kind, t.key.namespace, t.key.name),
            crd_target=_crd_target,
            is_target=lambda t: t.target is not None,
        )
        for placement in placed:  # a Namespace or CRD moves to the wave of the first resource needing it
            placement.item.phase, placement.item.wave = placement.phase, placement.wave
        tasks = [placement.item for placement in placed]
        for task in tasks:
            old = self.previous.get(task.result_key)
            if old is None:
                continue
            task.status = old.get("status") or ""
            task.hook_phase = old.get("hookPhase") or ""
            task.message = old.get("message") or ""
            task.images = list(old.get("images") or [])
            task.version = old.get("version") or task.version
        return tasks

    def _place_prunes(self, tasks: list[Task]) -> None:
        """Prune tasks run in reverse wave order, and PruneLast ones after every other wave."""
        prunes = [t for t in tasks if t.is_prune and not t.is_hook]
        if prunes:
            low = min(t.wave for t in prunes)
            high = max(t.wave for t in prunes)
            for task in prunes:
                task.wave = low + high - task.wave
        sync_waves = [t.wave for t in tasks if t.phase == hooks.SYNC]
        last = max(sync_waves) if sync_waves else 0
        for task in prunes:
            if syncoptions.resource_enabled(task.obj, syncoptions.PRUNE_LAST, self.options):
                task.wave = last + 1

    # ------------------------------------------------------------------------------------- step

    def results(self) -> list[Obj]:
        """Every task's result, in the order they ran; results of earlier steps whose task is gone (a
        pruned object no longer exists) are kept, as Argo CD keeps them."""
        current = {t.result_key: t for t in self.tasks if t.started or t.status}
        out: list[Obj] = []
        for key, old in self.previous.items():
            task = current.pop(key, None)
            if task is not None:
                out.append(task.to_result())
            else:
                kept = dict(old)
                if kept.get("status") == PRUNED and kept.get("hookPhase") == RUNNING:
                    kept["hookPhase"] = SUCCEEDED  # its object is gone
                out.append(kept)
        out.extend(task.to_result() for task in current.values())
        return out

    async def step(self, *, terminating: bool = False) -> str:
        """Advance the operation; returns its phase (``self.message`` says why)."""
        if terminating:
            await self._terminate()
            return FAILED
        first = not self.previous
        if first:
            if any(t.failed for t in self.tasks):  # refused by the project before anything ran
                self.message = MESSAGE_INVALID_TASKS
                return FAILED
            if self.options.enabled(syncoptions.CREATE_NAMESPACE):
                error = await self._create_namespace(dry_run=self.request.dry_run)
                if error:
                    self.message = error
                    return FAILED
            if await self._dry_run() is False:
                self.message = MESSAGE_DRY_RUN_FAILED
                return FAILED
            if self.request.dry_run:
                for task in self.tasks:
                    if not task.started:
                        task.status = (
                            SYNCED if not task.is_prune else (PRUNED if self.request.prune else PRUNE_SKIPPED)
                        )
                        task.hook_phase = SUCCEEDED
                        verb = "pruned" if task.is_prune else ("configured" if task.live else "created")
                        task.message = f"{resource_name(task.key)} {verb} (dry run)"
                self.message = MESSAGE_SUCCEEDED
                return SUCCEEDED

        self._update_running()
        multi_step = len({(t.phase, t.wave) for t in self.tasks}) > 1
        running = [t for t in self.tasks if t.running]
        waiting_hooks = [t for t in running if t.is_hook]
        if waiting_hooks or (multi_step and running):
            self.message = _waiting_message(running)
            return RUNNING

        await self._release_completed_hooks()
        failed = [t for t in self.tasks if t.failed and t.phase != hooks.SYNC_FAIL]
        if failed:
            sync_fail = [t for t in self.tasks if t.phase == hooks.SYNC_FAIL]
            pending_fail = [t for t in sync_fail if not t.started]
            if pending_fail:
                await self._run_group(pending_fail)
                if any(t.running for t in pending_fail):
                    self.message = _waiting_message([t for t in pending_fail if t.running])
                    return RUNNING
            await self._delete_hooks(policy=hooks.HOOK_FAILED, successful=False)
            self.message = _failure_message(failed)
            return FAILED

        pending = [t for t in self.tasks if not t.started and t.phase != hooks.SYNC_FAIL]
        if self.options.enabled(syncoptions.APPLY_OUT_OF_SYNC_ONLY):
            pending = [t for t in pending if t.is_hook or t.is_prune or t.modified]
        if not pending:
            await self._delete_hooks(policy=hooks.HOOK_SUCCEEDED, successful=True)
            self.message = MESSAGE_SUCCEEDED
            return SUCCEEDED

        group_id = (pending[0].phase, pending[0].wave)
        group = [t for t in pending if (t.phase, t.wave) == group_id]
        await self._run_group(group)
        if any(t.failed for t in group):
            return await self.step()
        remaining = [t for t in pending if (t.phase, t.wave) != group_id]
        if (
            not remaining
            and not any(t.is_hook for t in group)
            and not any(t.running and t.is_prune for t in group)
        ):
            await self._delete_hooks(policy=hooks.HOOK_SUCCEEDED, successful=True)
            self.message = MESSAGE_SUCCEEDED
            return SUCCEEDED
        self.message = _waiting_message([t for t in group if t.running]) or "one or more tasks are running"
        return RUNNING

    # ------------------------------------------------------------------------------------- helpers

    def _fresh_live(self, task: Task) -> tuple[bool, Obj | None]:
        """The cached live object of a task, and whether the cache has seen this process's last write."""
        live = self.cluster.get(task.key)
        written = self.applied_versions.get(task.result_key)
        if written is None:
            return True, live
        if live is None:
            return task.is_prune, None
        current = (live.get("metadata") or {}).get("resourceVersion") or ""
        if current == written:
            return True, live
        try:
            return int(current) >= int(written), live
        except ValueError:
            return True, live

    def _update_running(self) -> None:
        for task in self.tasks:
            if task.hook_phase != RUNNING:
                continue
            fresh, live = self._fresh_live(task)
            if not fresh:
                continue
            if task.is_prune:
                if live is None:
                    task.hook_phase = SUCCEEDED
                continue
            if live is None:
                if task.is_hook:
                    task.hook_phase = FAILED
                    task.message = task.message or "hook object is missing"
                else:
                    task.hook_phase = FAILED
                    task.status = SYNC_FAILED
                    task.message = f"{resource_name(task.key)} is missing"
                continue
            status = self.health_checks.health_of(live)
            if status is None or status.status in (health.HEALTHY, health.SUSPENDED):
                task.hook_phase = SUCCEEDED
                if task.is_hook and status is not None and status.message:
                    task.message = status.message
            elif status.status == health.DEGRADED:
                task.hook_phase = FAILED
                task.message = status.message or task.message
                if not task.is_hook:
                    task.status = SYNC_FAILED

    async def _kind(self, obj: Mapping[str, Any]) -> kinds.Kind | None:
        group, kind = resourcekey.group_kind_of(obj)
        version = _version(obj.get("apiVersion"))
        known = self.cluster.kind_for(group, kind)
        if known is not None and known.version == version:
            return known
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = await self.client.request("GET", path)
        except kube_errors.ApiError:
            return None
        for res in (doc or {}).get("resources") or []:
            if res.get("kind") == kind and "/" not in (res.get("name") or ""):
                return kinds.Kind(group, version, kind, res["name"], namespaced=bool(res.get("namespaced")))
        return None

    async def _create_namespace(self, *, dry_run: bool = False) -> str:
        if not self.namespace:
            return ""
        if dry_run:
            # Nothing is created by a dry run; objects in a namespace still to be created are not
            # checked by the server (it would only say the namespace does not exist).
            if await self.client.get_or_none(kinds.NAMESPACE, self.namespace) is None:
                self._unchecked_namespace = self.namespace
            return ""
        if any(
            t.key.group == "" and t.key.kind == "Namespace" and t.key.name == self.namespace
            for t in self.tasks
        ):
            return ""  # a Namespace manifest in Git wins
        meta: Obj = {"name": self.namespace}
        for field in ("labels", "annotations"):
            if self.namespace_metadata.get(field):
                meta[field] = dict(self.namespace_metadata[field])
        try:
            if self.namespace_metadata:
                await self.client.apply(
                    kinds.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}, force=True
                )
            elif await self.client.get_or_none(kinds.NAMESPACE, self.namespace) is None:
                await self.client.create(kinds.NAMESPACE, {"metadata": meta})
        except kube_errors.ApiError as exc:
            if not exc.already_exists:
                return f"failed to create namespace {self.namespace}: {exc}"
        return ""

    def _defined_by_sync(self, group: str, kind: str) -> bool:
        return any(_crd_target(t) == (group, kind) for t in self.tasks if t.target is not None)

    async def _dry_run(self) -> bool:
        async def one(task: Task) -> None:
            if task.started or task.target is None or (task.is_hook and task.live is not None):
                return
            if self._unchecked_namespace and task.key.namespace == self._unchecked_namespace:
                return
            kind = await self._kind(task.target)
            group, kind_name = task.key.group, task.key.kind
            if kind is None:
                if self._defined_by_sync(group, kind_name) or syncoptions.resource_enabled(
                    task.target, syncoptions.SKIP_DRY_RUN_ON_MISSING_RESOURCE, self.options
                ):
                    return
                task.status = SYNC_FAILED
                task.hook_phase = FAILED
                task.message = (
                    f"The Kubernetes API could not find {kind_name}.{group or 'core'} for requested resource "
                    f'{task.key.namespace}/{task.key.name}. Make sure the "{kind_name}" CRD is installed on '
                    "the destination cluster."
                )
                return
            try:
                await self._apply(task, kind, dry_run=True)
            except kube_errors.KubeError as exc:
                task.status = SYNC_FAILED
                task.hook_phase = FAILED
                task.message = _api_message(exc)

        await comparison.gather_limited(PARALLELISM, *(one(t) for t in self.tasks))
        return not any(t.failed for t in self.tasks)

    async def _run_group(self, group: list[Task]) -> None:
        await comparison.gather_limited(PARALLELISM, *(self._run_task(t) for t in group))

    async def _run_task(self, task: Task) -> None:
        if task.is_prune:
            await self._prune(task)
            return
        assert task.target is not None
        kind = await self._kind(task.target)
        if kind is None:
            task.status, task.hook_phase = SYNC_FAILED, FAILED
            task.message = f"the server could not find the requested resource ({task.key.group_kind})"
            return
        try:
            if task.is_hook and task.live is not None:
                policies = hooks.delete_policies(task.target)
                if hooks.BEFORE_HOOK_CREATION in policies and not await self._recreate_hook(task, kind):
                    task.status, task.hook_phase = SYNC_FAILED, FAILED
                    task.message = "timed out waiting for the previous hook to be deleted"
                    return
            verb = await self._apply(task, kind, dry_run=False)
        except kube_errors.KubeError as exc:
            task.status, task.hook_phase = SYNC_FAILED, FAILED
            task.message = _api_message(exc)
            return
        task.status = SYNCED
        task.hook_phase = RUNNING
        task.message = f"{resource_name(task.key)} {verb}"
        task.images = comparison.images_of([task.target])

    async def _recreate_hook(self, task: Task, kind: kinds.Kind) -> bool:
        """BeforeHookCreation: delete the hook left by an earlier sync and wait until it is gone."""
        live = await self.client.get_or_none(kind, task.key.name, task.key.namespace or None)
        if live is None:
            return True
        if hooks.HOOK_FINALIZER in _finalizers(live):
            await self._remove_finalizer(kind, live)
        await self.client.delete(kind, task.key.name, task.key.namespace or None, propagation="Background")
        for _ in range(300):
            if await self.client.get_or_none(kind, task.key.name, task.key.namespace or None) is None:
                task.live = None
                return True
            await asyncio.sleep(0.1)
        return False

    async def _apply(self, task: Task, kind: kinds.Kind, *, dry_run: bool) -> str:
        """Apply a task's target; returns kubectl's verb (created, configured, unchanged)."""
        assert task.target is not None
        target = jsondata.clone(task.target)
        if (
            task.live is not None
            and not task.is_hook
            and syncoptions.resource_enabled(target, syncoptions.RESPECT_IGNORE_DIFFERENCES, self.options)
        ):
            target = respectignore.respect(target, task.live, self.compared.ignore_rules)
        name = task.key.name
        namespace = task.key.namespace or None
        if not kind.namespaced:
            target.get("metadata", {}).pop("namespace", None)
            namespace = None
        replace = syncoptions.resource_enabled(target, syncoptions.REPLACE, self.options)
        server_side = (
            syncoptions.resource_option(target, syncoptions.SERVER_SIDE_APPLY, self.options) or "true"
        ).lower() != "false"
        live: Obj | None
        if dry_run and task.is_hook:
            live = None
        elif server_side and not replace and not task.is_hook:
            live = task.live  # a server-side apply needs no fresh copy; the cache's tells created/configured
        else:
            live = await self.client.get_or_none(kind, name, namespace)
        before = (live or {}).get("metadata", {}).get("resourceVersion")
        validate = (
            syncoptions.resource_option(target, syncoptions.VALIDATE, self.options) or "true"
        ).lower() != "false"
        params_validation = None if validate else "Ignore"
        if task.is_hook and live is None:
            result = await self._write(
                kind, "POST", kind.collection_path(namespace), target, dry_run, params_validation
            )
            verb = "created"
        elif replace or (task.is_hook and not server_side):
            if live is None:
                result = await self._write(
                    kind, "POST", kind.collection_path(namespace), target, dry_run, params_validation
                )
                verb = "created"
            else:
                force = (
                    syncoptions.resource_enabled(target, syncoptions.FORCE, self.options)
                    or self.request.force
                )
                if force and not dry_run and kind.kind not in ("CustomResourceDefinition", "Namespace"):
                    await self.client.delete(kind, name, namespace, propagation="Foreground")
                    result = await self._write(
                        kind, "POST", kind.collection_path(namespace), target, dry_run, params_validation
                    )
                    verb = "replaced"
                else:
                    target.setdefault("metadata", {})["resourceVersion"] = before
                    result = await self._write(
                        kind, "PUT", kind.object_path(name, namespace), target, dry_run, params_validation
                    )
                    verb = "replaced"
        elif server_side:
            params: dict[str, str | int] = {"fieldManager": SSA_MANAGER, "force": "true"}
            if dry_run:
                params["dryRun"] = "All"
            if params_validation:
                params["fieldValidation"] = params_validation
            result = await self.client.request(
                "PATCH",
                kind.object_path(name, namespace),
                params=params,
                body=target,
                content_type="application/apply-patch+yaml",
            )
            verb = "created" if live is None else "configured"
        else:
            result, verb = await self._client_side_apply(
                kind, target, live, namespace, dry_run, params_validation
            )
        after = (result or {}).get("metadata", {}).get("resourceVersion")
        if not dry_run:
            if after:
                self.applied_versions[task.result_key] = after
            if live is not None and before == after:
                verb = "unchanged"
        return verb

    async def _write(
        self, kind: kinds.Kind, method: str, path: str, body: Obj, dry_run: bool, validation: str | None
    ) -> Obj:
        params: dict[str, str | int] = {"fieldManager": SSA_MANAGER}
        if dry_run:
            params["dryRun"] = "All"
        if validation:
            params["fieldValidation"] = validation
        result: Obj = await self.client.request(method, path, params=params, body=body)
        return result

    async def _client_side_apply(
        self,
        kind: kinds.Kind,
        target: Obj,
        live: Obj | None,
        namespace: str | None,
        dry_run: bool,
        validation: str | None,
    ) -> tuple[Obj, str]:
        """``kubectl apply``'s three-way merge: what Git dropped since the last apply is removed, what Git
        holds is set, and what others added is kept; the applied manifest is remembered in the annotation."""
        desired = jsondata.clone(target)
        desired.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
            target, sort_keys=True, separators=(",", ":")
        )
        if live is None:
            created = await self._write(
                kind, "POST", kind.collection_path(namespace), desired, dry_run, validation
            )
            return created, "created"
        group, kind_name = kind.group, kind.kind
        try:
            previous = json.loads(
                ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED) or "{}"
            )
        except ValueError:
            previous = {}
        removals = strategicmerge.create_two_way(
            previous if isinstance(previous, dict) else {}, desired, group=group, kind=kind_name
        )
        merged = strategicmerge.apply(live, removals, group=group, kind=kind_name)
        merged = strategicmerge.apply(merged, desired, group=group, kind=kind_name)
        merged.setdefault("metadata", {})["resourceVersion"] = (live.get("metadata") or {}).get(
            "resourceVersion"
        )
        updated = await self._write(
            kind, "PUT", kind.object_path(target["metadata"]["name"], namespace), merged, dry_run, validation
        )
        return updated, "configured"

    async def _prune(self, task: Task) -> None:
        obj = task.obj
        option = (syncoptions.resource_option(obj, syncoptions.PRUNE, self.options) or "").lower()
        if option == "false":
            task.status, task.hook_phase, task.message = PRUNE_SKIPPED, SUCCEEDED, "ignored (no prune)"
            return
        if not self.request.prune:
            task.status, task.hook_phase = PRUNE_SKIPPED, SUCCEEDED
            task.message = "ignored (requires pruning)"
            return
        kind = await self._kind(obj)
        if kind is None:
            task.status, task.hook_phase, task.message = PRUNED, SUCCEEDED, "pruned"
            return
        policy = (
            syncoptions.resource_option(obj, syncoptions.PRUNE_PROPAGATION_POLICY, self.options)
            or "foreground"
        )
        propagation = {"foreground": "Foreground", "background": "Background", "orphan": "Orphan"}.get(
            policy.lower(), "Foreground"
        )
        try:
            await self.client.delete(kind, task.key.name, task.key.namespace or None, propagation=propagation)
        except kube_errors.KubeError as exc:
            task.status, task.hook_phase, task.message = SYNC_FAILED, FAILED, _api_message(exc)
            return
        self.applied_versions[task.result_key] = "0"
        task.status, task.hook_phase, task.message = PRUNED, RUNNING, "pruned"

    async def _remove_finalizer(self, kind: kinds.Kind, live: Obj) -> None:
        remaining = [f for f in _finalizers(live) if f != hooks.HOOK_FINALIZER]
        patch = {
            "metadata": {
                "finalizers": remaining or None,
                "resourceVersion": live["metadata"].get("resourceVersion"),
            }
        }
        try:
            await self.client.patch(
                kind, live["metadata"]["name"], patch, namespace=live["metadata"].get("namespace")
            )
        except kube_errors.ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise

    async def _release_completed_hooks(self) -> None:
        for task in self.tasks:
            if not task.is_hook or task.running or not task.started:
                continue
            live = self.cluster.get(task.key)
            if live is None or hooks.HOOK_FINALIZER not in _finalizers(live):
                continue
            kind = await self._kind(live)
            if kind is not None:
                await self._remove_finalizer(kind, live)

    async def _delete_hooks(self, *, policy: str, successful: bool) -> None:
        for task in self.tasks:
            if not task.is_hook or not task.started or task.target is None:
                continue
            if successful and task.hook_phase != SUCCEEDED:
                continue
            if not successful and not task.failed:
                continue
            if policy not in hooks.delete_policies(task.target):
                continue
            kind = await self._kind(task.target)
            if kind is None:
                continue
            live = await self.client.get_or_none(kind, task.key.name, task.key.namespace or None)
            if live is None:
                continue
            if hooks.HOOK_FINALIZER in _finalizers(live):
                await self._remove_finalizer(kind, live)
            await self.client.delete(
                kind, task.key.name, task.key.namespace or None, propagation="Background"
            )

    async def _terminate(self) -> None:
        for task in self.tasks:
            if task.running and task.is_hook and task.target is not None:
                kind = await self._kind(task.target)
                if kind is not None:
                    live = await self.client.get_or_none(kind, task.key.name, task.key.namespace or None)
                    if live is not None:
                        if hooks.HOOK_FINALIZER in _finalizers(live):
                            await self._remove_finalizer(kind, live)
                        await self.client.delete(
                            kind, task.key.name, task.key.namespace or None, propagation="Background"
                        )
                task.hook_phase = FAILED
                task.message = "Terminated"
            elif task.running:
                task.hook_phase = FAILED
                task.message = task.message or "Terminated"
        self.message = MESSAGE_TERMINATED


def _crd_target(task: Task) -> tuple[str, str] | None:
    obj = task.target
    if obj is None or task.key.kind != "CustomResourceDefinition":
        return None
    spec = obj.get("spec") or {}
    return (spec.get("group") or "", (spec.get("names") or {}).get("kind") or "")


def _waiting_message(running: Sequence[Task]) -> str:
    if not running:
        return ""
    task = running[0]
    where = f"{task.key.namespace}/{task.key.name}" if task.key.namespace else task.key.name
    kind = f"{task.key.group}/{task.key.kind}" if task.key.group else task.key.kind
    if task.is_hook:
        return f"waiting for completion of hook {kind}/{task.key.name}"
    if task.is_prune:
        return f"waiting for deletion of {kind}/{where}"
    return f"waiting for healthy state of {kind}/{task.key.name}"


def _failure_message(failed: Sequence[Task]) -> str:
    reasons = [t.message for t in failed if t.message]
    if reasons:
        return f"{MESSAGE_TASKS_FAILED} (" + "; ".join(dict.fromkeys(reasons)) + ")"
    return MESSAGE_TASKS_FAILED


def _api_message(exc: kube_errors.KubeError) -> str:
    return str(exc)
