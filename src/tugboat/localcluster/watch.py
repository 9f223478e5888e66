"""Watch streams: the initial state or the history since a resourceVersion, then live changes.

Semantics follow research/kubeapi.md §2.4: no resourceVersion (or "0") starts with synthetic ADDED events
for every current object; a resourceVersion N replays every later event in commit order; a compacted N
yields one ``ERROR`` event with a 410 ``Expired`` Status. Selectors filter events, and an object that
leaves (enters) the selector is sent as DELETED (ADDED). Bookmarks carry only a resourceVersion.

The subscription and the snapshot are taken together without yielding to the event loop, so no event is
lost or repeated between them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tugboat.localcluster import errors
from tugboat.localcluster.objects import ObjectAPI
from tugboat.localcluster.resources import ResourceType
from tugboat.localcluster.storage import Compacted, Entry, Event, Subscription


@dataclass
class WatchRequest:
    namespace: str | None
    label_selector: str = ""
    field_selector: str = ""
    resource_version: str = ""
    allow_bookmarks: bool = False
    timeout_seconds: float | None = None
    send_initial_events: bool = False


@dataclass(frozen=True)
class WatchEvent:
    """An event to send: ``entry`` is None for BOOKMARK and ERROR."""

    type: str
    entry: Entry | None = None
    status: dict[str, Any] | None = None
    resource_version: int = 0
    initial_events_end: bool = False


class Watch:
    """One watch stream over a resource type; iterate with :meth:`events`."""

    def __init__(
        self,
        api: ObjectAPI,
        rt: ResourceType,
        request: WatchRequest,
        *,
        bookmark_interval: float = 60.0,
    ) -> None:
        self.api = api
        self.rt = rt
        self.request = request
        self.bookmark_interval = bookmark_interval
        # Parse selectors now, so a bad selector is a 400 before any stream starts.
        self.labels, self.fields = api.parse_selectors(rt, request.label_selector, request.field_selector)
        self.prefix = rt.list_prefix(request.namespace)
        timeout = request.timeout_seconds
        if timeout is None or timeout <= 0:
            timeout = random.uniform(1800, 3600)
        self.deadline = time.monotonic() + timeout
        self._sub: Subscription | None = None
        self._backlog: list[WatchEvent] = []
        self._last_rev = 0
        self._start()

    def _match(self, obj: dict[str, Any] | None) -> bool:
        return obj is not None and self.api.matches(self.rt, obj, self.labels, self.fields)

    def _start(self) -> None:
        store = self.api.store
        self._sub = store.subscribe(self.prefix)
        self._last_rev = store.current_rev
        rv = self.request.resource_version
        if rv in ("", "0") or self.request.send_initial_events:
            for _, entry in store.scan(self.prefix):
                if self._match(entry.obj):
                    self._backlog.append(WatchEvent("ADDED", entry))
            if self.request.send_initial_events:
                self._backlog.append(
                    WatchEvent("BOOKMARK", resource_version=store.current_rev, initial_events_end=True)
                )
            return
        try:
            start = int(rv)
        except ValueError as exc:
            store.unsubscribe(self._sub)
            raise errors.bad_request(f'invalid resource version "{rv}"') from exc
        try:
            history = store.events_after(start, self.prefix)
        except Compacted as exc:
            self._backlog.append(WatchEvent("ERROR", status=errors.gone(str(exc)).status()))
            store.unsubscribe(self._sub)
            self._sub = None
            return
        for event in history:
            self._backlog.extend(self._translate(event))

    def _translate(self, event: Event) -> list[WatchEvent]:
        if event.type == "ADDED":
            return [WatchEvent("ADDED", event.entry)] if self._match(event.entry.obj) else []
        if event.type == "DELETED":
            return [WatchEvent("DELETED", event.entry)] if self._match(event.entry.obj) else []
        now_in = self._match(event.entry.obj)
        was_in = self._match(event.prev.obj) if event.prev is not None else False
        if now_in and was_in:
            return [WatchEvent("MODIFIED", event.entry)]
        if now_in:
            return [WatchEvent("ADDED", event.entry)]
        if was_in:
            return [WatchEvent("DELETED", event.entry)]
        return []

    async def events(self) -> AsyncIterator[list[WatchEvent]]:
        """Batches of events until the timeout, the end of the store, or a dropped subscription.

        Whatever is already queued when the stream wakes up goes out as one batch, so a burst of writes
        costs one network write per watcher rather than one per event.
        """
        store = self.api.store
        try:
            if self._backlog:
                yield self._backlog
            self._backlog = []
            sub = self._sub
            if sub is None:
                return
            next_bookmark = time.monotonic() + self.bookmark_interval
            while True:
                now = time.monotonic()
                wait_until = (
                    min(self.deadline, next_bookmark) if self.request.allow_bookmarks else self.deadline
                )
                if now >= self.deadline:
                    return
                try:
                    first = await asyncio.wait_for(sub.queue.get(), timeout=max(0.0, wait_until - now))
                except TimeoutError:
                    if self.request.allow_bookmarks and time.monotonic() >= next_bookmark:
                        next_bookmark = time.monotonic() + self.bookmark_interval
                        yield [
                            WatchEvent("BOOKMARK", resource_version=max(self._last_rev, store.current_rev))
                        ]
                    continue
                batch: list[WatchEvent] = []
                event: Event | None = first
                while True:
                    if event is None:
                        if batch:
                            yield batch
                        return
                    if event.rev > self._last_rev:
                        self._last_rev = event.rev
                        batch.extend(self._translate(event))
                    if sub.queue.empty():
                        break
                    event = sub.queue.get_nowait()
                if batch:
                    yield batch
        finally:
            if self._sub is not None:
                store.unsubscribe(self._sub)
                self._sub = None

    def close(self) -> None:
        if self._sub is not None:
            self.api.store.unsubscribe(self._sub)
            self._sub = None
