"""One reconcile of one Rollout: a straight line of idempotent steps, then one status write.

argo-rollouts' ``rollout/`` package shape (research/rollouts.md §2.4): build the context (the Rollout, its
new, stable and other ReplicaSets), make sure the new ReplicaSet exists, run the strategy (blue-green or
canary) as steps that change the world and return early, then compute the whole status once - replica
counts, conditions, pause state, phase and message (§2.3) - and write it with one merge patch to
``/status``. Abort, retry, promote and pause are requests written into status or spec by clients; the
controller reads them here. Analysis and experiment steps are seams for the analysis issue: today they
complete at once.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds, mergepatch, writes
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import (
    analysisruns,
    conditions,
    crds,
    defaults,
    ephemeral,
    hashing,
    ownedobjects,
    phase,
    stepexperiments,
    trafficrouting,
    validation,
)
from tugboat.rollouts import experiments as experimentsmod
from tugboat.rollouts import replicasets as rsutil
from tugboat.rollouts.analysis import templates

log = logging.getLogger(__name__)

MANAGED_BY = "argo-rollouts.argoproj.io/managed-by-rollouts"
WORKLOAD_GENERATION = phase.WORKLOAD_GENERATION_ANNOTATION
CANARY_PAUSE = "CanaryPauseStep"
INCONCLUSIVE_EXPERIMENT = "InconclusiveExperiment"
BLUEGREEN_PAUSE = "BlueGreenPause"

EventFunc = Callable[[Obj, str, str, str], None]


_parse = rsutil.parse_time


@dataclass
class Context:
    """What one reconcile works on, and what it decided."""

    ro: Obj
    replicasets: list[Obj]
    services: Callable[[str], Obj | None]
    now: datetime
    new_rs: Obj | None = None
    stable_rs: Obj | None = None
    others: list[Obj] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    requeue: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    workload: Obj | None = None
    switched: dict[str, Obj] = field(default_factory=dict)
    within_window: bool = False  # a return to a recent revision (spec.rollbackWindow): no steps, no pause
    within_delay: bool = False  # a return to a blue-green revision still up in its scale-down delay
    runs: list[Obj] = field(default_factory=list)  # the Rollout's AnalysisRuns
    current_runs: dict[str, Obj | None] = field(default_factory=dict)  # by kind, after _analysis
    experiments: list[Obj] = field(default_factory=list)  # the Rollout's Experiments
    current_experiment: Obj | None = None  # the experiment step's, after _experiments

    def service(self, name: str) -> Obj | None:
        """A Service, as this reconcile left it."""
        return self.switched.get(name) or self.services(name)

    @property
    def spec(self) -> Obj:
        return self.ro.get("spec") or {}

    @property
    def name(self) -> str:
        return str(self.ro["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.ro["metadata"]["namespace"])

    @property
    def replicas(self) -> int:
        return defaults.replicas(self.ro)

    @property
    def blue_green(self) -> Obj | None:
        found = (self.spec.get("strategy") or {}).get("blueGreen")
        return found if isinstance(found, dict) else None

    @property
    def canary(self) -> Obj | None:
        found = (self.spec.get("strategy") or {}).get("canary")
        return found if isinstance(found, dict) else None

    def wake_in(self, seconds: float) -> None:
        seconds = max(seconds, 0.05)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))


class Reconciler:
    """Reconciles Rollouts with ``client``; ``record`` writes Kubernetes Events."""

    def __init__(self, client: Client, *, record: EventFunc | None = None) -> None:
        self.client = client
        self.record = record
        self.writes = writes.WriteTracker()  # a Rollout from a cache older than our last write waits
        self.stale = self.writes.stale
        self.forget = self.writes.forget

    def _wrote(self, ro: Obj) -> None:
        self.writes.wrote(ro)

    # ------------------------------------------------------------------------------------ entry

    async def reconcile(
        self,
        ro: Obj,
        replicasets: list[Obj],
        services: Callable[[str], Obj | None],
        *,
        now: datetime,
        analysis_runs: list[Obj] | None = None,
        experiments: list[Obj] | None = None,
    ) -> float | None:
        """Bring the cluster one step closer to ``ro``; returns seconds until it wants to look again."""
        ctx = Context(copy.deepcopy(ro), [copy.deepcopy(r) for r in replicasets], services, now)
        ctx.runs = list(analysis_runs or [])
        ctx.experiments = list(experiments or [])
        ctx.status = copy.deepcopy(ro.get("status") or {})
        problem = validation.validate(ro)  # as written: a workloadRef Rollout has no template of its own
        if problem is None:
            problem = await self._resolve_workload(ctx)
        if problem is None:
            problem = self._check_services(ctx)
        if problem is not None:
            self._set_condition(ctx, conditions.INVALID_SPEC, "True", conditions.INVALID_SPEC, problem)
            await self._finish(ctx, ro)
            return 20.0
        ctx.status["conditions"] = conditions.remove(
            ctx.status.get("conditions") or [], conditions.INVALID_SPEC
        )
        await self._ensure_new_rs(ctx)
        self._classify(ctx)
        self._reset_on_change(ctx)
        self._retry_and_abort_bookkeeping(ctx)
        self._fast_rollback(ctx)
        await self._clear_new_deadline(ctx)
        try:
            await self._experiment_step(ctx)
            await self._analysis(ctx)
        except (templates.AnalysisSpecError, experimentsmod.ExperimentSpecError) as exc:
            # A run that cannot be made (a missing template, an unresolved arg) stops the update.
            message = f'The Rollout "{ctx.name}" is invalid: {exc}'
            self._set_condition(ctx, conditions.INVALID_SPEC, "True", conditions.INVALID_SPEC, message)
            await self._finish(ctx, ro)
            return 20.0
        try:
            if ctx.blue_green is not None:
                await self._blue_green(ctx)
            else:
                await self._canary(ctx)
        except trafficrouting.RouterError as exc:
            # A router that cannot work (its Ingress or route is missing): reported like an invalid spec.
            message = f'The Rollout "{ctx.name}" is invalid: {exc}'
            self._set_condition(ctx, conditions.INVALID_SPEC, "True", conditions.INVALID_SPEC, message)
            await self._finish(ctx, ro)
            return 20.0
        self._progress_deadline(ctx)
        await self._ephemeral_metadata(ctx)
        await self._scale_down_old(ctx)
        await self._restart(ctx)
        await self._scale_down_workload(ctx)
        await self._finish(ctx, ro)
        return ctx.requeue

    async def _finish(self, ctx: Context, ro: Obj) -> None:
        """The one status write, then the events of this reconcile (an invalid spec's too)."""
        await self._write_status(ctx, ro)
        if self.record is not None:
            for kind, reason, message in ctx.events:
                self.record(ro, kind, reason, message)

    # ------------------------------------------------------------------------------------ workloadRef

    async def _resolve_workload(self, ctx: Context) -> str | None:
        """``spec.workloadRef``: the template and selector come from a Deployment (never persisted)."""
        ref = ctx.spec.get("workloadRef")
        if not isinstance(ref, dict):
            return None
        if ref.get("kind") != "Deployment":
            return f'The Rollout "{ctx.name}" is invalid: spec.workloadRef.kind: only Deployment is supported'
        deployment = await self.client.get_or_none(kinds.DEPLOYMENT, str(ref.get("name")), ctx.namespace)
        if deployment is None:
            return (
                f'The Rollout "{ctx.name}" is invalid: spec.workloadRef.name: Invalid value: '
                f'"{ref.get("name")}": deployments.apps "{ref.get("name")}" not found'
            )
        spec = ctx.ro.setdefault("spec", {})
        spec["template"] = copy.deepcopy((deployment.get("spec") or {}).get("template") or {})
        spec["selector"] = copy.deepcopy((deployment.get("spec") or {}).get("selector") or {})
        ctx.workload = deployment
        generation = str((deployment.get("metadata") or {}).get("generation", ""))
        ctx.status["workloadObservedGeneration"] = generation
        annotations = ctx.ro["metadata"].get("annotations") or {}
        if annotations.get(WORKLOAD_GENERATION) != generation:
            patch = {"metadata": {"annotations": {WORKLOAD_GENERATION: generation}}}
            self._wrote(await self.client.patch(crds.ROLLOUT, ctx.name, patch, namespace=ctx.namespace))
        return None

    async def _scale_down_workload(self, ctx: Context) -> None:
        """``scaleDown: onsuccess|progressively``: the Deployment goes to zero once the Rollout is whole."""
        ref = ctx.spec.get("workloadRef") or {}
        deployment = ctx.workload
        mode = str(ref.get("scaleDown") or "never")
        if deployment is None or mode == "never" or not (deployment.get("spec") or {}).get("replicas"):
            return
        whole = (
            ctx.status.get("stableRS") == ctx.status.get("currentPodHash")
            and rsutil.available(ctx.new_rs) >= ctx.replicas
        )
        if whole:
            await self.client.patch(
                kinds.DEPLOYMENT,
                deployment["metadata"]["name"],
                {"spec": {"replicas": 0}},
                namespace=ctx.namespace,
            )

    # ------------------------------------------------------------------------------------ restart

    async def _restart(self, ctx: Context) -> None:
        """``spec.restartAt``: pods created before it are replaced, one ReplicaSet pod at a time."""
        wanted = ctx.spec.get("restartAt")
        moment = _parse(wanted)
        if moment is None or ctx.status.get("restartedAt") == wanted:
            return
        if moment > ctx.now:
            ctx.wake_in((moment - ctx.now).total_seconds())
            return
        hashes = [rsutil.hash_of(r) for r in ctx.replicasets if rsutil.spec_replicas(r) > 0]
        if not hashes:
            ctx.status["restartedAt"] = wanted
            return
        selector = f"{rsutil.HASH_LABEL} in ({','.join(sorted(set(hashes)))})"
        pods, _ = await self.client.list(kinds.POD, ctx.namespace, labels=selector)
        old = [
            p
            for p in pods
            if not (p.get("metadata") or {}).get("deletionTimestamp")
            and (_parse((p.get("metadata") or {}).get("creationTimestamp")) or ctx.now) < moment
        ]
        if not old:
            ctx.status["restartedAt"] = wanted
            ctx.event("Normal", "RolloutRestarted", "Rollout restarted")
            return
        terminating = any((p.get("metadata") or {}).get("deletionTimestamp") for p in pods)
        if terminating or any(rsutil.available(r) < rsutil.spec_replicas(r) for r in ctx.replicasets):
            ctx.wake_in(1)
            return
        stable = ctx.status.get("stableRS")
        old.sort(
            key=lambda p: (
                p["metadata"].get("labels", {}).get(rsutil.HASH_LABEL) != stable,
                p["metadata"].get("creationTimestamp", ""),
            )
        )
        victim = old[0]
        await self.client.delete(kinds.POD, victim["metadata"]["name"], ctx.namespace)
        ctx.event("Normal", "RestartingPod", f"Restarting pod {victim['metadata']['name']}")
        ctx.wake_in(1)

    # ------------------------------------------------------------------------------------ ephemeral metadata

    async def _ephemeral_metadata(self, ctx: Context) -> None:
        """Canary/preview metadata on the new version, stable/active on the stable one, none elsewhere:
        into each ReplicaSet's pod template first (new pods get it), then onto its running pods."""
        if ctx.new_rs is None or not (
            ephemeral.configured(ctx.ro) or any(map(ephemeral.injected, ctx.replicasets))
        ):
            return
        new_meta, stable_meta = ephemeral.roles(ctx.ro)
        stable_hash = ctx.status.get("stableRS")
        plan: list[tuple[Obj, Mapping[str, Any] | None]] = []
        if not stable_hash or stable_hash == rsutil.hash_of(ctx.new_rs):
            plan.append((ctx.new_rs, stable_meta))
        else:
            plan.append((ctx.new_rs, new_meta))
            if ctx.stable_rs is not None:
                plan.append((ctx.stable_rs, stable_meta))
        plan.extend((rs, None) for rs in ctx.others if rs is not ctx.new_rs and rs is not ctx.stable_rs)
        for rs, desired in plan:
            patch = ephemeral.replicaset_patch(rs, desired)
            if patch is None:
                continue
            before = ephemeral.injected(rs)
            updated = await self.client.patch(
                kinds.REPLICASET, rs["metadata"]["name"], patch, namespace=ctx.namespace
            )
            rs.clear()
            rs.update(updated)
            if rsutil.spec_replicas(rs) > 0:
                await self._ephemeral_pods(ctx, rs, before, desired)

    async def _ephemeral_pods(
        self, ctx: Context, rs: Obj, before: Mapping[str, Any] | None, desired: Mapping[str, Any] | None
    ) -> None:
        selector = f"{rsutil.HASH_LABEL}={rsutil.hash_of(rs)}"
        pods, _ = await self.client.list(kinds.POD, ctx.namespace, labels=selector)
        for pod in pods:
            meta = pod.get("metadata") or {}
            patch = ephemeral.metadata_patch(meta, ephemeral.apply(meta, before, desired))
            if patch is None or meta.get("deletionTimestamp"):
                continue
            try:
                await self.client.patch(kinds.POD, meta["name"], {"metadata": patch}, namespace=ctx.namespace)
            except kube_errors.ApiError as exc:
                if not exc.not_found:
                    raise

    # ------------------------------------------------------------------------------------ context

    def _check_services(self, ctx: Context) -> str | None:
        fields: list[tuple[str, Any]] = []
        if ctx.blue_green is not None:
            fields = [
                ("spec.strategy.blueGreen.activeService", ctx.blue_green.get("activeService")),
                ("spec.strategy.blueGreen.previewService", ctx.blue_green.get("previewService")),
            ]
        elif ctx.canary is not None:
            fields = [
                ("spec.strategy.canary.canaryService", ctx.canary.get("canaryService")),
                ("spec.strategy.canary.stableService", ctx.canary.get("stableService")),
            ]
        for path, name in fields:
            if not name:
                continue
            svc = ctx.services(name)
            where = f'The Rollout "{ctx.name}" is invalid: {path}: Invalid value: "{name}"'
            if svc is None:
                return f'{where}: service "{name}" not found'
            owner = ((svc.get("metadata") or {}).get("annotations") or {}).get(MANAGED_BY)
            if owner and owner != ctx.name:
                return f'{where}: Service "{name}" is managed by another Rollout'
        return None

    async def _ensure_new_rs(self, ctx: Context) -> None:
        template = ctx.spec.get("template") or {}
        collisions = ctx.status.get("collisionCount")
        pod_hash = hashing.pod_template_hash(template, collisions)
        found = rsutil.find_new(ctx.replicasets, template, pod_hash)
        top = max((rsutil.revision_of(r) for r in ctx.replicasets), default=0)
        if found is None:
            rs = rsutil.build(ctx.ro, template, pod_hash, top + 1)
            if ephemeral.configured(ctx.ro):
                new_meta, stable_meta = ephemeral.roles(ctx.ro)
                stable_hash = ctx.status.get("stableRS")
                has_stable = any(rsutil.hash_of(r) == stable_hash for r in ctx.replicasets)
                rs = ephemeral.inject(rs, new_meta if has_stable else stable_meta)
            try:
                created = await self.client.create(kinds.REPLICASET, rs)
            except kube_errors.ApiError as exc:
                if not exc.already_exists:
                    raise
                existing = await self.client.get(kinds.REPLICASET, rs["metadata"]["name"], ctx.namespace)
                if rsutil.own_template(existing) != rsutil.without_hash(template):
                    # A different template already has this name: change the hash (Kubernetes' way).
                    ctx.status["collisionCount"] = int(collisions or 0) + 1
                    ctx.wake_in(0.05)
                created = existing
            ctx.replicasets.append(created)
            ctx.new_rs = created
            message = conditions.created_message(created["metadata"]["name"])
            self._set_condition(ctx, conditions.PROGRESSING, "True", conditions.NEW_RS_CREATED, message)
            ctx.event(
                "Normal",
                "NewReplicaSetCreated",
                f"Created ReplicaSet {created['metadata']['name']} (revision {top + 1})",
            )
            await self._set_rollout_revision(ctx, top + 1)
            return
        ctx.new_rs = found
        revision = rsutil.revision_of(found)
        if revision < top:  # back to an older template: it becomes the newest revision
            history = ((found["metadata"].get("annotations") or {}).get(rsutil.REVISION_HISTORY) or "").split(
                ","
            )
            history = [h for h in history if h] + [str(revision)]
            patch = {
                "metadata": {
                    "annotations": {rsutil.REVISION: str(top + 1), rsutil.REVISION_HISTORY: ",".join(history)}
                }
            }
            ctx.new_rs = await self.client.patch(
                kinds.REPLICASET, found["metadata"]["name"], patch, namespace=ctx.namespace
            )
            await self._set_rollout_revision(ctx, top + 1)
        elif rsutil.revision_of(ctx.ro) != revision and revision:
            await self._set_rollout_revision(ctx, revision)

    async def _set_rollout_revision(self, ctx: Context, revision: int) -> None:
        patch = {"metadata": {"annotations": {rsutil.REVISION: str(revision)}}}
        try:
            self._wrote(await self.client.patch(crds.ROLLOUT, ctx.name, patch, namespace=ctx.namespace))
        except kube_errors.ApiError as exc:
            if not exc.not_found:
                raise
            return
        ctx.event("Normal", "RolloutUpdated", f"Rollout updated to revision {revision}")

    def _classify(self, ctx: Context) -> None:
        assert ctx.new_rs is not None
        new_hash = rsutil.hash_of(ctx.new_rs)
        stable_hash = ctx.status.get("stableRS") or ""
        ctx.stable_rs = next(
            (r for r in ctx.replicasets if stable_hash and rsutil.hash_of(r) == stable_hash), None
        )
        ctx.others = [r for r in ctx.replicasets if rsutil.hash_of(r) not in (new_hash, stable_hash)]
        ctx.status["currentPodHash"] = new_hash
        if ctx.stable_rs is None or new_hash == stable_hash:
            return
        older = rsutil.first_revision(ctx.new_rs) < rsutil.first_revision(ctx.stable_rs)
        deadline = rsutil.deadline_of(ctx.new_rs)
        ctx.within_delay = (
            older and ctx.blue_green is not None and deadline is not None and deadline > ctx.now
        )
        window = defaults.rollback_window(ctx.ro)
        if older and window > 0:
            low, high = rsutil.first_revision(ctx.new_rs), rsutil.first_revision(ctx.stable_rs)
            between = sum(1 for r in ctx.replicasets if low < rsutil.first_revision(r) < high)
            ctx.within_window = between < window

    def _fast_rollback(self, ctx: Context) -> None:
        """Back to a revision within ``rollbackWindow``: pauses and abort are dropped, steps skipped."""
        if not ctx.within_window:
            return
        for key in ("pauseConditions", "controllerPause", "abort", "abortedAt"):
            ctx.status.pop(key, None)
        steps = (ctx.canary or {}).get("steps") or []
        if ctx.canary is not None and steps:
            ctx.status["currentStepIndex"] = len(steps)

    async def _clear_new_deadline(self, ctx: Context) -> None:
        """The new ReplicaSet keeps no scale-down deadline from an earlier life (unless this is an abort,
        whose delay is meant for it)."""
        if ctx.new_rs is None or ctx.status.get("abort") or rsutil.deadline_of(ctx.new_rs) is None:
            return
        if ctx.within_delay:
            return  # it marks this update as a fast rollback until the ReplicaSet is stable again
        patch = {"metadata": {"annotations": {rsutil.SCALE_DOWN_DEADLINE: None}}}
        updated = await self.client.patch(
            kinds.REPLICASET, ctx.new_rs["metadata"]["name"], patch, namespace=ctx.namespace
        )
        ctx.new_rs.clear()
        ctx.new_rs.update(updated)

    def _reset_on_change(self, ctx: Context) -> None:
        """A new template (or steps) resets the update: pauses, abort and promoteFull are cleared."""
        new_hash = ctx.status["currentPodHash"]
        steps = (ctx.canary or {}).get("steps") or []
        step_hash = hashing.steps_hash(steps) if ctx.canary is not None else None
        old_pod = (ctx.ro.get("status") or {}).get("currentPodHash")
        old_steps = (ctx.ro.get("status") or {}).get("currentStepHash")
        changed = old_pod is not None and old_pod != new_hash
        steps_changed = ctx.canary is not None and old_steps is not None and old_steps != step_hash
        if changed or steps_changed:
            for key in ("pauseConditions", "controllerPause", "abort", "abortedAt", "promoteFull"):
                ctx.status.pop(key, None)
            ctx.status["conditions"] = [
                c for c in ctx.status.get("conditions") or [] if c.get("reason") != conditions.ROLLOUT_ABORTED
            ]
            if ctx.canary is not None:
                ctx.status["currentStepIndex"] = 0
            if ctx.blue_green is not None:
                ctx.status.setdefault("blueGreen", {}).pop("scaleUpPreviewCheckPoint", None)
        if ctx.canary is not None:
            ctx.status["currentStepHash"] = step_hash
            if "currentStepIndex" not in ctx.status and steps:
                ctx.status["currentStepIndex"] = 0
            if not steps:
                ctx.status.pop("currentStepIndex", None)
            if new_hash == ctx.status.get("stableRS") and steps:
                if (changed or steps_changed) and ctx.status.get("currentStepIndex") != len(steps):
                    ctx.event("Normal", "SkipSteps", "Rollback to stable ReplicaSets")
                ctx.status["currentStepIndex"] = len(steps)
            elif changed and steps and ctx.within_window and rsutil.spec_replicas(ctx.new_rs or {}) > 0:
                ctx.event("Normal", "SkipSteps", "Rollback to active ReplicaSets within RollbackWindow")

    def _retry_and_abort_bookkeeping(self, ctx: Context) -> None:
        if ctx.status.get("promoteFull") and ctx.status.get("abort"):
            # promote --full ends an abort: the new version is promoted after all.
            ctx.status.pop("abort", None)
            ctx.status["conditions"] = [
                c for c in ctx.status.get("conditions") or [] if c.get("reason") != conditions.ROLLOUT_ABORTED
            ]
        aborted = bool(ctx.status.get("abort"))
        fully_promoted = ctx.status.get("stableRS") == ctx.status.get("currentPodHash")
        if aborted and fully_promoted:
            ctx.status.pop("abort", None)
            ctx.status.pop("abortedAt", None)
            aborted = False
        was_aborted = bool((ctx.ro.get("status") or {}).get("abortedAt"))
        if aborted:
            if not ctx.status.get("abortedAt"):
                ctx.status["abortedAt"] = rsutil.stamp(ctx.now)
            ctx.status.pop("pauseConditions", None)
            ctx.status.pop("controllerPause", None)
            if ctx.canary is not None and (ctx.canary.get("steps") or []):
                ctx.status["currentStepIndex"] = 0
            existing = conditions.get(ctx.status, conditions.PROGRESSING) or {}
            if existing.get("reason") != conditions.ROLLOUT_ABORTED:
                reason = ""
                if existing.get("reason") == conditions.PROGRESS_DEADLINE_EXCEEDED:
                    reason = existing.get("message", "")
                message = conditions.aborted_message(rsutil.revision_of(ctx.new_rs or {}), reason)
                self._set_condition(ctx, conditions.PROGRESSING, "False", conditions.ROLLOUT_ABORTED, message)
                ctx.event("Warning", "RolloutAborted", message)
        elif was_aborted:
            ctx.status.pop("abortedAt", None)
            ctx.status.pop("abort", None)
            self._set_condition(
                ctx,
                conditions.PROGRESSING,
                "Unknown",
                conditions.ROLLOUT_RETRY,
                "Retrying Rollout after abort",
            )

    # ------------------------------------------------------------------------------------ analysis

    async def _analysis(self, ctx: Context) -> None:
        """Start, watch, cancel and clean up the Rollout's AnalysisRuns (upstream's reconcileAnalysisRuns):
        a failed or errored run aborts the update, an inconclusive one pauses it."""
        original = ctx.ro.get("status") or {}
        await self._runs_missing_from_cache(ctx, original)
        before = analysisruns.current(original, ctx.runs)
        new_hash = ctx.status.get("currentPodHash")
        fully_promoted = ctx.status.get("stableRS") == new_hash
        cancel_all = (
            fully_promoted
            or bool(ctx.status.get("abort"))
            or bool(ctx.status.get("promoteFull"))
            or ctx.within_window
            or ctx.within_delay
            or not original.get("stableRS")
        )
        now_current: dict[str, Obj | None] = dict.fromkeys(analysisruns.STATUS_FIELDS)
        if cancel_all:
            for run in before.values():
                await analysisruns.cancel(self.client, run)
            # Blue-green keeps its finished pre/post runs as current once stable; canary lets go of its own.
            now_current[analysisruns.PRE] = before[analysisruns.PRE]
            now_current[analysisruns.POST] = before[analysisruns.POST]
        elif ctx.canary is not None:
            now_current[analysisruns.STEP] = await self._step_run(ctx, before[analysisruns.STEP])
            now_current[analysisruns.BACKGROUND] = await self._background_run(
                ctx, before[analysisruns.BACKGROUND]
            )
        elif ctx.blue_green is not None:
            now_current[analysisruns.PRE] = await self._promotion_run(
                ctx, before[analysisruns.PRE], post=False
            )
            now_current[analysisruns.POST] = await self._promotion_run(
                ctx, before[analysisruns.POST], post=True
            )
        ctx.current_runs = now_current
        keep = {r["metadata"]["name"] for r in now_current.values() if r is not None}
        others = [r for r in ctx.runs if r["metadata"]["name"] not in keep]
        await ownedobjects.retire(self.client, crds.ANALYSISRUN, others, ctx.replicasets, ctx.ro)
        for kind, (section, key) in analysisruns.STATUS_FIELDS.items():
            run = now_current[kind]
            previous = analysisruns.recorded(original, kind)
            if run is None:
                if section in ctx.status and isinstance(ctx.status[section], dict):
                    ctx.status[section].pop(key, None)
                continue
            entry = analysisruns.status_entry(run)
            ctx.status.setdefault(section, {})[key] = entry
            self._run_event(ctx, kind, run, previous)

    async def _runs_missing_from_cache(self, ctx: Context, original: Mapping[str, Any]) -> None:
        """A run recorded in status that the informer has not delivered yet is read from the API: without it
        the reconcile would take the run for missing and start another."""
        known = {r["metadata"]["name"] for r in ctx.runs}
        for kind in analysisruns.STATUS_FIELDS:
            entry = analysisruns.recorded(original, kind)
            name = str((entry or {}).get("name") or "")
            if not name or name in known:
                continue
            found = await self.client.get_or_none(crds.ANALYSISRUN, name, ctx.namespace)
            if found is not None:
                ctx.runs.append(found)
                known.add(name)

    def _run_event(self, ctx: Context, kind: str, run: Obj, previous: Mapping[str, Any] | None) -> None:
        phase_now = analysisruns.phase_of(run)
        if not phase_now:
            return
        same_run = previous is not None and previous.get("name") == run["metadata"]["name"]
        if previous is not None and not (same_run and previous.get("status") != phase_now):
            return
        before = str(previous.get("status")) if previous is not None else "NoPreviousStatus"
        kind_type = "Warning" if phase_now in ("Failed", "Error") else "Normal"
        message = (
            f"{kind} Analysis Run '{run['metadata']['name']}' Status New: '{phase_now}' Previous: '{before}'"
        )
        ctx.event(kind_type, f"AnalysisRun{phase_now}", message)

    def _needs_new_run(self, ctx: Context, run: Obj | None) -> bool:
        if run is None:
            return True
        original = ctx.ro.get("status") or {}
        pauses = {p.get("reason") for p in original.get("pauseConditions") or []}
        if original.get("controllerPause") and not pauses & {CANARY_PAUSE, BLUEGREEN_PAUSE}:
            # Resumed after an inconclusive run: measure again.
            return analysisruns.phase_of(run) == "Inconclusive"
        return bool(original.get("abortedAt"))

    def _judge_run(self, ctx: Context, run: Obj, what: str) -> None:
        """Inconclusive pauses the update; Failed or Error aborts it."""
        phase_now = analysisruns.phase_of(run)
        if phase_now == "Inconclusive":
            pauses = ctx.status.get("pauseConditions") or []
            if not any(p.get("reason") == analysisruns.INCONCLUSIVE_PAUSE for p in pauses):
                ctx.status["pauseConditions"] = [*pauses, analysisruns.inconclusive_pause(ctx.now)]
                ctx.status["controllerPause"] = True
                ctx.event("Normal", "RolloutPaused", f"Rollout is paused ({analysisruns.INCONCLUSIVE_PAUSE})")
        elif phase_now in ("Failed", "Error"):
            message = f"{what} analysis phase error/failed"
            run_message = (run.get("status") or {}).get("message")
            if run_message:
                message += f": {run_message}"
            self._abort(ctx, message)

    def _run_succeeded(self, ctx: Context, kind: str) -> bool:
        return analysisruns.phase_of(ctx.current_runs.get(kind)) == "Successful"

    def _paused_for_inconclusive(self, ctx: Context) -> bool:
        pauses = ctx.status.get("pauseConditions") or []
        reasons = (analysisruns.INCONCLUSIVE_PAUSE, INCONCLUSIVE_EXPERIMENT)
        return any(p.get("reason") in reasons for p in pauses)

    async def _create_run(
        self, ctx: Context, analysis: Mapping[str, Any], kind: str, step_index: int | None = None
    ) -> Obj:
        assert ctx.new_rs is not None
        return await analysisruns.create(
            self.client,
            {**ctx.ro, "metadata": {**ctx.ro["metadata"], "annotations": self._revision_annotations(ctx)}},
            analysis,
            kind=kind,
            new_rs=ctx.new_rs,
            stable_rs=ctx.stable_rs,
            step_index=step_index,
        )

    def _revision_annotations(self, ctx: Context) -> Obj:
        annotations = dict(ctx.ro["metadata"].get("annotations") or {})
        annotations[rsutil.REVISION] = str(rsutil.revision_of(ctx.new_rs or {}))
        return annotations

    async def _step_run(self, ctx: Context, run: Obj | None) -> Obj | None:
        steps = (ctx.canary or {}).get("steps") or []
        index = ctx.status.get("currentStepIndex")
        step = steps[index] if isinstance(index, int) and 0 <= index < len(steps) else None
        if ctx.status.get("pauseConditions") or ctx.status.get("abort"):
            return run
        analysis = (step or {}).get("analysis")
        from_previous = (
            run is not None
            and analysis is not None
            and (run["metadata"].get("labels") or {}).get(analysisruns.STEP_INDEX_LABEL) != str(index)
        )
        if not isinstance(analysis, dict) or not analysis.get("templates") or from_previous:
            await analysisruns.cancel(self.client, run)
            return None
        if self._needs_new_run(ctx, run):
            return await self._create_run(ctx, analysis, analysisruns.STEP, step_index=index)
        assert run is not None
        self._judge_run(ctx, run, "Step-based")
        return run

    async def _background_run(self, ctx: Context, run: Obj | None) -> Obj | None:
        analysis = (ctx.canary or {}).get("analysis")
        if not isinstance(analysis, dict) or not analysis.get("templates"):
            await analysisruns.cancel(self.client, run)
            return None
        starting = analysis.get("startingStep")
        index = ctx.status.get("currentStepIndex")
        if isinstance(starting, int) and isinstance(index, int) and index < starting:
            return None
        if self._paused_for_inconclusive(ctx):
            return run
        if self._needs_new_run(ctx, run):
            return await self._create_run(ctx, analysis, analysisruns.BACKGROUND)
        assert run is not None
        self._judge_run(ctx, run, "Background")
        return run

    async def _promotion_run(self, ctx: Context, run: Obj | None, *, post: bool) -> Obj | None:
        bg = ctx.blue_green or {}
        analysis = bg.get("postPromotionAnalysis" if post else "prePromotionAnalysis")
        if not isinstance(analysis, dict) or not analysis.get("templates"):
            await analysisruns.cancel(self.client, run)
            return None
        assert ctx.new_rs is not None
        new_hash = rsutil.hash_of(ctx.new_rs)
        active = ctx.service(str(bg.get("activeService") or ""))
        active_hash = ((active or {}).get("spec") or {}).get("selector", {}).get(rsutil.HASH_LABEL, "")
        if post:
            skip = active_hash != new_hash
        else:
            skip = not active_hash or active_hash == new_hash
        if not skip and run is None:
            skip = not self._saturated_for_analysis(ctx, post=post)
        if skip:
            await analysisruns.cancel(self.client, run)
            return run
        if self._paused_for_inconclusive(ctx):
            return run
        if self._needs_new_run(ctx, run):
            return await self._create_run(ctx, analysis, analysisruns.POST if post else analysisruns.PRE)
        assert run is not None
        self._judge_run(ctx, run, "Blue/green post-promotion" if post else "Blue/green pre-promotion")
        return run

    def _saturated_for_analysis(self, ctx: Context, *, post: bool) -> bool:
        assert ctx.new_rs is not None
        preview = (ctx.blue_green or {}).get("previewReplicaCount")
        if not post and preview is not None:
            wanted = int(preview)
            return rsutil.spec_replicas(ctx.new_rs) == wanted and rsutil.available(ctx.new_rs) == wanted
        return (
            rsutil.spec_replicas(ctx.new_rs) == ctx.replicas and rsutil.available(ctx.new_rs) >= ctx.replicas
        )

    # ------------------------------------------------------------------------------------ experiments

    async def _experiment_step(self, ctx: Context) -> None:
        """The canary ``experiment`` step: start its Experiment, follow it (a failed one aborts the update,
        an inconclusive one pauses it), cancel and clean up the Rollout's other Experiments."""
        original = ctx.ro.get("status") or {}
        recorded = str(((original.get("canary") or {}).get("currentExperiment")) or "")
        current = next((e for e in ctx.experiments if e["metadata"]["name"] == recorded), None)
        if current is None and recorded:
            current = await self.client.get_or_none(crds.EXPERIMENT, recorded, ctx.namespace)
        others = [e for e in ctx.experiments if current is None or e["metadata"]["name"] != recorded]
        keep: Obj | None = None
        if ctx.status.get("abort") or ctx.status.get("promoteFull") or ctx.canary is None:
            others.extend([current] if current is not None else [])
            current = None
        elif self._paused_for_inconclusive(ctx):
            keep = current
        else:
            steps = (ctx.canary or {}).get("steps") or []
            index = ctx.status.get("currentStepIndex")
            step = steps[index] if isinstance(index, int) and 0 <= index < len(steps) else None
            if step is not None and isinstance(step.get("experiment"), dict):
                if current is None and ctx.stable_rs is not None and ctx.new_rs is not None:
                    body = experimentsmod.experiment_for_step(
                        {
                            **ctx.ro,
                            "metadata": {
                                **ctx.ro["metadata"],
                                "annotations": self._revision_annotations(ctx),
                            },
                        },
                        step["experiment"],
                        step_index=int(index or 0),
                        new_rs=ctx.new_rs,
                        stable_rs=ctx.stable_rs,
                    )
                    current = await stepexperiments.create_with_collisions(self.client, body)
                    ctx.event(
                        "Normal", "ExperimentCreated", f"Created Experiment '{current['metadata']['name']}'"
                    )
                if current is not None:
                    self._judge_experiment(ctx, current)
                    keep = current
            elif current is not None:
                others.append(current)
                current = None
        ctx.current_experiment = keep
        await ownedobjects.retire(self.client, crds.EXPERIMENT, others, ctx.replicasets, ctx.ro)
        canary_status = ctx.status.get("canary")
        if keep is not None and stepexperiments.phase_of(keep) != "Inconclusive":
            ctx.status.setdefault("canary", {})["currentExperiment"] = keep["metadata"]["name"]
        elif isinstance(canary_status, dict):
            canary_status.pop("currentExperiment", None)

    def _judge_experiment(self, ctx: Context, experiment: Obj) -> None:
        phase_now = stepexperiments.phase_of(experiment)
        if phase_now == "Inconclusive":
            pauses = ctx.status.get("pauseConditions") or []
            if not any(p.get("reason") == INCONCLUSIVE_EXPERIMENT for p in pauses):
                pause = {"reason": INCONCLUSIVE_EXPERIMENT, "startTime": rsutil.stamp(ctx.now)}
                ctx.status["pauseConditions"] = [*pauses, pause]
                ctx.status["controllerPause"] = True
                ctx.event("Normal", "RolloutPaused", f"Rollout is paused ({INCONCLUSIVE_EXPERIMENT})")
        elif phase_now in ("Failed", "Error"):
            message = "Experiment analysis phase is error/failed"
            detail = (experiment.get("status") or {}).get("message")
            if detail:
                message += f": {detail}"
            self._abort(ctx, message)

    # ------------------------------------------------------------------------------------ blue-green

    async def _blue_green(self, ctx: Context) -> None:
        bg = ctx.blue_green
        assert bg is not None and ctx.new_rs is not None
        new_hash = rsutil.hash_of(ctx.new_rs)
        stable_hash = ctx.status.get("stableRS") or ""
        aborted = bool(ctx.status.get("abort"))
        paused = bool(ctx.spec.get("paused")) or self._paused_for_inconclusive(ctx)  # haltProgress
        active_name, preview_name = bg.get("activeService"), bg.get("previewService")
        if preview_name and not paused:  # spec.paused halts the Service switches, not the scaling
            await self._point_service(ctx, preview_name, new_hash)
        initial = not stable_hash or ctx.stable_rs is None
        promote_full = bool(ctx.status.get("promoteFull"))
        preview_count = bg.get("previewReplicaCount")
        bg_status = ctx.status.setdefault("blueGreen", {})
        fast = ctx.within_window or ctx.within_delay
        if initial:
            desired_new = ctx.replicas
        elif aborted:
            desired_new = rsutil.spec_replicas(ctx.new_rs)
        elif (
            preview_count is not None
            and not bg_status.get("scaleUpPreviewCheckPoint")
            and not (promote_full or fast)
        ):
            desired_new = int(preview_count)
        else:
            desired_new = ctx.replicas
        if initial and not stable_hash:
            # The first deploy has nothing to protect: it is the stable version at once ("Initial deploy").
            ctx.status["stableRS"] = stable_hash = new_hash
            ctx.stable_rs = ctx.new_rs
            _completed(ctx, "Initial deploy")
        if new_hash != stable_hash or initial:
            await self._scale(ctx, ctx.new_rs, desired_new)
        if ctx.stable_rs is not None and new_hash != stable_hash and not paused:
            await self._scale(ctx, ctx.stable_rs, ctx.replicas)

        if aborted and not initial:
            if active_name:
                await self._point_service(ctx, active_name, stable_hash)
            await self._abort_scale_down(ctx, defaults.abort_scale_down_delay(ctx.ro))
            return
        new_ready = rsutil.available(ctx.new_rs) >= desired_new and rsutil.current(ctx.new_rs) >= desired_new
        if new_hash == stable_hash:
            if active_name:
                await self._point_service(ctx, active_name, new_hash)
            return
        if paused or not new_ready:
            ctx.wake_in(5)
            return
        active_svc = ctx.service(str(active_name or ""))
        active_hash = ((active_svc or {}).get("spec") or {}).get("selector", {}).get(rsutil.HASH_LABEL)
        waiting = not initial and not promote_full and not fast and active_hash != new_hash
        if waiting and bg.get("prePromotionAnalysis") and not self._run_succeeded(ctx, analysisruns.PRE):
            ctx.wake_in(5)  # the pause (and the promotion) wait for pre-promotion analysis
            return
        # The pause before promotion (not on the first deploy, nor after promote --full or a fast rollback).
        if waiting:
            resumed = ctx.status.get("controllerPause") and not ctx.status.get("pauseConditions")
            auto = defaults.auto_promotion_enabled(ctx.ro)
            seconds = bg.get("autoPromotionSeconds")
            if not resumed and (not auto or seconds):
                pauses = ctx.status.get("pauseConditions") or []
                current = next((p for p in pauses if p.get("reason") == BLUEGREEN_PAUSE), None)
                if current is None:
                    ctx.status["pauseConditions"] = [
                        *pauses,
                        {"reason": BLUEGREEN_PAUSE, "startTime": rsutil.stamp(ctx.now)},
                    ]
                    ctx.status["controllerPause"] = True
                    ctx.event("Normal", "RolloutPaused", "Rollout is paused (BlueGreenPause)")
                    if seconds:
                        ctx.wake_in(float(seconds))
                    return
                if seconds:
                    started = _parse(current.get("startTime")) or ctx.now
                    left = (started + timedelta(seconds=float(seconds)) - ctx.now).total_seconds()
                    if left > 0:
                        ctx.wake_in(left)
                        return
                    ctx.status["pauseConditions"] = [p for p in pauses if p is not current] or None
                else:
                    return
        if preview_count is not None and not bg_status.get("scaleUpPreviewCheckPoint") and not fast:
            bg_status["scaleUpPreviewCheckPoint"] = True
            if int(preview_count) < ctx.replicas:
                await self._scale(ctx, ctx.new_rs, ctx.replicas)
                ctx.wake_in(1)
                return
        # Promote: switch the active Service, then (after post-promotion analysis) the new one is stable.
        if active_name:
            await self._point_service(ctx, active_name, new_hash)
        post = bg.get("postPromotionAnalysis")
        if post and not (promote_full or fast) and not self._run_succeeded(ctx, analysisruns.POST):
            ctx.wake_in(0.05 if ctx.current_runs.get(analysisruns.POST) is None else 5)
            return
        previous = ctx.stable_rs
        ctx.status["stableRS"] = new_hash
        for key in ("pauseConditions", "controllerPause", "promoteFull"):
            ctx.status.pop(key, None)
        bg_status.pop("scaleUpPreviewCheckPoint", None)
        ctx.stable_rs = ctx.new_rs
        if previous is not None:
            ctx.others.append(previous)
            await self._set_deadline(ctx, previous, defaults.scale_down_delay(ctx.ro))
        _completed(ctx, _promotion_reason(ctx, "Completed blue-green update"))

    # ------------------------------------------------------------------------------------ canary

    def _set_weight(self, ctx: Context) -> int:
        steps = (ctx.canary or {}).get("steps") or []
        if ctx.status.get("abort"):
            return 0
        index = ctx.status.get("currentStepIndex")
        if not steps or index is None or index >= len(steps):
            return 100
        weight = 0
        for step in steps[: index + 1]:
            if "setWeight" in step:
                weight = int(step["setWeight"])
        return weight

    async def _canary(self, ctx: Context) -> None:
        canary = ctx.canary or {}
        assert ctx.new_rs is not None
        steps = canary.get("steps") or []
        new_hash = rsutil.hash_of(ctx.new_rs)
        stable_hash = ctx.status.get("stableRS") or ""
        paused = bool(ctx.spec.get("paused")) or self._paused_for_inconclusive(ctx)  # haltProgress
        if canary.get("stableService") and stable_hash:
            await self._point_service(ctx, canary["stableService"], stable_hash)
        if canary.get("canaryService"):
            target = new_hash
            aborted = bool(ctx.status.get("abort"))
            if aborted and _dynamic_abort(ctx) and _current_weight(ctx) > 0:
                aborted = False  # a dynamic-scale abort moves the Service once the traffic has left
            if stable_hash and (aborted or rsutil.available(ctx.new_rs) < 1):
                target = stable_hash  # never a Service without endpoints: wait for a canary pod
            await self._point_service(ctx, canary["canaryService"], target)
        if ctx.stable_rs is None and not stable_hash:
            # The first deploy has nothing to protect: it is the stable version at once ("Initial deploy").
            ctx.status["stableRS"] = stable_hash = new_hash
            if steps:
                ctx.status["currentStepIndex"] = len(steps)
            _completed(ctx, "Initial deploy")
        if ctx.stable_rs is None or new_hash == stable_hash:
            # First deploy, or back on the stable template: no steps, just make it whole.
            if canary.get("trafficRouting") and ctx.stable_rs is not None:
                await self._route(ctx, new_hash, new_hash, 0)  # all traffic on the (one) stable version
            if not paused:
                await self._scale(ctx, ctx.new_rs, ctx.replicas)
                if not canary.get("trafficRouting"):  # routed: old ones wait out their delay
                    for old in ctx.others:
                        await self._scale(ctx, old, 0)
            if (
                rsutil.available(ctx.new_rs) >= ctx.replicas
                and rsutil.spec_replicas(ctx.new_rs) == ctx.replicas
            ):
                if ctx.status.get("stableRS") != new_hash:
                    _completed(ctx, "Initial deploy" if ctx.stable_rs is None else "Rollback to stable")
                ctx.status["stableRS"] = new_hash
                if steps:
                    ctx.status["currentStepIndex"] = len(steps)
            else:
                ctx.wake_in(5)
            return
        if ctx.status.get("promoteFull"):
            ctx.status["currentStepIndex"] = len(steps)
            ctx.status.pop("pauseConditions", None)
            ctx.status.pop("controllerPause", None)
        weight = self._set_weight(ctx)
        routed = bool(canary.get("trafficRouting"))
        if routed:
            canary_count, stable_count = _routed_counts(ctx, canary, weight)
        else:
            canary_count, stable_count = _weighted_counts(ctx.replicas, weight)
        if not paused and routed:
            for old in ctx.others:
                await self._scale(ctx, old, 0)
            delayed_abort = ctx.status.get("abort") and not (
                _dynamic_abort(ctx) and not defaults.abort_scale_down_delay_explicit(ctx.ro)
            )
            if not delayed_abort:  # an abort with a scale-down delay keeps the canary until its deadline
                await self._scale(ctx, ctx.new_rs, canary_count)
            await self._scale(ctx, ctx.stable_rs, stable_count)
        elif not paused:
            # Without a router the counts move towards their targets within maxSurge/maxUnavailable.
            new_next, stable_next, others_next = _basic_canary_step(ctx, canary_count, stable_count)
            for old, count in zip(ctx.others, others_next, strict=True):
                await self._scale(ctx, old, count)
            await self._scale(ctx, ctx.new_rs, new_next)
            await self._scale(ctx, ctx.stable_rs, stable_next)
        if routed:
            # Traffic follows the canary only as far as its pods are available (0 on abort).
            route_weight = weight
            if weight and rsutil.available(ctx.new_rs) < canary_count:
                route_weight = _current_weight(ctx)
            if ctx.status.get("abort") and _dynamic_abort(ctx):
                route_weight = _abort_weight(ctx)
                if route_weight:
                    ctx.wake_in(1)  # the weight steps down as stable pods become available
            await self._route(ctx, new_hash, stable_hash, route_weight)
        if ctx.status.get("abort"):
            dynamic_without_delay = _dynamic_abort(ctx) and not defaults.abort_scale_down_delay_explicit(
                ctx.ro
            )
            if routed and not dynamic_without_delay:
                await self._abort_scale_down(ctx, defaults.abort_scale_down_delay(ctx.ro))
            return
        reached = (
            rsutil.available(ctx.new_rs) >= canary_count
            and rsutil.current(ctx.new_rs) == canary_count
            and rsutil.available(ctx.stable_rs) >= min(stable_count, rsutil.available(ctx.stable_rs))
            and rsutil.current(ctx.stable_rs) == stable_count
        )
        index = ctx.status.get("currentStepIndex")
        scaled_for = index  # the replica counts above are those of this step's weight
        while steps and index is not None and index < len(steps) and not paused:
            step = steps[index]
            if "setWeight" in step or "setCanaryScale" in step:
                if index != scaled_for:
                    ctx.wake_in(0.05)  # scale for this step's weight first
                    break
                if not reached:
                    ctx.wake_in(5)
                    break
            elif "pause" in step and not self._pause_done(ctx, step["pause"]):
                break
            elif "analysis" in step:
                run = ctx.current_runs.get(analysisruns.STEP)
                labels = ((run or {}).get("metadata") or {}).get("labels") or {}
                if run is None or labels.get(analysisruns.STEP_INDEX_LABEL) != str(index):
                    ctx.wake_in(0.05)  # the run for this step starts with the next reconcile
                    break
                if analysisruns.phase_of(run) != "Successful":
                    break  # the run's progress wakes the Rollout
            elif "experiment" in step:
                experiment = ctx.current_experiment
                if experiment is None:
                    ctx.wake_in(0.05)  # the experiment starts with the next reconcile
                    break
                if stepexperiments.phase_of(experiment) != "Successful":
                    break  # the experiment's progress wakes the Rollout
            index += 1
            ctx.status["currentStepIndex"] = index
            ctx.event(
                "Normal",
                "RolloutStepCompleted",
                f"Rollout step {index}/{len(steps)} completed ({_describe(step)})",
            )
            if "setWeight" in step or "setCanaryScale" in step:
                ctx.wake_in(0.05)  # nothing else may wake the Rollout: the ReplicaSets are settled
                break  # the next step starts with the next reconcile, after the new counts are applied
        if (index is None or index >= len(steps)) and not paused:
            if (
                rsutil.available(ctx.new_rs) >= ctx.replicas
                and rsutil.spec_replicas(ctx.new_rs) == ctx.replicas
            ):
                previous = ctx.stable_rs
                ctx.status["stableRS"] = new_hash
                ctx.status.pop("promoteFull", None)
                ctx.stable_rs = ctx.new_rs
                if previous is not None and previous is not ctx.new_rs:
                    ctx.others.append(previous)
                    if routed:  # the router needs time to converge before the old pods go
                        await self._set_deadline(ctx, previous, defaults.scale_down_delay(ctx.ro))
                    else:
                        await self._scale(ctx, previous, 0)
                if canary.get("stableService"):
                    await self._point_service(ctx, canary["stableService"], new_hash)
                if routed:
                    await self._route(ctx, new_hash, new_hash, 0)
                _completed(ctx, _promotion_reason(ctx, f"Completed all {len(steps)} canary steps"))
            else:
                ctx.wake_in(5)

    async def _route(self, ctx: Context, canary_hash: str, stable_hash: str, weight: int) -> None:
        """Set every configured router to ``weight`` and record it (and its verification) in status."""
        verified: bool | None = True
        for router in trafficrouting.routers_for(self.client, ctx.ro):
            await router.update_hash(canary_hash, stable_hash)
            await router.set_weight(weight)
            if await router.verify_weight(weight) is False:
                verified = False
        canary = ctx.canary or {}
        weights: Obj = {
            "canary": {"weight": weight, "podTemplateHash": canary_hash},
            "stable": {"weight": 100 - weight, "podTemplateHash": stable_hash},
        }
        if canary.get("canaryService"):
            weights["canary"]["serviceName"] = canary["canaryService"]
        if canary.get("stableService"):
            weights["stable"]["serviceName"] = canary["stableService"]
        if verified is not None:
            weights["verified"] = verified
        before = _current_weight(ctx)
        if before != weight:
            ctx.event("Normal", "TrafficWeightUpdated", f"Traffic weight updated from {before} to {weight}")
        ctx.status.setdefault("canary", {})["weights"] = weights

    def _pause_done(self, ctx: Context, pause: Mapping[str, Any]) -> bool:
        pauses = ctx.status.get("pauseConditions") or []
        current = next((p for p in pauses if p.get("reason") == CANARY_PAUSE), None)
        if current is None:
            if ctx.status.get("controllerPause"):
                ctx.status.pop("controllerPause", None)  # the user resumed: this pause is over
                return True
            ctx.status["pauseConditions"] = [
                *pauses,
                {"reason": CANARY_PAUSE, "startTime": rsutil.stamp(ctx.now)},
            ]
            ctx.status["controllerPause"] = True
            ctx.event("Normal", "RolloutPaused", "Rollout is paused (CanaryPauseStep)")
            seconds = defaults.pause_duration_seconds(dict(pause or {}))
            if seconds is not None:
                ctx.wake_in(seconds)
            return False
        seconds = defaults.pause_duration_seconds(dict(pause or {}))
        if seconds is None:
            return False
        started = _parse(current.get("startTime")) or ctx.now
        left = (started + timedelta(seconds=seconds) - ctx.now).total_seconds()
        if left > 0:
            ctx.wake_in(left)
            return False
        remaining = [p for p in pauses if p is not current]
        if remaining:
            ctx.status["pauseConditions"] = remaining
        else:
            ctx.status.pop("pauseConditions", None)
        ctx.status.pop("controllerPause", None)
        ctx.event("Normal", "RolloutResumed", "Rollout is resumed")
        return True

    # ------------------------------------------------------------------------------------ scaling

    async def _scale(self, ctx: Context, rs: Obj, replicas: int) -> None:
        replicas = max(0, replicas)
        annotations = rs["metadata"].get("annotations") or {}
        if rsutil.spec_replicas(rs) == replicas and annotations.get(rsutil.DESIRED_REPLICAS) == str(
            ctx.replicas
        ):
            return
        patch: Obj = {
            "metadata": {"annotations": {rsutil.DESIRED_REPLICAS: str(ctx.replicas)}},
            "spec": {"replicas": replicas},
        }
        if annotations.get(rsutil.SCALE_DOWN_DEADLINE):
            # Scaled up again, or down at its deadline: the deadline has served (upstream drops it too).
            patch["metadata"]["annotations"][rsutil.SCALE_DOWN_DEADLINE] = None
        before = rsutil.spec_replicas(rs)
        updated = await self.client.patch(
            kinds.REPLICASET, rs["metadata"]["name"], patch, namespace=ctx.namespace
        )
        rs.clear()
        rs.update(updated)
        if before != replicas:
            verb = "up" if replicas > before else "down"
            ctx.event(
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {verb} ReplicaSet {rs['metadata']['name']} (revision {rsutil.revision_of(rs)}) "
                f"from {before} to {replicas}",
            )

    async def _set_deadline(self, ctx: Context, rs: Obj, delay: int) -> None:
        if rsutil.deadline_of(rs) is not None or rsutil.spec_replicas(rs) == 0:
            return
        deadline = rsutil.stamp(ctx.now + timedelta(seconds=delay))
        patch = {"metadata": {"annotations": {rsutil.SCALE_DOWN_DEADLINE: deadline}}}
        updated = await self.client.patch(
            kinds.REPLICASET, rs["metadata"]["name"], patch, namespace=ctx.namespace
        )
        rs.clear()
        rs.update(updated)
        ctx.wake_in(delay)

    async def _abort_scale_down(self, ctx: Context, delay: int) -> None:
        """After an abort, the new ReplicaSet goes once the stable one is whole again (0: never)."""
        if ctx.new_rs is None or ctx.stable_rs is None or delay == 0:
            return
        if rsutil.available(ctx.stable_rs) < ctx.replicas:
            ctx.wake_in(2)
            return
        deadline = rsutil.deadline_of(ctx.new_rs)
        if deadline is None:
            await self._set_deadline(ctx, ctx.new_rs, delay)
        elif deadline <= ctx.now:
            await self._scale(ctx, ctx.new_rs, 0)
        else:
            ctx.wake_in((deadline - ctx.now).total_seconds())

    async def _scale_down_old(self, ctx: Context) -> None:
        """Old ReplicaSets (neither new nor stable) go to zero at their deadline; history is trimmed.

        Blue-green and a routed canary keep old pods for ``scaleDownDelaySeconds`` - at most
        ``scaleDownDelayRevisionLimit`` of them, newest first; the older ones go at once. A ReplicaSet a
        Service still selects is left alone.
        """
        new_hash, stable_hash = ctx.status.get("currentPodHash"), ctx.status.get("stableRS")
        delayed = ctx.blue_green is not None or bool((ctx.canary or {}).get("trafficRouting"))
        limit = defaults.scale_down_revision_limit(ctx.ro)
        waiting = 0  # old ReplicaSets kept up within their delay so far
        referenced = self._referenced_hashes(ctx)
        for rs in sorted(ctx.others, key=rsutil.revision_of, reverse=True):
            pod_hash = rsutil.hash_of(rs)
            if pod_hash in (new_hash, stable_hash) or rsutil.spec_replicas(rs) == 0:
                continue
            if delayed and pod_hash in referenced:
                continue
            deadline = rsutil.deadline_of(rs)
            if deadline is None and ctx.blue_green is None:
                await self._scale(ctx, rs, 0)  # a canary's intermediate or previous ReplicaSet
                continue
            waiting += 1
            if limit is not None and waiting > limit:
                await self._scale(ctx, rs, 0)
            elif deadline is None:
                await self._set_deadline(ctx, rs, defaults.scale_down_delay(ctx.ro))
            elif deadline <= ctx.now:
                await self._scale(ctx, rs, 0)
            else:
                ctx.wake_in((deadline - ctx.now).total_seconds())
        limit = defaults.revision_history_limit(ctx.ro)
        idle = sorted(
            (
                r
                for r in ctx.replicasets
                if rsutil.hash_of(r) not in (new_hash, stable_hash)
                and rsutil.spec_replicas(r) == 0
                and rsutil.current(r) == 0
            ),
            key=rsutil.revision_of,
        )
        for rs in idle[: max(0, len(idle) - limit)]:
            await self.client.delete(kinds.REPLICASET, rs["metadata"]["name"], ctx.namespace)

    def _referenced_hashes(self, ctx: Context) -> set[str]:
        """Pod hashes the strategy's Services select now (their pods still take traffic)."""
        strategy = ctx.blue_green or ctx.canary or {}
        names = [
            strategy.get(k) for k in ("activeService", "previewService", "canaryService", "stableService")
        ]
        found = set()
        for name in names:
            svc = ctx.service(name) if name else None
            selected = ((svc or {}).get("spec") or {}).get("selector") or {}
            if selected.get(rsutil.HASH_LABEL):
                found.add(str(selected[rsutil.HASH_LABEL]))
        return found

    async def _point_service(self, ctx: Context, name: str, pod_hash: str) -> None:
        svc = ctx.service(name)
        if svc is None or not pod_hash:
            return
        selector = (svc.get("spec") or {}).get("selector") or {}
        annotations = (svc.get("metadata") or {}).get("annotations") or {}
        if selector.get(rsutil.HASH_LABEL) == pod_hash and annotations.get(MANAGED_BY) == ctx.name:
            return
        patch = {
            "metadata": {"annotations": {MANAGED_BY: ctx.name}},
            "spec": {"selector": {rsutil.HASH_LABEL: pod_hash}},
        }
        updated = await self.client.patch(kinds.SERVICE, name, patch, namespace=ctx.namespace)
        ctx.switched[name] = updated  # the status of this very reconcile must see the switch
        if selector.get(rsutil.HASH_LABEL) != pod_hash:
            previous = selector.get(rsutil.HASH_LABEL, "")
            ctx.event(
                "Normal",
                "SwitchService",
                f"Switched selector for service '{name}' from '{previous}' to '{pod_hash}'",
            )

    # ------------------------------------------------------------------------------------ status

    def _progress_deadline(self, ctx: Context) -> None:
        new_rs = ctx.new_rs
        if new_rs is None:
            return
        completed = ctx.status.get("stableRS") == ctx.status.get("currentPodHash")
        progressing = conditions.get(ctx.status, conditions.PROGRESSING) or {}
        reason = progressing.get("reason")
        if completed:
            if rsutil.available(new_rs) >= ctx.replicas:
                if reason != conditions.NEW_RS_AVAILABLE:
                    message = conditions.available_message(new_rs["metadata"]["name"])
                    self._set_condition(
                        ctx, conditions.PROGRESSING, "True", conditions.NEW_RS_AVAILABLE, message
                    )
                return
            if reason == conditions.NEW_RS_AVAILABLE:
                # A healthy rollout lost pods: the clock runs again (but a completed update never aborts).
                self._set_condition(
                    ctx,
                    conditions.PROGRESSING,
                    "True",
                    conditions.RS_NOT_AVAILABLE,
                    "Rollout does not have minimum availability",
                )
                progressing = conditions.get(ctx.status, conditions.PROGRESSING) or {}
            if progressing.get("reason") != conditions.RS_NOT_AVAILABLE:
                return
            last = _parse(progressing.get("lastUpdateTime")) or ctx.now
            deadline = last + timedelta(seconds=defaults.progress_deadline(ctx.ro))
            if ctx.now < deadline:
                ctx.wake_in((deadline - ctx.now).total_seconds() + 1)
                return
            message = conditions.timed_out_message(new_rs["metadata"]["name"])
            self._set_condition(
                ctx, conditions.PROGRESSING, "False", conditions.PROGRESS_DEADLINE_EXCEEDED, message
            )
            return
        if ctx.status.get("abort"):
            return
        if ctx.spec.get("paused") or ctx.status.get("pauseConditions"):
            # A pause stops the clock (checkPausedConditions): Progressing is Unknown while it lasts.
            if reason != conditions.ROLLOUT_PAUSED:
                self._set_condition(
                    ctx, conditions.PROGRESSING, "Unknown", conditions.ROLLOUT_PAUSED, "Rollout is paused"
                )
            return
        if reason == conditions.ROLLOUT_PAUSED:
            # Resumed: the clock starts again from now.
            self._set_condition(
                ctx, conditions.PROGRESSING, "Unknown", conditions.ROLLOUT_RESUMED, "Rollout is resumed"
            )
            progressing = conditions.get(ctx.status, conditions.PROGRESSING) or {}
            reason = progressing.get("reason")
        # Any change in the replica counts, the step or the stable ReplicaSet is progress (and leaves an
        # exceeded deadline behind).
        before = ctx.ro.get("status") or {}
        self._counts(ctx)
        moved = any(
            before.get(k) != ctx.status.get(k)
            for k in (
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "currentStepIndex",
                "stableRS",
            )
        )
        if reason == conditions.PROGRESS_DEADLINE_EXCEEDED and not moved:
            return
        if moved or reason not in (
            conditions.RS_UPDATED,
            conditions.NEW_RS_CREATED,
            conditions.ROLLOUT_RETRY,
            conditions.ROLLOUT_RESUMED,
        ):
            message = conditions.progressing_message(new_rs["metadata"]["name"])
            self._set_condition(
                ctx, conditions.PROGRESSING, "True", conditions.RS_UPDATED, message, touch=True
            )
            progressing = conditions.get(ctx.status, conditions.PROGRESSING) or {}
        last = _parse(progressing.get("lastUpdateTime")) or ctx.now
        deadline = last + timedelta(seconds=defaults.progress_deadline(ctx.ro))
        if ctx.now < deadline:
            ctx.wake_in((deadline - ctx.now).total_seconds() + 1)
            return
        message = conditions.timed_out_message(new_rs["metadata"]["name"])
        self._set_condition(
            ctx, conditions.PROGRESSING, "False", conditions.PROGRESS_DEADLINE_EXCEEDED, message
        )
        ctx.event("Warning", "RolloutProgressDeadlineExceeded", message)
        if ctx.spec.get("progressDeadlineAbort"):
            self._abort(ctx, message)

    def _abort(self, ctx: Context, message: str) -> None:
        """The controller aborts the update (a failed analysis, the progress deadline): as a client's
        abort, with ``message`` after ``Rollout aborted update to revision N: ``."""
        ctx.status["abort"] = True
        ctx.status["abortedAt"] = rsutil.stamp(ctx.now)
        ctx.status.pop("pauseConditions", None)
        ctx.status.pop("controllerPause", None)
        abort_message = conditions.aborted_message(rsutil.revision_of(ctx.new_rs or {}), message)
        self._set_condition(ctx, conditions.PROGRESSING, "False", conditions.ROLLOUT_ABORTED, abort_message)
        ctx.event("Warning", "RolloutAborted", abort_message)
        ctx.wake_in(0.05)

    def _set_condition(
        self, ctx: Context, kind: str, status: str, reason: str, message: str, *, touch: bool = False
    ) -> None:
        existing = conditions.get(ctx.status, kind)
        if (
            existing is not None
            and (existing.get("status"), existing.get("reason"), existing.get("message"))
            == (status, reason, message)
            and not touch
        ):
            return
        cond = conditions.new_condition(kind, status, reason, message, now=rsutil.stamp(ctx.now))
        ctx.status["conditions"] = conditions.set_condition(ctx.status.get("conditions") or [], cond)

    def _counts(self, ctx: Context) -> None:
        status = ctx.status
        new_rs = ctx.new_rs or {}
        status["replicas"] = sum(rsutil.current(r) for r in ctx.replicasets)
        status["updatedReplicas"] = rsutil.current(new_rs)
        if ctx.blue_green is not None:
            active_hash = ""
            active = ctx.service(ctx.blue_green.get("activeService") or "")
            if active is not None:
                active_hash = ((active.get("spec") or {}).get("selector") or {}).get(rsutil.HASH_LABEL, "")
            active_rs = next((r for r in ctx.replicasets if rsutil.hash_of(r) == active_hash), None)
            status["readyReplicas"] = rsutil.ready(active_rs)
            status["availableReplicas"] = rsutil.available(active_rs)
            status["HPAReplicas"] = rsutil.current(active_rs)
            selector = dict((ctx.spec.get("selector") or {}).get("matchLabels") or {})
            if active_hash:
                selector[rsutil.HASH_LABEL] = active_hash
            bg = status.setdefault("blueGreen", {})
            if active_hash:
                bg["activeSelector"] = active_hash
            preview = ctx.service(ctx.blue_green.get("previewService") or "")
            preview_hash = ((preview or {}).get("spec") or {}).get("selector", {}).get(rsutil.HASH_LABEL)
            if preview_hash:
                bg["previewSelector"] = preview_hash
        else:
            status["readyReplicas"] = sum(rsutil.ready(r) for r in ctx.replicasets)
            status["availableReplicas"] = sum(rsutil.available(r) for r in ctx.replicasets)
            status["HPAReplicas"] = status["replicas"]
            selector = dict((ctx.spec.get("selector") or {}).get("matchLabels") or {})
            if not (ctx.canary or {}).get("trafficRouting"):
                # Without a router Argo Rollouts records no weights (the replica counts are the split).
                canary_status = status.get("canary")
                if isinstance(canary_status, dict):
                    canary_status.pop("weights", None)
                    if not canary_status:
                        status.pop("canary", None)
        status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        status["observedGeneration"] = str(ctx.ro["metadata"].get("generation", 0))

    def _final_conditions(self, ctx: Context) -> None:
        status = ctx.status
        replicas = ctx.replicas
        completed = bool(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash")
        available_ok = status.get("availableReplicas", 0) >= replicas
        self._set_condition(
            ctx,
            conditions.AVAILABLE,
            "True" if available_ok else "False",
            conditions.AVAILABLE_REASON,
            "Rollout has minimum availability"
            if available_ok
            else "Rollout does not have minimum availability",
        )
        before = conditions.get(status, conditions.COMPLETED) or {}
        self._set_condition(
            ctx,
            conditions.COMPLETED,
            "True" if completed else "False",
            conditions.ROLLOUT_COMPLETED,
            conditions.ROLLOUT_COMPLETED,
        )
        if not completed and before.get("status") != "False":
            revision = rsutil.revision_of(ctx.new_rs or {})
            started = f"started update to revision {revision} ({status.get('currentPodHash')})"
            ctx.event("Normal", "RolloutNotCompleted", f"Rollout not completed, {started}")
        paused = bool(ctx.spec.get("paused") or status.get("pauseConditions"))
        if paused:
            self._set_condition(
                ctx, conditions.PAUSED, "True", conditions.ROLLOUT_PAUSED, "Rollout is paused"
            )
        elif conditions.get(status, conditions.PAUSED) is not None:
            self._set_condition(
                ctx, conditions.PAUSED, "False", conditions.ROLLOUT_PAUSED, "Rollout is paused"
            )
        healthy = (
            completed
            and not paused
            and status.get("updatedReplicas") == replicas
            and status.get("availableReplicas", 0) >= replicas
            and status.get("replicas") == replicas
        )
        self._set_condition(
            ctx,
            conditions.HEALTHY,
            "True" if healthy else "False",
            conditions.ROLLOUT_HEALTHY,
            "Rollout is healthy" if healthy else "Rollout is not healthy",
        )

    async def _write_status(self, ctx: Context, original: Obj) -> None:
        if ctx.new_rs is not None:
            self._counts(ctx)
            self._final_conditions(ctx)
        else:
            ctx.status["observedGeneration"] = str(ctx.ro["metadata"].get("generation", 0))
        view = {"spec": ctx.ro.get("spec") or {}, "status": ctx.status, "metadata": ctx.ro["metadata"]}
        ctx.status["phase"], ctx.status["message"] = phase.calculate_phase(view)
        ctx.status = {k: v for k, v in ctx.status.items() if v is not None}
        patch = mergepatch.create(original.get("status") or {}, ctx.status)
        if not patch:
            return
        try:
            self._wrote(
                await self.client.patch(
                    crds.ROLLOUT, ctx.name, {"status": patch}, namespace=ctx.namespace, subresource="status"
                )
            )
        except kube_errors.ApiError as exc:
            if not exc.not_found:
                raise


def _weighted_counts(replicas: int, weight: int) -> tuple[int, int]:
    """Canary and stable replica counts approximating ``weight`` percent without a traffic router
    (upstream's ``approximateWeightedCanaryStableReplicaCounts``): at least one of each while
    0 < weight < 100, choosing among the rounded counts - and the same with one surge pod - the split
    whose actual percentage is closest (4 replicas at 10 %: 1 canary + 4 stable, 20 %, beats 1 + 3)."""
    if replicas <= 0:
        return 0, 0
    if weight <= 0:
        return 0, replicas
    if weight >= 100:
        return replicas, 0
    ceil = math.ceil(replicas * weight / 100)
    floor = math.floor(replicas * weight / 100)
    options: list[tuple[int, int]] = []
    if ceil < replicas:
        options.append((ceil, replicas))
    if floor not in (0, ceil):
        options.append((floor, replicas))
    options.append((ceil, replicas + 1))
    if floor + 1 != ceil:
        options.append((floor + 1, replicas + 1))
    best = min(options, key=lambda o: abs(weight - 100 * o[0] / o[1]))
    return best[0], best[1] - best[0]


def _scale_down(count: int, available: int, target: int, budget: int) -> tuple[int, int]:
    """Scale ``count`` towards ``target``: unavailable pods go freely, available ones only within
    ``budget`` (how many more may become unavailable). Returns the new count and the budget left."""
    excess = count - target
    if excess <= 0:
        return count, budget
    free = min(excess, max(count - available, 0))
    paid = min(excess - free, budget)
    return count - free - paid, budget - paid


def _basic_canary_step(ctx: Context, desired_new: int, desired_stable: int) -> tuple[int, int, list[int]]:
    """The next replica counts of the new, stable and older ReplicaSets on their way to the targets,
    never above ``replicas + maxSurge`` pods nor below ``replicas - maxUnavailable`` available ones
    (upstream's ``CalculateReplicaCountsForBasicCanary``)."""
    assert ctx.new_rs is not None and ctx.stable_rs is not None
    surge, unavailable = defaults.max_surge_unavailable(ctx.ro)
    replicas = ctx.replicas
    new, stable = rsutil.spec_replicas(ctx.new_rs), rsutil.spec_replicas(ctx.stable_rs)
    others = [rsutil.spec_replicas(r) for r in ctx.others]
    room = replicas + surge - (new + stable + sum(others))
    if new < desired_new and room > 0:
        add = min(desired_new - new, room)
        new, room = new + add, room - add
    if stable < desired_stable and room > 0:
        add = min(desired_stable - stable, room)
        stable, room = stable + add, room - add

    def up(rs: Obj) -> int:  # available pods, never more than the ReplicaSet still asks for
        return min(rsutil.available(rs), rsutil.spec_replicas(rs))

    available = up(ctx.new_rs) + up(ctx.stable_rs) + sum(up(r) for r in ctx.others)
    budget = max(available - (replicas - unavailable), 0)
    next_others = []
    for rs, count in zip(ctx.others, others, strict=True):
        count, budget = _scale_down(count, up(rs), 0, budget)
        next_others.append(count)
    stable, budget = _scale_down(stable, up(ctx.stable_rs), desired_stable, budget)
    new, budget = _scale_down(new, up(ctx.new_rs), desired_new, budget)
    return new, stable, next_others


def _current_weight(ctx: Context) -> int:
    weights = ((ctx.ro.get("status") or {}).get("canary") or {}).get("weights") or {}
    return int((weights.get("canary") or {}).get("weight") or 0)


def _dynamic_abort(ctx: Context) -> bool:
    canary = ctx.canary or {}
    return bool(canary.get("dynamicStableScale")) and bool(canary.get("trafficRouting"))


def _abort_weight(ctx: Context) -> int:
    """The canary weight while a dynamicStableScale canary aborts (upstream's
    calculateDesiredWeightOnAbortOrStableRollback): traffic leaves the canary only as fast as stable pods
    become available to take it, and never comes back."""
    replicas = ctx.replicas
    if replicas <= 0 or ctx.stable_rs is None:
        return 0
    expected = max(0, 100 - (100 * rsutil.available(ctx.stable_rs)) // replicas)
    return min(expected, _current_weight(ctx))


def _routed_counts(ctx: Context, canary: Mapping[str, Any], weight: int) -> tuple[int, int]:
    """Replica counts with a traffic router: the canary gets ``ceil(weight% of replicas)`` (or what
    ``setCanaryScale`` says), the stable ReplicaSet stays whole unless ``dynamicStableScale``."""
    replicas = ctx.replicas
    canary_count = math.ceil(replicas * weight / 100)
    steps = canary.get("steps") or []
    index = ctx.status.get("currentStepIndex")
    if steps and index is not None and not ctx.status.get("abort"):
        for step in steps[: min(index, len(steps) - 1) + 1]:
            scale = step.get("setCanaryScale")
            if not isinstance(scale, dict):
                continue
            if scale.get("matchTrafficWeight"):
                canary_count = math.ceil(replicas * weight / 100)
            elif scale.get("replicas") is not None:
                canary_count = int(scale["replicas"])
            elif scale.get("weight") is not None:
                canary_count = math.ceil(replicas * int(scale["weight"]) / 100)
    minimum = int(canary.get("minPodsPerReplicaSet") or 0)
    if canary_count and minimum:
        canary_count = max(canary_count, minimum)
    stable_count = replicas
    if canary.get("dynamicStableScale") and not ctx.status.get("abort"):
        stable_count = max(replicas - math.ceil(replicas * weight / 100), 0)
    if canary.get("dynamicStableScale") and ctx.status.get("abort"):
        # The canary keeps the pods its remaining traffic needs; stable is made whole to take it back.
        canary_count = math.ceil(replicas * _abort_weight(ctx) / 100)
    return min(canary_count, replicas), stable_count


def _describe(step: Mapping[str, Any]) -> str:
    """Argo's step string: ``setWeight: 20``, ``pause: 10s``, ``pause`` (indefinite)."""
    for key, value in step.items():
        if key == "pause":
            duration = (value or {}).get("duration") if isinstance(value, dict) else None
            if duration is None:
                return "pause"
            return f"pause: {duration}s" if isinstance(duration, int) else f"pause: {duration}"
        return f"{key}: {value}" if not isinstance(value, dict) else key
    return ""


def _promotion_reason(ctx: Context, usual: str) -> str:
    if ctx.within_window:
        return "Rollback within window"
    if ctx.within_delay:
        return "Fast rollback"
    return usual


def _completed(ctx: Context, reason: str) -> None:
    rs = ctx.new_rs or {}
    ctx.event(
        "Normal",
        "RolloutCompleted",
        f"Rollout completed update to revision {rsutil.revision_of(rs)} ({rsutil.hash_of(rs)}): {reason}",
    )
