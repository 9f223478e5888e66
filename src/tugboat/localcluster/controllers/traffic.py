"""Simulated traffic through Services, and its Prometheus metrics at ``/metrics/simulated``.

Progressive delivery judges a new version by its error rate and latency; on the local cluster nothing
serves real requests, so this controller pretends: every Service with Ready endpoints receives
``SimulationOptions.requests_per_second`` (10/s by default), split evenly over its Ready pods, and each pod
answers with its behaviour's error rate and latency (:func:`behaviour.behaviour_of`: ``bad-*`` tags fail
half their requests, ``slow-*`` take 800 ms, annotations ``sim.tugboat.dev/error-rate`` and
``sim.tugboat.dev/latency-ms`` set them explicitly). A real Prometheus scraping ``/metrics/simulated`` sees
per-pod ``tugboat_sim_http_requests_total`` counters (code ``200``/``500``) and
``tugboat_sim_http_request_duration_seconds`` histograms, labelled with namespace, service, pod and the
pod's ``rollouts_pod_template_hash`` / ``pod_template_hash``, so analysis can compare canary and stable.

Nothing ticks: membership changes (from the Service and Pod informers) re-anchor the lazily integrated
counters of :mod:`trafficmodel`, and a scrape computes the current values, so an idle cluster costs
nothing. Ready endpoints are derived here from Service selectors and pod readiness (Ready condition,
podIP, not terminating), the same rule the endpoints controller follows.

**Traffic routing hook** (for the rollout controller's traffic routers): the running simulator is
``ctx.shared["traffic"]``; call :meth:`TrafficSimulator.set_weights` to divert traffic::

    traffic = ctx.shared.get("traffic")
    if traffic is not None:
        # nginx canary Ingress: 20 % of the stable Service's traffic goes to the canary Service
        traffic.set_weights("ns", "stable-svc", {"stable-svc": 80, "canary-svc": 20})
        # SMI TrafficSplit on root Service "app": all of its traffic is split between the backends
        traffic.set_weights("ns", "app", {"app-stable": 90, "app-canary": 10})
        # Istio VirtualService (the key names no Service: the route is an entry point of its own)
        traffic.set_weights("ns", "virtualservice/app/primary", {"stable": 50, "canary": 50})
        traffic.set_weights("ns", "stable-svc", None)  # back to the default (no routing)

A Service named as a destination of another key's route receives no traffic of its own, only what is
routed to it (so an idle canary Service at weight 0 gets nothing). Routes are one hop, and are not stored
in the cluster: the router sets them again whenever it reconciles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from tugboat.kube import kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import by_namespace
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.behaviour import behaviour_of
from tugboat.localcluster.controllers.trafficmodel import PodInfo, TrafficModel, exposition

log = logging.getLogger(__name__)


_BY_NAMESPACE = "traffic/namespace"


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def pod_is_ready_endpoint(pod: Obj) -> bool:
    """Whether a pod is a Ready endpoint: an IP, not finished, not terminating, Ready."""
    status = pod.get("status") or {}
    if _meta(pod).get("deletionTimestamp") or not status.get("podIP"):
        return False
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def service_selector(service: Obj) -> dict[str, str] | None:
    """The label selector of a Service that selects pods (None for ExternalName or selector-less)."""
    spec = service.get("spec") or {}
    selector = spec.get("selector")
    if spec.get("type") == "ExternalName" or not selector:
        return None
    return {str(k): str(v) for k, v in selector.items()}


def selects(selector: Mapping[str, str], pod: Obj) -> bool:
    labels = _meta(pod).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_info(pod: Obj) -> PodInfo:
    behaviour = behaviour_of(pod)
    labels = _meta(pod).get("labels") or {}
    return PodInfo(
        error_rate=behaviour.error_rate,
        latency_ms=behaviour.latency_ms,
        rollouts_pod_template_hash=str(labels.get("rollouts-pod-template-hash") or ""),
        pod_template_hash=str(labels.get("pod-template-hash") or ""),
    )


class TrafficSimulator:
    """Feeds Service membership to a :class:`TrafficModel` and exports it (``/metrics/simulated``)."""

    name = "traffic"
    metrics_name = "simulated"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.model = TrafficModel(requests_per_second=ctx.options.requests_per_second)
        self.services = ctx.informers.informer(kinds.SERVICE)
        self.pods = ctx.informers.informer(kinds.POD)
        self.services.add_index(_BY_NAMESPACE, by_namespace)
        self.pods.add_index(_BY_NAMESPACE, by_namespace)
        self.services.add_handler(self._on_service)
        self.pods.add_handler(self._on_pod)
        ctx.shared["traffic"] = self

    async def run(self) -> None:
        await asyncio.Event().wait()  # all the work happens in informer handlers and scrapes

    # ---------------------------------------------------------------------------------- public API

    def set_weights(self, namespace: str, key: str, weights: Mapping[str, float] | None) -> None:
        """Spread the traffic entering at ``key`` over Services by ``weights`` ({service: weight}).

        ``key`` is a Service name (its own traffic is redistributed, e.g. an nginx canary Ingress on the
        stable Service, or an SMI TrafficSplit's root Service) or any other route name (an Istio
        VirtualService route: an entry point receiving the standard rate). Weights are relative (they
        need not add up to 100). None removes the route. Takes effect at once; counters stay monotonic.
        """
        self.model.set_weights(namespace, key, weights)

    def weights(self, namespace: str, key: str) -> dict[str, float] | None:
        """The weights last set for ``key`` (None when it has no route)."""
        return self.model.weights(namespace, key)

    def metrics_text(self) -> str:
        """The Prometheus text exposition of every pod's simulated traffic, computed now."""
        return exposition(self.model.samples())

    # ----------------------------------------------------------------------------------- handlers

    def _on_service(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        namespace, name = str(_meta(obj).get("namespace") or ""), str(_meta(obj).get("name"))
        if new is None:
            self.model.set_service(namespace, name, exists=False)
            return
        selector = service_selector(new)
        if old is not None and service_selector(old) == selector:
            return  # e.g. a status update: membership is unchanged
        self.model.set_service(namespace, name)
        members: dict[str, PodInfo] = {}
        if selector is not None:
            for pod in self.pods.by_index(_BY_NAMESPACE, namespace):
                if pod_is_ready_endpoint(pod) and selects(selector, pod):
                    members[str(_meta(pod).get("name"))] = pod_info(pod)
        self.model.set_members(namespace, name, members)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        namespace, name = str(_meta(obj).get("namespace") or ""), str(_meta(obj).get("name"))
        if new is None:
            self.model.remove_pod(namespace, name)
            return
        ready = pod_is_ready_endpoint(new)
        info = pod_info(new) if ready else None
        for service in self.services.by_index(_BY_NAMESPACE, namespace):
            selector = service_selector(service)
            if selector is None:
                continue
            member = info if info is not None and selects(selector, new) else None
            self.model.set_member(namespace, str(_meta(service).get("name")), name, member)
