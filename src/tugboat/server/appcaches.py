"""What the Application endpoints keep between requests, one set per API server.

Resource types (discovery) are asked for once and again only when a kind is not known or the answer is
old; repository mirrors and rendered manifests are kept like the controller keeps them, so showing the
desired state of an app at a revision renders it once per (app source, revision) and reads Git only
for a revision not seen before. They hang off the Starlette app's state, created on first use.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from tugboat.gitops import clustercache, render, repos
from tugboat.kube.client import Client
from tugboat.kube.kinds import Kind
from tugboat.server.problems import Problem

DISCOVERY_TTL = 60.0
_STATE_ATTRIBUTE = "app_caches"


@dataclass
class Discovery:
    """The cluster's listable resource types, asked for again after ``ttl`` seconds or on a miss."""

    client: Client
    ttl: float = DISCOVERY_TTL
    clock: Callable[[], float] = time.monotonic
    _kinds: dict[tuple[str, str], Kind] = field(default_factory=dict)
    _at: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def kinds(self, *, refresh: bool = False) -> Mapping[tuple[str, str], Kind]:
        async with self._lock:
            if refresh or self._at is None or self.clock() - self._at > self.ttl:
                try:
                    self._kinds = await clustercache.ClusterCache(self.client).discover()
                except clustercache.ClusterCacheError as exc:
                    raise Problem(503, str(exc)) from exc
                self._at = self.clock()
            return self._kinds

    async def kind_for(self, group: str, kind: str) -> Kind | None:
        """The type of ``group``/``kind``; discovery is asked again once when it is not known."""
        found = (await self.kinds()).get((group, kind))
        if found is None:
            found = (await self.kinds(refresh=True)).get((group, kind))
        return found


@dataclass
class AppCaches:
    discovery: Discovery
    root: Path
    _repo_cache: repos.RepoCache | None = None
    manifest_cache: render.ManifestCache = field(default_factory=render.ManifestCache)

    @property
    def repo_cache(self) -> repos.RepoCache:
        if self._repo_cache is None:
            self._repo_cache = repos.RepoCache(self.root / "repos", max_checkouts=16)
        return self._repo_cache


def of(request: Request, client: Client) -> AppCaches:
    """The caches of the server handling ``request`` (made on first use)."""
    state = request.app.state
    caches: AppCaches | None = getattr(state, _STATE_ATTRIBUTE, None)
    if caches is None:
        root = Path(tempfile.mkdtemp(prefix="tugboat-server-"))
        caches = AppCaches(discovery=Discovery(client), root=root)
        setattr(state, _STATE_ATTRIBUTE, caches)
    return caches


def current(state: Any) -> AppCaches | None:
    """The caches kept on a Starlette app's ``state``, if any were made."""
    caches = getattr(state, _STATE_ATTRIBUTE, None)
    return caches if isinstance(caches, AppCaches) else None


def release(state: Any) -> None:
    """Remove the repository checkouts of a server that stops (its temp directory)."""
    caches = current(state)
    if caches is not None:
        shutil.rmtree(caches.root, ignore_errors=True)
        delattr(state, _STATE_ATTRIBUTE)
