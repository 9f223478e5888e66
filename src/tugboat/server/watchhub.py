"""One cluster watch per kind and namespace, shared by every live stream of the API server.

Each browser tab showing a rollout or an application holds a server-sent-events stream, and each stream
needs to hear about several kinds of objects. Opening watches per stream would multiply them by the
number of tabs, so the streams subscribe here instead: the first subscriber of a ``(kind, namespace)``
starts an :class:`~tugboat.kube.informers.Informer` (list, then watch; it resumes after a dropped
connection and lists again when the revision has expired, 410), later subscribers share its cache, and
the informer is stopped when the last subscriber leaves.

Unsubscribing never awaits (a stream's clean-up runs while its request is being cancelled); the
informer is stopped in a task the hub keeps, and :meth:`WatchHub.close` waits for those.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from tugboat.kube import errors, informers
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Listener = Callable[[Obj | None, Obj | None], None]
Key = tuple[Kind, str]

SYNC_TIMEOUT = 30.0


@dataclass(eq=False)
class _Watch:
    """One shared informer and who listens to it; ``served`` is False for a kind the server lacks."""

    informer: informers.Informer
    listeners: list[Listener] = field(default_factory=list)
    served: bool = True
    ready: asyncio.Future[None] | None = None

    def fan_out(self, old: Obj | None, new: Obj | None) -> None:
        for listener in list(self.listeners):
            try:
                listener(old, new)
            except Exception:
                log.exception("watch hub: a listener of %s failed", self.informer.kind)


@dataclass(eq=False)
class Subscription:
    """A listener's place in the hub; :meth:`close` (idempotent, synchronous) leaves."""

    hub: WatchHub
    key: Key
    listener: Listener
    closed: bool = False

    def objects(self) -> list[Obj]:
        return self.hub.objects(*self.key)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._leave(self)


class WatchHub:
    """The shared watches of one API server (one client, one event loop)."""

    def __init__(self, client: Client, *, sync_timeout: float = SYNC_TIMEOUT) -> None:
        self.client = client
        self.sync_timeout = sync_timeout
        self._watches: dict[Key, _Watch] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def watched(self) -> list[Key]:
        """The ``(kind, namespace)`` pairs watched now."""
        return list(self._watches)

    def objects(self, kind: Kind, namespace: str) -> list[Obj]:
        """The cached objects of a watched kind (never mutate them)."""
        watch = self._watches.get((kind, namespace))
        return watch.informer.objects() if watch is not None else []

    async def subscribe(self, kind: Kind, namespace: str, listener: Listener) -> Subscription:
        """Call ``listener(old, new)`` on every change of ``kind`` in ``namespace`` from now on; returns
        once the cache is filled (listed), so :meth:`objects` is current. A kind the server does not serve
        has no objects and no changes."""
        key = (kind, namespace)
        watch = self._watches.get(key)
        if watch is None:
            watch = _Watch(informers.Informer(self.client, kind, namespace=namespace))
            watch.informer.add_handler(watch.fan_out)
            self._watches[key] = watch
            watch.ready = asyncio.ensure_future(self._start(key, watch))
        watch.listeners.append(listener)
        subscription = Subscription(self, key, listener)
        try:
            assert watch.ready is not None
            await asyncio.shield(watch.ready)
        except BaseException:
            subscription.close()
            raise
        return subscription

    async def _start(self, key: Key, watch: _Watch) -> None:
        """Start the informer of a new watch unless the server does not serve its kind; on failure the
        watch is dropped (its subscribers see the error), so the next subscriber tries again."""
        kind, namespace = key
        try:
            try:
                await self.client.request("GET", kind.collection_path(namespace), params={"limit": 1})
            except errors.ApiError as exc:
                if not exc.not_found:
                    raise
                watch.served = False
                return
            watch.informer.start()
            await watch.informer.wait_synced(self.sync_timeout)
        except BaseException:
            if self._watches.get(key) is watch:
                del self._watches[key]
                self._stop_later(watch.informer)
            raise

    def _stop_later(self, informer: informers.Informer) -> None:
        task = asyncio.get_running_loop().create_task(informer.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _leave(self, subscription: Subscription) -> None:
        watch = self._watches.get(subscription.key)
        if watch is None:
            return
        if subscription.listener in watch.listeners:
            watch.listeners.remove(subscription.listener)
        if watch.listeners:
            return
        del self._watches[subscription.key]
        if watch.ready is not None and not watch.ready.done():
            watch.ready.cancel()
        self._stop_later(watch.informer)

    async def settle(self) -> None:
        """Wait until the informers of left watches have stopped."""
        while self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)

    async def close(self) -> None:
        """Stop every watch (subscribers hear nothing more)."""
        watches, self._watches = list(self._watches.values()), {}
        pending = [w.ready for w in watches if w.ready is not None and not w.ready.done()]
        await cancel_and_wait(pending)
        for watch in watches:
            await watch.informer.stop()
        await self.settle()
