"""The Applications of the server's namespace, kept in memory by one watch, so that lists are cheap.

Listing a thousand Applications from the cluster on every request costs the server about 100 ms of CPU
(decoding megabytes of JSON) and the cluster as much again; the UI lists on every page load. Like Argo
CD's API server, which lists from its informer's cache, Tugboat keeps one informer of the Applications
in its own namespace and answers lists from it. A list is therefore as fresh as the watch (a few
milliseconds behind a write); single-app reads still go to the cluster.

The informer starts on the first list; when the cluster does not serve Applications (no CRD) or the
watch cannot start, lists fall back to asking the cluster, which reports the problem.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tugboat.gitops import crds
from tugboat.kube import errors, informers
from tugboat.kube.client import Client, Obj
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 30.0
_STATE_ATTRIBUTE = "app_index"


class AppIndex:
    """An informer of the Applications in ``namespace``, started on first use."""

    def __init__(self, client: Client, namespace: str, *, sync_timeout: float = SYNC_TIMEOUT) -> None:
        self.client = client
        self.namespace = namespace
        self.sync_timeout = sync_timeout
        self._informer: informers.Informer | None = None
        self._ready: asyncio.Future[bool] | None = None

    async def apps(self) -> tuple[list[Obj], str] | None:
        """The cached Applications (never mutate them) and the resourceVersion of the cache, or ``None``
        when they cannot be kept (the caller then lists from the cluster)."""
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._start())
        try:
            served = await asyncio.shield(self._ready)
        except Exception as exc:  # the direct list reports what is wrong
            log.warning("applications: cannot watch %s (%s); listing from the cluster", self.namespace, exc)
            await self.close()
            return None
        if not served or self._informer is None:
            return None
        return self._informer.objects(), self._informer.resource_version

    async def _start(self) -> bool:
        try:
            path = crds.APPLICATION.collection_path(self.namespace)
            await self.client.request("GET", path, params={"limit": 1})
        except errors.ApiError as exc:
            if exc.not_found:
                self._ready = None  # try again later: the CRD may be installed by then
                return False
            raise
        informer = informers.Informer(self.client, crds.APPLICATION, namespace=self.namespace)
        self._informer = informer
        informer.start()
        await informer.wait_synced(self.sync_timeout)
        return True

    async def close(self) -> None:
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            await cancel_and_wait([ready])
        informer, self._informer = self._informer, None
        if informer is not None:
            await informer.stop()


def of(state: Any, client: Client, namespace: str) -> AppIndex:
    """The index kept on a Starlette app's ``state``, made on first use."""
    found = getattr(state, _STATE_ATTRIBUTE, None)
    if not isinstance(found, AppIndex):
        found = AppIndex(client, namespace)
        setattr(state, _STATE_ATTRIBUTE, found)
    return found


async def release(state: Any) -> None:
    """Stop the watch of a server that stops."""
    found = getattr(state, _STATE_ATTRIBUTE, None)
    if isinstance(found, AppIndex):
        await found.close()
        delattr(state, _STATE_ATTRIBUTE)
