"""Kubernetes Events from controllers (what ``kubectl describe`` shows under "Events").

Controllers must never wait on an event: :meth:`EventRecorder.event` only queues it, and a background task
writes it. Repeats of the same (object, type, reason, message) are folded into one Event whose ``count``
and ``lastTimestamp`` grow, as kubelet and kube-controller-manager do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Queues and writes core/v1 Events for one component."""

    def __init__(
        self, client: Client, *, component: str, host: str = "", max_pending: int = 10_000, writers: int = 4
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str]] = asyncio.Queue(max_pending)
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}
        self._writers = writers
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._in_flight: set[tuple[str, str, str, str]] = set()

    def event(self, obj: Obj, event_type: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record an event about ``obj`` (dropped, with a log line, if the backlog is full)."""
        try:
            self._queue.put_nowait((obj, event_type, reason, message, field_path))
        except asyncio.QueueFull:
            log.warning("event backlog full; dropped %s %s", reason, message)

    def start(self) -> None:
        """Start the writers: a few in parallel, so that a burst (a 1,000-pod rollout) drains quickly."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"events-{self.component}-{i}")
                for i in range(self._writers)
            ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []

    async def flush(self) -> None:
        """Wait until every queued event was written (for tests)."""
        while not self._queue.empty() or self._busy:
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            key = self._key(*item)
            if key in self._in_flight:
                # Another writer is creating this very event: fold this one in after it.
                await asyncio.sleep(0.01)
                self._queue.put_nowait(item)
                continue
            self._busy += 1
            self._in_flight.add(key)
            try:
                await self._write(*item)
            except (errors.ApiError, errors.ConnectionFailed) as exc:
                log.debug("could not write event %s: %s", item[2], exc)
            finally:
                self._in_flight.discard(key)
                self._busy -= 1

    @staticmethod
    def _key(
        obj: Obj, event_type: str, reason: str, message: str, field_path: str
    ) -> tuple[str, str, str, str]:
        return (str((obj.get("metadata") or {}).get("uid")), event_type, reason, message)

    async def _write(self, obj: Obj, event_type: str, reason: str, message: str, field_path: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = self._key(obj, event_type, reason, message, field_path)
        now = _now()
        seen = self._seen.get(key)
        if seen is not None:
            name, ns, count = seen
            try:
                await self.client.patch(
                    kinds.EVENT, name, {"count": count + 1, "lastTimestamp": now}, namespace=ns
                )
                self._seen[key] = (name, ns, count + 1)
                return
            except errors.ApiError as exc:
                if not exc.not_found:
                    raise
        involved: dict[str, Any] = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        name = f"{meta.get('name')}.{time.time_ns():x}"
        event = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason,
            "message": message,
            "type": event_type,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
        await self.client.create(kinds.EVENT, event)
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[key] = (name, namespace, 1)
