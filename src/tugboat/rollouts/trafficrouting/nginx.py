"""The NGINX Ingress router: a canary Ingress beside each stable Ingress, weighted by annotation.

ingress-nginx splits traffic between an Ingress and a second Ingress for the same hosts and paths that
carries ``<prefix>/canary: "true"`` and ``<prefix>/canary-weight: "<w>"``. Argo Rollouts creates that
canary Ingress, named ``<rollout>-<stableIngress>-canary`` and owned by the Rollout, as a copy of the
stable Ingress's rules that send traffic to the stable Service, re-pointed at the canary Service
(research/rollouts.md §1.4, §2.8). Users' manifests and dashboards expect exactly that object, so the
name, the copied fields and the annotations are upstream's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tugboat.kube import kinds
from tugboat.kube.client import Client, Obj
from tugboat.rollouts.trafficrouting import base
from tugboat.util import jsondata

TYPE = "Nginx"
DEFAULT_PREFIX = "nginx.ingress.kubernetes.io"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
CANARY_SUFFIX = "-canary"
_MAX_NAME = 253
_PATH = "spec.strategy.canary.trafficRouting.nginx"


def canary_ingress_name(rollout: str, stable_ingress: str) -> str:
    """``<rollout>-<stableIngress>-canary``, the prefix cut so that the name fits in 253 characters."""
    prefix = f"{rollout}-{stable_ingress}"[: _MAX_NAME - len(CANARY_SUFFIX)]
    return prefix + CANARY_SUFFIX


class NginxRouter:
    """Creates and weights the canary Ingress of every stable Ingress of one Rollout."""

    type = TYPE

    def __init__(self, client: Client, ref: base.RolloutRef, config: Mapping[str, Any]) -> None:
        self.client = client
        self.ref = ref
        self.config = config
        self.prefix = str(config.get("annotationPrefix") or DEFAULT_PREFIX)
        listed = config.get("stableIngresses")
        if listed is not None:
            self.stable_ingresses = [str(name) for name in base.listing(listed)]
            self.field = (f"{_PATH}.stableIngresses", listed)
        else:
            self.stable_ingresses = [str(config.get("stableIngress") or "")]
            self.field = (f"{_PATH}.stableIngress", config.get("stableIngress") or "")
        if not any(self.stable_ingresses):
            raise base.RouterError(f"{_PATH}.stableIngress: Required value: a stable Ingress is required")

    async def update_hash(self, canary_hash: str, stable_hash: str) -> None:
        """Nothing to do: the canary and stable Services select the pods."""

    async def remove_managed_routes(self) -> None:
        """Nothing to do: header routes are not an nginx feature here."""

    async def set_weight(self, weight: int) -> None:
        for stable_name in self.stable_ingresses:
            await self._reconcile(stable_name, weight)

    async def verify_weight(self, weight: int) -> bool | None:
        """Whether every canary Ingress carries ``weight`` (what ingress-nginx then reads)."""
        key = f"{self.prefix}/canary-weight"
        for stable_name in self.stable_ingresses:
            name = canary_ingress_name(self.ref.name, stable_name)
            canary = await self.client.get_or_none(kinds.INGRESS, name, self.ref.namespace)
            annotations = base.mapping(base.mapping((canary or {}).get("metadata")).get("annotations"))
            if annotations.get(key) != str(weight):
                return False
        return True

    # ---------------------------------------------------------------------------------------------

    async def _reconcile(self, stable_name: str, weight: int) -> None:
        stable = await self.client.get_or_none(kinds.INGRESS, stable_name, self.ref.namespace)
        if stable is None:
            path, value = self.field
            raise base.invalid(path, value, f'{kinds.INGRESS} "{stable_name}" not found')
        name = canary_ingress_name(self.ref.name, stable_name)
        spec = self._canary_spec(stable, stable_name)
        annotations = self._annotations(stable, weight)
        live = await self.client.get_or_none(kinds.INGRESS, name, self.ref.namespace)
        if live is None:
            created = await base.create(self.client, kinds.INGRESS, self._new(name, annotations, spec))
            if created is not None:
                return

        def change(live: Obj) -> Obj:
            if not self.ref.controls(live):
                raise base.RouterError(f"canary ingress `{name}` controlled by different object")
            meta = live.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
            live["spec"] = spec
            return live

        await base.update(self.client, kinds.INGRESS, name, self.ref.namespace, change, live=live)

    def _new(self, name: str, annotations: dict[str, str], spec: Obj) -> Obj:
        return {
            "apiVersion": kinds.INGRESS.api_version,
            "kind": kinds.INGRESS.kind,
            "metadata": {
                "name": name,
                "namespace": self.ref.namespace,
                "annotations": annotations,
                "ownerReferences": [self.ref.owner_reference()],
            },
            "spec": spec,
        }

    def _canary_spec(self, stable: Obj, stable_name: str) -> Obj:
        """The stable Ingress's rules that reach the stable Service, re-pointed at the canary Service,
        with its TLS and class; other rules are left out (they would split traffic not ours to split)."""
        stable_spec = base.mapping(stable.get("spec"))
        rules = [rule for rule in map(self._canary_rule, base.listing(stable_spec.get("rules"))) if rule]
        if not rules:
            path, value = self.field
            detail = f"ingress `{stable_name}` has no rules using service {self.ref.stable_service} backend"
            raise base.invalid(path, value, detail)
        spec: Obj = {"rules": rules}
        if stable_spec.get("tls") is not None:
            spec["tls"] = jsondata.clone(stable_spec["tls"])
        if stable_spec.get("ingressClassName") is not None:
            spec["ingressClassName"] = stable_spec["ingressClassName"]
        return spec

    def _canary_rule(self, rule: Any) -> Obj | None:
        if not isinstance(rule, dict):
            return None
        copy = jsondata.clone(rule)
        found = False
        for path in base.listing(base.mapping(copy.get("http")).get("paths")):
            service = base.mapping(base.mapping(path).get("backend")).get("service")
            if isinstance(service, dict) and service.get("name") == self.ref.stable_service:
                service["name"] = self.ref.canary_service
                found = True
        return copy if found else None

    def _annotations(self, stable: Obj, weight: int) -> dict[str, str]:
        """Upstream's order: the ingress class, the additional (prefixed) annotations, the verbatim ones,
        then ``canary`` and ``canary-weight`` (and ``canary-weight-total``), which always win."""
        result: dict[str, str] = {}
        stable_annotations = base.mapping(base.mapping(stable.get("metadata")).get("annotations"))
        if CLASS_ANNOTATION in stable_annotations:
            result[CLASS_ANNOTATION] = str(stable_annotations[CLASS_ANNOTATION])
        for key, value in base.mapping(self.config.get("additionalIngressAnnotations")).items():
            full = key if key.startswith(self.prefix) else f"{self.prefix}/{key}"
            result[full] = base.text(value)
        for key, value in base.mapping(self.config.get("canaryIngressAnnotations")).items():
            result[key] = base.text(value)
        result[f"{self.prefix}/canary"] = "true"
        result[f"{self.prefix}/canary-weight"] = str(weight)
        if self.ref.max_weight is not None:
            result[f"{self.prefix}/canary-weight-total"] = str(self.ref.max_weight)
        return result
