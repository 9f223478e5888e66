"""The Istio router: destination weights in the user's VirtualServices, subset labels in a DestinationRule.

Unlike nginx and SMI, the objects belong to the user: the Rollout names VirtualServices (and, for a
subset-level split, a DestinationRule) and the controller edits only the weights of the destinations
that reach the canary or the stable Service (host-level split) or subset (subset-level split), in the
routes the Rollout names, plus the ``rollouts-pod-template-hash`` label of the two subsets. Behaviour and
error wording follow upstream's ``rollout/trafficrouting/istio`` (research/rollouts.md §1.4), so users'
VirtualServices and the messages they search for carry over.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tugboat.kube.client import Client, Obj
from tugboat.kube.jsonpatch import json_equal
from tugboat.rollouts.trafficrouting import base
from tugboat.util import jsondata

TYPE = "Istio"
_VERSIONS = ("v1beta1", "v1", "v1alpha3")
VIRTUAL_SERVICE = base.CustomType(
    "networking.istio.io", "VirtualService", "virtualservices", _VERSIONS, used_by="trafficRouting.istio"
)
DESTINATION_RULE = base.CustomType(
    "networking.istio.io", "DestinationRule", "destinationrules", _VERSIONS, used_by="trafficRouting.istio"
)
_OMITTED = (
    "spec.{kind}[] should be set in VirtualService and it must have exactly one route when omitting "
    "spec.strategy.canary.trafficRouting.istio.virtualService.{field}"
)


def virtual_service_key(reference: str, default_namespace: str) -> tuple[str, str]:
    """``(namespace, name)`` of a VirtualService reference: ``name``, ``name.namespace`` or
    ``name.namespace.svc.cluster.local``-like forms, as Istio itself accepts (the last label before the
    cluster suffix is the namespace)."""
    value = reference.removesuffix(".cluster.local")
    name, dot, namespace = value.rpartition(".")
    if dot and name:
        return namespace, name
    return default_namespace, value


def _short_host(destination: Mapping[str, Any]) -> str:
    """The Service name of a destination host (``svc``, ``svc.ns``, ``svc.ns.svc.cluster.local``)."""
    host = str(base.mapping(destination.get("destination")).get("host") or "")
    return host.split(".", 1)[0]


def _subset(destination: Mapping[str, Any]) -> str:
    return str(base.mapping(destination.get("destination")).get("subset") or "")


@dataclass(frozen=True)
class _VirtualService:
    namespace: str
    name: str
    http: tuple[str, ...]
    tls: tuple[Mapping[str, Any], ...]
    tcp: tuple[Mapping[str, Any], ...]


class IstioRouter:
    """Weights the canary and stable destinations of the Rollout's VirtualServices."""

    type = TYPE

    def __init__(self, client: Client, ref: base.RolloutRef, config: Mapping[str, Any]) -> None:
        self.client = client
        self.ref = ref
        many = config.get("virtualServices")
        entries = base.listing(many) if many is not None else [config.get("virtualService")]
        self.virtual_services = [self._parse(entry) for entry in entries]
        if not self.virtual_services:
            raise base.RouterError(
                "spec.strategy.canary.trafficRouting.istio: Required value: virtualService or virtualServices"
            )
        rule = config.get("destinationRule")
        self.rule = base.mapping(rule) if rule is not None else None
        if self.rule is not None and not self.rule.get("name"):
            raise base.RouterError(
                "spec.strategy.canary.trafficRouting.istio.destinationRule.name: Required value"
            )
        self.canary_subset = str((self.rule or {}).get("canarySubsetName") or "")
        self.stable_subset = str((self.rule or {}).get("stableSubsetName") or "")
        extra = base.listing((self.rule or {}).get("additionalSubsetNames"))
        self.additional_subsets = frozenset(str(name) for name in extra if name)

    def _parse(self, entry: Any) -> _VirtualService:
        vs = base.mapping(entry)
        if not vs.get("name"):
            raise base.RouterError(
                "spec.strategy.canary.trafficRouting.istio.virtualService.name: Required value"
            )
        namespace, name = virtual_service_key(str(vs["name"]), self.ref.namespace)
        return _VirtualService(
            namespace=namespace,
            name=name,
            http=tuple(str(route) for route in base.listing(vs.get("routes"))),
            tls=tuple(base.mapping(route) for route in base.listing(vs.get("tlsRoutes"))),
            tcp=tuple(base.mapping(route) for route in base.listing(vs.get("tcpRoutes"))),
        )

    # ------------------------------------------------------------------------------------ interface

    async def update_hash(self, canary_hash: str, stable_hash: str) -> None:
        """Point the canary and stable subsets of the DestinationRule (if any) at the two pod hashes."""
        if self.rule is None:
            return
        name = str(self.rule.get("name") or "")

        def change(obj: Obj) -> Obj:
            meta = obj.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), base.MANAGED_BY: self.ref.name}
            for subset in base.listing(base.mapping(obj.get("spec")).get("subsets")):
                if not isinstance(subset, dict):
                    continue
                if subset.get("name") == self.canary_subset:
                    _label(subset, canary_hash)
                elif subset.get("name") == self.stable_subset:
                    _label(subset, stable_hash)
            return obj

        await base.update(self.client, DESTINATION_RULE, name, self.ref.namespace, change)

    async def set_weight(self, weight: int) -> None:
        for vs in self.virtual_services:
            await base.update(
                self.client,
                VIRTUAL_SERVICE,
                vs.name,
                vs.namespace,
                functools.partial(self._weighted, vs=vs, weight=weight),
            )

    async def verify_weight(self, weight: int) -> bool | None:
        """Whether every VirtualService holds ``weight`` (what istiod then pushes to the proxies)."""
        for vs in self.virtual_services:
            _, live = await VIRTUAL_SERVICE.get(self.client, vs.name, vs.namespace)
            if live is None or not json_equal(self._weighted(jsondata.clone(live), vs, weight), live):
                return False
        return True

    async def remove_managed_routes(self) -> None:
        """Drop the http routes the Rollout manages (``managedRoutes``, header and mirror steps)."""
        names = set(self.ref.managed_routes)
        for step in self.ref.steps:
            for key in ("setHeaderRoute", "setMirrorRoute"):
                route_name = base.mapping(step.get(key)).get("name")
                if route_name:
                    names.add(str(route_name))
        if not names:
            return

        def change(obj: Obj) -> Obj:
            spec = base.mapping(obj.get("spec"))
            if isinstance(spec.get("http"), list) and isinstance(spec, dict):
                spec["http"] = [r for r in spec["http"] if base.mapping(r).get("name") not in names]
            return obj

        for vs in self.virtual_services:
            _, live = await VIRTUAL_SERVICE.get(self.client, vs.name, vs.namespace)
            if live is not None:
                await base.update(self.client, VIRTUAL_SERVICE, vs.name, vs.namespace, change, live=live)

    # ------------------------------------------------------------------------------------- weights

    def _weighted(self, obj: Obj, vs: _VirtualService, weight: int) -> Obj:
        """``obj`` (a copy) with the selected http, tls and tcp routes at ``weight``."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise base.RouterError(f"VirtualService `{vs.name}` has no spec")
        http = spec.get("http")
        if isinstance(http, list):
            for index in self._http_indexes(http, vs):
                self._weigh(http[index], vs, weight)
        elif vs.http:
            raise base.RouterError(f"HTTP Route '{vs.http[0]}' is not found in the defined Virtual Service.")
        for kind, field, wanted in (("tls", "tlsRoutes", vs.tls), ("tcp", "tcpRoutes", vs.tcp)):
            routes = spec.get(kind)
            if isinstance(routes, list):
                for index in _port_indexes(routes, wanted, kind=kind, field=field):
                    self._weigh(routes[index], vs, weight)
        return obj

    def _http_indexes(self, http: list[Any], vs: _VirtualService) -> list[int]:
        if vs.http:
            indexes = []
            for wanted in vs.http:
                found = [i for i, route in enumerate(http) if base.mapping(route).get("name") == wanted]
                if not found:
                    raise base.RouterError(
                        f"HTTP Route '{wanted}' is not found in the defined Virtual Service."
                    )
                indexes.append(found[0])
            return indexes
        if len(http) == 1:
            return [0]
        managed = self.ref.managed_routes
        unmanaged = [i for i, route in enumerate(http) if base.mapping(route).get("name") not in managed]
        if len(unmanaged) > 1:
            raise base.RouterError(_OMITTED.format(kind="http", field="routes"))
        return unmanaged

    def _weigh(self, route: Any, vs: _VirtualService, weight: int) -> None:
        """Set the canary destination to ``weight`` and the stable one to the rest; destinations that
        are neither (nor an additional subset) are dropped, as upstream does (leftovers of experiments)."""
        if not isinstance(route, dict):
            raise base.RouterError(f"VirtualService `{vs.name}` has a malformed route")
        destinations = [d for d in base.listing(route.get("route")) if isinstance(d, dict)]
        self._check(destinations)
        extra = sum(_int(d.get("weight")) for d in destinations if _subset(d) in self.additional_subsets)
        stable_weight = max(0, 100 - weight - extra)
        kept = []
        for destination in destinations:
            host, subset = _short_host(destination), _subset(destination)
            if host and (host == self.ref.canary_service or (subset and subset == self.canary_subset)):
                destination["weight"] = weight
            elif host and (host == self.ref.stable_service or (subset and subset == self.stable_subset)):
                destination["weight"] = stable_weight
            elif host and subset not in self.additional_subsets:
                continue
            kept.append(destination)
        route["route"] = kept

    def _check(self, destinations: list[Obj]) -> None:
        """Upstream's validation: the route must reach both subsets (subset-level) or both Services."""
        hosts = {_short_host(d) for d in destinations}
        subsets = {_subset(d) for d in destinations}
        if self.rule is not None:
            if not self.canary_subset or self.canary_subset not in subsets:
                raise base.RouterError(
                    f"Canary DestinationRule subset '{self.canary_subset}' not found in route"
                )
            if not self.stable_subset or self.stable_subset not in subsets:
                raise base.RouterError(
                    f"Stable DestinationRule subset '{self.stable_subset}' not found in route"
                )
            return
        if not self.ref.canary_service or self.ref.canary_service not in hosts:
            raise base.RouterError(f"Canary Service '{self.ref.canary_service}' not found in route")
        if not self.ref.stable_service or self.ref.stable_service not in hosts:
            raise base.RouterError(f"Stable Service '{self.ref.stable_service}' not found in route")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _label(subset: dict[str, Any], pod_hash: str) -> None:
    labels = subset.get("labels")
    if not isinstance(labels, dict):
        labels = subset["labels"] = {}
    if pod_hash:
        labels[base.HASH_LABEL] = pod_hash
    else:
        labels.pop(base.HASH_LABEL, None)


def _port_indexes(
    routes: list[Any], wanted: tuple[Mapping[str, Any], ...], *, kind: str, field: str
) -> list[int]:
    """The tls or tcp routes to weight: the only one when the Rollout names none, else those whose
    matches use exactly the named port (and, for tls, exactly the named SNI hosts)."""
    if not wanted:
        if len(routes) > 1:
            raise base.RouterError(_OMITTED.format(kind=kind, field=field))
        return [0] if routes else []
    indexes: list[int] = []
    for entry in wanted:
        found = [i for i, route in enumerate(routes) if _matches(route, entry, tls=kind == "tls")]
        if not found:
            raise base.RouterError(f"No matching {kind.upper()} routes found in the defined Virtual Service.")
        indexes.extend(found)
    return indexes


def _matches(route: Any, entry: Mapping[str, Any], *, tls: bool) -> bool:
    matches = [base.mapping(m) for m in base.listing(base.mapping(route).get("match"))]
    ports = {m.get("port") or 0 for m in matches}
    if len(ports) > 1:
        return False
    port = next(iter(ports), 0)
    if port != (entry.get("port") or 0):
        return False
    if not tls:
        return True
    hosts = {str(h) for m in matches for h in base.listing(m.get("sniHosts"))}
    return hosts == {str(h) for h in base.listing(entry.get("sniHosts"))}
