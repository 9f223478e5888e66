"""The StatefulSet controller: pods with stable names, created and replaced in order.

Like kube-controller-manager's ``statefulset`` controller of Kubernetes 1.32, so that ``kubectl rollout
status|history|undo sts/…``, ``get`` and ``describe`` read right:

* pods ``<set>-<ordinal>`` (from ``spec.ordinals.start``), labelled ``statefulset.kubernetes.io/pod-name``,
  ``apps.kubernetes.io/pod-index`` and ``controller-revision-hash`` (the ControllerRevision's name), with
  ``hostname``/``subdomain`` set and one PVC ``<claim>-<set>-<ordinal>`` per ``volumeClaimTemplates`` item;
* ``OrderedReady``: a pod is created only when all lower ordinals are Running and Ready (and available
  after ``minReadySeconds``), scale-down removes the highest ordinal first, one at a time; ``Parallel``
  creates and deletes without waiting;
* failed (or succeeded) pods are deleted and recreated;
* ``RollingUpdate`` replaces pods from the highest ordinal down to ``partition``, one at a time, each once
  its successor is available; ``OnDelete`` only uses the new template for pods someone deleted;
* status ``replicas``/``readyReplicas``/``availableReplicas``/``currentReplicas``/``updatedReplicas``,
  ``currentRevision``/``updateRevision`` (equal once a rolling update completed), ``collisionCount`` and
  ``observedGeneration``; revision history trimmed to ``revisionHistoryLimit``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key, split_key
from tugboat.kube.selectors import from_label_selector
from tugboat.kube.workqueue import WorkQueue, run_workers_and_shutdown
from tugboat.localcluster.controllers import revisions as history
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.workloads import (
    CONTROLLER_INDEX,
    ORPHAN_INDEX,
    PendingPods,
    controller_ref,
    controller_uid,
    is_available,
    is_running_and_ready,
    is_terminating,
    meta,
    next_availability,
    now,
    orphan_namespace,
    owned_by,
    owner_reference,
    patch_status,
    phase,
    queue_pod_owner,
    rfc3339,
)

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"

_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# ---------------------------------------------------------------------------------------- pure helpers


def parent_and_ordinal(pod: Obj) -> tuple[str, int] | None:
    match = _ORDINAL.match(str(meta(pod).get("name") or ""))
    if not match:
        return None
    return match.group(1), int(match.group(2))


def ordinal_of(pod: Obj) -> int:
    found = parent_and_ordinal(pod)
    return found[1] if found else -1


def belongs(sts: Obj, pod: Obj) -> bool:
    """Whether the pod's name is one of the set's (``isMemberOf``)."""
    found = parent_and_ordinal(pod)
    return found is not None and found[0] == meta(sts).get("name")


def start_ordinal(sts: Obj) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def replica_count(sts: Obj) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def pod_revision(pod: Obj) -> str:
    return str((meta(pod).get("labels") or {}).get(history.REVISION_HASH_LABEL) or "")


def claim_name(claim: Obj, sts: Obj, ordinal: int) -> str:
    return f"{meta(claim).get('name')}-{meta(sts).get('name')}-{ordinal}"


def is_created(pod: Obj) -> bool:
    """Placeholders for missing pods have no phase; every pod the API server stored has one."""
    return bool(phase(pod))


def is_unavailable(pod: Obj, min_ready: int, at: datetime) -> bool:
    return not is_available(pod, min_ready, at) or is_terminating(pod) or not is_running_and_ready(pod)


def new_pod(sts: Obj, template: dict[str, Any], revision: str, ordinal: int) -> Obj:
    """The pod of ``ordinal`` from ``template`` at ``revision`` (``newVersionedStatefulSetPod``)."""
    template = copy.deepcopy(template)
    name = f"{meta(sts).get('name')}-{ordinal}"
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update(
        {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), history.REVISION_HASH_LABEL: revision}
    )
    spec = template.get("spec") or {}
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    if claims:
        names = {meta(c).get("name") for c in claims}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        for claim in claims:
            volumes.append(
                {
                    "name": meta(claim).get("name"),
                    "persistentVolumeClaim": {"claimName": claim_name(claim, sts, ordinal)},
                }
            )
        spec["volumes"] = volumes
    pod_meta: dict[str, Any] = {
        "name": name,
        "namespace": meta(sts).get("namespace"),
        "labels": labels,
        "ownerReferences": [owner_reference(sts, kinds.STATEFULSET)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def new_claim(sts: Obj, template: Obj, ordinal: int) -> Obj:
    """The PVC of one ``volumeClaimTemplates`` item for ``ordinal`` (``getPersistentVolumeClaims``)."""
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update((((sts.get("spec") or {}).get("selector")) or {}).get("matchLabels") or {})
    claim_meta: dict[str, Any] = {
        "name": claim_name(template, sts, ordinal),
        "namespace": meta(sts).get("namespace"),
        "labels": labels,
    }
    if tmeta.get("annotations"):
        claim_meta["annotations"] = dict(tmeta["annotations"])
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    if policy.get("whenDeleted") == "Delete":
        ref = owner_reference(sts, kinds.STATEFULSET)
        ref.pop("controller")
        claim_meta["ownerReferences"] = [ref]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": claim_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def replica_status(
    pods: list[Obj], min_ready: int, current: str, update: str, at: datetime
) -> dict[str, int]:
    """``computeReplicaStatus`` over the created pods."""
    counts = {
        "replicas": 0,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "currentReplicas": 0,
        "updatedReplicas": 0,
    }
    for pod in pods:
        if not is_created(pod):
            continue
        counts["replicas"] += 1
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_available(pod, min_ready, at):
                counts["availableReplicas"] += 1
        if not is_terminating(pod):
            if pod_revision(pod) == current:
                counts["currentReplicas"] += 1
            if pod_revision(pod) == update:
                counts["updatedReplicas"] += 1
    return counts


@dataclass
class _Plan:
    """One sync's view: the set, its replicas by ordinal (placeholders for missing ones), the condemned."""

    sts: Obj
    current: Obj
    update: Obj
    replicas: list[Obj]
    condemned: list[Obj]
    at: datetime
    min_ready: int
    monotonic: bool
    claims_checked: set[str] = field(default_factory=set)


class StatefulSetController:
    name = "statefulset"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder(COMPONENT)
        self.sets = ctx.informers.informer(kinds.STATEFULSET)
        self.pods = ctx.informers.informer(kinds.POD)
        self.pods.add_index(CONTROLLER_INDEX, controller_uid)
        self.pods.add_index(ORPHAN_INDEX, orphan_namespace)
        self.revisions = ctx.informers.informer(kinds.CONTROLLERREVISION)
        self.revisions.add_index(CONTROLLER_INDEX, controller_uid)
        self.claims = ctx.informers.informer(kinds.PVC)
        self.queue: WorkQueue[str] = WorkQueue()
        self.pending = PendingPods()
        self.sets.add_handler(self._on_set)
        self.pods.add_handler(self._on_pod)

    def _on_set(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        self.queue.add(object_key(obj))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        key = queue_pod_owner(self.queue, self.pending, kinds.STATEFULSET, old, new)
        if key is None and new is not None and controller_ref(new) is None:
            found = parent_and_ordinal(new)
            if found is not None and self.sets.get(found[0], meta(new).get("namespace")) is not None:
                self.queue.add(f"{meta(new).get('namespace')}/{found[0]}")  # an orphan to adopt

    async def run(self) -> None:
        await run_workers_and_shutdown(self.queue, self.sync, workers=4, name="statefulset")

    # --------------------------------------------------------------------------------------------- sync

    async def sync(self, key: str) -> float | None:
        namespace, name = split_key(key)
        cached = self.sets.get(name, namespace)
        if cached is None:
            self.pending.forget(key)
            return None
        sts = copy.deepcopy(cached)
        pods = await self._claim_pods(key, sts)
        owned = owned_by(self.revisions, sts)
        collisions = history.collision_count(sts)
        update = await history.revision_or_collision(self.client, sts, kinds.STATEFULSET, owned)
        if update is None:
            return 0.0
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in owned if meta(r).get("name") == current_name), None) or update
        plan = self._plan(sts, pods, current, update)
        if meta(sts).get("deletionTimestamp") is None:
            await self._reconcile(plan)
        status = self._status(plan, collisions)
        await self._write_status(sts, status)
        live = {meta(current).get("name"), meta(update).get("name")} | {pod_revision(p) for p in pods}
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10))
        await history.truncate_history(self.client, owned, {str(n) for n in live if n}, limit)
        return next_availability(plan.replicas + plan.condemned, plan.min_ready, now())

    async def _claim_pods(self, key: str, sts: Obj) -> list[Obj]:
        """The set's pods (adopting orphans whose name and labels make them ours)."""
        namespace = meta(sts).get("namespace")
        pods = owned_by(self.pods, sts)
        selector = from_label_selector((sts.get("spec") or {}).get("selector"))
        if meta(sts).get("deletionTimestamp") is None and not selector.empty:
            for pod in self.pods.by_index(ORPHAN_INDEX, str(namespace)):
                if is_terminating(pod) or not belongs(sts, pod):
                    continue
                if not selector.matches(meta(pod).get("labels") or {}):
                    continue
                refs = [
                    *list(meta(pod).get("ownerReferences") or []),
                    owner_reference(sts, kinds.STATEFULSET),
                ]
                patch = {
                    "metadata": {"ownerReferences": refs, "resourceVersion": meta(pod).get("resourceVersion")}
                }
                try:
                    pods.append(
                        await self.client.patch(
                            kinds.POD, str(meta(pod).get("name")), patch, namespace=namespace
                        )
                    )
                except errors.ApiError as exc:
                    if not (exc.not_found or exc.conflict):
                        raise
        return [p for p in self.pending.overlay(key, pods) if belongs(sts, p)]

    def _plan(self, sts: Obj, pods: list[Obj], current: Obj, update: Obj) -> _Plan:
        spec = sts.get("spec") or {}
        start = start_ordinal(sts)
        count = replica_count(sts)
        by_ordinal: dict[int, Obj] = {}
        condemned: list[Obj] = []
        for pod in pods:
            ordinal = ordinal_of(pod)
            if start <= ordinal < start + count:
                by_ordinal[ordinal] = pod
            elif ordinal >= 0:
                condemned.append(pod)
        plan = _Plan(
            sts=sts,
            current=current,
            update=update,
            replicas=[],
            condemned=sorted(condemned, key=ordinal_of, reverse=True),
            at=now(),
            min_ready=int(spec.get("minReadySeconds") or 0),
            monotonic=spec.get("podManagementPolicy") != "Parallel",
        )
        for ordinal in range(start, start + count):
            plan.replicas.append(by_ordinal.get(ordinal) or self._placeholder(plan, ordinal))
        return plan

    @staticmethod
    def _placeholder(plan: _Plan, ordinal: int) -> Obj:
        """The pod to create for a missing ordinal, at the current or the update revision."""
        strategy = (plan.sts.get("spec") or {}).get("updateStrategy") or {}
        use_current = False
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if rolling is None:
                current_replicas = int((plan.sts.get("status") or {}).get("currentReplicas") or 0)
                use_current = ordinal - start_ordinal(plan.sts) < current_replicas
            else:
                use_current = ordinal - start_ordinal(plan.sts) < int(rolling.get("partition") or 0)
        revision = plan.current if use_current else plan.update
        pod = new_pod(plan.sts, history.template_of(revision), str(meta(revision).get("name")), ordinal)
        return pod

    # ---------------------------------------------------------------------------------------- actions

    async def _reconcile(self, plan: _Plan) -> None:
        first_unhealthy = next(
            (p for p in plan.replicas if is_unavailable(p, plan.min_ready, plan.at)),
            next((p for p in reversed(plan.condemned) if is_unavailable(p, plan.min_ready, plan.at)), None),
        )
        for index in range(len(plan.replicas)):
            if await self._process_replica(plan, index) and plan.monotonic:
                return
        for pod in list(plan.condemned):
            if await self._process_condemned(plan, pod, first_unhealthy) and plan.monotonic:
                return
        strategy = (plan.sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return
        await self._rolling_update(plan, int((strategy.get("rollingUpdate") or {}).get("partition") or 0))

    async def _process_replica(self, plan: _Plan, index: int) -> bool:
        """Create, recreate or wait for one replica; True when a monotonic set must stop here."""
        pod = plan.replicas[index]
        if phase(pod) in ("Failed", "Succeeded"):
            if not is_terminating(pod):
                await self._delete_pod(plan, pod)
                plan.replicas[index] = _terminating(pod)
            return True
        if not is_created(pod):
            await self._create_claims(plan, pod)
            plan.replicas[index] = await self._create_pod(plan, pod)
            return True
        if phase(pod) == "Pending":
            await self._create_claims(plan, pod)
        if is_terminating(pod):
            return True
        if not is_running_and_ready(pod):
            return True
        return not is_available(pod, plan.min_ready, plan.at)

    async def _process_condemned(self, plan: _Plan, pod: Obj, first_unhealthy: Obj | None) -> bool:
        if is_terminating(pod):
            return plan.monotonic
        unhealthy = not is_running_and_ready(pod) or not is_available(pod, plan.min_ready, plan.at)
        if plan.monotonic and unhealthy and pod is not first_unhealthy:
            return True
        await self._release_claims(plan, pod)
        await self._delete_pod(plan, pod)
        plan.condemned = [_terminating(p) if p is pod else p for p in plan.condemned]
        return True

    async def _rolling_update(self, plan: _Plan, partition: int) -> None:
        """Replace the highest-ordinal pod not at the update revision, once the ones above are available."""
        update = str(meta(plan.update).get("name"))
        for index in range(len(plan.replicas) - 1, partition - 1, -1):
            pod = plan.replicas[index]
            if pod_revision(pod) != update and not is_terminating(pod):
                await self._delete_pod(plan, pod)
                plan.replicas[index] = _terminating(pod)
                return
            if is_unavailable(pod, plan.min_ready, plan.at):
                return

    async def _create_pod(self, plan: _Plan, pod: Obj) -> Obj:
        sts = plan.sts
        name = str(meta(pod).get("name"))
        key = object_key(sts)
        try:
            created = await self.client.create(kinds.POD, copy.deepcopy(pod))
        except errors.ApiError as exc:
            if exc.already_exists:
                return pod
            self.recorder.event(
                sts,
                "Warning",
                "FailedCreate",
                f"create Pod {name} in StatefulSet {meta(sts).get('name')} failed error: {exc.message}",
            )
            raise
        self.pending.created(key, created)
        self.recorder.event(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {meta(sts).get('name')} successful",
        )
        return created

    async def _delete_pod(self, plan: _Plan, pod: Obj) -> None:
        sts = plan.sts
        name = str(meta(pod).get("name"))
        try:
            await self.client.delete(
                kinds.POD, name, meta(pod).get("namespace"), preconditions={"uid": meta(pod).get("uid")}
            )
        except errors.ApiError as exc:
            if not (exc.not_found or exc.conflict):
                self.recorder.event(
                    sts,
                    "Warning",
                    "FailedDelete",
                    f"delete Pod {name} in StatefulSet {meta(sts).get('name')} failed error: {exc.message}",
                )
                raise
        self.pending.deleted(object_key(sts), pod)
        self.recorder.event(
            sts,
            "Normal",
            "SuccessfulDelete",
            f"delete Pod {name} in StatefulSet {meta(sts).get('name')} successful",
        )

    async def _create_claims(self, plan: _Plan, pod: Obj) -> None:
        """Create the pod's missing PVCs (``createMissingPersistentVolumeClaims``)."""
        sts = plan.sts
        ordinal = ordinal_of(pod)
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            claim = new_claim(sts, template, ordinal)
            name = str(meta(claim).get("name"))
            if name in plan.claims_checked or self.claims.get(name, meta(sts).get("namespace")) is not None:
                continue
            plan.claims_checked.add(name)
            try:
                await self.client.create(kinds.PVC, claim)
            except errors.ApiError as exc:
                if exc.already_exists:
                    continue
                self.recorder.event(
                    sts,
                    "Warning",
                    "FailedCreate",
                    f"create Claim {name} for Pod {meta(pod).get('name')} in StatefulSet "
                    f"{meta(sts).get('name')} failed error: {exc.message}",
                )
                raise
            self.recorder.event(
                sts,
                "Normal",
                "SuccessfulCreate",
                f"create Claim {name} Pod {meta(pod).get('name')} in StatefulSet "
                f"{meta(sts).get('name')} success",
            )

    async def _release_claims(self, plan: _Plan, pod: Obj) -> None:
        """With ``whenScaled: Delete``, make the condemned pod own its PVCs so they go with it."""
        sts = plan.sts
        policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenScaled") != "Delete":
            return
        ref = owner_reference(pod, kinds.POD)
        ref.pop("controller")
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            name = claim_name(template, sts, ordinal_of(pod))
            claim = self.claims.get(name, meta(sts).get("namespace"))
            if claim is None:
                continue
            refs = [r for r in meta(claim).get("ownerReferences") or [] if r.get("uid") != ref["uid"]]
            try:
                await self.client.patch(
                    kinds.PVC,
                    name,
                    {"metadata": {"ownerReferences": [*refs, ref]}},
                    namespace=meta(sts).get("namespace"),
                )
            except errors.ApiError as exc:
                if not exc.not_found:
                    raise

    # ------------------------------------------------------------------------------------------ status

    def _status(self, plan: _Plan, collisions: int) -> dict[str, Any]:
        current = str(meta(plan.current).get("name"))
        update = str(meta(plan.update).get("name"))
        counts = replica_status(plan.replicas + plan.condemned, plan.min_ready, current, update, now())
        status: dict[str, Any] = {
            "observedGeneration": meta(plan.sts).get("generation"),
            "currentRevision": current,
            "updateRevision": update,
            "collisionCount": collisions,
            **counts,
        }
        strategy = ((plan.sts.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
        if (
            strategy == "RollingUpdate"
            and status["updatedReplicas"] == status["replicas"]
            and status["readyReplicas"] == status["replicas"]
        ):
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = update
        return status

    async def _write_status(self, sts: Obj, status: dict[str, Any]) -> None:
        old = sts.get("status") or {}
        for field_name in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not status.get(field_name):
                status[field_name] = None  # omitempty upstream: a merge patch removes it
        if all(old.get(k) == v for k, v in status.items()):
            return
        await patch_status(self.client, kinds.STATEFULSET, sts, status)


def _terminating(pod: Obj) -> Obj:
    """The pod as it is after our delete call (for the rest of this sync's decisions)."""
    marked = copy.deepcopy(pod)
    marked.setdefault("metadata", {})["deletionTimestamp"] = rfc3339(now())
    return marked
