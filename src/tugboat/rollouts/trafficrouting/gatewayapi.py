"""The Gateway API router: backend weights in the user's HTTPRoutes.

Upstream has no built-in Gateway API support; users configure the ``argoproj-labs/gatewayAPI`` traffic
router plugin (``trafficRouting.plugins["argoproj-labs/gatewayAPI"]``) and we accept that configuration
unchanged, doing in-process what the plugin does: in every rule of the named HTTPRoutes, the backendRef
to the canary Service gets the canary weight and the one to the stable Service the rest; rules the
controller manages (header routes) are left alone; while a canary runs, the route carries the plugin's
in-progress label. Other route kinds and route selectors are refused with a clear error.
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

TYPE = "GatewayAPI"
PLUGIN_NAME = "argoproj-labs/gatewayAPI"
IN_PROGRESS_LABEL = "rollouts.argoproj.io/gatewayapi-canary"
IN_PROGRESS_VALUE = "in-progress"
HTTP_ROUTE = base.CustomType(
    "gateway.networking.k8s.io",
    "HTTPRoute",
    "httproutes",
    ("v1", "v1beta1"),
    used_by=f'trafficRouting.plugins["{PLUGIN_NAME}"]',
)
_UNSUPPORTED = (
    "grpcRoute",
    "grpcRoutes",
    "tcpRoute",
    "tcpRoutes",
    "tlsRoute",
    "tlsRoutes",
    "httpRouteSelector",
    "grpcRouteSelector",
    "tcpRouteSelector",
    "tlsRouteSelector",
)
NO_ROUTES = (
    "No routes configured. At least one of 'httpRoutes', 'grpcRoutes', 'tcpRoutes', 'tlsRoutes', "
    "'httpRoute', 'grpcRoute', 'tcpRoute' or 'tlsRoute' must be set"
)


@dataclass(frozen=True)
class _Route:
    name: str
    use_header_routes: bool


class GatewayAPIRouter:
    """Weights the canary and stable backendRefs of the Rollout's HTTPRoutes."""

    type = TYPE

    def __init__(self, client: Client, ref: base.RolloutRef, config: Mapping[str, Any]) -> None:
        self.client = client
        self.ref = ref
        unsupported = [key for key in _UNSUPPORTED if config.get(key)]
        if unsupported:
            raise base.RouterError(
                f"{PLUGIN_NAME}: {', '.join(unsupported)} not supported (only HTTPRoutes named by "
                "httpRoute or httpRoutes)"
            )
        self.namespace = str(config.get("namespace") or ref.namespace)
        routes = [
            _Route(str(base.mapping(r).get("name") or ""), bool(base.mapping(r).get("useHeaderRoutes")))
            for r in base.listing(config.get("httpRoutes"))
        ]
        if config.get("httpRoute"):
            routes.append(_Route(str(config["httpRoute"]), True))
        if not routes:
            raise base.RouterError(NO_ROUTES)
        if not all(route.name for route in routes):
            raise base.RouterError(f"{PLUGIN_NAME}: every httpRoutes entry needs a name")
        self.routes = routes
        self.label_key: str | None = None
        if not config.get("disableInProgressLabel"):
            self.label_key = str(config.get("inProgressLabelKey") or IN_PROGRESS_LABEL)
        self.label_value = str(config.get("inProgressLabelValue") or IN_PROGRESS_VALUE)

    # ------------------------------------------------------------------------------------ interface

    async def update_hash(self, canary_hash: str, stable_hash: str) -> None:
        """Nothing to do: the canary and stable Services select the pods."""

    async def set_weight(self, weight: int) -> None:
        for route in self.routes:
            change = functools.partial(self._weighted, name=route.name, weight=weight)
            await base.update(self.client, HTTP_ROUTE, route.name, self.namespace, change)

    async def verify_weight(self, weight: int) -> bool | None:
        """Whether every HTTPRoute holds ``weight`` (what the gateway controller then programs)."""
        for route in self.routes:
            _, live = await HTTP_ROUTE.get(self.client, route.name, self.namespace)
            if live is None or not json_equal(self._weighted(jsondata.clone(live), route.name, weight), live):
                return False
        return True

    async def remove_managed_routes(self) -> None:
        """Drop the rules named after ``managedRoutes`` from the routes that take header routes."""
        if not self.ref.managed_routes:
            return
        for route in self.routes:
            if not route.use_header_routes:
                continue
            _, live = await HTTP_ROUTE.get(self.client, route.name, self.namespace)
            if live is not None:
                await base.update(
                    self.client, HTTP_ROUTE, route.name, self.namespace, self._without_managed, live=live
                )

    # ---------------------------------------------------------------------------------------------

    def _weighted(self, obj: Obj, name: str, weight: int) -> Obj:
        canary, stable = self.ref.canary_service, self.ref.stable_service
        found_canary = found_stable = False
        for rule in base.listing(base.mapping(obj.get("spec")).get("rules")):
            if not isinstance(rule, dict) or self._is_managed(rule):
                continue
            for backend in base.listing(rule.get("backendRefs")):
                if not isinstance(backend, dict):
                    continue
                if backend.get("name") == canary:
                    backend["weight"] = weight
                    found_canary = True
                elif backend.get("name") == stable:
                    backend["weight"] = 100 - weight
                    found_stable = True
        if not (found_canary and found_stable):
            raise base.RouterError(f"backendRef was not found in httpRoute `{name}`")
        if self.label_key is not None:
            meta = obj.setdefault("metadata", {})
            labels = dict(meta.get("labels") or {})
            if weight > 0:
                labels[self.label_key] = self.label_value
            else:
                labels.pop(self.label_key, None)
            if labels or meta.get("labels") is not None:
                meta["labels"] = labels
        return obj

    def _is_managed(self, rule: Mapping[str, Any]) -> bool:
        """A header-route rule: named after a managed route (``<name>`` or ``<name>-<n>``), or, as rules
        from older plugin versions carry no name, one whose only backend is the canary Service."""
        name = rule.get("name")
        if isinstance(name, str) and name:
            for managed in self.ref.managed_routes:
                suffix = name.removeprefix(f"{managed}-")
                if name == managed or (suffix != name and suffix.isdigit()):
                    return True
        backends = base.listing(rule.get("backendRefs"))
        return len(backends) == 1 and base.mapping(backends[0]).get("name") == self.ref.canary_service

    def _without_managed(self, obj: Obj) -> Obj:
        spec = obj.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("rules"), list):
            spec["rules"] = [rule for rule in spec["rules"] if not self._is_named_managed(rule)]
        return obj

    def _is_named_managed(self, rule: Any) -> bool:
        """Only rules named after a managed route are removed: an unnamed canary-only rule may be the
        user's own."""
        name = base.mapping(rule).get("name")
        return isinstance(name, str) and bool(name) and self._is_managed({"name": name, "backendRefs": []})
