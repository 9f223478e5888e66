"""Informers: a local, always-current cache of one kind of object, fed by list + watch.

No async Python client has one, so every controller of Tugboat uses this (research/deps.md §1.3): list
(remember the list's resourceVersion), watch from there (with bookmarks), and when the watch ends resume
from the last revision seen; on ``410 Expired`` or a broken connection, list again and turn the difference
into events. Handlers see ``(old, new)`` pairs: ``(None, obj)`` for an addition, ``(obj, None)`` for a
deletion. Cached objects are shared between handlers and must never be mutated; copy before changing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from tugboat.kube import errors
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Handler = Callable[[Obj | None, Obj | None], None]
IndexFunc = Callable[[Obj], list[str]]


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def by_owner_uid(obj: Obj) -> list[str]:
    """Index function: the uids of an object's owners."""
    return [str(ref.get("uid")) for ref in (obj.get("metadata") or {}).get("ownerReferences") or []]


def by_namespace(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


class Informer:
    """Keeps ``cache`` equal to the cluster's objects of one kind (optionally filtered); reports changes."""

    def __init__(
        self,
        client: Client,
        kind: Kind,
        *,
        namespace: str | None = None,
        labels: str = "",
        fields: str = "",
        resync_seconds: float = 0.0,
        watch_timeout: int = 300,
    ) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.resync_seconds = resync_seconds
        self.watch_timeout = watch_timeout
        self.cache: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self._handlers: list[Handler] = []
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._rv = ""

    # --------------------------------------------------------------------------------- registration

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler(old, new)`` for every change; objects already cached are replayed as additions."""
        self._handlers.append(handler)
        for obj in list(self.cache.values()):
            handler(None, obj)

    def add_index(self, name: str, func: IndexFunc) -> None:
        self._index_funcs[name] = func
        index: dict[str, set[str]] = {}
        for key, obj in self.cache.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    # ---------------------------------------------------------------------------------------- reads

    @property
    def resource_version(self) -> str:
        """The resourceVersion the cache is at (of the last list or watch event); empty before the first."""
        return self._rv

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        return self.cache.get(f"{namespace}/{name}" if namespace and self.kind.namespaced else name)

    def objects(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self.cache.values())
        return [o for o in self.cache.values() if (o.get("metadata") or {}).get("namespace") == namespace]

    def by_index(self, name: str, value: str) -> list[Obj]:
        keys = self._indexes.get(name, {}).get(value, set())
        return [self.cache[k] for k in sorted(keys) if k in self.cache]

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    # ------------------------------------------------------------------------------------- running

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.kind}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def run(self) -> None:
        backoff = 0.1
        resync = asyncio.create_task(self._resync_loop()) if self.resync_seconds > 0 else None
        try:
            while True:
                try:
                    if not self._rv:
                        await self._relist()
                    await self._watch()
                    backoff = 0.1
                except errors.ApiError as exc:
                    if exc.gone:
                        self._rv = ""
                        continue
                    log.warning("informer %s: %s", self.kind, exc)
                    self._rv = "" if exc.code >= 500 or exc.code == 404 else self._rv
                except errors.ConnectionFailed as exc:
                    log.debug("informer %s: connection lost: %s", self.kind, exc)
                await asyncio.sleep(backoff * (1 + random.random()))
                backoff = min(backoff * 2, 10.0)
        finally:
            if resync is not None:
                resync.cancel()

    async def _relist(self) -> None:
        items, rv = await self.client.list(
            self.kind,
            self.namespace,
            labels=self.labels,
            fields=self.fields,
            all_namespaces=self.namespace is None,
        )
        fresh = {object_key(obj): obj for obj in items}
        for key in [k for k in self.cache if k not in fresh]:
            self._apply("DELETED", self.cache[key])
        for key, obj in fresh.items():
            old = self.cache.get(key)
            if old is None:
                self._apply("ADDED", obj)
            elif _rv(old) != _rv(obj):
                self._apply("MODIFIED", obj)
        self._rv = rv
        self.synced.set()

    async def _watch(self) -> None:
        async for event_type, obj in self.client.watch(
            self.kind,
            self.namespace,
            resource_version=self._rv,
            labels=self.labels,
            fields=self.fields,
            timeout_seconds=self.watch_timeout,
            all_namespaces=self.namespace is None,
        ):
            rv = _rv(obj)
            if event_type != "BOOKMARK":
                self._apply(event_type, obj)
            if rv:
                self._rv = rv

    def _apply(self, event_type: str, obj: Obj) -> None:
        key = object_key(obj)
        old = self.cache.get(key)
        if event_type == "DELETED":
            if old is None:
                return
            del self.cache[key]
            self._reindex(key, old, None)
            self._notify(old, None)
            return
        obj.setdefault("apiVersion", self.kind.api_version)
        obj.setdefault("kind", self.kind.kind)
        self.cache[key] = obj
        self._reindex(key, old, obj)
        self._notify(old, obj)

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._index_funcs.items():
            index = self._indexes[name]
            if old is not None:
                for value in func(old):
                    members = index.get(value)
                    if members is not None:
                        members.discard(key)
                        if not members:
                            del index[value]
            if new is not None:
                for value in func(new):
                    index.setdefault(value, set()).add(key)

    def _notify(self, old: Obj | None, new: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(old, new)
            except Exception:
                log.exception("informer %s: handler failed", self.kind)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            for obj in list(self.cache.values()):
                self._notify(obj, obj)


class InformerFactory:
    """Shares one informer per (kind, namespace) among the controllers of a process."""

    def __init__(self, client: Client, *, resync_seconds: float = 0.0) -> None:
        self.client = client
        self.resync_seconds = resync_seconds
        self._informers: dict[tuple[Kind, str | None], Informer] = {}

    def informer(self, kind: Kind, namespace: str | None = None) -> Informer:
        key = (kind, namespace)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, kind, namespace=namespace, resync_seconds=self.resync_seconds)
            self._informers[key] = informer
        return informer

    def start(self) -> None:
        for informer in self._informers.values():
            informer.start()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.gather(*(i.wait_synced(timeout) for i in self._informers.values()))

    async def stop(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
