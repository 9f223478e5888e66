"""Simulated Nodes with capacity, conditions and Lease heartbeats in kube-node-lease.

On a real cluster every kubelet registers its Node, posts its status, and renews a Lease in
``kube-node-lease`` every 10 s; the node lifecycle controller (in kube-controller-manager) marks a node
``Ready=Unknown`` and taints it ``node.kubernetes.io/unreachable`` once its Lease is 40 s old. This module
plays both parts for the local cluster's N simulated nodes, cheaply: one Lease renewal per node every
``lease_renew_seconds`` and a full status heartbeat every few minutes, as kubelet's
``nodeStatusReportFrequency`` does. A node annotated ``sim.tugboat.dev/heartbeat: "stop"`` plays a dead
kubelet (no more renewals, so it goes Unknown), which is how users stage a node failure.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster import metadata
from tugboat.localcluster.controllers.base import Context, SimulationOptions
from tugboat.localcluster.controllers.behaviour import PREFIX
from tugboat.localcluster.controllers.podstatus import patch_pod_status

log = logging.getLogger(__name__)

NODE_PREFIX = "tugboat-node-"
INSTANCE_TYPE = "tugboat-sim"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40  # kubelet's default; also the node monitor grace period
STATUS_REPORT_SECONDS = 300.0  # kubelet's nodeStatusReportFrequency when nothing changes
HEARTBEAT_ANNOTATION = PREFIX + "heartbeat"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
KUBELET_VERSION = "v1.32.0"
CONTAINER_RUNTIME = "containerd://1.7.24"
OS_IMAGE = "Debian GNU/Linux 12 (bookworm)"
KERNEL_VERSION = "6.8.0-tugboat"
REGION = "tugboat"
ZONES = ("tugboat-a", "tugboat-b", "tugboat-c")
CLUSTER_POD_NETWORK = ipaddress.IPv4Network("10.244.0.0/14")

_READY_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
_UNKNOWN_MESSAGE = "Kubelet stopped posting node status."


def node_name(index: int) -> str:
    return f"{NODE_PREFIX}{index}"


def node_index(name: str) -> int | None:
    """The number of a simulated node from its name (``tugboat-node-3`` → 3), if it is one."""
    if not name.startswith(NODE_PREFIX):
        return None
    digits = name[len(NODE_PREFIX) :]
    return int(digits) if digits.isdigit() and not digits.startswith("0") else None


def pod_cidr(index: int, max_pods: int) -> str:
    """The pod CIDR of node ``index``: a /24 (``10.244.N.0/24``) unless the node takes more pods than fit."""
    prefix = 24
    while prefix > 16 and 2 ** (32 - prefix) - 3 < max_pods:
        prefix -= 1
    size = 2 ** (32 - prefix)
    base = int(CLUSTER_POD_NETWORK.network_address) + index * size
    return str(ipaddress.IPv4Network((base, prefix)))


def heartbeat_stopped(node: Obj) -> bool:
    """Whether a node's simulated kubelet is "dead" (annotation ``sim.tugboat.dev/heartbeat: stop``)."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(HEARTBEAT_ANNOTATION, "")).strip().lower() == "stop"


def condition(node: Obj, type_: str) -> dict[str, Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def _stable_uuid(name: str, purpose: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tugboat-sim/{purpose}/{name}"))


def _resources(options: SimulationOptions) -> dict[str, str]:
    return {
        "cpu": str(options.node_cpu),
        "ephemeral-storage": str(options.node_ephemeral_storage),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": str(options.node_memory),
        "pods": str(options.node_pods),
    }


def _conditions(now: str, old: Obj | None) -> list[dict[str, Any]]:
    """Kubelet's four conditions, all healthy, keeping transition times where the status did not change."""
    result = []
    for type_, status, reason, message in _READY_CONDITIONS:
        previous = condition(old, type_) if old is not None else None
        since = now
        if previous is not None and previous.get("status") == status and previous.get("lastTransitionTime"):
            since = previous["lastTransitionTime"]
        result.append(
            {
                "type": type_,
                "status": status,
                "lastHeartbeatTime": now,
                "lastTransitionTime": since,
                "reason": reason,
                "message": message,
            }
        )
    return result


def node_status(index: int, options: SimulationOptions, *, now: str, old: Obj | None = None) -> Obj:
    name = node_name(index)
    resources = _resources(options)
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": _conditions(now, old),
        "addresses": [
            {"type": "InternalIP", "address": f"172.18.0.{index + 1}"},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": _stable_uuid(name, "machine").replace("-", ""),
            "systemUUID": _stable_uuid(name, "system"),
            "bootID": _stable_uuid(name, "boot"),
            "kernelVersion": KERNEL_VERSION,
            "osImage": OS_IMAGE,
            "containerRuntimeVersion": CONTAINER_RUNTIME,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_manifest(index: int, options: SimulationOptions, *, now: str) -> Obj:
    """The Node a simulated kubelet registers (labels, capacity, conditions, addresses, nodeInfo)."""
    name = node_name(index)
    cidr = pod_cidr(index, options.node_pods)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels(index), "annotations": _node_annotations()},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": f"tugboat://local/{name}"},
        "status": node_status(index, options, now=now),
    }


def node_labels(index: int) -> dict[str, str]:
    name = node_name(index)
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": INSTANCE_TYPE,
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": ZONES[(index - 1) % len(ZONES)],
    }


def _node_annotations() -> dict[str, str]:
    return {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }


class NodeController:
    """Registers the simulated Nodes, renews their Leases, posts their status, and notices dead ones."""

    name = "nodes"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.options = ctx.options
        self.client = ctx.client
        self.indexes = {node_name(i): i for i in range(1, ctx.options.nodes + 1)}
        self.nodes = ctx.informers.informer(kinds.NODE)
        self.pods = ctx.informers.informer(kinds.POD)
        self.queue: WorkQueue[str] = WorkQueue()
        self._renewed: dict[str, float] = {}  # node -> epoch of the Lease's last renewTime
        self._reported: dict[str, float] = {}  # node -> epoch of the last status report we posted
        self._written: dict[str, int] = {}  # node -> resourceVersion of our last write to it
        self.nodes.add_handler(self._on_node)

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        name = object_key(new or old or {})
        if name in self.indexes:
            self.queue.add(name)

    async def run(self) -> None:
        await self._remove_surplus()
        for name in self.indexes:
            self.queue.add(name)
        await run_workers(self.queue, self.sync, workers=2, name="nodes")

    async def _remove_surplus(self) -> None:
        """Nodes of an earlier run with more nodes have no kubelet any more: deregister them."""
        for node in self.nodes.objects():
            name = object_key(node)
            labels = (node.get("metadata") or {}).get("labels") or {}
            index = node_index(name)
            if index is None or name in self.indexes:
                continue
            if labels.get("node.kubernetes.io/instance-type") != INSTANCE_TYPE:
                continue
            log.info("removing surplus simulated node %s", name)
            await self.client.delete(kinds.NODE, name)

    # ------------------------------------------------------------------------------------------ sync

    async def sync(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None:
            node = await self._register(name)
        elif metadata.revision_of(node) < self._written.get(name, 0):
            return None  # the cache has not seen our last write yet; its watch event brings us back
        now = time.time()
        if heartbeat_stopped(node):
            return await self._check_unreachable(name, node, now)
        renew_in = await self._renew_lease(name, node, now)
        report_in = await self._report_status(name, node, now)
        return min(renew_in, report_in)

    async def _register(self, name: str) -> Obj:
        index = self.indexes[name]
        manifest = node_manifest(index, self.options, now=metadata.rfc3339())
        try:
            node = await self.client.create(kinds.NODE, manifest)
        except errors.ApiError as exc:
            if not exc.already_exists:
                raise
            return await self.client.get(kinds.NODE, name)
        self._reported[name] = time.time()
        kubelet = self.ctx.recorder("kubelet", name)
        kubelet.event(node, "Normal", "Starting", "Starting kubelet.")
        for reason in ("NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"):
            kubelet.event(node, "Normal", reason, f"Node {name} status is now: {reason}")
        kubelet.event(node, "Normal", "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")
        kubelet.event(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady")
        self.ctx.recorder("node-controller").event(
            node, "Normal", "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller"
        )
        return node

    def _wrote(self, node: Obj) -> None:
        self._written[object_key(node)] = metadata.revision_of(node)

    # ----------------------------------------------------------------------------------------- lease

    def _lease(self, node: Obj, now: float) -> Obj:
        meta = node.get("metadata") or {}
        name = str(meta.get("name"))
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": name, "uid": meta.get("uid")}
                ],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": metadata.micro_time(datetime.fromtimestamp(now, UTC)),
            },
        }

    async def _last_renewal(self, name: str) -> float | None:
        if name not in self._renewed:
            lease = await self.client.get_or_none(kinds.LEASE, name, LEASE_NAMESPACE)
            renewed = metadata.epoch_seconds(((lease or {}).get("spec") or {}).get("renewTime"))
            if renewed is None:
                return None
            self._renewed[name] = renewed
        return self._renewed[name]

    async def _renew_lease(self, name: str, node: Obj, now: float) -> float:
        period = self.options.lease_renew_seconds
        last = await self._last_renewal(name)
        if last is not None and now - last < period - 0.05:
            return period - (now - last)
        renew = {"spec": {"renewTime": metadata.micro_time(datetime.fromtimestamp(now, UTC))}}
        try:
            if last is None:
                raise errors.ApiError(404, "NotFound", "no lease yet")
            await self.client.patch(kinds.LEASE, name, renew, namespace=LEASE_NAMESPACE)
        except errors.ApiError as exc:
            if not exc.not_found:
                raise
            try:
                await self.client.create(kinds.LEASE, self._lease(node, now))
            except errors.ApiError as create_exc:
                if not create_exc.already_exists:
                    raise
                await self.client.patch(kinds.LEASE, name, renew, namespace=LEASE_NAMESPACE)
        self._renewed[name] = now
        return period

    # ---------------------------------------------------------------------------------------- status

    async def _report_status(self, name: str, node: Obj, now: float) -> float:
        ready = condition(node, "Ready")
        taints = (node.get("spec") or {}).get("taints") or []
        recovering = (ready or {}).get("status") != "True" or any(
            t.get("key") == UNREACHABLE_TAINT for t in taints
        )
        last = self._reported.get(name)
        if not recovering and last is not None and now - last < STATUS_REPORT_SECONDS:
            return STATUS_REPORT_SECONDS - (now - last)
        index = self.indexes[name]
        status = node_status(index, self.options, now=metadata.rfc3339(), old=node)
        if last is not None and not recovering:
            status = {"conditions": status["conditions"]}  # a plain heartbeat
        self._wrote(
            await self.client.patch(
                kinds.NODE, name, {"status": status}, patch_type="strategic", subresource="status"
            )
        )
        self._reported[name] = now
        if recovering:
            await self._set_unreachable_taints(node, present=False)
            if ready is not None:
                self.ctx.recorder("kubelet", name).event(
                    node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady"
                )
        return STATUS_REPORT_SECONDS

    async def _check_unreachable(self, name: str, node: Obj, now: float) -> float | None:
        """The node lifecycle controller's part: a node whose Lease expired becomes Ready=Unknown."""
        self._reported.pop(name, None)
        last = await self._last_renewal(name)
        if last is None:
            last = now
            self._renewed[name] = now
        expires = last + LEASE_DURATION_SECONDS
        if now < expires:
            return expires - now
        ready = condition(node, "Ready") or {}
        if ready.get("status") != "Unknown":
            stamp = metadata.rfc3339()
            conditions = []
            for type_, _status, _reason, _message in _READY_CONDITIONS:
                old = condition(node, type_) or {}
                conditions.append(
                    {
                        "type": type_,
                        "status": "Unknown",
                        "lastHeartbeatTime": old.get("lastHeartbeatTime") or stamp,
                        "lastTransitionTime": stamp,
                        "reason": "NodeStatusUnknown",
                        "message": _UNKNOWN_MESSAGE,
                    }
                )
            self._wrote(
                await self.client.patch(
                    kinds.NODE,
                    name,
                    {"status": {"conditions": conditions}},
                    patch_type="strategic",
                    subresource="status",
                )
            )
            self.ctx.recorder("node-controller").event(
                node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady"
            )
            await self._mark_pods_not_ready(name)
        await self._set_unreachable_taints(node, present=True)
        return None

    async def _mark_pods_not_ready(self, name: str) -> None:
        """The node lifecycle controller flips the Ready condition of the pods of an unreachable node."""
        recorder = self.ctx.recorder("node-controller")
        for pod in self.pods.objects():
            if (pod.get("spec") or {}).get("nodeName") != name:
                continue
            status = pod.get("status") or {}
            ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
            if (
                status.get("phase") in ("Succeeded", "Failed")
                or not ready
                or ready[0].get("status") == "False"
            ):
                continue
            condition = {"type": "Ready", "status": "False", "lastTransitionTime": metadata.rfc3339()}
            meta = pod.get("metadata") or {}
            written = await patch_pod_status(
                self.client, str(meta.get("name")), str(meta.get("namespace")), {"conditions": [condition]}
            )
            if written is None:
                continue
            recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def _set_unreachable_taints(self, node: Obj, *, present: bool) -> None:
        """Add or remove the unreachable taints (with a PUT, so that a concurrent edit conflicts)."""
        cached = [
            t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") == UNREACHABLE_TAINT
        ]
        if bool(cached) == present:
            return
        fresh = await self.client.get(kinds.NODE, object_key(node))
        spec = fresh.setdefault("spec", {})
        taints = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE_TAINT]
        if present:
            taints += [
                {"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
                {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": metadata.rfc3339()},
            ]
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        self._wrote(await self.client.replace(kinds.NODE, fresh))
