"""The life of an informer-driven controller: start its informers, wait until they have listed, run its
work queue's workers, and on the way out stop everything in the right order.

The rollout, AnalysisRun and Experiment controllers all have this shape (client-go's ``Run``): they differ
in what they watch and reconcile, not in how they start and stop, so the sequence lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tugboat.kube import events, informers, workqueue
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

K = TypeVar("K")


class Loop:
    """One controller's informers, queue and workers."""

    def __init__(
        self,
        *,
        name: str,
        watched: Sequence[informers.Informer],
        queue: workqueue.WorkQueue[Any],
        handler: Callable[[Any], Awaitable[float | None]],
        workers: int,
        recorder: events.EventRecorder | None = None,
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.name = name
        self.watched = list(watched)
        self.queue = queue
        self.handler = handler
        self.workers = workers
        self.recorder = recorder
        self.on_stop = list(on_stop)
        self.ready = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def run(self, announce: str) -> None:
        """Serve until :meth:`stop` (or cancellation); ``announce`` is logged once everything is listed."""
        try:  # from the first informer on: a cancelled start stops what it started
            for informer in self.watched:
                informer.start()
            await asyncio.gather(*(i.wait_synced() for i in self.watched))
            if self.recorder is not None:
                self.recorder.start()
            self._worker = asyncio.create_task(
                workqueue.run_workers_and_shutdown(
                    self.queue, self.handler, workers=self.workers, name=self.name
                )
            )
            self.ready.set()
            log.info("%s", announce)
            await self._worker
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Workers first (no reconcile runs on a half-stopped controller), then events, then watches."""
        self.queue.shutdown()
        if self._worker is not None:
            await cancel_and_wait([self._worker])
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                await self.recorder.stop()
        for hook in self.on_stop:
            with contextlib.suppress(Exception):
                await hook()
        for informer in self.watched:
            with contextlib.suppress(Exception):
                await informer.stop()
