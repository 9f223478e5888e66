"""Traffic routing for canary Rollouts: one small interface, one router per provider.

With ``spec.strategy.canary.trafficRouting`` the canary's share of traffic is set by a router (an
ingress controller, a service mesh, a gateway) rather than approximated by replica counts. The rollout
controller only ever talks to the :class:`Router` interface, as upstream's controller talks to its
``TrafficRoutingReconciler`` (research/rollouts.md §1.4): each reconcile it asks :func:`routers_for` for
the Rollout's routers, points them at the current pod hashes, sets the weight, reads it back, and removes
managed routes once the update is over or aborted (§2.6).

Routers: NGINX Ingress (:mod:`.nginx`), SMI (:mod:`.smi`), Istio (:mod:`.istio`) and the Gateway API
plugin form (:mod:`.gatewayapi`). Providers we do not implement (ALB, Ambassador, App Mesh, Traefik,
APISIX, other plugins) get a router that fails with a clear :class:`RouterError`, never silence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tugboat.kube.client import Client
from tugboat.rollouts import defaults
from tugboat.rollouts.trafficrouting import base, gatewayapi, istio, nginx, smi

RouterError = base.RouterError

__all__ = ["Router", "RouterError", "routers_for"]


class Router(Protocol):
    """One traffic provider configured for one Rollout."""

    type: str

    async def update_hash(self, canary_hash: str, stable_hash: str) -> None:
        """Tell the provider which pods are canary and which stable (Istio subset labels, ...)."""

    async def set_weight(self, weight: int) -> None:
        """Send ``weight`` percent of traffic to the canary, the rest to stable."""

    async def verify_weight(self, weight: int) -> bool | None:
        """Whether the provider's object holds ``weight``; ``None`` when it cannot be verified."""

    async def remove_managed_routes(self) -> None:
        """Remove the routes the controller added (header and mirror routes)."""


_PATH = "spec.strategy.canary.trafficRouting"
_Factory = Callable[[Client, base.RolloutRef, Mapping[str, Any]], Router]

# Upstream's order of providers (rollout/trafficrouting.go), then the plugins.
_PROVIDERS: tuple[tuple[str, str, _Factory | None], ...] = (
    ("istio", istio.TYPE, istio.IstioRouter),
    ("nginx", nginx.TYPE, nginx.NginxRouter),
    ("alb", "ALB", None),
    ("smi", smi.TYPE, smi.SMIRouter),
    ("ambassador", "Ambassador", None),
    ("appMesh", "AppMesh", None),
    ("traefik", "Traefik", None),
    ("apisix", "Apisix", None),
)
_PLUGINS: dict[str, tuple[str, _Factory]] = {
    gatewayapi.PLUGIN_NAME: (gatewayapi.TYPE, gatewayapi.GatewayAPIRouter),
}


def routers_for(client: Client, ro: dict[str, Any]) -> list[Router]:
    """The routers of ``ro``'s ``spec.strategy.canary.trafficRouting``; ``[]`` without traffic routing.

    Never raises: a provider that is unsupported or misconfigured yields a router whose every call
    raises its :class:`RouterError`. Routers are cheap; build them per reconcile.
    """
    routing = defaults.traffic_routing(ro)
    if routing is None:
        return []
    ref = base.RolloutRef.of(ro, default_namespace=client.namespace)
    routers: list[Router] = []
    for key, type_, factory in _PROVIDERS:
        config = routing.get(key)
        if config is None:
            continue
        if factory is None:
            message = f"{_PATH}.{key}: the {type_} traffic router is not supported"
            routers.append(base.Failing(type_, message))
        else:
            routers.append(_build(type_, factory, client, ref, config))
    plugins = base.mapping(routing.get("plugins"))
    for name in sorted(plugins):
        if name in _PLUGINS:
            type_, factory = _PLUGINS[name]
            routers.append(_build(type_, factory, client, ref, plugins[name]))
        else:
            message = f'{_PATH}.plugins: plugin "{name}" is not supported'
            routers.append(base.Failing(name, message))
    return routers


def _build(type_: str, factory: _Factory, client: Client, ref: base.RolloutRef, config: Any) -> Router:
    if not isinstance(config, Mapping):
        return base.Failing(type_, f"the {type_} traffic routing configuration must be an object")
    try:
        return factory(client, ref, config)
    except base.RouterError as exc:
        return base.Failing(type_, str(exc))
