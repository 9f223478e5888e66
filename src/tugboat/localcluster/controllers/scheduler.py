"""Binds pending pods to a Ready node that fits (nodeSelector, node affinity, tolerations, capacity).

A tiny kube-scheduler: for each pod with no ``nodeName`` (and ``schedulerName: default-scheduler``) it runs
the filters that matter on a simulated cluster, in upstream's order (NodeUnschedulable, TaintToleration,
NodeAffinity, NodeResourcesFit), picks the fitting node with the fewest pods (spreading), and binds through
``pods/binding``. When no node fits it reports what upstream reports: ``PodScheduled=False`` with reason
``Unschedulable`` and the ``0/3 nodes are available: ...`` message, plus a ``FailedScheduling`` event; the
pod is retried whenever nodes change or capacity is freed. Resource usage per node is kept incrementally
from the pod informer plus the pods this scheduler just bound (its "assume" cache), so a burst of a
thousand pods is spread without waiting for the watch to catch up.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key, split_key
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster import metadata
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.podstatus import patch_pod_status
from tugboat.localcluster.defaults import parse_quantity

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"
UNSCHEDULABLE_REASON = "node(s) were unschedulable"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NO_NODES = "no nodes available to schedule pods"
_TERMINAL = ("Succeeded", "Failed")


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """What a pod asks of a node: the sum of its containers' requests, or its largest init container's."""
    spec = pod.get("spec") or {}
    zero = Decimal(0)
    total: dict[str, Decimal] = {}

    def add(values: dict[str, Decimal]) -> None:
        for name, value in values.items():
            total[name] = total.get(name, zero) + value

    for container in spec.get("containers") or []:
        add(_container_requests(container))
    for container in spec.get("initContainers") or []:
        if container.get("restartPolicy") == "Always":  # a sidecar runs alongside the app containers
            add(_container_requests(container))
    for container in spec.get("initContainers") or []:
        if container.get("restartPolicy") != "Always":
            for name, value in _container_requests(container).items():
                total[name] = max(total.get(name, zero), value)
    add({str(k): parse_quantity(v) or zero for k, v in (spec.get("overhead") or {}).items()})
    result = {name: value for name, value in total.items() if value}
    result["pods"] = Decimal(1)
    return result


def _container_requests(container: Obj) -> dict[str, Decimal]:
    requests = (container.get("resources") or {}).get("requests") or {}
    values = {str(k): parse_quantity(v) for k, v in requests.items()}
    return {k: v for k, v in values.items() if v}


def _tolerates(tolerations: Iterable[Obj], taint: Obj) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        if (toleration.get("operator") or "Equal") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _expression_matches(expression: Obj, values_of: dict[str, str]) -> bool:
    key = str(expression.get("key") or "")
    operator = expression.get("operator")
    values = [str(v) for v in expression.get("values") or []]
    present = key in values_of
    value = values_of.get(key, "")
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def _term_matches(term: Obj, labels: dict[str, str], fields: dict[str, str]) -> bool:
    expressions = term.get("matchExpressions") or []
    field_expressions = term.get("matchFields") or []
    if not expressions and not field_expressions:
        return False  # an empty term matches no objects
    return all(_expression_matches(e, labels) for e in expressions) and all(
        _expression_matches(e, fields) for e in field_expressions
    )


def matches_node_affinity(pod: Obj, node: Obj) -> bool:
    """The NodeAffinity filter: ``nodeSelector`` and required node affinity."""
    spec = pod.get("spec") or {}
    labels = {str(k): str(v) for k, v in ((node.get("metadata") or {}).get("labels") or {}).items()}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    fields = {"metadata.name": object_key(node)}
    return any(_term_matches(term, labels, fields) for term in required.get("nodeSelectorTerms") or [])


def node_taints(node: Obj) -> list[Obj]:
    """The node's taints, plus those the node lifecycle controller would add to a node that is not Ready."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    ready = "Unknown"
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            ready = str(condition.get("status"))
    if ready == "False" and not any(t.get("key") == NOT_READY_TAINT for t in taints):
        taints.append({"key": NOT_READY_TAINT, "effect": "NoSchedule"})
    if ready == "Unknown" and not any(
        t.get("key") in (NOT_READY_TAINT, "node.kubernetes.io/unreachable") for t in taints
    ):
        taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
    return taints


@dataclass
class Fit:
    """The outcome of filtering one node: no reasons means it fits."""

    reasons: list[str] = field(default_factory=list)
    resources_only: bool = False


@dataclass
class Placement:
    node: str
    requests: dict[str, Decimal]


class Scheduler:
    """Schedules pods of ``schedulerName: default-scheduler`` onto the cluster's nodes."""

    name = "scheduler"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.pods = ctx.informers.informer(kinds.POD)
        self.nodes = ctx.informers.informer(kinds.NODE)
        self.queue: WorkQueue[str] = WorkQueue()
        self.recorder = ctx.recorder(SCHEDULER_NAME)
        self._placed: dict[str, Placement] = {}  # pod key -> where it counts against capacity
        self._usage: dict[str, Counter[str]] = {}  # node -> requested resources (pods included)
        self._unschedulable: dict[str, str] = {}  # pod key -> the message last reported for it
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)

    async def run(self) -> None:
        await run_workers(self.queue, self.sync, workers=4, name="scheduler")

    # ------------------------------------------------------------------------------------ accounting

    def _place(self, key: str, node: str, requests: dict[str, Decimal]) -> None:
        current = self._placed.get(key)
        if current is not None and current.node == node:
            return
        self._unplace(key)
        self._placed[key] = Placement(node, requests)
        self._usage.setdefault(node, Counter()).update(requests)

    def _unplace(self, key: str) -> bool:
        current = self._placed.pop(key, None)
        if current is None:
            return False
        usage = self._usage.get(current.node)
        if usage is not None:
            usage.subtract(current.requests)
        return True

    def _retry_unschedulable(self) -> None:
        for key in list(self._unschedulable):
            self.queue.add(key)

    # -------------------------------------------------------------------------------------- handlers

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        key = object_key(new or old or {})
        if new is None:
            self._unschedulable.pop(key, None)
            if self._unplace(key):
                self._retry_unschedulable()
            return
        spec = new.get("spec") or {}
        node = spec.get("nodeName")
        if node:
            self._unschedulable.pop(key, None)
            if (new.get("status") or {}).get("phase") in _TERMINAL:
                if self._unplace(key):
                    self._retry_unschedulable()
            else:
                placed = self._placed.get(key)
                if placed is None or placed.node != node:
                    self._place(key, str(node), pod_requests(new))
            return
        if self._wants_scheduling(new):
            self.queue.add(key)

    @staticmethod
    def _wants_scheduling(pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or metadata.deleting(pod):
            return False
        if (pod.get("status") or {}).get("phase") in _TERMINAL:
            return False
        return (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and _scheduling_view(old) == _scheduling_view(new):
            return
        self._retry_unschedulable()

    # ------------------------------------------------------------------------------------------ sync

    async def sync(self, key: str) -> float | None:
        pod = self.pods.cache.get(key)
        if pod is None or not self._wants_scheduling(pod) or key in self._placed:
            return None
        if (pod.get("spec") or {}).get("schedulingGates"):
            await self._report_gated(key, pod)
            return None
        nodes = sorted(self.nodes.objects(), key=object_key)
        requests = pod_requests(pod)
        fits: dict[str, Fit] = {object_key(n): self._filter(pod, n, requests) for n in nodes}
        candidates = [name for name, fit in fits.items() if not fit.reasons]
        if not candidates:
            await self._report_unschedulable(key, pod, _fit_error(pod, fits))
            return None
        chosen = min(candidates, key=lambda name: (self._usage.get(name, Counter())["pods"], name))
        await self._bind(key, pod, chosen, requests)
        return None

    def _filter(self, pod: Obj, node: Obj, requests: dict[str, Decimal]) -> Fit:
        spec = pod.get("spec") or {}
        tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
        if (node.get("spec") or {}).get("unschedulable") and not _tolerates(
            tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
        ):
            return Fit([UNSCHEDULABLE_REASON])
        for taint in node_taints(node):
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
                return Fit(
                    [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"]
                )
        if not matches_node_affinity(pod, node):
            return Fit([AFFINITY_REASON])
        return self._resource_fit(node, requests)

    def _resource_fit(self, node: Obj, requests: dict[str, Decimal]) -> Fit:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        used = self._usage.get(object_key(node), Counter())
        reasons = []
        for name in sorted(requests, key=lambda n: (n != "pods", n)):
            available = parse_quantity(allocatable.get(name)) or Decimal(0)
            if used[name] + requests[name] > available:
                reasons.append("Too many pods" if name == "pods" else f"Insufficient {name}")
        return Fit(reasons, resources_only=bool(reasons))

    # ---------------------------------------------------------------------------------------- writes

    async def _bind(self, key: str, pod: Obj, node: str, requests: dict[str, Decimal]) -> None:
        namespace, name = split_key(key)
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": (pod.get("metadata") or {}).get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self._place(key, node, requests)
        try:
            await self.client.request(
                "POST",
                kinds.POD.object_path(name, namespace, "binding"),
                params={"fieldManager": "kube-scheduler"},
                body=binding,
            )
        except errors.ApiError as exc:
            self._unplace(key)
            if exc.not_found or exc.conflict:
                return  # gone, or bound meanwhile (by someone else)
            raise
        self._unschedulable.pop(key, None)
        self.recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {namespace}/{name} to {node}")
        condition = {
            "type": "PodScheduled",
            "status": "True",
            "lastTransitionTime": metadata.rfc3339(),
            "reason": None,  # drop an earlier Unschedulable
            "message": None,
        }
        await self._patch_condition(key, condition)

    async def _report_unschedulable(self, key: str, pod: Obj, message: str) -> None:
        if self._unschedulable.get(key) == message:
            return
        self._unschedulable[key] = message
        if _reported(pod, "Unschedulable", message):
            return  # reported before this scheduler (re)started
        await self._patch_condition(key, _scheduled_false(pod, "Unschedulable", message))
        self.recorder.event(pod, "Warning", "FailedScheduling", message)

    async def _report_gated(self, key: str, pod: Obj) -> None:
        message = "Scheduling is blocked due to non-empty scheduling gates"
        if self._unschedulable.get(key) == message:
            return
        self._unschedulable[key] = message
        if not _reported(pod, "SchedulingGated", message):
            await self._patch_condition(key, _scheduled_false(pod, "SchedulingGated", message))

    async def _patch_condition(self, key: str, condition: Obj) -> None:
        namespace, name = split_key(key)
        await patch_pod_status(self.client, name, namespace, {"conditions": [condition]})


def _reported(pod: Obj, reason: str, message: str) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled":
            return condition.get("reason") == reason and condition.get("message") == message
    return False


def _scheduled_false(pod: Obj, reason: str, message: str) -> Obj:
    since = metadata.rfc3339()
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            since = condition.get("lastTransitionTime") or since
    return {
        "type": "PodScheduled",
        "status": "False",
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def _fit_error(pod: Obj, fits: dict[str, Fit]) -> str:
    """Upstream's FitError text: ``0/3 nodes are available: <reasons>. preemption: 0/3 ...: <...>.``"""
    if not fits:
        return NO_NODES
    total = len(fits)
    reasons: Counter[str] = Counter()
    preemption: Counter[str] = Counter()
    for fit in fits.values():
        reasons.update(fit.reasons)
        preemption[NO_VICTIMS if fit.resources_only else NOT_HELPFUL] += 1
    message = f"0/{total} nodes are available: {_counted(reasons)}."
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return f"{message} preemption: not eligible due to preemptionPolicy=Never."
    return f"{message} preemption: 0/{total} nodes are available: {_counted(preemption)}."


def _counted(counter: Counter[str]) -> str:
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counter.items()))


def _scheduling_view(node: Obj) -> Any:
    """What of a node matters to scheduling (heartbeats alone do not retry unschedulable pods)."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    ready = [
        (c.get("type"), c.get("status")) for c in status.get("conditions") or [] if c.get("type") == "Ready"
    ]
    return (
        meta.get("labels"),
        spec.get("taints"),
        spec.get("unschedulable"),
        status.get("allocatable"),
        ready,
    )
