"""Steers the simulated traffic the way the cluster's traffic-routing objects say, as a mesh or proxy would.

On a real cluster an ingress controller, a service mesh or a Gateway implementation reads routing objects
and splits requests between versions; the rollout controller's traffic routers only write those objects.
Here nothing would act on them, so a canary's metrics would never show its share. This controller plays
the data plane: it watches the routing objects and hands their weights to the traffic simulator
(``ctx.shared["traffic"]``, :meth:`traffic.TrafficSimulator.set_weights`):

- nginx canary Ingress (``networking.k8s.io/v1``, annotation ``<prefix>/canary: "true"`` for any prefix,
  ``<prefix>/canary-weight``, optionally ``<prefix>/canary-weight-total``, default 100): every backend
  Service of the canary Ingress takes its weight of the traffic of the stable Service that a non-canary
  Ingress serves at the same host and path. Key: the stable Service.
- SMI ``TrafficSplit`` (``split.smi-spec.io`` v1alpha1 to v1alpha3): the root Service's traffic goes to
  the backends by weight (v1alpha1 quantities such as ``500m`` are understood). Key: the root Service.
- Istio ``VirtualService`` (``networking.istio.io`` v1alpha3, v1beta1, v1): each HTTP route is an entry
  point of its own, key ``virtualservice/<name>/<route name or index>``, split over the destination
  hosts' Services (a lone destination without a weight takes everything).
- Gateway API ``HTTPRoute`` (``gateway.networking.k8s.io`` v1, v1beta1): each rule is an entry point,
  key ``httproute/<name>/<rule index>``, split over its Service ``backendRefs`` (weight defaults to 1).

Only Services of the routing object's own namespace count (a destination elsewhere, or outside the
cluster, is left out). Limit: the traffic model routes to Services, not to subsets of their pods, so an
Istio destination with a ``subset`` (a DestinationRule's subset labels, such as a
``rollouts-pod-template-hash``) counts for its host Service as a whole: all of that Service's Ready pods
share its weight evenly. Traffic routing with subsets therefore shows no split between versions here.

The custom kinds are watched only while the cluster serves them: the controller watches the
CustomResourceDefinitions, starts an informer when an established CRD serves one of the versions above
(the newest first) and stops it when the CRD goes away. Every change of a routing object recomputes the
routes of its namespace and sets only the keys that changed; a key no longer produced (its object deleted,
or its CRD) is reset with ``set_weights(..., None)``. When two objects produce the same key (an nginx
canary and a TrafficSplit on the same Service), the first wins: Ingresses, then HTTPRoutes, TrafficSplits,
VirtualServices, each by name.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tugboat.kube import kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import Informer, by_namespace
from tugboat.localcluster.controllers.base import Context

log = logging.getLogger(__name__)

Routes = dict[str, dict[str, float]]  # route key -> {Service name: weight}

_BY_NAMESPACE = "trafficroutes/namespace"
_DEFAULT_WEIGHT_TOTAL = 100.0


class WeightSink(Protocol):
    """What this controller needs of the traffic simulator."""

    def set_weights(self, namespace: str, key: str, weights: Mapping[str, float] | None) -> None: ...


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> dict[str, Any]:
    return obj.get("spec") or {}


def _namespace_of(obj: Obj) -> str:
    return str(_meta(obj).get("namespace") or "")


def weight_of(value: object, *, default: float = 0.0) -> float:
    """A routing weight: a number, a numeric string or a quantity such as ``"500m"``; ``default`` if absent.

    Unparseable or negative weights count as 0 (that destination gets nothing).
    """
    if value is None:
        return default
    if isinstance(value, bool):
        return 0.0
    number: float
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        scale = 1.0
        if text.endswith("m"):
            text, scale = text[:-1], 0.001
        try:
            number = float(text) * scale
        except ValueError:
            return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def service_name(host: object, namespace: str) -> str | None:
    """The Service a host names in ``namespace`` (``web``, ``web.ns``, ``web.ns.svc.cluster.local``).

    None for a host in another namespace, outside the cluster, or a wildcard.
    """
    if not isinstance(host, str) or not host or "*" in host:
        return None
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0]
    if parts[1] == namespace and (len(parts) == 2 or parts[2] == "svc"):
        return parts[0]
    return None


def _add(weights: dict[str, float], service: str, weight: float) -> None:
    weights[service] = weights.get(service, 0.0) + weight


# ------------------------------------------------------------------------------------------- nginx


def canary_prefix(ingress: Obj) -> str | None:
    """The annotation prefix (``nginx.ingress.kubernetes.io/``) of a canary Ingress, None if not one."""
    annotations = _meta(ingress).get("annotations") or {}
    for key in sorted(annotations):
        if key.endswith("/canary") and str(annotations[key]).strip().lower() == "true":
            return key[: -len("canary")]
    return None


def ingress_backends(ingress: Obj) -> dict[tuple[str, str], str]:
    """``{(host, path): Service name}`` of an Ingress's rules (a missing path counts as ``/``)."""
    backends: dict[tuple[str, str], str] = {}
    for rule in _spec(ingress).get("rules") or []:
        host = str(rule.get("host") or "")
        for path in (rule.get("http") or {}).get("paths") or []:
            service = ((path.get("backend") or {}).get("service") or {}).get("name")
            if service:
                backends.setdefault((host, str(path.get("path") or "/")), str(service))
    return backends


def nginx_routes(ingresses: Iterable[Obj]) -> Routes:
    """The routes of the nginx canary Ingresses among ``ingresses`` (all of one namespace)."""
    ordered = sorted(ingresses, key=lambda i: str(_meta(i).get("name")))
    stable: dict[tuple[str, str], str] = {}
    canaries: list[tuple[Obj, str]] = []
    for ingress in ordered:
        prefix = canary_prefix(ingress)
        if prefix is None:
            for place, service in ingress_backends(ingress).items():
                stable.setdefault(place, service)
        else:
            canaries.append((ingress, prefix))
    routes: Routes = {}
    for ingress, prefix in canaries:
        annotations = _meta(ingress).get("annotations") or {}
        total = weight_of(annotations.get(prefix + "canary-weight-total"), default=_DEFAULT_WEIGHT_TOTAL)
        weight = min(weight_of(annotations.get(prefix + "canary-weight")), total)
        for place, canary in ingress_backends(ingress).items():
            main = stable.get(place)
            if main is None or main == canary or main in routes:
                continue
            routes[main] = {main: total - weight, canary: weight}
    return routes


# --------------------------------------------------------------------------------- custom resources


def smi_routes(split: Obj) -> Routes:
    """An SMI TrafficSplit's route: its root Service's traffic over the backends."""
    spec = _spec(split)
    root = service_name(spec.get("service"), _namespace_of(split))
    weights: dict[str, float] = {}
    for backend in spec.get("backends") or []:
        name = service_name(backend.get("service"), _namespace_of(split))
        if name:
            _add(weights, name, weight_of(backend.get("weight")))
    return {root: weights} if root and weights else {}


def istio_routes(virtual_service: Obj) -> Routes:
    """An Istio VirtualService's HTTP routes, each split over its destinations' Services."""
    name, namespace = str(_meta(virtual_service).get("name")), _namespace_of(virtual_service)
    routes: Routes = {}
    for index, route in enumerate(_spec(virtual_service).get("http") or []):
        destinations = route.get("route") or []
        lone = len(destinations) == 1
        weights: dict[str, float] = {}
        for destination in destinations:
            host = service_name((destination.get("destination") or {}).get("host"), namespace)
            if host:
                _add(weights, host, weight_of(destination.get("weight"), default=100.0 if lone else 0.0))
        if weights:
            routes[f"virtualservice/{name}/{route.get('name') or index}"] = weights
    return routes


def gateway_routes(http_route: Obj) -> Routes:
    """A Gateway API HTTPRoute's rules, each split over its Service backendRefs."""
    name, namespace = str(_meta(http_route).get("name")), _namespace_of(http_route)
    routes: Routes = {}
    for index, rule in enumerate(_spec(http_route).get("rules") or []):
        weights: dict[str, float] = {}
        for ref in rule.get("backendRefs") or []:
            if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
                continue
            if (ref.get("namespace") or namespace) != namespace or not ref.get("name"):
                continue
            _add(weights, str(ref["name"]), weight_of(ref.get("weight"), default=1.0))
        if weights:
            routes[f"httproute/{name}/{index}"] = weights
    return routes


@dataclass(frozen=True)
class RoutingApi:
    """A custom routing kind: where the cluster may serve it and how its objects route."""

    group: str
    plural: str
    kind: str
    versions: tuple[str, ...]  # the ones we read, preferred first
    routes: Callable[[Obj], Routes]

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}"


# In precedence order (the first object to produce a key wins).
ROUTING_APIS: tuple[RoutingApi, ...] = (
    RoutingApi("gateway.networking.k8s.io", "httproutes", "HTTPRoute", ("v1", "v1beta1"), gateway_routes),
    RoutingApi(
        "split.smi-spec.io", "trafficsplits", "TrafficSplit", ("v1alpha3", "v1alpha2", "v1alpha1"), smi_routes
    ),
    RoutingApi(
        "networking.istio.io",
        "virtualservices",
        "VirtualService",
        ("v1", "v1beta1", "v1alpha3"),
        istio_routes,
    ),
)


def _established(crd: Obj) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def served_kind(api: RoutingApi, crds: Iterable[Obj]) -> kinds.Kind | None:
    """The kind to watch ``api`` at: the preferred version an established, namespaced CRD serves."""
    for crd in crds:
        spec = _spec(crd)
        if spec.get("group") != api.group or (spec.get("names") or {}).get("plural") != api.plural:
            continue
        if _meta(crd).get("deletionTimestamp") or spec.get("scope") != "Namespaced" or not _established(crd):
            return None
        served = {str(v.get("name")) for v in spec.get("versions") or [] if v.get("served")}
        for version in api.versions:
            if version in served:
                return kinds.Kind(api.group, version, api.kind, api.plural)
        return None
    return None


# --------------------------------------------------------------------------------------- controller


class TrafficRouter:
    """Keeps the traffic simulator's routes equal to what the routing objects of each namespace say."""

    name = "trafficroutes"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ingresses = ctx.informers.informer(kinds.INGRESS)
        self.ingresses.add_index(_BY_NAMESPACE, by_namespace)
        self.ingresses.add_handler(self._on_object)
        self.crds = ctx.informers.informer(kinds.CRD)
        self.crds.add_handler(self._on_crd)
        self.watched: dict[str, Informer] = {}  # RoutingApi.resource -> its informer while served
        self.applied: dict[str, Routes] = {}  # namespace -> the routes set in the simulator
        self._crds_changed = asyncio.Event()

    async def run(self) -> None:
        self.refresh_all()  # after a restart: drop routes of objects that went away meanwhile
        try:
            while True:
                self._crds_changed.clear()
                await self._follow_crds()
                await self._crds_changed.wait()
        finally:
            watched, self.watched = list(self.watched.values()), {}
            for informer in watched:
                await informer.stop()

    # ------------------------------------------------------------------------------------ routes

    def routes_of(self, namespace: str) -> Routes:
        """What the routing objects of ``namespace`` currently say, by route key."""
        routes = nginx_routes(self.ingresses.by_index(_BY_NAMESPACE, namespace))
        for api in ROUTING_APIS:
            informer = self.watched.get(api.resource)
            if informer is None:
                continue
            for obj in informer.by_index(_BY_NAMESPACE, namespace):
                for key, weights in api.routes(obj).items():
                    routes.setdefault(key, weights)
        return routes

    def refresh(self, namespace: str) -> None:
        """Set the routes of ``namespace`` that changed; reset the ones no longer there."""
        sink: WeightSink | None = self.ctx.shared.get("traffic")
        if sink is None:
            return  # the traffic simulator is not running: nothing to steer
        desired = self.routes_of(namespace)
        applied = self.applied.get(namespace, {})
        for key in sorted(applied.keys() - desired.keys()):
            sink.set_weights(namespace, key, None)
        for key, weights in sorted(desired.items()):
            if applied.get(key) != weights:
                log.debug("traffic route %s/%s: %s", namespace, key, weights)
                sink.set_weights(namespace, key, weights)
        if desired:
            self.applied[namespace] = desired
        else:
            self.applied.pop(namespace, None)

    def refresh_all(self) -> None:
        for namespace in sorted(self.applied):
            self.refresh(namespace)

    def _on_object(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        self.refresh(_namespace_of(obj))

    # -------------------------------------------------------------------------------------- CRDs

    def _on_crd(self, old: Obj | None, new: Obj | None) -> None:
        self._crds_changed.set()

    async def _follow_crds(self) -> None:
        """Watch each routing kind the cluster serves now; stop watching the ones it no longer serves."""
        crds = self.crds.objects()
        for api in ROUTING_APIS:
            kind = served_kind(api, crds)
            current = self.watched.get(api.resource)
            if current is not None and current.kind == kind:
                continue
            if current is not None:
                del self.watched[api.resource]
                await current.stop()
                log.info("stopped following %s", api.resource)
                self.refresh_all()
            if kind is not None:
                informer = Informer(self.ctx.client, kind)
                informer.add_index(_BY_NAMESPACE, by_namespace)
                informer.add_handler(self._on_object)
                self.watched[api.resource] = informer
                informer.start()
                log.info("following %s at %s", api.resource, kind.version)
