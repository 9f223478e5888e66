"""The controllers that finish what a DELETE starts: garbage collection, namespaces and CRD cleanup.

kube-apiserver only marks objects (``deletionTimestamp``, the ``foregroundDeletion`` / ``orphan`` /
``kubernetes`` / CRD-cleanup finalizers); kube-controller-manager's garbage collector and namespace
controller and the apiextensions server do the rest. Here one in-process controller does all of it
through :class:`~tugboat.localcluster.objects.ObjectAPI`, so every step goes through the same semantics
(and emits the same watch events) as a client's request would:

* Background: when an owner is gone, dependents whose owners are all gone are deleted; references to
  gone owners are removed from dependents that still have a live owner.
* Foreground: dependents are deleted (in the foreground, too); the owner's ``foregroundDeletion``
  finalizer is removed when no dependent is left.
* Orphan: the owner reference is removed from every dependent, then the ``orphan`` finalizer.
* A terminating namespace is emptied, then its ``kubernetes`` finalizer removed, so it disappears.
* A deleted CRD's custom resources are deleted, then its cleanup finalizer removed.

It works from watch events plus a periodic sweep, so it also finishes work left by a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tugboat.localcluster import errors, metadata
from tugboat.localcluster.objects import CRD_CLEANUP_FINALIZER, ObjectAPI, WriteOptions
from tugboat.localcluster.resources import ResourceType
from tugboat.localcluster.storage import Event
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_MANAGER = WriteOptions(field_manager="tugboat-lifecycle-controller")


def _condition(kind: str, status: bool, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "lastTransitionTime": metadata.rfc3339(),
        "reason": reason,
        "message": message,
    }


class LifecycleController:
    """Garbage collector, namespace controller and CRD cleanup in one event-driven loop."""

    def __init__(self, api: ObjectAPI, *, sweep_interval: float = 30.0) -> None:
        self.api = api
        self.store = api.store
        self.registry = api.registry
        self.sweep_interval = sweep_interval
        self._dependents: dict[str, set[str]] = {}
        self._uids: dict[str, str] = {}
        self._work: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        sub = self.store.subscribe("/")
        for key in list(self.store.keys_with_prefix("/")):
            entry = self.store.get(key)
            if entry is not None:
                self._index(key, None, entry.obj)
        for key in list(self._uids.values()):
            self._enqueue(key)
        self._enqueue_dangling()
        self._tasks = [
            asyncio.create_task(self._consume(sub), name="lifecycle-events"),
            asyncio.create_task(self._worker(), name="lifecycle-worker"),
            asyncio.create_task(self._sweep(), name="lifecycle-sweep"),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []

    # -------------------------------------------------------------------------------------- indexes

    def _index(self, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if old is not None:
            self._uids.pop(metadata.uid_of(old), None)
            for ref in metadata.owner_refs(old):
                self._dependents.get(str(ref.get("uid")), set()).discard(key)
        if new is not None:
            self._uids[metadata.uid_of(new)] = key
            for ref in metadata.owner_refs(new):
                self._dependents.setdefault(str(ref.get("uid")), set()).add(key)

    async def _consume(self, sub: Any) -> None:
        while True:
            event: Event | None = await sub.queue.get()
            if event is None:
                sub = self.store.subscribe("/")
                continue
            prev = event.prev.obj if event.prev is not None else None
            if event.type == "DELETED":
                self._index(event.key, prev or event.entry.obj, None)
                uid = metadata.uid_of(event.entry.obj)
                for dependent in list(self._dependents.get(uid, ())):
                    self._enqueue(dependent)
                if event.key.startswith("/core/namespaces/") or event.key.startswith(
                    "/apiextensions.k8s.io/customresourcedefinitions/"
                ):
                    continue
                self._enqueue_owner_of_deleted(event.key, event.entry.obj)
            else:
                self._index(event.key, prev, event.entry.obj)
                self._enqueue(event.key)
                for ref in metadata.owner_refs(event.entry.obj):
                    owner_key = self._uids.get(str(ref.get("uid")))
                    if owner_key is None:
                        self._enqueue(event.key)
                    elif self._owner_waiting(owner_key):
                        self._enqueue(owner_key)

    def _enqueue_owner_of_deleted(self, key: str, obj: dict[str, Any]) -> None:
        """Wake up whatever may have been waiting for ``obj`` to go: owners, its namespace, its CRD."""
        for ref in metadata.owner_refs(obj):
            owner_key = self._uids.get(str(ref.get("uid")))
            if owner_key is not None:
                self._enqueue(owner_key)
        namespace = metadata.namespace_of(obj)
        if namespace:
            self._enqueue(f"/core/namespaces//{namespace}")
        rt = self._type_of(key)
        if rt is not None and rt.crd_name is not None:
            self._enqueue(f"/apiextensions.k8s.io/customresourcedefinitions//{rt.crd_name}")

    def _owner_waiting(self, key: str) -> bool:
        entry = self.store.get(key)
        return entry is not None and metadata.deleting(entry.obj)

    def _enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._work.put_nowait(key)

    def _enqueue_dangling(self) -> None:
        for uid, dependents in self._dependents.items():
            if uid not in self._uids:
                for key in dependents:
                    self._enqueue(key)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            self._enqueue_dangling()
            for key in list(self._uids.values()):
                if self._owner_waiting(key):
                    self._enqueue(key)

    async def _worker(self) -> None:
        while True:
            key = await self._work.get()
            self._queued.discard(key)
            try:
                await self._process(key)
            except errors.ApiError as exc:
                if exc.code not in (404, 409):
                    log.warning("lifecycle: %s: %s", key, exc.message)
                if exc.code == 409:
                    self._enqueue(key)
            except Exception:
                log.exception("lifecycle: failed to process %s", key)

    # ------------------------------------------------------------------------------------ decisions

    def _type_of(self, key: str) -> ResourceType | None:
        parts = key.split("/")
        if len(parts) < 5:
            return None
        group = "" if parts[1] == "core" else parts[1]
        return self.registry.by_storage(group, parts[2])

    async def _process(self, key: str) -> None:
        entry = self.store.latest(key)
        rt = self._type_of(key)
        if entry is None or rt is None:
            return
        obj = entry.obj
        if metadata.deleting(obj):
            await self._finish_deletion(rt, key, obj)
        await self._collect_if_orphaned(rt, obj)

    async def _collect_if_orphaned(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        refs = metadata.owner_refs(obj)
        if not refs:
            return
        live = [r for r in refs if str(r.get("uid")) in self._uids]
        if len(live) == len(refs):
            return
        name, namespace = metadata.name_of(obj), metadata.namespace_of(obj)
        if not live:
            if not metadata.deleting(obj):
                await self.api.delete(rt, namespace, name, propagation="Background")
            return
        fresh = self.store.latest(rt.key(namespace, name))
        if fresh is None:
            return
        updated = fresh.copy()
        updated["metadata"]["ownerReferences"] = [
            r for r in metadata.owner_refs(updated) if str(r.get("uid")) in self._uids
        ]
        await self.api.update(rt, namespace, name, updated, _MANAGER)

    async def _finish_deletion(self, rt: ResourceType, key: str, obj: dict[str, Any]) -> None:
        finalizers = metadata.finalizers(obj)
        uid = metadata.uid_of(obj)
        if metadata.ORPHAN in finalizers:
            await self._orphan_dependents(uid)
            await self._remove_finalizer(rt, obj, metadata.ORPHAN)
            return
        if metadata.FOREGROUND in finalizers:
            remaining = await self._delete_dependents(uid, propagation="Foreground")
            if not remaining:
                await self._remove_finalizer(rt, obj, metadata.FOREGROUND)
            return
        if rt.builtin and rt.resource == "namespaces":
            await self._finish_namespace(obj)
            return
        if rt.builtin and rt.resource == "customresourcedefinitions" and CRD_CLEANUP_FINALIZER in finalizers:
            await self._finish_crd(obj)

    def _dependents_of(self, uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        result = []
        for key in sorted(self._dependents.get(uid, ())):
            entry = self.store.latest(key)
            rt = self._type_of(key)
            if entry is not None and rt is not None:
                result.append((rt, entry.obj))
        return result

    async def _orphan_dependents(self, uid: str) -> None:
        for rt, dep in self._dependents_of(uid):
            updated = dict(dep)
            meta = dict(updated["metadata"])
            meta["ownerReferences"] = [r for r in metadata.owner_refs(dep) if str(r.get("uid")) != uid]
            if not meta["ownerReferences"]:
                del meta["ownerReferences"]
            updated["metadata"] = meta
            await self.api.update(rt, metadata.namespace_of(dep), metadata.name_of(dep), updated, _MANAGER)

    async def _delete_dependents(self, uid: str, *, propagation: str) -> int:
        dependents = self._dependents_of(uid)
        for rt, dep in dependents:
            if not metadata.deleting(dep):
                with contextlib.suppress(errors.ApiError):
                    await self.api.delete(
                        rt, metadata.namespace_of(dep), metadata.name_of(dep), propagation=propagation
                    )
        return len(self._dependents_of(uid))

    async def _remove_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        namespace, name = metadata.namespace_of(obj), metadata.name_of(obj)
        fresh = self.store.latest(rt.key(namespace, name))
        if fresh is None or finalizer not in metadata.finalizers(fresh.obj):
            return
        updated = fresh.copy()
        updated["metadata"]["finalizers"] = [f for f in metadata.finalizers(updated) if f != finalizer]
        await self.api.update(rt, namespace, name, updated, _MANAGER)

    async def _finish_namespace(self, ns: dict[str, Any]) -> None:
        namespace = metadata.name_of(ns)
        counts: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for rt in self.registry.namespaced_types():
            for _, entry in self.store.scan(rt.list_prefix(namespace)):
                label = errors.qualified(rt.resource, rt.group)
                counts[label] = counts.get(label, 0) + 1
                for finalizer in metadata.finalizers(entry.obj):
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
                if not metadata.deleting(entry.obj):
                    with contextlib.suppress(errors.ApiError):
                        await self.api.delete(
                            rt, namespace, metadata.name_of(entry.obj), propagation="Background"
                        )
        if counts:
            await self._report_namespace(ns, counts, finalizers)
            return
        if "kubernetes" in ((ns.get("spec") or {}).get("finalizers") or []) or not metadata.finalizers(ns):
            await self.api.finalize_namespace(namespace, {"spec": {"finalizers": []}})

    async def _report_namespace(
        self, ns: dict[str, Any], counts: dict[str, int], finalizers: dict[str, int]
    ) -> None:
        """The conditions the namespace controller reports while content remains (``kubectl describe ns``)."""
        content = ", ".join(f"{name} has {n} resource instances" for name, n in sorted(counts.items()))
        pending = ", ".join(f"{name} in {n} resource instances" for name, n in sorted(finalizers.items()))
        conditions = [
            _condition(
                "NamespaceContentRemaining",
                True,
                "SomeResourcesRemain",
                f"Some resources are remaining: {content}",
            ),
            _condition(
                "NamespaceFinalizersRemaining",
                bool(finalizers),
                "SomeFinalizersRemain" if finalizers else "ContentHasNoFinalizers",
                f"Some content in the namespace has finalizers remaining: {pending}"
                if finalizers
                else "All content-preserving finalizers finished",
            ),
        ]
        old = {c.get("type"): c for c in (ns.get("status") or {}).get("conditions") or []}
        if all(
            old.get(c["type"], {}).get("status") == c["status"]
            and old.get(c["type"], {}).get("message") == c["message"]
            for c in conditions
        ):
            return
        for cond in conditions:
            previous = old.get(cond["type"])
            if previous is not None and previous.get("status") == cond["status"]:
                cond["lastTransitionTime"] = previous.get("lastTransitionTime", cond["lastTransitionTime"])
        ns_type = self.registry.get("", "v1", "namespaces")
        assert ns_type is not None
        fresh = self.store.latest(ns_type.key("", metadata.name_of(ns)))
        if fresh is None:
            return
        updated = fresh.copy()
        updated.setdefault("status", {})["conditions"] = conditions
        await self.api.update(ns_type, "", metadata.name_of(ns), updated, _MANAGER, subresource="status")

    async def _finish_crd(self, crd: dict[str, Any]) -> None:
        crd_name = metadata.name_of(crd)
        served = [rt for rt in self.registry.all() if rt.crd_name == crd_name]
        remaining = 0
        for rt in served[:1]:
            for _, entry in self.store.scan(rt.storage_prefix):
                remaining += 1
                if not metadata.deleting(entry.obj):
                    with contextlib.suppress(errors.ApiError):
                        await self.api.delete(
                            rt, metadata.namespace_of(entry.obj), metadata.name_of(entry.obj)
                        )
        if remaining:
            return
        crd_type = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_type is not None
        await self._remove_finalizer(crd_type, crd, CRD_CLEANUP_FINALIZER)
