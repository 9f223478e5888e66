"""The ReplicaSet controller: keeps ``spec.replicas`` pods from the template, and reports their state.

Deployments roll out by resizing ReplicaSets, so everything a rollout shows (``kubectl get rs``, the
availability the Deployment controller waits for) comes from here. It behaves like upstream's
``pkg/controller/replicaset``: pods are claimed by controller reference (orphans whose labels match are
adopted, owned pods whose labels stop matching are released); missing pods are created in slow-start
batches named ``<rs>-xxxxx``; surplus pods are deleted unscheduled, Pending and not-ready first, newest
last-ready first; and expectations remember creations and deletions that the pod informer has not shown
yet, so a stale cache never makes it create or delete twice. Status counts replicas, fully labelled, ready
and available pods (Ready for ``minReadySeconds``; the key is looked at again when the next pod becomes
available) and carries a ``ReplicaFailure`` condition while pods cannot be created or deleted.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.informers import object_key
from tugboat.kube.selectors import LabelSelector
from tugboat.localcluster.controllers import podtemplates as pt
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.owning import CONFLICT_RETRY, OwningController

log = logging.getLogger(__name__)

COMPONENT = "replicaset-controller"
BURST_REPLICAS = 500  # at most this many creations or deletions per sync (upstream's burstReplicas)
EXPECTATIONS_TTL = 300.0  # seconds after which unobserved expectations are given up (as upstream)

Obj = dict[str, Any]


# --------------------------------------------------------------------------------------- expectations


@dataclass
class _Expected:
    adds: int = 0
    deletions: set[str] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """Pod creations and deletions a controller made but its informer has not shown yet, per owner key.

    A sync only creates or deletes pods once everything it expected before has been seen (or has been
    waited for longer than :data:`EXPECTATIONS_TTL`), as upstream's ``UIDTrackingControllerExpectations``.
    """

    def __init__(self, *, ttl: float = EXPECTATIONS_TTL) -> None:
        self.ttl = ttl
        self._items: dict[str, _Expected] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expected(adds=count)

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._items[key] = _Expected(deletions=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.deletions.discard(pod_key)

    def satisfied(self, key: str) -> bool:
        item = self._items.get(key)
        if item is None:
            return True
        if item.adds <= 0 and not item.deletions:
            return True
        return time.monotonic() - item.since > self.ttl

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


# ------------------------------------------------------------------------------------ pod ordering


def _ready_since(pod: Obj) -> float:
    cond = pt.pod_condition(pod, "Ready")
    moment = pt.parse_time(cond.get("lastTransitionTime")) if cond else None
    return moment.timestamp() if moment else 0.0


def _max_restarts(pod: Obj) -> int:
    counts = [pt.int_field(c, "restartCount") for c in pt.status(pod).get("containerStatuses") or []]
    return max(counts, default=0)


def _deletion_cost(pod: Obj) -> int:
    try:
        return int(pt.annotations_of(pod).get(pt.POD_DELETION_COST, "0"))
    except ValueError:
        return 0


_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_order(pod: Obj, rank: int) -> tuple[Any, ...]:
    """Sort key putting the pods to delete first (upstream's ``ActivePodsWithRanks``).

    Unscheduled before scheduled, Pending before Unknown before Running, not ready before ready, lower
    ``pod-deletion-cost`` first, pods doubled up on a node first, then the most recently ready, the most
    restarted and the newest.
    """
    created = pt.parse_time(pt.meta(pod).get("creationTimestamp"))
    ready = pt.pod_ready(pod)
    return (
        1 if pt.spec(pod).get("nodeName") else 0,
        _PHASE_ORDER.get(str(pt.status(pod).get("phase") or "Pending"), 0),
        1 if ready else 0,
        _deletion_cost(pod),
        -rank,
        -_ready_since(pod) if ready else 0.0,
        -_max_restarts(pod),
        -(created.timestamp() if created else float("inf")),
        pt.name(pod),
    )


def pods_to_delete(pods: list[Obj], related: list[Obj], count: int) -> list[Obj]:
    """The ``count`` pods to delete; ``related`` pods (of sibling ReplicaSets) weigh on node ranks."""
    if count >= len(pods):
        return list(pods)
    per_node: dict[str, int] = {}
    for pod in related:
        node = str(pt.spec(pod).get("nodeName") or "")
        if node:
            per_node[node] = per_node.get(node, 0) + 1
    ranked = sorted(pods, key=lambda p: deletion_order(p, per_node.get(str(pt.spec(p).get("nodeName")), 0)))
    return ranked[:count]


# -------------------------------------------------------------------------------------------- status


def _fully_labelled(pod: Obj, template_labels: dict[str, str]) -> bool:
    pod_labels = pt.labels_of(pod)
    return all(pod_labels.get(k) == v for k, v in template_labels.items())


def calculate_status(
    rs: Obj, pods: list[Obj], failure: tuple[str, str] | None, moment: datetime
) -> tuple[Obj, float | None]:
    """The status ``rs`` should have for its claimed ``pods``, and when a pod next becomes available.

    ``failure`` is the (reason, message) of a failed create or delete, which sets ``ReplicaFailure``.
    Fields that are zero are left out, as the API's JSON encoding omits them.
    """
    template_labels = pt.labels_of(pt.spec(rs).get("template") or {})
    min_ready = pt.int_field(pt.spec(rs), "minReadySeconds")
    ready = available = 0
    next_available: float | None = None
    for pod in pods:
        wait = pt.available_in(pod, min_ready, moment)
        if wait is None:
            continue
        ready += 1
        if wait == 0:
            available += 1
        elif next_available is None or wait < next_available:
            next_available = wait
    current = pt.status(rs)
    conditions = [c for c in current.get("conditions") or [] if isinstance(c, dict)]
    has_failure = any(c.get("type") == "ReplicaFailure" for c in conditions)
    if failure is not None and not has_failure:
        reason, message = failure
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": pt.format_time(moment),
                "reason": reason,
                "message": message,
            }
        )
    elif failure is None and has_failure:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    new: Obj = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if _fully_labelled(p, template_labels)),
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": pt.int_field(pt.meta(rs), "generation"),
        "conditions": conditions,
    }
    new = {k: v for k, v in new.items() if k == "replicas" or v}
    return new, next_available


def status_patch(old: Obj, new: Obj) -> Obj:
    """A merge patch turning status ``old`` into ``new`` exactly (removed fields become ``null``)."""
    return {key: new.get(key) for key in {**old, **new}}


# ---------------------------------------------------------------------------------------- controller


class _Failure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ReplicaSetController(OwningController):
    """Reconciles every ReplicaSet of the cluster."""

    name = "replicaset"
    component = COMPONENT

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.replicasets = ctx.informers.informer(kinds.REPLICASET)
        self.pods = ctx.informers.informer(kinds.POD)
        pt.add_owner_indexes(self.pods)
        pt.add_owner_indexes(self.replicasets, by_namespace=True)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    # ---------------------------------------------------------------------------------- event handlers

    def _on_replicaset(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            self.expectations.forget(object_key(old))
            return
        if old is not None and pt.uid(old) != pt.uid(new):
            self.expectations.forget(object_key(new))
        self.queue.add(object_key(new))

    def _owner_key(self, obj: Obj) -> str | None:
        return pt.cached_owner_key(self.replicasets, obj, "ReplicaSet")

    def _matching_keys(self, obj: Obj) -> list[str]:
        return pt.selecting_keys(self.replicasets.by_index(pt.NAMESPACE_INDEX, pt.namespace(obj)), obj)

    def _pod_gone(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.queue.add(key)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            self._pod_gone(old)
            return
        if old is None:
            self._pod_added(new)
            return
        if pt.meta(old).get("resourceVersion") == pt.meta(new).get("resourceVersion"):
            return
        labels_changed = pt.labels_of(old) != pt.labels_of(new)
        if pt.deleting(new):
            self._pod_gone(new)
            if labels_changed:
                self._pod_gone(old)
            return
        self._owned_changed(old, new, labels_changed=labels_changed)

    def _pod_added(self, pod: Obj) -> None:
        if pt.deleting(pod):
            self._pod_gone(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif pt.controller_ref(pod) is None:
            self._queue_adopters(pod)

    # ------------------------------------------------------------------------------------------- sync

    async def sync(self, key: str) -> float | None:
        cached = self.replicasets.cache.get(key)
        if cached is None:
            self.expectations.forget(key)
            return None
        rs = copy.deepcopy(cached)
        selector = pt.selector_of(rs)
        if selector is None:
            log.warning("replicaset %s has an invalid selector", key)
            return None
        needs_sync = self.expectations.satisfied(key)
        pods, retry = await self._claim_pods(rs, selector)
        failure: _Failure | None = None
        if needs_sync and not pt.deleting(rs):
            try:
                await self._manage_replicas(key, rs, pods)
            except _Failure as exc:
                failure = exc
        new_status, next_available = calculate_status(
            rs, pods, (failure.reason, failure.message) if failure else None, pt.now()
        )
        old_status = pt.status(rs)
        if new_status != old_status:
            await self.client.patch_status(
                kinds.REPLICASET,
                pt.name(rs),
                status_patch(old_status, new_status),
                namespace=pt.namespace(rs),
            )
        if failure is not None:
            raise RuntimeError(f"{failure.reason}: {failure.message}")
        delays = [d for d in (next_available, CONFLICT_RETRY if retry else None) if d is not None]
        return min(delays) if delays else None

    # --------------------------------------------------------------------------------------- claiming

    async def _claim_pods(self, rs: Obj, selector: LabelSelector) -> tuple[list[Obj], bool]:
        """Active pods this ReplicaSet owns after adopting and releasing; and whether to retry soon."""
        owned = self.pods.by_index(pt.CONTROLLER_INDEX, pt.uid(rs))
        orphans = [
            p
            for p in self.pods.by_index(pt.ORPHAN_INDEX, pt.namespace(rs))
            if selector.matches(pt.labels_of(p))
        ]
        claimed: list[Obj] = []
        can_adopt: bool | None = None
        retry = False
        for pod in owned + orphans:
            if not pt.pod_active(pod):
                continue
            ref = pt.controller_ref(pod)
            if ref is not None:
                if ref.get("uid") != pt.uid(rs):
                    continue
                if selector.matches(pt.labels_of(pod)):
                    claimed.append(pod)
                elif not pt.deleting(rs):
                    retry |= not await self._set_owner(pod, rs, adopt=False)
                continue
            if pt.deleting(rs) or selector.empty:
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(rs)
            if not can_adopt:
                break
            if await self._set_owner(pod, rs, adopt=True):
                claimed.append(pod)
            else:
                retry = True
        return claimed, retry

    async def _can_adopt(self, rs: Obj) -> bool:
        """Re-read the ReplicaSet: adopting for one that is gone or being deleted would leak pods."""
        fresh = await self.client.get_or_none(kinds.REPLICASET, pt.name(rs), pt.namespace(rs))
        return fresh is not None and pt.uid(fresh) == pt.uid(rs) and not pt.deleting(fresh)

    async def _set_owner(self, pod: Obj, rs: Obj, *, adopt: bool) -> bool:
        """Adopt (add our controller reference) or release (remove it) ``pod``; False on a lost race."""
        refs = [r for r in pt.meta(pod).get("ownerReferences") or [] if r.get("uid") != pt.uid(rs)]
        if adopt:
            refs.append(pt.new_controller_ref(rs))
        patch = {
            "metadata": {
                "resourceVersion": pt.meta(pod).get("resourceVersion"),
                "ownerReferences": refs or None,
            }
        }
        try:
            await self.client.patch(kinds.POD, pt.name(pod), patch, namespace=pt.namespace(pod))
        except errors.ApiError as exc:
            if exc.conflict or exc.not_found or exc.code == 422:
                return False
            raise
        return True

    # ---------------------------------------------------------------------------------------- scaling

    async def _manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        diff = len(pods) - pt.replicas(rs)
        if diff < 0:
            await self._create_pods(key, rs, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            await self._delete_pods(key, rs, pods, min(diff, BURST_REPLICAS))

    async def _create_pods(self, key: str, rs: Obj, count: int) -> None:
        """Create ``count`` pods in slow-start batches (1, 2, 4, ...); stop at the first failing batch."""
        self.expectations.expect_creations(key, count)
        remaining, batch = count, 1
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(
                *(self._create_pod(rs) for _ in range(size)), return_exceptions=True
            )
            remaining -= size
            failures = [r for r in results if isinstance(r, BaseException)]
            for _ in failures:
                self.expectations.creation_observed(key)
            if failures:
                for _ in range(remaining):
                    self.expectations.creation_observed(key)
                first = failures[0]
                if isinstance(first, errors.ApiError):
                    if pt.namespace_terminating(first):
                        return  # everything in it is about to be deleted anyway
                    raise _Failure("FailedCreate", first.message)
                raise first
            batch *= 2

    async def _create_pod(self, rs: Obj) -> None:
        template = pt.spec(rs).get("template") or {}
        template_meta = template.get("metadata") or {}
        pod_meta: Obj = {
            "generateName": f"{pt.name(rs)}-",
            "namespace": pt.namespace(rs),
            "ownerReferences": [pt.new_controller_ref(rs)],
        }
        for key in ("labels", "annotations", "finalizers"):
            if template_meta.get(key):
                pod_meta[key] = copy.deepcopy(template_meta[key])
        pod = {"metadata": pod_meta, "spec": copy.deepcopy(template.get("spec") or {})}
        try:
            created = await self.client.create(kinds.POD, pod)
        except errors.ApiError as exc:
            if not pt.namespace_terminating(exc):
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {pt.name(created)}")

    async def _delete_pods(self, key: str, rs: Obj, pods: list[Obj], count: int) -> None:
        victims = pods_to_delete(pods, self._related_pods(rs, pods), count)
        self.expectations.expect_deletions(key, [object_key(p) for p in victims])
        results = await asyncio.gather(
            *(self._delete_pod(key, rs, p) for p in victims), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = failures[0]
            if isinstance(first, errors.ApiError):
                raise _Failure("FailedDelete", first.message)
            raise first

    async def _delete_pod(self, key: str, rs: Obj, pod: Obj) -> None:
        try:
            await self.client.delete(kinds.POD, pt.name(pod), pt.namespace(pod), missing_ok=False)
        except errors.ApiError as exc:
            self.expectations.deletion_observed(key, object_key(pod))
            if exc.not_found:
                return
            self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
            raise
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pt.name(pod)}")

    def _related_pods(self, rs: Obj, pods: list[Obj]) -> list[Obj]:
        """Active pods of this ReplicaSet and of its siblings (same controller), to rank nodes by."""
        owner = pt.controller_ref(rs)
        if owner is None:
            return pods
        related: list[Obj] = []
        for sibling in self.replicasets.by_index(pt.CONTROLLER_INDEX, str(owner.get("uid"))):
            related.extend(
                p for p in self.pods.by_index(pt.CONTROLLER_INDEX, pt.uid(sibling)) if pt.pod_active(p)
            )
        return related
