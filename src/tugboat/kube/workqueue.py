"""A keyed, de-duplicating work queue with rate-limited retries (client-go's pattern, on asyncio).

Controllers are level-triggered: an event only says "look at this key again". The queue guarantees that a
key is queued at most once, that no two workers process the same key at the same time (a key added while
it is being processed is queued again when its worker is done), and that failing keys come back after an
exponentially growing delay instead of spinning.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from tugboat.kube import errors
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down; workers should return."""


class WorkQueue(Generic[K]):
    """Keys to reconcile. Use :meth:`get` / :meth:`done` around each piece of work."""

    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 60.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._ready = asyncio.Event()
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: K) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._ready.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds (an earlier pending timer for it wins)."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        if existing is not None:
            if existing.when() <= loop.time() + delay:
                return
            existing.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` again after its backoff delay, which doubles with every failure."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, min(self.max_delay, self.base_delay * (2**failures)))

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (call after it was processed successfully)."""
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> K:
        while not self._queue:
            if self._shutdown:
                raise ShutDown
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._ready.set()

    def shutdown(self) -> None:
        self._shutdown = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ready.set()


async def run_workers(
    queue: WorkQueue[K],
    handler: Callable[[K], Awaitable[float | None]],
    *,
    workers: int = 1,
    name: str = "worker",
) -> None:
    """Process keys until the queue shuts down.

    ``handler`` returns ``None`` when the key is done, or a number of seconds after which the key should be
    looked at again (e.g. a timeout to check). An exception requeues the key with backoff.
    """

    async def work() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                again = await handler(key)
            except Exception as exc:
                level = logging.WARNING if queue.failures(key) < 5 else logging.ERROR
                if isinstance(exc, errors.ApiError) and exc.conflict and queue.failures(key) < 5:
                    level = logging.DEBUG  # optimistic concurrency at work: the retry reads the new version
                log.log(
                    level, "%s: %s failed (retrying): %s", name, key, exc, exc_info=level == logging.ERROR
                )
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                if again is not None:
                    queue.add_after(key, again)
            finally:
                queue.done(key)

    tasks = [asyncio.create_task(work(), name=f"{name}-{i}") for i in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        await cancel_and_wait(tasks)


async def run_workers_and_shutdown(
    queue: WorkQueue[K],
    handler: Callable[[K], Awaitable[float | None]],
    *,
    workers: int = 1,
    name: str = "worker",
) -> None:
    """:func:`run_workers`, then shut ``queue`` down however they end (when cancelled, above all): it takes
    no more keys and its pending delayed keys are dropped.
    """
    try:
        await run_workers(queue, handler, workers=workers, name=name)
    finally:
        queue.shutdown()
