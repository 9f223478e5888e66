"""The SMI router: one TrafficSplit, owned by the Rollout, between the canary and the stable Service.

Service Mesh Interface meshes (Linkerd, Open Service Mesh, ...) route the traffic addressed to a root
Service across the backends of a ``TrafficSplit`` in proportion to their weights. Argo Rollouts creates
that object itself (name ``trafficSplitName``, default the Rollout's name; root ``rootService``, default
the stable Service) and rewrites the two weights on every step (research/rollouts.md §1.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tugboat.kube.client import Client, Obj
from tugboat.rollouts.trafficrouting import base

TYPE = "SMI"
TRAFFIC_SPLIT = base.CustomType(
    "split.smi-spec.io",
    "TrafficSplit",
    "trafficsplits",
    ("v1alpha1", "v1alpha2", "v1alpha3"),
    used_by="trafficRouting.smi",
)


def _weight(value: Any) -> int | None:
    """A backend weight as written: an integer, or (v1alpha1, a quantity) an integral string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class SMIRouter:
    """Keeps the Rollout's TrafficSplit at the wanted weights."""

    type = TYPE

    def __init__(self, client: Client, ref: base.RolloutRef, config: Mapping[str, Any]) -> None:
        self.client = client
        self.ref = ref
        self.name = str(config.get("trafficSplitName") or ref.name)
        self.root = str(config.get("rootService") or ref.stable_service)

    async def update_hash(self, canary_hash: str, stable_hash: str) -> None:
        """Nothing to do: the canary and stable Services select the pods."""

    async def remove_managed_routes(self) -> None:
        """Nothing to do: SMI has no header or mirror routes."""

    async def set_weight(self, weight: int) -> None:
        kind, live = await TRAFFIC_SPLIT.get(self.client, self.name, self.ref.namespace)
        if live is None:
            created = await base.create(self.client, kind, self._new(kind.api_version, weight))
            if created is not None:
                return

        def change(obj: Obj) -> Obj:
            if not self.ref.controls(obj):
                raise base.RouterError(f"Rollout does not own TrafficSplit `{self.name}`")
            spec = obj.setdefault("spec", {})
            spec["service"] = self.root
            if not self._holds(obj, weight):
                spec["backends"] = self._backends(weight)
            return obj

        await base.update(self.client, TRAFFIC_SPLIT, self.name, self.ref.namespace, change, live=live)

    async def verify_weight(self, weight: int) -> bool | None:
        """Whether the TrafficSplit holds ``weight`` (what the mesh then reads)."""
        kind = await TRAFFIC_SPLIT.resolve(self.client)
        live = await self.client.get_or_none(kind, self.name, self.ref.namespace)
        return live is not None and self._holds(live, weight)

    # ---------------------------------------------------------------------------------------------

    def _backends(self, weight: int) -> list[Obj]:
        return [
            {"service": self.ref.canary_service, "weight": weight},
            {"service": self.ref.stable_service, "weight": 100 - weight},
        ]

    def _holds(self, obj: Obj, weight: int) -> bool:
        """Whether ``obj``'s backends are the wanted ones, however the weights are spelled."""
        backends = base.listing(base.mapping(obj.get("spec")).get("backends"))
        found = [(base.mapping(b).get("service"), _weight(base.mapping(b).get("weight"))) for b in backends]
        return found == [(b["service"], b["weight"]) for b in self._backends(weight)]

    def _new(self, api_version: str, weight: int) -> Obj:
        return {
            "apiVersion": api_version,
            "kind": TRAFFIC_SPLIT.kind,
            "metadata": {
                "name": self.name,
                "namespace": self.ref.namespace,
                "ownerReferences": [self.ref.owner_reference()],
            },
            "spec": {"service": self.root, "backends": self._backends(weight)},
        }
