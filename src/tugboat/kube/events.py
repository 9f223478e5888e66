"""Kubernetes Events from controllers (what ``kubectl describe`` shows under "Events").

Controllers must never wait on an event: :meth:`EventRecorder.event` only queues it, and a background task
writes it. Repeats of the same (object, type, reason, message) are folded into one Event whose ``count``
and ``lastTimestamp`` grow, as kubelet and kube-controller-manager do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Queues and writes core/v1 Events for one component."""

    def __init__(self, client: Client, *, component: str, host: str = "", max_pending: int = 10_000) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str]] = asyncio.Queue(max_pending)
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def event(self, obj: Obj, event_type: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record an event about ``obj`` (dropped, with a log line, if the backlog is full)."""
        try:
            self._queue.put_nowait((obj, event_type, reason, message, field_path))
        except asyncio.QueueFull:
            log.warning("event backlog full; dropped %s %s", reason, message)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"events-{self.component}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def flush(self) -> None:
        """Wait until every queued event was written (for tests)."""
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(*item)
            except (errors.ApiError, errors.ConnectionFailed) as exc:
                log.debug("could not write event %s: %s", item[2], exc)

    async def _write(self, obj: Obj, event_type: str, reason: str, message: str, field_path: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = (str(meta.get("uid")), event_type, reason, message)
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
