"""Experiments: ephemeral ReplicaSets (and Services) run side by side, judged by AnalysisRuns.

An Experiment (research/rollouts.md §1.6) runs one ReplicaSet per ``spec.templates[]`` entry, named
``<experiment>-<template>`` and found again by its ``experiment.argoproj.io/name`` and
``experiment.argoproj.io/template-name`` annotations, with an optional Service per template. It is
``Pending`` until every template is available, then ``Running`` (``status.availableAt``); its
``spec.analyses`` then start as AnalysisRuns named ``<experiment>-<analysis>``. It ends ``Successful`` once
``duration`` has passed (or its ``requiredForCompletion`` runs succeeded), ``Failed``/``Error`` as soon as a
run or a template does (a template that is not available within ``progressDeadlineSeconds`` fails), and
when ``spec.terminate`` is set. An ended experiment scales its ReplicaSets to zero after
``scaleDownDelaySeconds``, removes its Services and terminates the runs still going.

:class:`ExperimentReconciler` does one reconcile the way Argo Rollouts' ``experiments`` package does:
templates, then analyses, then the phase and conditions, written with one merge patch of the object
itself (the Experiment CRD has no status subresource, as upstream's). :func:`experiment_for_step` builds
the Experiment a Rollout's canary ``experiment`` step asks for.

Deliberate differences from upstream: a ReplicaSet made at zero replicas is scaled up in the same
reconcile (upstream waits for the next one; the Events are the same); a name taken by a ReplicaSet or
Service of someone else makes the template ``Error`` (upstream bumps a collision count that cannot change
the name and retries for ever); the status of a run keeps being read while the experiment terminates, so an
experiment with a required and a non-required run cannot stay ``Running`` for ever (upstream's can), and
a run not yet picked up by its controller reads ``Pending`` (upstream records an empty phase); a template
waiting for its scale-down deadline keeps its ``lastTransitionTime`` (upstream rewrites it on every
reconcile); the ``scale-down-deadline`` annotation is removed when a ReplicaSet is scaled up again
(``retry``).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds, mergepatch, writes
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import analysisruns, conditions, crds, defaults, hashing
from tugboat.rollouts import replicasets as rsutil
from tugboat.rollouts.analysis import metrics, templates

log = logging.getLogger(__name__)

EventFunc = Callable[[Obj, str, str, str], None]

NAME_ANNOTATION = "experiment.argoproj.io/name"
TEMPLATE_ANNOTATION = "experiment.argoproj.io/template-name"
INSTANCE_ID_LABEL = "argo-rollouts.argoproj.io/controller-instance-id"
DEFAULT_SCALE_DOWN_DELAY_SECONDS = 30

# Template status codes, best to worst (upstream's ``templateStatusOrder``).
SUCCESSFUL, RUNNING, PROGRESSING, ERROR, FAILED = "Successful", "Running", "Progressing", "Error", "Failed"
_TEMPLATE_ORDER = (SUCCESSFUL, RUNNING, PROGRESSING, ERROR, FAILED)
TEMPLATE_COMPLETED = frozenset({SUCCESSFUL, FAILED, ERROR})
# Experiment (and run) phases beyond those.
PENDING, INCONCLUSIVE = "Pending", "Inconclusive"

REQUIRED_COMPLETED_MESSAGE = "Required AnalysisRuns completed"
SELECT_ALL_MESSAGE = "This experiment is selecting all pods at index {}. A non-empty selector is required."
MIN_READY_MESSAGE = "MinReadySeconds cannot be longer than ProgressDeadlineSeconds. Check template index {}"
EMPTY_NAME_MESSAGE = "Experiment {} has empty template name at index {}"
REPEATED_NAME_MESSAGE = "Experiment {} has repeated template name '{}' in templates"


class ExperimentError(Exception):
    """An Experiment the controller cannot reconcile now (the text says why); retried with backoff."""


class ExperimentSpecError(Exception):
    """A Rollout experiment step that cannot become an Experiment (a bad ``specRef``, an arg)."""


# ------------------------------------------------------------------------------------ spec reading


def _spec(ex: Mapping[str, Any]) -> Mapping[str, Any]:
    return ex.get("spec") or {}


def _status(ex: Mapping[str, Any]) -> Mapping[str, Any]:
    return ex.get("status") or {}


_parse_time = rsutil.parse_time


def template_replicas(template: Mapping[str, Any]) -> int:
    value = template.get("replicas")
    return 1 if value is None else int(value)


def scale_down_delay(ex: Mapping[str, Any]) -> int:
    value = _spec(ex).get("scaleDownDelaySeconds")
    return DEFAULT_SCALE_DOWN_DELAY_SECONDS if value is None else int(value)


def duration_seconds(ex: Mapping[str, Any]) -> float | None:
    """``spec.duration`` in seconds; None when unset or not a Go duration (it then never passes)."""
    text = _spec(ex).get("duration")
    if not text:
        return None
    try:
        return defaults.parse_go_duration(str(text))
    except ValueError:
        return None


def passed_duration(ex: Mapping[str, Any], now: datetime) -> tuple[bool, float]:
    """Whether ``duration`` has passed since ``availableAt``, and the seconds left until it does."""
    seconds = duration_seconds(ex)
    available_at = _parse_time(_status(ex).get("availableAt"))
    if seconds is None or available_at is None:
        return False, 0.0
    ends = available_at + timedelta(seconds=seconds)
    return now > ends, (ends - now).total_seconds()


def template_status(status: Mapping[str, Any], name: str) -> Obj | None:
    for entry in status.get("templateStatuses") or []:
        if entry.get("name") == name:
            return dict(entry)
    return None


def _set_entry(status: Obj, key: str, entry: Obj) -> None:
    entries: list[Obj] = list(status.get(key) or [])
    for i, existing in enumerate(entries):
        if existing.get("name") == entry["name"]:
            entries[i] = entry
            break
    else:
        entries.append(entry)
    status[key] = entries


def run_status(status: Mapping[str, Any], name: str) -> Obj | None:
    for entry in status.get("analysisRuns") or []:
        if entry.get("name") == name:
            return dict(entry)
    return None


def has_required_runs(ex: Mapping[str, Any]) -> bool:
    return any(a.get("requiredForCompletion") for a in _spec(ex).get("analyses") or [])


def required_runs_successful(ex: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """There is at least one ``requiredForCompletion`` analysis, and all of them succeeded."""
    required = [a for a in _spec(ex).get("analyses") or [] if a.get("requiredForCompletion")]
    return bool(required) and all(
        (run_status(status, str(a.get("name"))) or {}).get("phase") == SUCCESSFUL for a in required
    )


def is_terminating(ex: Mapping[str, Any]) -> bool:
    """Asked to stop, finished, or bound to: a template or run failed, or the required runs succeeded."""
    status = _status(ex)
    if _spec(ex).get("terminate") or status.get("phase") in metrics.COMPLETED:
        return True
    if any(t.get("status") in (FAILED, ERROR) for t in status.get("templateStatuses") or []):
        return True
    if any(r.get("phase") in (FAILED, ERROR, INCONCLUSIVE) for r in status.get("analysisRuns") or []):
        return True
    return required_runs_successful(ex, status)


def desired_replicas(ex: Mapping[str, Any], template: Mapping[str, Any]) -> int:
    """What a template's ReplicaSet should run: nothing once the experiment or the template is done."""
    if is_terminating(ex):
        return 0
    current = template_status(_status(ex), str(template.get("name")))
    if current is not None and current.get("status") in TEMPLATE_COMPLETED:
        return 0
    return template_replicas(template)


def _template_worse(current: str, new: str) -> bool:
    def rank(code: str) -> int:
        return _TEMPLATE_ORDER.index(code) if code in _TEMPLATE_ORDER else 0

    return rank(new) > rank(current)


def verify_spec(ex: Mapping[str, Any]) -> str | None:
    """Upstream's ``VerifyExperimentSpec``: the InvalidSpec message, or None for a valid spec."""
    seen: set[str] = set()
    deadline = defaults.progress_deadline(ex)
    name = (ex.get("metadata") or {}).get("name")
    for i, template in enumerate(_spec(ex).get("templates") or []):
        selector = template.get("selector")
        if selector is None:
            return conditions.MISSING_FIELD_MESSAGE.format(f".Spec.Templates[{i}].Selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            return SELECT_ALL_MESSAGE.format(i)
        if int(template.get("minReadySeconds") or 0) > deadline:
            return MIN_READY_MESSAGE.format(i)
        if not template.get("name"):
            return EMPTY_NAME_MESSAGE.format(name, i)
        if template["name"] in seen:
            return REPEATED_NAME_MESSAGE.format(name, template["name"])
        seen.add(str(template["name"]))
    return None


def _owner_ref(obj: Mapping[str, Any], kind: str) -> Obj:
    meta = obj["metadata"]
    return {
        "apiVersion": f"{crds.GROUP}/{crds.VERSION}",
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def rollout_owner(ex: Mapping[str, Any]) -> Obj | None:
    """A minimal Rollout object (for Events) when a Rollout owns the experiment."""
    meta = ex.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "Rollout":
            return {
                "apiVersion": ref.get("apiVersion"),
                "kind": "Rollout",
                "metadata": {
                    "name": ref.get("name"),
                    "namespace": meta.get("namespace"),
                    "uid": ref.get("uid"),
                },
            }
    return None


def replicaset_for(ex: Mapping[str, Any], template: Mapping[str, Any], collision_count: int | None) -> Obj:
    """The ReplicaSet of one template, at zero replicas, owned by the experiment."""
    meta = ex["metadata"]
    pod_template = copy.deepcopy(dict(template.get("template") or {}))
    labels = (pod_template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(rsutil.HASH_LABEL, None)
    pod_hash = hashing.pod_template_hash(pod_template, collision_count)
    pod_template.setdefault("metadata", {}).setdefault("labels", {})[rsutil.HASH_LABEL] = pod_hash
    selector = copy.deepcopy(dict(template.get("selector") or {}))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), rsutil.HASH_LABEL: pod_hash}
    spec: Obj = {"replicas": 0, "selector": selector, "template": pod_template}
    if template.get("minReadySeconds"):
        spec["minReadySeconds"] = template["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{template['name']}",
            "namespace": meta["namespace"],
            "labels": dict(pod_template["metadata"]["labels"]),
            "annotations": {NAME_ANNOTATION: meta["name"], TEMPLATE_ANNOTATION: template["name"]},
            "ownerReferences": [_owner_ref(ex, "Experiment")],
        },
        "spec": spec,
    }


def service_ports(rs: Mapping[str, Any]) -> list[Obj]:
    """One Service port per container port of the ReplicaSet's pods."""
    ports: list[Obj] = []
    for container in ((rs.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            entry: Obj = {"port": port["containerPort"], "targetPort": port["containerPort"]}
            if port.get("protocol"):
                entry["protocol"] = port["protocol"]
            if port.get("name"):
                entry["name"] = port["name"]
            ports.append(entry)
    return ports


def owned_by_template(ex: Mapping[str, Any], objects: Iterable[Obj], what: str) -> dict[str, Obj]:
    """The objects (ReplicaSets or Services) the experiment controls, by the template they belong to."""
    meta = ex["metadata"]
    defined = {t.get("name") for t in _spec(ex).get("templates") or []}
    found: dict[str, Obj] = {}
    for obj in objects:
        obj_meta = obj.get("metadata") or {}
        controller = next((r for r in obj_meta.get("ownerReferences") or [] if r.get("controller")), None)
        annotations = obj_meta.get("annotations") or {}
        if controller is None or controller.get("uid") != meta.get("uid"):
            continue
        if annotations.get(NAME_ANNOTATION) != meta.get("name"):
            continue
        name = annotations.get(TEMPLATE_ANNOTATION)
        if not name:
            continue
        if name in found:
            raise ExperimentError(f"multiple {what} match single experiment template: {name}")
        if name in defined:
            found[str(name)] = obj
    return found


# ------------------------------------------------------------------------------------ reconciling


@dataclass
class _Context:
    ex: Obj  # the experiment as read
    status: Obj  # the status being built
    replicasets: dict[str, Obj]
    services: dict[str, Obj]
    runs: dict[str, Obj]
    now: datetime
    terminating: bool
    events: list[tuple[Obj, str, str, str]] = field(default_factory=list)
    wake: float | None = None

    @property
    def name(self) -> str:
        return str(self.ex["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.ex["metadata"]["namespace"])

    def event(self, kind: str, reason: str, message: str, *, about: Obj | None = None) -> None:
        self.events.append((about or self.ex, kind, reason, message))

    def wake_in(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.wake = seconds if self.wake is None else min(self.wake, seconds)


class ExperimentReconciler:
    """Reconciles Experiments with ``client``; ``record`` writes Kubernetes Events."""

    def __init__(self, client: Client, *, record: EventFunc | None = None) -> None:
        self.client = client
        self.record = record
        self.writes = writes.WriteTracker()  # an Experiment from a cache older than our last write waits
        self.stale = self.writes.stale
        self.forget = self.writes.forget

    async def reconcile(
        self,
        experiment: Obj,
        replicasets: Iterable[Obj],
        services: Iterable[Obj],
        analysis_runs: Iterable[Obj],
        *,
        now: datetime,
    ) -> float | None:
        """One step of ``experiment``; returns seconds until it wants to look again (None: nothing due).

        ``replicasets``, ``services`` and ``analysis_runs`` are (at least) the objects the experiment owns,
        as a cache has them; they are never modified."""
        if (experiment.get("metadata") or {}).get("deletionTimestamp"):
            return None
        original: Obj = experiment.get("status") or {}
        status = copy.deepcopy(original)
        problem = verify_spec(experiment)
        if problem is not None:
            self._invalid(status, problem, now)
            await self._write(experiment, original, status, [])
            return None
        ctx = _Context(
            ex=experiment,
            status=status,
            replicasets=owned_by_template(experiment, replicasets, "ReplicaSets"),
            services=owned_by_template(experiment, services, "Services"),
            runs={r["metadata"]["name"]: r for r in analysis_runs},
            now=now,
            terminating=is_terminating(experiment),
        )
        for template in _spec(experiment).get("templates") or []:
            await self._template(ctx, template)
        for analysis in _spec(experiment).get("analyses") or []:
            await self._analysis(ctx, analysis)
        self._phase(ctx)
        self._conditions(ctx)
        self._requeue(ctx)
        await self._write(experiment, original, ctx.status, ctx.events)
        return ctx.wake

    # ------------------------------------------------------------------------------------ spec check

    def _invalid(self, status: Obj, message: str, now: datetime) -> None:
        previous = conditions.find(status.get("conditions"), conditions.INVALID_SPEC)
        if previous is not None and previous.get("message") == message:
            return
        found = conditions.remove(status.get("conditions"), conditions.INVALID_SPEC)
        cond = conditions.new_condition(
            conditions.INVALID_SPEC,
            conditions.TRUE,
            conditions.INVALID_SPEC_REASON,
            message,
            now=rsutil.stamp(now),
        )
        status["conditions"] = [*found, cond]

    # ------------------------------------------------------------------------------------ templates

    async def _template(self, ctx: _Context, template: Mapping[str, Any]) -> None:
        name = str(template["name"])
        entry = template_status(ctx.status, name) or {"name": name}
        previous = dict(entry)
        desired = desired_replicas(ctx.ex, template)
        stamp = rsutil.stamp(ctx.now)
        scaling = False  # whether the ReplicaSet is (or waits to be) scaled to a new count
        rs = ctx.replicasets.get(name)
        if rs is None:
            rs = await self._create_replicaset(ctx, template, entry)
        if rs is not None:
            await self._template_service(ctx, template, entry, rs, desired)
            if desired == 0:
                await self._scale_down_deadline(ctx, name)
            scaling = rsutil.spec_replicas(ctx.replicasets[name]) != desired
            await self._scale_template(ctx, template, entry, desired)
        rs = ctx.replicasets.get(name)
        counts = {
            "replicas": rsutil.current(rs),
            "updatedReplicas": rsutil.current(rs),
            "readyReplicas": rsutil.ready(rs),
            "availableReplicas": rsutil.available(rs),
        }
        if any(previous.get(k, 0) != v for k, v in counts.items()):
            entry["lastTransitionTime"] = stamp
        entry.update(counts)
        if entry.get("status") not in TEMPLATE_COMPLETED:
            self._assess_template(ctx, template, entry, desired, scaling=scaling)
        if previous.get("status") != entry.get("status"):
            message = f"Template '{name}' transitioned from {previous.get('status', '')} -> {entry['status']}"
            if entry.get("message"):
                message += f": {entry['message']}"
            kind = "Warning" if entry["status"] in (FAILED, ERROR) else "Normal"
            ctx.event(kind, f"Template{entry['status']}", message)
        _set_entry(ctx.status, "templateStatuses", _ordered_template_status(entry))

    def _assess_template(
        self, ctx: _Context, template: Mapping[str, Any], entry: Obj, desired: int, *, scaling: bool
    ) -> None:
        if desired == entry["availableReplicas"]:
            passed, _ = passed_duration(ctx.ex, ctx.now)
            entry["status"] = SUCCESSFUL if passed or ctx.terminating else RUNNING
            return
        # A ReplicaSet being scaled has just changed: its progress deadline counts from now. (Upstream
        # stamps lastTransitionTime on every such reconcile; we do not, so that a ReplicaSet waiting for its
        # scale-down deadline does not rewrite the status every second.)
        since = ctx.now if scaling else _parse_time(entry.get("lastTransitionTime")) or ctx.now
        deadline = defaults.progress_deadline(ctx.ex)
        if ctx.now > since + timedelta(seconds=deadline):
            entry["status"] = FAILED
            entry["message"] = (
                f"Template '{template['name']}' exceeded its progressDeadlineSeconds ({deadline})"
            )
        elif ctx.terminating:
            entry["status"] = SUCCESSFUL
        else:
            entry["status"] = PROGRESSING

    async def _create_replicaset(self, ctx: _Context, template: Mapping[str, Any], entry: Obj) -> Obj | None:
        name = str(template["name"])
        collisions = entry.get("collisionCount")
        body = replicaset_for(ctx.ex, template, None if collisions is None else int(collisions))
        rs_name = body["metadata"]["name"]
        try:
            rs = await self.client.create(kinds.REPLICASET, body)
        except kube_errors.ApiError as exc:
            if not exc.already_exists:
                ctx.event(
                    "Normal",
                    conditions.RS_CREATE_ERROR,
                    conditions.create_error_message(rs_name, exc.message),
                )
                entry["status"] = ERROR
                entry["message"] = f"Failed to create ReplicaSet for template '{name}': {exc.message}"
                return None
            rs = await self.client.get(kinds.REPLICASET, rs_name, ctx.namespace)
            if not owned_by_template(ctx.ex, [rs], "ReplicaSets") or not _same_template(rs, body):
                entry["status"] = ERROR
                entry["message"] = (
                    f"Failed to create ReplicaSet for template '{name}': "
                    f'replicasets.apps "{rs_name}" already exists'
                )
                return None
        ctx.replicasets[name] = rs
        entry["lastTransitionTime"] = rsutil.stamp(ctx.now)
        return rs

    async def _scale_down_deadline(self, ctx: _Context, name: str) -> None:
        """An ending template's ReplicaSet keeps its pods ``scaleDownDelaySeconds`` longer."""
        rs = ctx.replicasets[name]
        delay = scale_down_delay(ctx.ex)
        if delay == 0:
            if rsutil.deadline_of(rs) is None:
                return
            patch: Obj = {"metadata": {"annotations": {rsutil.SCALE_DOWN_DEADLINE: None}}}
        elif rsutil.deadline_of(rs) is not None or rsutil.spec_replicas(rs) == 0:
            return
        else:
            deadline = rsutil.stamp(ctx.now + timedelta(seconds=delay))
            patch = {"metadata": {"annotations": {rsutil.SCALE_DOWN_DEADLINE: deadline}}}
        try:
            ctx.replicasets[name] = await self.client.patch(
                kinds.REPLICASET, rs["metadata"]["name"], patch, namespace=ctx.namespace
            )
        except kube_errors.ApiError as exc:
            log.warning("unable to set the scale-down deadline of %s: %s", rs["metadata"]["name"], exc)

    async def _scale_template(
        self, ctx: _Context, template: Mapping[str, Any], entry: Obj, desired: int
    ) -> None:
        name = str(template["name"])
        rs = ctx.replicasets[name]
        if rsutil.spec_replicas(rs) == desired:
            return
        target = desired
        if desired == 0:
            deadline = rsutil.deadline_of(rs)
            if deadline is not None and deadline > ctx.now:
                ctx.wake_in((deadline - ctx.now).total_seconds())
                target = template_replicas(template)
        else:
            # The cache may not have our last scale yet: act on the ReplicaSet as it is now.
            rs = await self.client.get(kinds.REPLICASET, rs["metadata"]["name"], ctx.namespace)
            ctx.replicasets[name] = rs
        before = rsutil.spec_replicas(rs)
        if before == target:
            return
        verb = "up" if target > before else "down"
        patch: Obj = {"spec": {"replicas": target}}
        if target > 0 and rsutil.deadline_of(rs) is not None:
            patch["metadata"] = {"annotations": {rsutil.SCALE_DOWN_DEADLINE: None}}
        rs_name = rs["metadata"]["name"]
        try:
            ctx.replicasets[name] = await self.client.patch(
                kinds.REPLICASET, rs_name, patch, namespace=ctx.namespace
            )
        except kube_errors.ApiError as exc:
            if exc.conflict:
                ctx.wake_in(1.0)
                return
            ctx.event("Warning", "ReplicaSetUpdateError", f"Failed to scale {rs_name} {verb}: {exc.message}")
            entry["status"] = ERROR
            entry["message"] = (
                f"Unable to scale ReplicaSet for template '{name}' to desired replica count '{target}': "
                f"{exc.message}"
            )
            return
        ctx.event(
            "Normal", "ScalingReplicaSet", f"Scaled {verb} ReplicaSet {rs_name} from {before} to {target}"
        )
        entry["lastTransitionTime"] = rsutil.stamp(ctx.now)

    # ------------------------------------------------------------------------------------ services

    async def _template_service(
        self, ctx: _Context, template: Mapping[str, Any], entry: Obj, rs: Obj, desired: int
    ) -> None:
        name = str(template["name"])
        if template.get("service") is None:
            await self._delete_service(ctx, name, entry)
        elif desired != 0:
            await self._ensure_service(ctx, template, entry, rs)
        elif rsutil.available(rs) == 0:
            await self._delete_service(ctx, name, entry)

    async def _ensure_service(self, ctx: _Context, template: Mapping[str, Any], entry: Obj, rs: Obj) -> None:
        name = str(template["name"])
        pod_hash = rsutil.hash_of(rs)
        svc = ctx.services.get(name)
        if svc is None:
            ports = service_ports(rs)
            if not ports:
                return
            svc_name = str((template.get("service") or {}).get("name") or rs["metadata"]["name"])
            body: Obj = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": svc_name,
                    "namespace": ctx.namespace,
                    "annotations": {NAME_ANNOTATION: ctx.name, TEMPLATE_ANNOTATION: name},
                    "ownerReferences": [_owner_ref(ctx.ex, "Experiment")],
                },
                "spec": {"selector": dict((rs.get("metadata") or {}).get("labels") or {}), "ports": ports},
            }
            try:
                svc = await self._create_service(ctx, body, name)
            except kube_errors.ApiError as exc:
                entry["status"] = ERROR
                entry["message"] = f"Failed to create Service {svc_name} for template '{name}': {exc.message}"
                return
            except ExperimentError as exc:
                entry["status"] = ERROR
                entry["message"] = f"Failed to create Service {svc_name} for template '{name}': {exc}"
                return
            ctx.services[name] = svc
        entry["serviceName"] = svc["metadata"]["name"]
        entry["podTemplateHash"] = pod_hash

    async def _create_service(self, ctx: _Context, body: Obj, template_name: str) -> Obj:
        try:
            return await self.client.create(kinds.SERVICE, body)
        except kube_errors.ApiError as exc:
            if not exc.already_exists:
                raise
        svc_name = body["metadata"]["name"]
        existing = await self.client.get(kinds.SERVICE, svc_name, ctx.namespace)
        if template_name not in owned_by_template(ctx.ex, [existing], "Services"):
            raise ExperimentError(
                f"service {svc_name} already exists and is not owned by experiment template {template_name}"
            )
        return existing

    async def _delete_service(self, ctx: _Context, name: str, entry: Obj) -> None:
        svc = ctx.services.get(name)
        if svc is None:
            return
        try:
            await self.client.delete(kinds.SERVICE, svc["metadata"]["name"], ctx.namespace)
        except kube_errors.ApiError as exc:
            if not exc.not_found:
                entry["status"] = ERROR
                entry["message"] = f"Failed to delete Service for template '{name}': {exc.message}"
                return
        del ctx.services[name]
        entry.pop("serviceName", None)
        entry.pop("podTemplateHash", None)

    # ------------------------------------------------------------------------------------ analyses

    async def _analysis(self, ctx: _Context, analysis: Mapping[str, Any]) -> None:
        name = str(analysis.get("name"))
        previous = run_status(ctx.status, name) or {"name": name}
        entry: Obj = {
            "name": name,
            "analysisRun": str(previous.get("analysisRun") or ""),
            "phase": str(previous.get("phase") or ""),
        }
        if previous.get("message"):
            entry["message"] = previous["message"]
        if not _status(ctx.ex).get("availableAt"):
            problem = await self._verify_template(ctx, analysis)
            if problem is not None:
                entry.update(phase=metrics.ERROR, message=problem)
        elif not entry["analysisRun"]:
            if not ctx.terminating:
                await self._start_run(ctx, analysis, entry)
        elif previous.get("phase") not in metrics.COMPLETED:
            await self._follow_run(ctx, analysis, entry)
        if previous.get("phase", "") != entry["phase"] and entry["phase"]:
            message = (
                f"AnalysisRun '{name}' transitioned from {previous.get('phase', '')} -> {entry['phase']}"
            )
            if entry.get("message"):
                message += f": {entry['message']}"
            bad = entry["phase"] in (metrics.FAILED, metrics.ERROR, metrics.INCONCLUSIVE)
            ctx.event("Warning" if bad else "Normal", f"AnalysisRun{entry['phase']}", message)
            rollout = rollout_owner(ctx.ex)
            if rollout is not None:  # so that a Rollout's notifications see its experiment's runs
                ctx.event("Warning", f"AnalysisRun{entry['phase']}", message, about=rollout)
        _set_entry(ctx.status, "analysisRuns", entry)

    async def _verify_template(self, ctx: _Context, analysis: Mapping[str, Any]) -> str | None:
        """Before the experiment is available only the template's existence is checked."""
        cluster = bool(analysis.get("clusterScope"))
        kind = crds.CLUSTERANALYSISTEMPLATE if cluster else crds.ANALYSISTEMPLATE
        template_name = str(analysis.get("templateName") or "")
        try:
            await self.client.get(kind, template_name, None if cluster else ctx.namespace)
        except kube_errors.ApiError as exc:
            if not exc.not_found:
                raise
            what = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
            return (
                f"{what} verification failed for analysis '{analysis.get('name')}': "
                f'{kind.plural[:-1]}.{kind.group} "{template_name}" not found'
            )
        return None

    async def _start_run(self, ctx: _Context, analysis: Mapping[str, Any], entry: Obj) -> None:
        try:
            body = await self._run_body(ctx, analysis)
            run = await analysisruns.create_owned(self.client, body)
        except (templates.AnalysisSpecError, kube_errors.ApiError) as exc:
            text = exc.message if isinstance(exc, kube_errors.ApiError) else str(exc)
            entry.update(
                phase=metrics.ERROR,
                message=f"Failed to create AnalysisRun for analysis '{analysis.get('name')}': {text}",
            )
            return
        entry.update(phase=metrics.PENDING, analysisRun=run["metadata"]["name"])
        entry.pop("message", None)

    async def _run_body(self, ctx: _Context, analysis: Mapping[str, Any]) -> Obj:
        variables = experiment_variables(ctx.ex, ctx.replicasets)
        args: list[Obj] = []
        for arg in analysis.get("args") or []:
            resolved: Obj = {"name": arg.get("name")}
            if arg.get("value") is not None:
                resolved["value"] = templates.substitute(str(arg["value"]), variables)
            args.append(resolved)
        ref = {
            "templateName": analysis.get("templateName"),
            "clusterScope": bool(analysis.get("clusterScope")),
        }
        found = await templates.fetch(self.client, ctx.namespace, [ref])
        spec = _spec(ctx.ex)
        run_spec = templates.run_spec(
            found,
            args=args,
            dry_run=spec.get("dryRun") or [],
            measurement_retention=spec.get("measurementRetention") or [],
        )
        metadata = spec.get("analysisRunMetadata") or {}
        labels: dict[str, str] = {}
        instance = ((ctx.ex.get("metadata") or {}).get("labels") or {}).get(INSTANCE_ID_LABEL)
        if instance:
            labels[INSTANCE_ID_LABEL] = str(instance)
        labels.update({str(k): str(v) for k, v in (metadata.get("labels") or {}).items()})
        annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
        body_meta: Obj = {
            "name": f"{ctx.name}-{analysis.get('name')}",
            "namespace": ctx.namespace,
            "ownerReferences": [_owner_ref(ctx.ex, "Experiment")],
        }
        if labels:
            body_meta["labels"] = labels
        if annotations:
            body_meta["annotations"] = annotations
        return {
            "apiVersion": f"{crds.GROUP}/{crds.VERSION}",
            "kind": "AnalysisRun",
            "metadata": body_meta,
            "spec": run_spec,
        }

    async def _follow_run(self, ctx: _Context, analysis: Mapping[str, Any], entry: Obj) -> None:
        run = ctx.runs.get(entry["analysisRun"])
        if run is None:  # not in the cache (yet): ask the API
            try:
                run = await self.client.get(crds.ANALYSISRUN, entry["analysisRun"], ctx.namespace)
            except kube_errors.ApiError as exc:
                if not exc.not_found:
                    raise
                entry.update(
                    phase=metrics.ERROR,
                    message=f'analysisruns.argoproj.io "{entry["analysisRun"]}" not found',
                )
                return
        if ctx.terminating:
            if not analysisruns.completed(run) and not (run.get("spec") or {}).get("terminate"):
                ctx.event(
                    "Normal",
                    "AnalysisRunTerminating",
                    f"Terminating {analysis.get('name')} ({run['metadata']['name']})",
                )
                try:
                    await analysisruns.cancel(self.client, run)
                except kube_errors.ApiError as exc:
                    entry.update(phase=metrics.ERROR, message=exc.message)
                return
            if not analysisruns.completed(run):
                return
        run_state = run.get("status") or {}
        entry["phase"] = str(run_state.get("phase") or metrics.PENDING)  # not yet picked up: still pending
        if run_state.get("message"):
            entry["message"] = run_state["message"]
        else:
            entry.pop("message", None)

    # ------------------------------------------------------------------------------------ phase

    def _phase(self, ctx: _Context) -> None:
        status = ctx.status
        phase = status.get("phase") or ""
        if phase == "":
            status["phase"] = PENDING
            return
        if phase not in (PENDING, RUNNING):
            return
        templates_phase, templates_message = self._assess_templates(ctx)
        runs_phase, runs_message = self._assess_runs(ctx)
        if templates_phase == RUNNING and not status.get("availableAt"):
            status["availableAt"] = rsutil.stamp(ctx.now)
        if templates_phase in metrics.COMPLETED:
            runs_decide = runs_phase in metrics.COMPLETED or has_required_runs(ctx.ex)
            if templates_phase == SUCCESSFUL and runs_decide:
                phase, message = runs_phase, runs_message
            else:
                phase, message = templates_phase, templates_message
        elif self._runs_decide_early(ctx, runs_phase):
            phase, message = runs_phase, runs_message
        else:
            phase, message = templates_phase, templates_message
        status["phase"] = phase
        if message:
            status["message"] = message
        else:
            status.pop("message", None)

    def _runs_decide_early(self, ctx: _Context, runs_phase: str) -> bool:
        """While the templates still run: a run that failed, or required runs that all succeeded, end it."""
        failed = runs_phase in metrics.COMPLETED and runs_phase != SUCCESSFUL
        return failed or required_runs_successful(ctx.ex, ctx.status)

    def _assess_templates(self, ctx: _Context) -> tuple[str, str]:
        """The worst template status, as an experiment phase, with its message."""
        worst, message = SUCCESSFUL, ""
        for template in _spec(ctx.ex).get("templates") or []:
            entry = template_status(ctx.status, str(template.get("name")))
            if entry is None:
                if _template_worse(worst, PROGRESSING):
                    worst = PROGRESSING
            elif _template_worse(worst, str(entry.get("status") or "")):
                worst, message = str(entry["status"]), str(entry.get("message") or "")
        phases = {PROGRESSING: PENDING, FAILED: FAILED, ERROR: ERROR, SUCCESSFUL: SUCCESSFUL}
        return phases.get(worst, RUNNING), message

    def _assess_runs(self, ctx: _Context) -> tuple[str, str]:
        """The worst run phase (Successful without analyses), with its message."""
        worst, message = SUCCESSFUL, ""
        for analysis in _spec(ctx.ex).get("analyses") or []:
            entry = run_status(ctx.status, str(analysis.get("name"))) or {}
            phase = str(entry.get("phase") or "")
            if metrics.is_worse(worst, phase):
                worst, message = phase, str(entry.get("message") or "")
        if required_runs_successful(ctx.ex, ctx.status) and metrics.is_worse(worst, RUNNING):
            return SUCCESSFUL, REQUIRED_COMPLETED_MESSAGE
        return (RUNNING if worst == PENDING else worst), message

    def _conditions(self, ctx: _Context) -> None:
        stamp = rsutil.stamp(ctx.now)
        status = ctx.status
        found = status.get("conditions") or []
        if verify_spec(ctx.ex) is None:
            found = conditions.remove(found, conditions.INVALID_SPEC)
        quoted = _quote(ctx.name)
        if status.get("phase") == SUCCESSFUL:
            cond = conditions.new_condition(
                conditions.PROGRESSING,
                conditions.FALSE,
                "ExperimentCompleted",
                f"Experiment {quoted} has successfully ran and completed.",
                now=stamp,
            )
            found, _ = conditions.update_condition(found, cond)
        elif _progressed(ctx.ex, status):
            cond = conditions.new_condition(
                conditions.PROGRESSING,
                conditions.TRUE,
                conditions.RS_UPDATED,
                f"Experiment {quoted} is progressing.",
                now=stamp,
            )
            current = conditions.find(_status(ctx.ex).get("conditions"), conditions.PROGRESSING)
            if current is not None and current.get("status") == conditions.TRUE:
                cond["lastTransitionTime"] = current.get("lastTransitionTime", stamp)
            found = [*conditions.remove(found, conditions.PROGRESSING), cond]
        elif _status(ctx.ex).get("availableAt") and not passed_duration(ctx.ex, ctx.now)[0]:
            cond = conditions.new_condition(
                conditions.PROGRESSING,
                conditions.TRUE,
                conditions.NEW_RS_AVAILABLE,
                f"Experiment {quoted} is running.",
                now=stamp,
            )
            found, _ = conditions.update_condition(found, cond)
        if found:
            status["conditions"] = found
        else:
            status.pop("conditions", None)

    def _requeue(self, ctx: _Context) -> None:
        """When the duration ends, or a template that is still coming up reaches its progress deadline."""
        view = {**ctx.ex, "status": ctx.status}
        if is_terminating(view):
            return
        if ctx.status.get("availableAt") and duration_seconds(view) is not None:
            passed, remaining = passed_duration(view, ctx.now)
            if not passed:
                ctx.wake_in(remaining)
        deadline = defaults.progress_deadline(view)
        for template in _spec(view).get("templates") or []:
            entry = template_status(ctx.status, str(template.get("name")))
            if entry is None or entry.get("status") not in (PROGRESSING, RUNNING):
                continue
            since = _parse_time(entry.get("lastTransitionTime"))
            if since is None or entry.get("availableReplicas") == desired_replicas(view, template):
                continue
            ctx.wake_in((since + timedelta(seconds=deadline) - ctx.now).total_seconds())

    # ------------------------------------------------------------------------------------ writing

    async def _write(
        self, ex: Obj, original: Obj, status: Obj, events: list[tuple[Obj, str, str, str]]
    ) -> None:
        patch = mergepatch.create(original, status)
        written: Obj | None = None
        if patch:
            try:
                # Experiments have no status subresource (as upstream's CRD): status is patched in place.
                written = await self.client.patch(
                    crds.EXPERIMENT,
                    ex["metadata"]["name"],
                    {"status": patch},
                    namespace=ex["metadata"]["namespace"],
                )
            except kube_errors.ApiError as exc:
                if not exc.not_found:
                    raise
                return
            self.writes.wrote(written)
        if self.record is None:
            return
        for about, kind, reason, message in events:
            self.record(about, kind, reason, message)
        before, after = original.get("phase") or "", status.get("phase") or ""
        if written is not None and before != after:
            bad = after in (metrics.ERROR, metrics.FAILED, metrics.INCONCLUSIVE)
            self.record(
                written,
                "Warning" if bad else "Normal",
                f"Experiment{after}",
                f"Experiment transitioned from {before} -> {after}",
            )


def _quote(text: str) -> str:
    """Go's ``%q`` for the names in condition messages."""
    return json.dumps(text, ensure_ascii=False)


def _ordered_template_status(entry: Obj) -> Obj:
    """A template status in upstream's field order, without empty optional fields."""
    keys = (
        "name",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "collisionCount",
        "status",
        "message",
        "lastTransitionTime",
        "serviceName",
        "podTemplateHash",
    )
    out = {k: entry[k] for k in keys if entry.get(k) not in (None, "")}
    for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
        out.setdefault(k, 0)
    return out


def _same_template(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether an existing ReplicaSet runs the pod template we were about to create it with."""
    return rsutil.without_hash((existing.get("spec") or {}).get("template") or {}) == rsutil.without_hash(
        wanted["spec"]["template"]
    )


def _progressed(ex: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Upstream's ``ExperimentProgressing``: a template appeared, or a template's counts moved."""
    before = {e.get("name"): e for e in _status(ex).get("templateStatuses") or []}
    after = {e.get("name"): e for e in status.get("templateStatuses") or []}
    if len(before) < len(after):
        return True
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    for name, old in before.items():
        new = after.get(name)
        if new is not None and any(old.get(k, 0) != new.get(k, 0) for k in counts):
            return True
    return False


def experiment_variables(
    ex: Mapping[str, Any], replicasets: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """What analysis args of an experiment may mention: ``templates.<t>.podTemplateHash``,
    ``templates.<t>.replicaset.name``, ``experiment.availableAt`` and ``experiment.finishedAt``."""
    variables: dict[str, str] = {}
    available_at = _parse_time(_status(ex).get("availableAt"))
    if available_at is not None:
        variables["experiment.availableAt"] = rsutil.stamp(available_at)
        seconds = duration_seconds(ex)
        if seconds is not None:
            variables["experiment.finishedAt"] = rsutil.stamp(available_at + timedelta(seconds=seconds))
    for template in _spec(ex).get("templates") or []:
        rs = replicasets.get(str(template.get("name")))
        if rs is not None:
            variables[f"templates.{template['name']}.podTemplateHash"] = rsutil.hash_of(rs)
            variables[f"templates.{template['name']}.replicaset.name"] = str(rs["metadata"]["name"])
    return variables


# ------------------------------------------------------------------------------------ Rollout step


def experiment_for_step(
    ro: Mapping[str, Any],
    step: Mapping[str, Any],
    *,
    step_index: int,
    new_rs: Mapping[str, Any],
    stable_rs: Mapping[str, Any] | None,
) -> Obj:
    """The Experiment a Rollout's canary ``experiment`` step creates (upstream's
    ``GetExperimentFromTemplate``). ``step`` is the step (``{experiment: {...}}``) or its ``experiment``
    part. Raises :class:`ExperimentSpecError` for a ``specRef`` other than ``stable``/``canary`` (or a
    missing stable ReplicaSet) and for an analysis arg that cannot be resolved."""
    body: Mapping[str, Any] = (step.get("experiment") or {}) if "experiment" in step else step
    meta = ro["metadata"]
    ro_spec = ro.get("spec") or {}
    pod_hash = rsutil.hash_of(new_rs) or hashing.pod_template_hash(
        ro_spec.get("template") or {}, (ro.get("status") or {}).get("collisionCount")
    )
    revision = str((meta.get("annotations") or {}).get(rsutil.REVISION, ""))
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    labels[rsutil.HASH_LABEL] = pod_hash
    spec: Obj = {}
    for key in ("duration", "dryRun", "measurementRetention", "analysisRunMetadata", "scaleDownDelaySeconds"):
        if body.get(key) is not None:
            spec[key] = copy.deepcopy(body[key])
    if ro_spec.get("progressDeadlineSeconds") is not None:
        spec["progressDeadlineSeconds"] = ro_spec["progressDeadlineSeconds"]
    spec["templates"] = [_step_template(t, new_rs, stable_rs) for t in body.get("templates") or []]
    analyses = [_step_analysis(a, ro, new_rs, stable_rs) for a in body.get("analyses") or []]
    if analyses:
        spec["analyses"] = analyses
    return {
        "apiVersion": f"{crds.GROUP}/{crds.VERSION}",
        "kind": "Experiment",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}-{revision}-{step_index}",
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {rsutil.REVISION: revision},
            "ownerReferences": [_owner_ref(ro, "Rollout")],
        },
        "spec": spec,
    }


def _step_template(
    step_template: Mapping[str, Any], new_rs: Mapping[str, Any], stable_rs: Mapping[str, Any] | None
) -> Obj:
    ref = step_template.get("specRef")
    if ref == "canary":
        source = new_rs
    elif ref == "stable" and stable_rs is not None:
        source = stable_rs
    elif ref == "stable":
        raise ExperimentSpecError(
            "Cannot create an experiment from specRef stable: there is no stable ReplicaSet"
        )
    else:
        raise ExperimentSpecError("Invalid template step SpecRef: must be canary or stable")
    rs_spec = source.get("spec") or {}
    template: Obj = {"name": step_template.get("name")}
    if step_template.get("replicas") is not None:
        template["replicas"] = step_template["replicas"]
    if rs_spec.get("minReadySeconds"):
        template["minReadySeconds"] = rs_spec["minReadySeconds"]
    selector = copy.deepcopy(dict(step_template.get("selector") or rs_spec.get("selector") or {}))
    pod_template = copy.deepcopy(dict(rs_spec.get("template") or {}))
    extra = step_template.get("metadata") or {}
    if extra.get("labels"):
        labels = pod_template.setdefault("metadata", {}).setdefault("labels", {})
        match = selector.setdefault("matchLabels", {})
        for key, value in extra["labels"].items():
            labels[key] = value
            match[key] = value
    if extra.get("annotations"):
        annotations = pod_template.setdefault("metadata", {}).setdefault("annotations", {})
        annotations.update(extra["annotations"])
    template["selector"] = selector
    template["template"] = pod_template
    service = step_template.get("service")
    if step_template.get("weight") is not None or service is not None:
        template["service"] = {"name": service["name"]} if service and service.get("name") else {}
    return template


def _step_analysis(
    analysis: Mapping[str, Any],
    ro: Mapping[str, Any],
    new_rs: Mapping[str, Any],
    stable_rs: Mapping[str, Any] | None,
) -> Obj:
    try:
        args = analysisruns.build_args(analysis.get("args") or [], ro, new_rs, stable_rs)
    except templates.AnalysisSpecError as exc:
        raise ExperimentSpecError(str(exc)) from exc
    ref: Obj = {"name": analysis.get("name"), "templateName": analysis.get("templateName")}
    if analysis.get("clusterScope") is not None:
        ref["clusterScope"] = analysis["clusterScope"]
    if args:
        ref["args"] = args
    if analysis.get("requiredForCompletion"):
        ref["requiredForCompletion"] = True
    return ref
