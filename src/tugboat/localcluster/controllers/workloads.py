"""What the pod-owning workload controllers (StatefulSet, DaemonSet, Job) share.

Each of them reads pods from the shared informer, decides from their phase and conditions, creates and
deletes pods, and must not act twice on the same intention while its cache still lags behind its own
writes. The pod predicates here follow ``k8s.io/kubernetes/pkg/api/v1/pod`` and ``pkg/controller``
(running and ready, available after ``minReadySeconds``, active, terminating); :class:`PendingPods` is the
"expectations" of kube-controller-manager, in the form of an overlay: pods a controller created or deleted
are folded into what its cache shows until the cache catches up.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import errors
from tugboat.kube.client import Client, Obj
from tugboat.kube.informers import Informer
from tugboat.kube.kinds import Kind
from tugboat.kube.workqueue import WorkQueue

CONTROLLER_INDEX = "workloads/controller-uid"
ORPHAN_INDEX = "workloads/orphans-by-namespace"
EXPECTATION_TIMEOUT = (
    60.0  # seconds after which an unobserved write is forgotten (kube-controller-manager: 5 min)
)


# ------------------------------------------------------------------------------------------------- time


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------- owner references


def meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller") is True:
            return dict(ref)
    return None


def controller_uid(obj: Obj) -> list[str]:
    """Index function: the uid of an object's controller (if any)."""
    ref = controller_ref(obj)
    return [str(ref.get("uid"))] if ref else []


def orphan_namespace(obj: Obj) -> list[str]:
    """Index function: the namespace of an object that no controller owns (a candidate for adoption)."""
    return [] if controller_ref(obj) is not None else [str(meta(obj).get("namespace") or "")]


def owner_reference(owner: Obj, kind: Kind) -> dict[str, Any]:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "name": meta(owner).get("name"),
        "uid": meta(owner).get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == meta(owner).get("uid")


def owner_key(obj: Obj, kind: Kind) -> str | None:
    """``namespace/name`` of the ``kind`` controlling ``obj``, if one does."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind.kind or ref.get("apiVersion") != kind.api_version:
        return None
    return f"{meta(obj).get('namespace')}/{ref.get('name')}"


def owned_by(informer: Informer, owner: Obj) -> list[Obj]:
    """The cached objects in ``owner``'s namespace that it controls (by the controller-uid index)."""
    namespace = meta(owner).get("namespace")
    return [
        obj
        for obj in informer.by_index(CONTROLLER_INDEX, str(meta(owner).get("uid")))
        if meta(obj).get("namespace") == namespace
    ]


async def patch_status(client: Client, kind: Kind, obj: Obj, status: dict[str, Any]) -> None:
    """Merge ``status`` into ``obj``'s status; an object deleted meanwhile is no error."""
    try:
        await client.patch_status(
            kind, str(meta(obj).get("name")), status, namespace=meta(obj).get("namespace")
        )
    except errors.ApiError as exc:
        if not exc.not_found:
            raise


# -------------------------------------------------------------------------------------------- pod state


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminating(pod: Obj) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


def is_terminal(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """Neither finished nor being deleted (``controller.FilterActivePods``)."""
    return not is_terminal(pod) and not is_terminating(pod)


def condition(obj: Obj, kind: str) -> dict[str, Any] | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None


def condition_true(obj: Obj, kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"


def is_ready(pod: Obj) -> bool:
    return condition_true(pod, "Ready")


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def available_after(pod: Obj, min_ready_seconds: int, at: datetime) -> float | None:
    """Seconds until a Ready pod counts as available (0 if it does), None if it is not Ready."""
    ready = condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_time(ready.get("lastTransitionTime"))
    if since is None:
        return 0.0
    return max(0.0, min_ready_seconds - (at - since).total_seconds())


def is_available(pod: Obj, min_ready_seconds: int, at: datetime) -> bool:
    return available_after(pod, min_ready_seconds, at) == 0.0


def next_availability(pods: Iterable[Obj], min_ready_seconds: int, at: datetime) -> float | None:
    """When the earliest Ready-but-not-yet-available pod becomes available (to requeue then)."""
    waits = [available_after(p, min_ready_seconds, at) for p in pods if is_active(p)]
    pending = [w for w in waits if w is not None and w > 0]
    return min(pending) + 0.05 if pending else None


def creation_time(obj: Obj) -> datetime:
    return parse_time(meta(obj).get("creationTimestamp")) or datetime.fromtimestamp(0, UTC)


# ------------------------------------------------------------------------------------------ expectations


@dataclass
class _Pending:
    created: dict[str, tuple[Obj, float]] = field(default_factory=dict)  # name -> (pod, when)
    deleted: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> (uid, when)


class PendingPods:
    """Pods a controller created or deleted that its informer has not shown yet, per owner key.

    :meth:`overlay` turns the cached pods of an owner into what they are known to be: created pods are
    added, deleted pods are marked terminating. The pod informer's handler calls :meth:`observe`.
    """

    def __init__(self, *, timeout: float = EXPECTATION_TIMEOUT) -> None:
        self.timeout = timeout
        self._by_owner: dict[str, _Pending] = {}

    def created(self, owner: str, pod: Obj) -> None:
        entry = self._by_owner.setdefault(owner, _Pending())
        entry.created[str(meta(pod).get("name"))] = (pod, time.monotonic())

    def deleted(self, owner: str, pod: Obj) -> None:
        entry = self._by_owner.setdefault(owner, _Pending())
        entry.deleted[str(meta(pod).get("name"))] = (str(meta(pod).get("uid")), time.monotonic())

    def observe(self, owner: str, old: Obj | None, new: Obj | None) -> None:
        entry = self._by_owner.get(owner)
        if entry is None:
            return
        pod = new if new is not None else old
        assert pod is not None
        name = str(meta(pod).get("name"))
        if new is not None:
            entry.created.pop(name, None)
        deleted = entry.deleted.get(name)
        if deleted is not None and (new is None or is_terminating(new) or deleted[0] != meta(new).get("uid")):
            entry.deleted.pop(name, None)
        if not entry.created and not entry.deleted:
            self._by_owner.pop(owner, None)

    def forget(self, owner: str) -> None:
        self._by_owner.pop(owner, None)

    def overlay(self, owner: str, pods: list[Obj]) -> list[Obj]:
        entry = self._by_owner.get(owner)
        if entry is None:
            return pods
        limit = time.monotonic() - self.timeout
        for table in (entry.created, entry.deleted):
            for name in [n for n, (_, when) in table.items() if when < limit]:
                del table[name]
        names = {str(meta(p).get("name")) for p in pods}
        result: list[Obj] = []
        for pod in pods:
            deleted = entry.deleted.get(str(meta(pod).get("name")))
            if deleted is not None and deleted[0] == meta(pod).get("uid") and not is_terminating(pod):
                pod = copy.deepcopy(pod)
                pod["metadata"]["deletionTimestamp"] = rfc3339(now())
            result.append(pod)
        result.extend(pod for name, (pod, _) in entry.created.items() if name not in names)
        return result

    def has_pending(self, owner: str) -> bool:
        entry = self._by_owner.get(owner)
        return entry is not None and bool(entry.created or entry.deleted)


def queue_pod_owner(
    queue: WorkQueue[str], pending: PendingPods, kind: Kind, old: Obj | None, new: Obj | None
) -> str | None:
    """A pod handler's part every pod-owning controller shares: the ``kind`` controlling the pod observes
    the change in its :class:`PendingPods` and is queued. Returns its key (None if no ``kind`` owns the pod).
    """
    pod = new if new is not None else old
    assert pod is not None
    key = owner_key(pod, kind)
    if key is not None:
        pending.observe(key, old, new)
        queue.add(key)
    return key


# ------------------------------------------------------------------------------------- scheduling terms


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """Whether a taint is tolerated (``v1.Toleration.ToleratesTaint``)."""
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or "Equal"
        if operator == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _requirement_matches(expr: dict[str, Any], value: str | None) -> bool:
    operator = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def node_selector_term_matches(term: dict[str, Any], node: Obj) -> bool:
    labels = meta(node).get("labels") or {}
    fields = {"metadata.name": str(meta(node).get("name"))}
    expressions = term.get("matchExpressions") or []
    field_expressions = term.get("matchFields") or []
    if not expressions and not field_expressions:
        return False
    return all(_requirement_matches(e, labels.get(e.get("key"))) for e in expressions) and all(
        _requirement_matches(e, fields.get(e.get("key"))) for e in field_expressions
    )


def node_matches_pod_spec(spec: dict[str, Any], node: Obj) -> bool:
    """nodeSelector and required node affinity, as the scheduler's NodeAffinity filter checks them."""
    labels = meta(node).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is not None:
        return any(node_selector_term_matches(term, node) for term in terms)
    return True
