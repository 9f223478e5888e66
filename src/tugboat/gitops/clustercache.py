"""The GitOps controller's view of one destination cluster: every object of every listable kind.

gitops-engine's ``ClusterCache`` in Python (research/argocd.md §3.1): discover the cluster's resource
types (preferred versions), keep an :class:`~tugboat.kube.informers.Informer` per type, and index the
objects by the Application instance that tracks them (the ``argocd.argoproj.io/tracking-id``
annotation), so a comparison reads its live objects from memory instead of listing the cluster. CRDs
coming and going re-run discovery, so an app that installs a CRD and its custom resources in one sync
sees both. High-churn types that no app manages (Events, Leases, Endpoints, EndpointSlices) are
excluded, as in Argo CD's default ``resource.exclusions``.

Changes to tracked objects are reported to ``on_change(instance, key)`` unless only fields that cannot
change the comparison moved (``resourceVersion``, ``managedFields``, a ``status`` that leaves the health
unchanged): Argo CD's ``ignoreResourceUpdates``, which keeps a busy cluster from re-comparing apps for
nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tugboat.gitops import health, resourcekey, tracking
from tugboat.kube import errors as kube_errors
from tugboat.kube import informers
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind

log = logging.getLogger(__name__)

ChangeCallback = Callable[[str, resourcekey.ResourceKey], None]

EXCLUDED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("", "Endpoints"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("coordination.k8s.io", "Lease"),
        ("", "ComponentStatus"),
        ("", "Binding"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
    }
)
"""Group/kinds never cached (Argo CD's default resource exclusions, plus kinds that cannot be watched)."""

INSTANCE_INDEX = "instance"
_IGNORED_METADATA = ("resourceVersion", "managedFields", "generation")


class ClusterCacheError(Exception):
    """Discovery of the cluster's resource types failed."""


def _without_volatile(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = {k: v for k, v in meta.items() if k not in _IGNORED_METADATA}
    return out


class ClusterCache:
    """Informers on every resource type of one cluster, with objects indexed by tracking instance."""

    def __init__(
        self,
        client: Client,
        *,
        tracking_method: str = tracking.METHOD_ANNOTATION,
        health_checks: health.HealthChecks | None = None,
        excluded: Iterable[tuple[str, str]] = EXCLUDED,
        on_change: ChangeCallback | None = None,
    ) -> None:
        self.client = client
        self.tracking_method = tracking_method
        self.health_checks = health_checks or health.DEFAULT
        self.excluded = frozenset(excluded)
        self._callbacks: list[ChangeCallback] = [on_change] if on_change else []
        self._kinds: dict[tuple[str, str], Kind] = {}
        self._informers: dict[tuple[str, str], informers.Informer] = {}
        self._rediscover = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    # -- lifecycle --

    def add_callback(self, callback: ChangeCallback) -> None:
        self._callbacks.append(callback)

    async def start(self) -> None:
        """Discover, start the informers and wait until each has listed; then follow CRD changes."""
        await self._sync_kinds()
        await asyncio.gather(*(inf.wait_synced() for inf in list(self._informers.values())))
        self.synced.set()
        self._task = asyncio.create_task(self._rediscover_loop(), name="clustercache-discovery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()), return_exceptions=True)
        self._informers.clear()

    def request_discovery(self) -> None:
        """Re-run discovery soon (a CRD was created or deleted)."""
        self._rediscover.set()

    async def _rediscover_loop(self) -> None:
        while True:
            await self._rediscover.wait()
            await asyncio.sleep(0.2)  # let a burst of CRD changes settle
            self._rediscover.clear()
            try:
                await self._sync_kinds()
            except (ClusterCacheError, kube_errors.KubeError) as exc:
                log.warning("cluster cache: discovery failed, retrying: %s", exc)
                await asyncio.sleep(2)
                self._rediscover.set()

    # -- discovery --

    async def discover(self) -> dict[tuple[str, str], Kind]:
        """The cluster's listable and watchable resource types, at their preferred versions."""
        try:
            core = await self.client.request("GET", "/api/v1")
            groups = await self.client.request("GET", "/apis")
        except kube_errors.KubeError as exc:
            raise ClusterCacheError(f"cannot discover the cluster's resource types: {exc}") from exc
        versions = [("", "v1")]
        for group in groups.get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("version")
            if preferred:
                versions.append((group["name"], preferred))

        async def fetch(group: str, version: str) -> tuple[str, str, Obj | None]:
            if not group:
                return group, version, core
            try:
                return group, version, await self.client.request("GET", f"/apis/{group}/{version}")
            except kube_errors.ApiError as exc:
                log.warning("cluster cache: cannot discover %s/%s: %s", group, version, exc)
                return group, version, None

        kinds: dict[tuple[str, str], Kind] = {}
        for group, version, doc in await asyncio.gather(*(fetch(g, v) for g, v in versions)):
            for res in (doc or {}).get("resources") or []:
                name = res.get("name") or ""
                verbs = set(res.get("verbs") or [])
                if "/" in name or not {"list", "watch"} <= verbs:
                    continue
                key = (group, res["kind"])
                if key in self.excluded or key in kinds:
                    continue
                kinds[key] = Kind(group, version, res["kind"], name, namespaced=bool(res.get("namespaced")))
        return kinds

    async def _sync_kinds(self) -> None:
        kinds = await self.discover()
        for key in [k for k in self._informers if k not in kinds or kinds[k] != self._kinds.get(k)]:
            informer = self._informers.pop(key)
            await informer.stop()
            for obj in list(informer.cache.values()):
                self._changed(obj, None)
        self._kinds = kinds
        started = []
        for key, kind in kinds.items():
            if key in self._informers:
                continue
            informer = informers.Informer(self.client, kind)
            informer.add_index(INSTANCE_INDEX, self._instance_index)
            informer.add_handler(self._changed)
            if key == ("apiextensions.k8s.io", "CustomResourceDefinition"):
                informer.add_handler(self._crd_changed)
            self._informers[key] = informer
            informer.start()
            started.append(informer)
        if self.synced.is_set():
            await asyncio.gather(*(inf.wait_synced() for inf in started))

    def _crd_changed(self, old: Obj | None, new: Obj | None) -> None:
        if old is None or new is None or _crd_served(old) != _crd_served(new):
            self.request_discovery()

    # -- indexes and change reports --

    def _instance_index(self, obj: Obj) -> list[str]:
        instance = tracking.instance_of(obj, method=self.tracking_method)
        return [instance] if instance else []

    def _changed(self, old: Obj | None, new: Obj | None) -> None:
        if not self._callbacks:
            return
        instances = set()
        for obj in (old, new):
            if obj is not None:
                instance = tracking.instance_of(obj, method=self.tracking_method)
                if instance:
                    instances.add(instance)
        if not instances:
            return
        if old is not None and new is not None and not self._significant(old, new):
            return
        key = resourcekey.ResourceKey.of(new if new is not None else old)  # type: ignore[arg-type]
        for instance in instances:
            for callback in self._callbacks:
                try:
                    callback(instance, key)
                except Exception:  # a callback must not break the informer
                    log.exception("cluster cache callback failed for %s", key)

    def _significant(self, old: Obj, new: Obj) -> bool:
        if _without_volatile(old) != _without_volatile(new):
            return True
        if old.get("status") == new.get("status"):
            return False
        before, after = self.health_checks.health_of(old), self.health_checks.health_of(new)
        return before != after

    # -- reads --

    def kind_for(self, group: str, kind: str) -> Kind | None:
        """The resource type of ``group``/``kind`` at the cluster's preferred version, if served."""
        return self._kinds.get((group, kind))

    def is_namespaced(self, group: str, kind: str) -> bool | None:
        """Whether ``group``/``kind`` is namespaced; ``None`` when the cluster does not serve it."""
        found = self._kinds.get((group, kind))
        return None if found is None else found.namespaced

    def get(self, key: resourcekey.ResourceKey) -> Obj | None:
        informer = self._informers.get((key.group, key.kind))
        if informer is None:
            return None
        return informer.get(key.name, key.namespace or None)

    def managed(self, instance: str) -> dict[resourcekey.ResourceKey, Obj]:
        """Every live object tracked as belonging to the Application instance ``instance``."""
        found: dict[resourcekey.ResourceKey, Obj] = {}
        for informer in self._informers.values():
            for obj in informer.by_index(INSTANCE_INDEX, instance):
                found[resourcekey.ResourceKey.of(obj)] = obj
        return found

    def children(self, uid: str) -> list[Obj]:
        """Objects whose ownerReferences name ``uid`` (for resource trees)."""
        out: list[Obj] = []
        for informer in self._informers.values():
            out.extend(o for o in informer.cache.values() if _owned_by(o, uid))
        return out

    def objects(self, group: str, kind: str, namespace: str | None = None) -> list[Obj]:
        informer = self._informers.get((group, kind))
        return [] if informer is None else informer.objects(namespace)


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def _crd_served(crd: Obj) -> tuple[Any, ...]:
    spec = crd.get("spec") or {}
    versions = tuple(sorted(v.get("name", "") for v in spec.get("versions") or [] if v.get("served")))
    established = any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )
    return (
        spec.get("group"),
        (spec.get("names") or {}).get("kind"),
        spec.get("scope"),
        versions,
        established,
    )
