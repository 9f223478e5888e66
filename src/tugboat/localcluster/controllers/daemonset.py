"""The DaemonSet controller: one pod on every node that fits.

Like kube-controller-manager's ``daemonset`` controller of Kubernetes 1.32, so that ``kubectl rollout
status ds/…``, ``get`` and ``describe`` read right:

* a node should run the daemon pod when the template's ``nodeSelector`` and required node affinity match
  it and its ``NoSchedule``/``NoExecute`` taints are tolerated (the DaemonSet tolerations upstream adds
  count too); a pod keeps running on a node as long as the ``NoExecute`` taints are tolerated;
* pods are created with node affinity ``matchFields metadata.name In [node]`` (the scheduler binds them)
  and labelled ``controller-revision-hash`` with the template's hash; failed pods are deleted (with a
  per-node back-off) and replaced; extra pods on a node and pods on nodes that no longer fit are deleted;
* ``RollingUpdate`` with ``maxUnavailable`` (old pods deleted, unavailable ones first, within the budget)
  or ``maxSurge`` (new pod started next to the old one, which goes once the new one is available);
  ``OnDelete`` leaves old pods alone;
* status ``desiredNumberScheduled``, ``currentNumberScheduled``, ``numberMisscheduled``, ``numberReady``,
  ``numberAvailable``, ``numberUnavailable``, ``updatedNumberScheduled``, ``observedGeneration``;
  template history in ControllerRevisions.

Nodes appearing, disappearing or changing labels/taints re-sync every DaemonSet.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key, split_key
from tugboat.kube.workqueue import WorkQueue, run_workers_and_shutdown
from tugboat.localcluster.controllers import revisions as history
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.workloads import (
    CONTROLLER_INDEX,
    PendingPods,
    controller_uid,
    creation_time,
    is_available,
    is_ready,
    is_terminal,
    is_terminating,
    meta,
    next_availability,
    node_matches_pod_spec,
    now,
    owned_by,
    owner_reference,
    patch_status,
    phase,
    queue_pod_owner,
    tolerates,
)

COMPONENT = "daemonset-controller"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
FAILED_BACKOFF_BASE = 1.0
FAILED_BACKOFF_MAX = 900.0

# Tolerations every daemon pod gets (``util.AddOrUpdateDaemonPodTolerations``).
DAEMON_TOLERATIONS: tuple[dict[str, Any], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
NETWORK_UNAVAILABLE = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


# ---------------------------------------------------------------------------------------- pure helpers


def daemon_tolerations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    tolerations = [dict(t) for t in spec.get("tolerations") or []]
    extra = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        extra.append(NETWORK_UNAVAILABLE)
    for toleration in extra:
        if not any(
            t.get("key") == toleration["key"] and t.get("effect") == toleration["effect"] for t in tolerations
        ):
            tolerations.append(dict(toleration))
    return tolerations


def should_run(ds: Obj, node: Obj) -> tuple[bool, bool]:
    """(should run a daemon pod, may keep running one) on ``node`` (``NodeShouldRunDaemonPod``)."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    wanted = spec.get("nodeName")
    if wanted and wanted != meta(node).get("name"):
        return False, False
    if not node_matches_pod_spec(spec, node):
        return False, False
    tolerations = daemon_tolerations(spec)
    taints = ((node.get("spec") or {}).get("taints")) or []
    untolerated = [
        t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, t)
    ]
    if not untolerated:
        return True, True
    keep = all(t.get("effect") != "NoExecute" for t in untolerated)
    return False, keep


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: its ``nodeName``, or the one its node affinity names."""
    name = (pod.get("spec") or {}).get("nodeName")
    if name:
        return str(name)
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchFields") or []:
            values = expr.get("values") or []
            if expr.get("key") == "metadata.name" and expr.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None


def with_node_affinity(spec: dict[str, Any], node: str) -> dict[str, Any]:
    """Pin a pod spec to ``node`` (``ReplaceDaemonSetPodNodeNameNodeAffinity``)."""
    pinned = {"key": "metadata.name", "operator": "In", "values": [node]}
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required or not required.get("nodeSelectorTerms"):
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchFields": [pinned]}]
        }
        return spec
    for term in required["nodeSelectorTerms"]:
        fields = [f for f in term.get("matchFields") or [] if f.get("key") != "metadata.name"]
        term["matchFields"] = [*fields, pinned]
    return spec


def scaled(value: Any, total: int, *, default: int) -> int:
    """An int-or-percent of ``total``, rounded up (``GetScaledValueFromIntOrPercent(..., true)``)."""
    if value is None:
        return default
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.ceil(float(value[:-1]) * total / 100)
        except ValueError:
            return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def template_generation(ds: Obj) -> str | None:
    return (meta(ds).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)


def is_updated(pod: Obj, hash_value: str, generation: str | None) -> bool:
    labels = meta(pod).get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation:
        return True
    return labels.get(history.REVISION_HASH_LABEL) == hash_value


def new_pod(ds: Obj, node: str, hash_value: str) -> Obj:
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels[history.REVISION_HASH_LABEL] = hash_value
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    spec = template.get("spec") or {}
    spec["tolerations"] = daemon_tolerations(spec)
    with_node_affinity(spec, node)
    pod_meta: dict[str, Any] = {
        "generateName": f"{meta(ds).get('name')}-",
        "namespace": meta(ds).get("namespace"),
        "labels": labels,
        "ownerReferences": [owner_reference(ds, kinds.DAEMONSET)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def oldest_first(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: (creation_time(p), str(meta(p).get("name"))))


@dataclass
class _NodeState:
    node: Obj
    run: bool
    keep: bool
    pods: list[Obj] = field(default_factory=list)


@dataclass
class _Plan:
    ds: Obj
    hash: str
    generation: str | None
    nodes: dict[str, _NodeState]
    at: datetime
    min_ready: int
    delete: list[Obj] = field(default_factory=list)
    create: list[str] = field(default_factory=list)


def updated_and_old(plan: _Plan, pods: list[Obj]) -> tuple[Obj | None, Obj | None, bool]:
    """The node's one updated and one old pod (``findUpdatedPodsOnNode``); False if there are more."""
    new_pod_: Obj | None = None
    old_pod: Obj | None = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if is_updated(pod, plan.hash, plan.generation):
            if new_pod_ is not None:
                return None, None, False
            new_pod_ = pod
        else:
            if old_pod is not None:
                return None, None, False
            old_pod = pod
    return new_pod_, old_pod, True


def surge_enabled(ds: Obj) -> bool:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return False
    return scaled((strategy.get("rollingUpdate") or {}).get("maxSurge"), 1, default=0) > 0


def budgets(plan: _Plan) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for the nodes that should run a pod (``updatedDesiredNodeCounts``)."""
    desired = sum(1 for state in plan.nodes.values() if state.run)
    rolling = (((plan.ds.get("spec") or {}).get("updateStrategy")) or {}).get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge"), desired, default=0)
    unavailable = scaled(rolling.get("maxUnavailable"), desired, default=1)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def rolling_update_without_surge(plan: _Plan, max_unavailable: int) -> list[Obj]:
    """Old pods to delete now: unavailable ones, plus available ones within the unavailability budget."""
    unavailable = 0
    replace: list[Obj] = []
    candidates: list[Obj] = []
    for name in sorted(plan.nodes):
        state = plan.nodes[name]
        if not state.run and not state.pods:
            continue
        new, old, ok = updated_and_old(plan, state.pods)
        if not ok or (new is None) == (old is None):
            unavailable += 1
        elif new is not None:
            if not is_available(new, plan.min_ready, plan.at):
                unavailable += 1
        elif old is not None:
            if not is_available(old, plan.min_ready, plan.at):
                replace.append(old)
                unavailable += 1
            elif unavailable < max_unavailable:
                candidates.append(old)
    room = max(0, min(max_unavailable - unavailable, len(candidates)))
    return replace + candidates[:room]


def rolling_update_with_surge(plan: _Plan, max_surge: int) -> tuple[list[Obj], list[str]]:
    """(old pods to delete, nodes to start an updated pod on) when surging."""
    surge = 0
    delete: list[Obj] = []
    allowed: list[str] = []
    candidates: list[str] = []
    for name in sorted(plan.nodes):
        state = plan.nodes[name]
        new, old, ok = updated_and_old(plan, state.pods)
        if not ok:
            surge += 1
            continue
        if not state.run:
            delete.extend(p for p in (old, new) if p is not None)
            continue
        if old is None:
            continue
        if new is None:
            if not is_available(old, plan.min_ready, plan.at):
                allowed.append(name)
            elif surge < max_surge:
                candidates.append(name)
            continue
        if not is_available(new, plan.min_ready, plan.at):
            surge += 1
            continue
        delete.append(old)
    room = max(0, min(max_surge - surge, len(candidates)))
    return delete, allowed + candidates[:room]


class DaemonSetController:
    name = "daemonset"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder(COMPONENT)
        self.sets = ctx.informers.informer(kinds.DAEMONSET)
        self.nodes = ctx.informers.informer(kinds.NODE)
        self.pods = ctx.informers.informer(kinds.POD)
        self.pods.add_index(CONTROLLER_INDEX, controller_uid)
        self.revisions = ctx.informers.informer(kinds.CONTROLLERREVISION)
        self.revisions.add_index(CONTROLLER_INDEX, controller_uid)
        self.queue: WorkQueue[str] = WorkQueue()
        self.pending = PendingPods()
        self.failed_backoff: dict[tuple[str, str], tuple[float, float]] = {}  # (ds, node) -> (delay, since)
        self.sets.add_handler(self._on_set)
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)

    def _on_set(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        self.queue.add(object_key(obj))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        queue_pod_owner(self.queue, self.pending, kinds.DAEMONSET, old, new)

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None:
            before = (meta(old).get("labels"), (old.get("spec") or {}).get("taints"))
            after = (meta(new).get("labels"), (new.get("spec") or {}).get("taints"))
            if before == after:
                return
        for ds in self.sets.objects():
            self.queue.add(object_key(ds))

    async def run(self) -> None:
        await run_workers_and_shutdown(self.queue, self.sync, workers=2, name="daemonset")

    # --------------------------------------------------------------------------------------------- sync

    async def sync(self, key: str) -> float | None:
        namespace, name = split_key(key)
        cached = self.sets.get(name, namespace)
        if cached is None:
            self.pending.forget(key)
            return None
        ds = copy.deepcopy(cached)
        owned = owned_by(self.revisions, ds)
        current = await history.revision_or_collision(
            self.client,
            ds,
            kinds.DAEMONSET,
            owned,
            hash_label=history.REVISION_HASH_LABEL,
            annotations={
                k: v
                for k, v in (meta(ds).get("annotations") or {}).items()
                if k != "kubectl.kubernetes.io/last-applied-configuration"
            },
        )
        if current is None:
            return 0.0
        hash_value = str((meta(current).get("labels") or {}).get(history.REVISION_HASH_LABEL))
        plan = self._plan(key, ds, hash_value)
        again: list[float] = []
        if meta(ds).get("deletionTimestamp") is None:
            wrote = await self._manage(key, plan, again)
            if not wrote and self._rolling(ds):
                await self._rolling_update(key, plan)
            plan = self._plan(key, ds, hash_value)
        await self._write_status(ds, plan)
        await self._truncate_history(ds, owned, current, plan)
        wait = next_availability(
            [p for state in plan.nodes.values() for p in state.pods], plan.min_ready, now()
        )
        if wait is not None:
            again.append(wait)
        return min(again) if again else None

    @staticmethod
    def _rolling(ds: Obj) -> bool:
        return (((ds.get("spec") or {}).get("updateStrategy")) or {}).get(
            "type", "RollingUpdate"
        ) == "RollingUpdate"

    def _plan(self, key: str, ds: Obj, hash_value: str) -> _Plan:
        nodes: dict[str, _NodeState] = {}
        for node_obj in self.nodes.objects():
            run, keep = should_run(ds, node_obj)
            nodes[str(meta(node_obj).get("name"))] = _NodeState(node=node_obj, run=run, keep=keep)
        for pod in self.pending.overlay(key, owned_by(self.pods, ds)):
            node = target_node(pod)
            if is_terminal(pod) and is_terminating(pod):
                continue
            if node is None:
                continue
            state = nodes.get(node)
            if state is None:
                state = nodes[node] = _NodeState(node={"metadata": {"name": node}}, run=False, keep=False)
            state.pods.append(pod)
        return _Plan(
            ds=ds,
            hash=hash_value,
            generation=template_generation(ds),
            nodes=nodes,
            at=now(),
            min_ready=int((ds.get("spec") or {}).get("minReadySeconds") or 0),
        )

    # ---------------------------------------------------------------------------------------- manage

    async def _manage(self, key: str, plan: _Plan, again: list[float]) -> bool:
        """Pods each node should (not) have (``podsShouldBeOnNode``); True if anything was written."""
        surge = surge_enabled(plan.ds)
        for name in sorted(plan.nodes):
            state = plan.nodes[name]
            if state.run:
                self._keep_one(key, plan, name, state, surge, again)
            elif not state.keep:
                plan.delete.extend(p for p in state.pods if not is_terminating(p))
        return await self._sync_nodes(key, plan, plan.delete, plan.create)

    def _keep_one(
        self, key: str, plan: _Plan, name: str, state: _NodeState, surge: bool, again: list[float]
    ) -> None:
        running: list[Obj] = []
        for pod in state.pods:
            if is_terminating(pod):
                continue
            if phase(pod) == "Failed":
                wait = self._failed_backoff(key, name)
                if wait > 0:
                    again.append(wait)
                    continue
                self.recorder.event(
                    plan.ds,
                    "Warning",
                    "FailedDaemonPod",
                    f"Found failed daemon pod {meta(pod).get('namespace')}/{meta(pod).get('name')} on node "
                    f"{name}, will try to kill it",
                )
                plan.delete.append(pod)
            elif phase(pod) == "Succeeded":
                plan.delete.append(pod)
            else:
                running.append(pod)
        if not running:
            plan.create.append(name)
            return
        ordered = oldest_first(running)
        if not surge:
            plan.delete.extend(ordered[1:])
            return
        # Surging: at most the oldest updated pod and the oldest old one; the old one only while it is
        # Ready and the updated one is not yet available.
        keep_new = next((p for p in ordered if is_updated(p, plan.hash, plan.generation)), None)
        keep_old = next((p for p in ordered if not is_updated(p, plan.hash, plan.generation)), None)
        if (
            keep_new is not None
            and keep_old is not None
            and (not is_ready(keep_old) or is_available(keep_new, plan.min_ready, plan.at))
        ):
            keep_old = None
        plan.delete.extend(p for p in ordered if p is not keep_new and p is not keep_old)

    def _failed_backoff(self, key: str, node: str) -> float:
        """Seconds to wait before deleting another failed pod on ``node`` (1 s, doubling, at most 15 min)."""
        clock = time.monotonic()
        delay, since = self.failed_backoff.get((key, node), (0.0, 0.0))
        if delay and clock < since + delay:
            return since + delay - clock
        self.failed_backoff[(key, node)] = (
            min(FAILED_BACKOFF_MAX, (delay * 2) or FAILED_BACKOFF_BASE),
            clock,
        )
        return 0.0

    async def _rolling_update(self, key: str, plan: _Plan) -> None:
        max_surge, max_unavailable = budgets(plan)
        if max_surge == 0:
            await self._sync_nodes(key, plan, rolling_update_without_surge(plan, max_unavailable), [])
            return
        delete, create = rolling_update_with_surge(plan, max_surge)
        await self._sync_nodes(key, plan, delete, create)

    async def _sync_nodes(self, key: str, plan: _Plan, delete: list[Obj], create: list[str]) -> bool:
        ds = plan.ds
        for node in create:
            pod = new_pod(ds, node, plan.hash)
            try:
                created = await self.client.create(kinds.POD, pod)
            except errors.ApiError as exc:
                self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {exc.message}")
                raise
            self.pending.created(key, created)
            self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {meta(created).get('name')}")
        for pod in delete:
            name = str(meta(pod).get("name"))
            try:
                await self.client.delete(kinds.POD, name, meta(pod).get("namespace"))
            except errors.ApiError as exc:
                if not exc.not_found:
                    self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
                    raise
            self.pending.deleted(key, pod)
            self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return bool(create or delete)

    # ------------------------------------------------------------------------------------------ status

    def _status(self, plan: _Plan) -> dict[str, Any]:
        desired = current = misscheduled = ready = available = updated = 0
        for state in plan.nodes.values():
            pods = state.pods
            if not state.run:
                misscheduled += 1 if pods else 0
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = sorted(pods, key=lambda p: (phase(p) != "Running", creation_time(p)))[0]
            if is_ready(pod):
                ready += 1
                if is_available(pod, plan.min_ready, plan.at):
                    available += 1
            if is_updated(pod, plan.hash, plan.generation):
                updated += 1
        return {
            "observedGeneration": meta(plan.ds).get("generation"),
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available or None,
            "numberUnavailable": (desired - available) or None,
            "updatedNumberScheduled": updated or None,
        }

    async def _write_status(self, ds: Obj, plan: _Plan) -> None:
        status = self._status(plan)
        old = ds.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        await patch_status(self.client, kinds.DAEMONSET, ds, status)

    async def _truncate_history(self, ds: Obj, owned: list[Obj], current: Obj, plan: _Plan) -> None:
        hashes = {
            (meta(p).get("labels") or {}).get(history.REVISION_HASH_LABEL)
            for state in plan.nodes.values()
            for p in state.pods
        }
        live = {str(meta(current).get("name"))} | {
            str(meta(r).get("name"))
            for r in owned
            if (meta(r).get("labels") or {}).get(history.REVISION_HASH_LABEL) in hashes
        }
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10))
        await history.truncate_history(self.client, owned, live, limit)
