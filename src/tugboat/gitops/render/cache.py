"""The manifest cache: a render is done once per repository commit, path and parameters.

Rendering is the expensive part of a refresh (a ``kustomize`` or ``helm`` process, or parsing a
directory), and its result depends only on the commit and the Application's parameters, so Argo CD
caches it (in Redis, for 24 h). We keep it in memory, content-addressed: the key is (repository URL,
commit SHA, path, a hash of everything else that shapes the output - the rest of ``spec.source``, the
destination namespace, project, Kubernetes version and API versions - and the Application's name, which
reaches the tools as ``ARGOCD_APP_NAME``). Entries are bounded by count and by size, least recently used
first out. Manifests are stored as JSON bytes: that gives their size, and each ``get`` returns fresh
dicts that callers may change freely. Concurrent requests for the same key share one render. Failed
renders are not cached.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson

from tugboat.gitops.render import result

DEFAULT_MAX_ENTRIES = 4096
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CacheKey:
    """Identifies one render: repository, commit, path, parameters hash, Application name."""

    repo_url: str
    revision: str
    path: str
    parameters: str
    app_name: str


@dataclasses.dataclass(frozen=True)
class _Entry:
    manifests: bytes
    source_type: str
    warnings: tuple[str, ...]

    def result(self) -> result.RenderResult:
        return result.RenderResult(
            manifests=orjson.loads(self.manifests), source_type=self.source_type, warnings=list(self.warnings)
        )


def key_for(
    source: Mapping[str, Any],
    *,
    repo_url: str,
    revision: str,
    app_name: str,
    app_namespace: str,
    project: str,
    kube_version: str,
    api_versions: Sequence[str],
) -> CacheKey:
    """The cache key of rendering ``source`` at ``revision`` (a commit SHA) for one Application."""
    parameters = {
        "source": dict(source),
        "namespace": app_namespace,
        "project": project,
        "kubeVersion": kube_version,
        "apiVersions": list(api_versions),
    }
    digest = hashlib.sha256(orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
    path = source.get("path")
    return CacheKey(repo_url, revision, path if isinstance(path, str) else "", digest.hexdigest(), app_name)


class ManifestCache:
    """An in-memory LRU cache of render results, bounded by entry count and total bytes."""

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: collections.OrderedDict[CacheKey, _Entry] = collections.OrderedDict()
        self._bytes = 0
        self._inflight: dict[CacheKey, asyncio.Future[_Entry]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The total size of the cached manifests (as JSON)."""
        return self._bytes

    def get(self, key: CacheKey) -> result.RenderResult | None:
        """A fresh copy of the cached result for ``key``, or ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry.result()

    def put(self, key: CacheKey, rendered: result.RenderResult) -> None:
        """Cache ``rendered`` under ``key`` (a copy: later changes to it do not reach the cache)."""
        self._store(key, _entry(rendered))

    def discard(self, key: CacheKey) -> None:
        """Forget ``key`` (a hard refresh of one Application)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.manifests)

    def invalidate(self, *, repo_url: str | None = None, revision: str | None = None) -> int:
        """Forget every entry of ``repo_url`` and/or ``revision`` (all entries if neither); how many."""
        doomed = [
            key
            for key in self._entries
            if repo_url in (None, key.repo_url) and revision in (None, key.revision)
        ]
        for key in doomed:
            self.discard(key)
        return len(doomed)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
        self._bytes = 0

    async def get_or_render(
        self, key: CacheKey, render: Callable[[], Awaitable[result.RenderResult]]
    ) -> result.RenderResult:
        """The cached result for ``key``, or ``await render()`` cached; concurrent callers share it."""
        cached = self.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        loop = asyncio.get_running_loop()
        shared = self._inflight.get(key)
        if shared is not None and shared.get_loop() is loop:
            try:
                entry = await asyncio.shield(shared)
            except asyncio.CancelledError:
                if not shared.cancelled():
                    raise  # we were cancelled, not the render we waited for
            else:
                self.hits += 1
                return entry.result()
        self.misses += 1
        future: asyncio.Future[_Entry] = loop.create_future()
        self._inflight[key] = future
        try:
            rendered = await render()
            entry = _entry(rendered)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # waiters re-raise it; nobody needs to retrieve it here
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        self._store(key, entry)
        future.set_result(entry)
        return rendered

    def _store(self, key: CacheKey, entry: _Entry) -> None:
        self.discard(key)
        if len(entry.manifests) > self.max_bytes or self.max_entries <= 0:
            return
        self._entries[key] = entry
        self._bytes += len(entry.manifests)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.manifests)


def _entry(rendered: result.RenderResult) -> _Entry:
    return _Entry(orjson.dumps(rendered.manifests), rendered.source_type, tuple(rendered.warnings))
