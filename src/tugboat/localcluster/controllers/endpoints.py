"""Endpoints and EndpointSlices of Services from their pods, as kube-controller-manager writes them.

Clients find a Service's pods through these objects: ``kubectl describe svc`` prints the Endpoints, the
traffic simulation and anything that mimics kube-proxy read the EndpointSlices. For every Service with a
selector, the pods of its namespace that match it, have a ``podIP`` and are not terminating go into the
``Endpoints`` (Ready ones in ``addresses``, the others in ``notReadyAddresses``), grouped into subsets by
the ports they resolve (a named ``targetPort`` is looked up in each pod's container ports). EndpointSlices
(``discovery.k8s.io/v1``) carry the same pods, terminating ones included, with ``ready`` / ``serving`` /
``terminating`` conditions, at most 100 per slice and one group of slices per port set; a Service without
pods keeps one empty placeholder slice, as upstream does.

The API server's own ``default/kubernetes`` Service has no selector; its Endpoints and EndpointSlice
(kube-apiserver writes those upstream) point at the address this controller reaches the server on.

Nothing is written unless it differs from what is stored, so an idle cluster costs nothing. Slices get
generated names, so a slice written but not yet seen by the informer is remembered until it arrives
(upstream's EndpointSliceTracker); until then the Service is not reconciled again, which would otherwise
create a second slice for the same pods.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import errors
from tugboat.kube.client import Obj
from tugboat.kube.informers import by_namespace, object_key, split_key
from tugboat.kube.kinds import ENDPOINTS, ENDPOINTSLICE, POD, SERVICE, Kind
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster.controllers.base import Context, StaleCacheRetries

log = logging.getLogger(__name__)

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER_NAME = "endpoint-controller"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
MAX_ENDPOINTS_PER_SLICE = 100

APISERVER_KEY = ":apiserver"  # not a valid namespace/name, so it never collides with a Service's key
_POD_BATCH_SECONDS = 0.05  # coalesce bursts of pod changes (a rollout) into one write per Service
_EXPECTATION_TTL = 10.0  # stop waiting for a written slice to show up in the informer after this long

SliceKey = tuple[str, tuple[tuple[str, int, str, str], ...]]


# ------------------------------------------------------------------------------------------ pod facts


def pod_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def should_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    """Upstream's ShouldPodBeInEndpoints: an IP, not finished, and not terminating unless asked."""
    status = pod.get("status") or {}
    if not status.get("podIP"):
        return False
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    return include_terminating or not _terminating(pod)


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for ``service_port``: its numeric targetPort, or the container port of that name."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if not isinstance(target, str) or not target:
        return None
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def _selector(service: Obj) -> dict[str, str] | None:
    selector = (service.get("spec") or {}).get("selector")
    return selector if isinstance(selector, dict) and selector else None


def _selects(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def _managed(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return _selector(service) is not None and spec.get("type") != "ExternalName"


def _hostname(service: Obj, pod: Obj) -> str | None:
    """A pod's hostname is published when its subdomain is the Service's name (headless DNS records)."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    same_namespace = meta.get("namespace") == (service.get("metadata") or {}).get("namespace")
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"] and same_namespace:
        return str(spec["hostname"])
    return None


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {
        "kind": "Pod",
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }


def _pod_ports(service: Obj, pod: Obj, *, slice_style: bool) -> list[Obj]:
    """The Service's ports as this pod serves them (ports that do not resolve are left out)."""
    ports: list[Obj] = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Obj = {}
        name = service_port.get("name") or ""
        if name or slice_style:
            port["name"] = name
        port["port"] = number
        port["protocol"] = service_port.get("protocol") or "TCP"
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def _ports_key(ports: list[Obj]) -> tuple[tuple[str, int, str, str], ...]:
    return tuple(
        sorted(
            (
                str(p.get("name") or ""),
                int(p.get("port") or 0),
                str(p.get("protocol") or "TCP"),
                str(p.get("appProtocol") or ""),
            )
            for p in ports
        )
    )


def _sorted_ports(ports: list[Obj]) -> list[Obj]:
    return sorted(ports, key=lambda p: (str(p.get("name") or ""), int(p.get("port") or 0)))


# ------------------------------------------------------------------------------------------- Endpoints


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The ``subsets`` of a Service's Endpoints: addresses grouped by the port set they serve."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    no_ports = not spec.get("ports")
    groups: dict[tuple[tuple[str, int, str, str], ...], tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, include_terminating=publish_not_ready):
            continue
        ports = _pod_ports(service, pod, slice_style=False)
        if not ports and not (no_ports and _headless(service)):
            continue
        address: Obj = {"ip": pod["status"]["podIP"]}
        hostname = _hostname(service, pod)
        if hostname:
            address["hostname"] = hostname
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            address["nodeName"] = node
        address["targetRef"] = _target_ref(pod)
        key = _ports_key(ports)
        ready, not_ready, _ = groups.setdefault(key, ([], [], _sorted_ports(ports)))
        (ready if publish_not_ready or pod_ready(pod) else not_ready).append(address)
    subsets: list[Obj] = []
    for key in sorted(groups):
        ready, not_ready, ports = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def _address_order(address: Obj) -> tuple[str, str]:
    return (str(address.get("ip")), str((address.get("targetRef") or {}).get("uid") or ""))


def endpoints_labels(service: Obj) -> dict[str, str]:
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    labels.pop(HEADLESS_LABEL, None)
    if _headless(service):
        labels[HEADLESS_LABEL] = ""
    labels[MANAGED_BY_LABEL] = ENDPOINTS_CONTROLLER_NAME
    return labels


# -------------------------------------------------------------------------------------- EndpointSlices


def _address_type(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


def _service_address_type(service: Obj) -> str:
    families = (service.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    return "IPv6" if families[0] == "IPv6" else "IPv4"


def slice_endpoint(service: Obj, pod: Obj) -> Obj:
    """One EndpointSlice endpoint for a pod (upstream's podToEndpoint)."""
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = publish_not_ready or pod_ready(pod)
    terminating = _terminating(pod)
    endpoint: Obj = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {
            "ready": publish_not_ready or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
    }
    hostname = _hostname(service, pod)
    if hostname:
        endpoint["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    endpoint["targetRef"] = _target_ref(pod)
    return endpoint


def desired_slice_endpoints(
    service: Obj, pods: list[Obj]
) -> dict[SliceKey, tuple[list[Obj], dict[str, Obj]]]:
    """Endpoints by (address type, port set): the ports to write and the endpoints by identity."""
    groups: dict[SliceKey, tuple[list[Obj], dict[str, Obj]]] = {}
    eligible = [p for p in pods if should_be_in_endpoints(p, include_terminating=True)]
    for pod in sorted(eligible, key=lambda p: str(p["status"]["podIP"])):
        ports = _pod_ports(service, pod, slice_style=True)
        endpoint = slice_endpoint(service, pod)
        key = (_address_type(pod["status"]["podIP"]), _ports_key(ports))
        groups.setdefault(key, (_sorted_ports(ports), {}))[1][_endpoint_id(endpoint)] = endpoint
    return groups


def _endpoint_id(endpoint: Obj) -> str:
    uid = (endpoint.get("targetRef") or {}).get("uid")
    return str(uid) if uid else "ip:" + ",".join(endpoint.get("addresses") or [])


def _existing_slice_key(endpoint_slice: Obj) -> SliceKey:
    return (str(endpoint_slice.get("addressType") or "IPv4"), _ports_key(endpoint_slice.get("ports") or []))


def slice_labels(service: Obj) -> dict[str, str]:
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    for reserved in (SERVICE_NAME_LABEL, SLICE_MANAGED_BY_LABEL, HEADLESS_LABEL):
        labels.pop(reserved, None)
    if _headless(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[SLICE_MANAGED_BY_LABEL] = SLICE_CONTROLLER_NAME
    return labels


def _owner_reference(service: Obj) -> Obj:
    meta = service["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass
class SlicePlan:
    """What to do to a Service's slices: updates, creates (each with endpoints and ports) and deletes."""

    updates: list[tuple[Obj, list[Obj], list[Obj]]] = field(default_factory=list)
    creates: list[tuple[SliceKey, list[Obj], list[Obj]]] = field(default_factory=list)
    deletes: list[Obj] = field(default_factory=list)


def plan_slices(
    service: Obj, existing: list[Obj], desired: dict[SliceKey, tuple[list[Obj], dict[str, Obj]]]
) -> SlicePlan:
    """Keep endpoints in the slice they are in, fill slices up to 100, create slices for the rest.

    Slices whose endpoints all went away are deleted, except that a Service with no endpoints at all keeps
    one empty placeholder slice.
    """
    plan = SlicePlan()
    by_key: dict[SliceKey, list[Obj]] = {}
    for endpoint_slice in sorted(existing, key=lambda s: str(s["metadata"]["name"])):
        by_key.setdefault(_existing_slice_key(endpoint_slice), []).append(endpoint_slice)
    for key, slices in by_key.items():
        if key not in desired:
            plan.deletes.extend(slices)
    for key, (ports, endpoints) in desired.items():
        remaining = dict(endpoints)
        fills: list[tuple[Obj, list[Obj]]] = []
        for endpoint_slice in by_key.get(key, []):
            kept = []
            for endpoint in endpoint_slice.get("endpoints") or []:
                fresh = remaining.pop(_endpoint_id(endpoint), None)
                if fresh is not None:
                    kept.append(fresh)
            fills.append((endpoint_slice, kept))
        for _, kept in fills:
            while remaining and len(kept) < MAX_ENDPOINTS_PER_SLICE:
                kept.append(remaining.pop(next(iter(remaining))))
        for endpoint_slice, kept in fills:
            if kept:
                plan.updates.append((endpoint_slice, kept, ports))
            else:
                plan.deletes.append(endpoint_slice)
        rest = list(remaining.values())
        for start in range(0, len(rest), MAX_ENDPOINTS_PER_SLICE):
            plan.creates.append((key, rest[start : start + MAX_ENDPOINTS_PER_SLICE], ports))
    if not desired:
        _keep_placeholder(plan, _service_address_type(service))
    _reuse_deleted(plan)
    return plan


def _reuse_deleted(plan: SlicePlan) -> None:
    """Turn a create plus a delete of the same address type into an update (fewer writes, no gap)."""
    creates = []
    for key, endpoints, ports in plan.creates:
        reusable = next((s for s in plan.deletes if s.get("addressType", "IPv4") == key[0]), None)
        if reusable is None:
            creates.append((key, endpoints, ports))
            continue
        plan.deletes.remove(reusable)
        plan.updates.append((reusable, endpoints, ports))
    plan.creates = creates


def _keep_placeholder(plan: SlicePlan, address_type: str) -> None:
    for index, endpoint_slice in enumerate(plan.deletes):
        if endpoint_slice.get("addressType", "IPv4") == address_type:
            del plan.deletes[index]
            plan.updates.append((endpoint_slice, [], []))
            return
    plan.creates.append(((address_type, ()), [], []))


def _slice_differs(
    endpoint_slice: Obj, endpoints: list[Obj], ports: list[Obj], labels: dict[str, str], owner: Obj
) -> bool:
    meta = endpoint_slice.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    return (
        (endpoint_slice.get("endpoints") or []) != endpoints
        or (endpoint_slice.get("ports") or []) != ports
        or (meta.get("labels") or {}) != labels
        or not any(ref.get("uid") == owner["uid"] for ref in owners)
    )


def _service_changed(old: Obj, new: Obj) -> bool:
    """Only the spec and labels matter (status updates, such as a load balancer address, do not)."""
    same_labels = (old["metadata"].get("labels") or {}) == (new["metadata"].get("labels") or {})
    return old.get("spec") != new.get("spec") or not same_labels


def _rv_at_least(actual: str, expected: str) -> bool:
    if actual.isdigit() and expected.isdigit():
        return int(actual) >= int(expected)
    return actual == expected


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_trigger_time(pod: Obj) -> str:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("lastTransitionTime"):
            return str(condition["lastTransitionTime"])
    return _now()


def _pod_signature(pod: Obj | None) -> tuple[Any, ...] | None:
    """What of a pod the Endpoints depend on; an update that keeps it changes nothing."""
    if pod is None:
        return None
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    return (
        tuple(sorted((meta.get("labels") or {}).items())),
        status.get("podIP"),
        status.get("phase") in ("Succeeded", "Failed"),
        pod_ready(pod),
        bool(meta.get("deletionTimestamp")),
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
    )


# ------------------------------------------------------------------------------------------ controller


class EndpointsController:
    """Keeps every selector Service's Endpoints and EndpointSlices equal to its pods."""

    name = "endpoints"

    def __init__(self, ctx: Context, *, workers: int = 4) -> None:
        self.ctx = ctx
        self.workers = workers
        self.client = ctx.client
        self.queue: WorkQueue[str] = WorkQueue()
        self.services = ctx.informers.informer(SERVICE)
        self.pods = ctx.informers.informer(POD)
        self.endpoints = ctx.informers.informer(ENDPOINTS)
        self.slices = ctx.informers.informer(ENDPOINTSLICE)
        self.services.add_index("namespace", by_namespace)
        self.pods.add_index("namespace", by_namespace)
        self.slices.add_index("endpoints:service", _slice_service_key)
        self._triggers: dict[str, str] = {}
        # service key -> slice name -> (resourceVersion written, or "" for deleted; deadline)
        self._expected: dict[str, dict[str, tuple[str, float]]] = {}
        # (kind, namespace/name) of fixed-name objects created but not yet seen -> deadline
        self._created: dict[tuple[str, str], float] = {}
        self._stale: StaleCacheRetries[str] = StaleCacheRetries()
        self._deferred: set[str] = set()  # Services waiting for their slice writes to show up
        self.apiserver_address = _apiserver_address(ctx)
        self.services.add_handler(self._on_service)
        self.pods.add_handler(self._on_pod)
        self.endpoints.add_handler(self._on_endpoints)
        self.slices.add_handler(self._on_slice)

    # -------------------------------------------------------------------------------------- events

    def _on_service(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        key = object_key(obj)
        if key == "default/kubernetes":
            self.queue.add(APISERVER_KEY)
            return
        if old is None and new is not None:
            self._trigger(key, str(new["metadata"].get("creationTimestamp") or _now()))
        elif new is not None and old is not None and not _service_changed(old, new):
            return
        self.queue.add(key)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        if _pod_signature(old) == _pod_signature(new):
            return
        pod = new or old
        assert pod is not None
        namespace = pod["metadata"].get("namespace") or ""
        label_sets = [(p["metadata"].get("labels") or {}) for p in (old, new) if p is not None]
        trigger = _pod_trigger_time(pod)
        for service in self.services.by_index("namespace", namespace):
            selector = _selector(service)
            if selector is None or not any(_selects(selector, labels) for labels in label_sets):
                continue
            key = object_key(service)
            self._trigger(key, trigger)
            self.queue.add_after(key, _POD_BATCH_SECONDS)

    def _on_endpoints(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        key = object_key(obj)
        self._created.pop((ENDPOINTS.kind, key), None)
        if key == "default/kubernetes":
            self.queue.add(APISERVER_KEY)
        elif new is None:
            # Deleted by someone: put it back. (Edits wait for the next change of the Service, as upstream.)
            self.queue.add(key)

    def _on_slice(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        for service_key in _slice_service_key(obj):
            ours = self._observe_slice(service_key, obj["metadata"]["name"], new)
            caught_up = service_key not in self._expected and service_key in self._deferred
            if not ours or caught_up:
                self._deferred.discard(service_key)
                self.queue.add(service_key)
        if object_key(obj) == "default/kubernetes":
            self._created.pop((ENDPOINTSLICE.kind, "default/kubernetes"), None)
            self.queue.add(APISERVER_KEY)

    def _awaiting(self, kind: Kind, key: str) -> bool:
        """Whether we created this object a moment ago and the informer has not delivered it yet."""
        deadline = self._created.get((kind.kind, key))
        if deadline is None:
            return False
        if deadline < time.monotonic():
            del self._created[(kind.kind, key)]
            return False
        return True

    async def _create(self, kind: Kind, body: Obj) -> None:
        """Create a fixed-name object (already there is fine) and wait for the informer to see it."""
        try:
            await self.client.create(kind, body)
        except errors.ApiError as exc:
            if not exc.already_exists:
                raise
        self._created[(kind.kind, object_key(body))] = time.monotonic() + _EXPECTATION_TTL

    def _trigger(self, key: str, when: str) -> None:
        current = self._triggers.get(key)
        if current is None or when < current:
            self._triggers[key] = when

    # ------------------------------------------------------------------------------- expectations

    def _expect(self, service_key: str, name: str, rv: str) -> None:
        cached = self.slices.get(name, split_key(service_key)[0])
        if (
            rv
            and cached is not None
            and _rv_at_least(str(cached["metadata"].get("resourceVersion") or ""), rv)
        ):
            return  # the informer already has it
        if not rv and cached is None:
            return  # already gone
        self._expected.setdefault(service_key, {})[name] = (rv, time.monotonic() + _EXPECTATION_TTL)

    def _observe_slice(self, service_key: str, name: str, new: Obj | None) -> bool:
        """Tick off an expected write; whether the event is one (then it needs no sync of its own)."""
        expected = self._expected.get(service_key)
        if not expected or name not in expected:
            return False
        rv, _ = expected[name]
        seen = (
            new is None
            if not rv
            else new is not None and _rv_at_least(str(new["metadata"].get("resourceVersion") or ""), rv)
        )
        if seen:
            del expected[name]
            if not expected:
                del self._expected[service_key]
        return seen

    def _pending_expectations(self, service_key: str) -> float | None:
        """Seconds until the oldest unseen write expires, or None when the informer is up to date."""
        expected = self._expected.get(service_key)
        if not expected:
            return None
        now = time.monotonic()
        for name in [n for n, (_, deadline) in expected.items() if deadline <= now]:
            log.debug("endpointslice %s of %s never showed up in the informer", name, service_key)
            del expected[name]
        if not expected:
            del self._expected[service_key]
            return None
        return min(deadline for _, deadline in expected.values()) - now

    # ------------------------------------------------------------------------------------- running

    async def run(self) -> None:
        if self.apiserver_address is not None:
            self.queue.add(APISERVER_KEY)
        await run_workers(self.queue, self.sync, workers=self.workers, name="endpoints")

    async def sync(self, key: str) -> float | None:
        if key == APISERVER_KEY:
            await self._sync_apiserver()
            return None
        trigger = self._triggers.pop(key, None)
        try:
            again = await self._sync_service(key, trigger)
        except Exception as exc:
            if trigger is not None:
                self._trigger(key, trigger)
            if isinstance(exc, errors.ApiError) and (exc.conflict or exc.already_exists):
                return self._stale.retry_after(key)
            if isinstance(exc, errors.ApiError) and exc.code in (403, 404):
                # The namespace is terminating (creates are forbidden) or the object went away meanwhile:
                # the deletions under way bring the key back if there is anything left to do.
                self._stale.forget(key)
                return None
            raise
        self._stale.forget(key)
        return again

    async def _sync_service(self, key: str, trigger: str | None) -> float | None:
        service = self.services.cache.get(key)
        if service is None:
            await self._cleanup(key)
            return None
        if not _managed(service):
            return None
        namespace = service["metadata"]["namespace"]
        selector = _selector(service)
        assert selector is not None
        pods = [
            p
            for p in self.pods.by_index("namespace", namespace)
            if _selects(selector, p["metadata"].get("labels"))
        ]
        await self._sync_endpoints(service, pods, trigger)
        wait = self._pending_expectations(key)
        if wait is not None:
            if trigger is not None:
                self._trigger(key, trigger)
            self._deferred.add(key)  # the slice events we wait for queue it again
            return max(wait, 0.01)
        self._deferred.discard(key)
        await self._sync_slices(service, pods, trigger)
        return None

    async def _cleanup(self, key: str) -> None:
        namespace, name = split_key(key)
        endpoints = self.endpoints.get(name, namespace)
        if endpoints is not None and (endpoints["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL):
            await self.client.delete(ENDPOINTS, name, namespace)
        for endpoint_slice in self.slices.by_index("endpoints:service", key):
            await self.client.delete(ENDPOINTSLICE, endpoint_slice["metadata"]["name"], namespace)
        self._expected.pop(key, None)
        self._deferred.discard(key)

    async def _sync_endpoints(self, service: Obj, pods: list[Obj], trigger: str | None) -> None:
        meta = service["metadata"]
        subsets = desired_subsets(service, pods)
        labels = endpoints_labels(service)
        current = self.endpoints.get(meta["name"], meta["namespace"])
        if current is None and self._awaiting(ENDPOINTS, object_key(service)):
            return
        if current is None:
            body: Obj = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels},
            }
            if trigger:
                body["metadata"]["annotations"] = {TRIGGER_TIME_ANNOTATION: trigger}
            if subsets:
                body["subsets"] = subsets
            await self._create(ENDPOINTS, body)
            return
        if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels:
            return
        updated = copy.deepcopy(current)
        updated["metadata"]["labels"] = labels
        annotations = updated["metadata"].setdefault("annotations", {})
        if trigger:
            annotations[TRIGGER_TIME_ANNOTATION] = trigger
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        if subsets:
            updated["subsets"] = subsets
        else:
            updated.pop("subsets", None)
        await self.client.replace(ENDPOINTS, updated)

    async def _sync_slices(self, service: Obj, pods: list[Obj], trigger: str | None) -> None:
        key = object_key(service)
        namespace = service["metadata"]["namespace"]
        existing = [
            s
            for s in self.slices.by_index("endpoints:service", key)
            if not (s["metadata"].get("deletionTimestamp"))
        ]
        plan = plan_slices(service, existing, desired_slice_endpoints(service, pods))
        labels = slice_labels(service)
        owner = _owner_reference(service)
        for (address_type, _), endpoints, ports in plan.creates:
            body = self._new_slice(service, address_type, endpoints, ports, labels, owner, trigger)
            created = await self.client.create(ENDPOINTSLICE, body)
            self._expect(
                key, created["metadata"]["name"], str(created["metadata"].get("resourceVersion") or "")
            )
        for endpoint_slice, endpoints, ports in plan.updates:
            if not _slice_differs(endpoint_slice, endpoints, ports, labels, owner):
                continue
            updated = copy.deepcopy(endpoint_slice)
            _fill_slice(updated, endpoints, ports, labels, owner, trigger)
            written = await self.client.replace(ENDPOINTSLICE, updated)
            self._expect(
                key, written["metadata"]["name"], str(written["metadata"].get("resourceVersion") or "")
            )
        for endpoint_slice in plan.deletes:
            name = endpoint_slice["metadata"]["name"]
            await self.client.delete(ENDPOINTSLICE, name, namespace)
            self._expect(key, name, "")

    @staticmethod
    def _new_slice(
        service: Obj,
        address_type: str,
        endpoints: list[Obj],
        ports: list[Obj],
        labels: dict[str, str],
        owner: Obj,
        trigger: str | None,
    ) -> Obj:
        prefix = service["metadata"]["name"][:57] + "-"
        body: Obj = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"generateName": prefix, "namespace": service["metadata"]["namespace"]},
            "addressType": address_type,
        }
        _fill_slice(body, endpoints, ports, labels, owner, trigger)
        return body

    # ------------------------------------------------------------------------ default/kubernetes

    async def _sync_apiserver(self) -> None:
        address = self.apiserver_address
        if address is None or self.services.get("kubernetes", "default") is None:
            return
        await self._sync_apiserver_endpoints(*address)
        await self._sync_apiserver_slice(*address)

    async def _sync_apiserver_endpoints(self, ip: str, port: int) -> None:
        ports = [{"name": "https", "port": port, "protocol": "TCP"}]
        subsets = [{"addresses": [{"ip": ip}], "ports": ports}]
        labels = {SKIP_MIRROR_LABEL: "true"}
        current = self.endpoints.get("kubernetes", "default")
        if current is None:
            if not self._awaiting(ENDPOINTS, "default/kubernetes"):
                meta = {"name": "kubernetes", "namespace": "default", "labels": labels}
                await self._create(ENDPOINTS, {"metadata": meta, "subsets": subsets})
        elif current.get("subsets") != subsets or (current["metadata"].get("labels") or {}) != labels:
            updated = copy.deepcopy(current)
            updated["metadata"]["labels"] = labels
            updated["subsets"] = subsets
            await self.client.replace(ENDPOINTS, updated)

    async def _sync_apiserver_slice(self, ip: str, port: int) -> None:
        endpoints = [{"addresses": [ip], "conditions": {"ready": True}}]
        ports = [{"name": "https", "port": port, "protocol": "TCP"}]
        labels = {SERVICE_NAME_LABEL: "kubernetes"}
        current = self.slices.get("kubernetes", "default")
        if current is None:
            if not self._awaiting(ENDPOINTSLICE, "default/kubernetes"):
                body = {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
                    "addressType": _address_type(ip),
                    "endpoints": endpoints,
                    "ports": ports,
                }
                await self._create(ENDPOINTSLICE, body)
        elif (
            current.get("endpoints") != endpoints
            or current.get("ports") != ports
            or (current["metadata"].get("labels") or {}) != labels
        ):
            updated = copy.deepcopy(current)
            updated["metadata"]["labels"] = labels
            updated["endpoints"] = endpoints
            updated["ports"] = ports
            await self.client.replace(ENDPOINTSLICE, updated)


def _fill_slice(
    body: Obj,
    endpoints: list[Obj],
    ports: list[Obj],
    labels: dict[str, str],
    owner: Obj,
    trigger: str | None,
) -> None:
    meta = body["metadata"]
    meta["labels"] = dict(labels)
    owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("uid") != owner["uid"]]
    meta["ownerReferences"] = [*owners, dict(owner)]
    annotations = meta.setdefault("annotations", {})
    if trigger:
        annotations[TRIGGER_TIME_ANNOTATION] = trigger
    elif not annotations:
        meta.pop("annotations")
    body["endpoints"] = endpoints
    if ports:
        body["ports"] = ports
    else:
        body.pop("ports", None)


def _slice_service_key(endpoint_slice: Obj) -> list[str]:
    """Index function: the Service a slice we manage belongs to (``namespace/name``)."""
    meta = endpoint_slice.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(SLICE_MANAGED_BY_LABEL) != SLICE_CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{meta.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


def _apiserver_address(ctx: Context) -> tuple[str, int] | None:
    """The IP and port this controller reaches the API server on (the address of ``default/kubernetes``)."""
    base_url = getattr(ctx.client.http, "base_url", None)
    host = getattr(base_url, "host", "") or ""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    port = getattr(base_url, "port", None) or (443 if getattr(base_url, "scheme", "") == "https" else 80)
    return host, int(port)
