"""Change detection for repositories: a stat loop for local ones, jittered polling intervals for remote ones.

A commit to a local repository should refresh its Applications within about a second. Running git every
half second for every repository would cost a process per tick, so :class:`LocalRepoWatcher` compares
:func:`tugboat.gitops.repos.ref_signature` fingerprints (``stat`` of ``HEAD``, ``packed-refs`` and the
files under ``refs/``) instead and calls back only when they change. Remote repositories are polled by
the controller; :func:`poll_interval_with_jitter` spreads those polls the way Argo CD does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tugboat.gitops.git import InvalidRepoURL
from tugboat.gitops.repos import parse_repo_url, ref_signature
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RepoCallback = Callable[[str], Awaitable[None]]

DEFAULT_POLL_INTERVAL = 180.0
DEFAULT_JITTER = 1 / 3


def poll_interval_with_jitter(
    base: float = DEFAULT_POLL_INTERVAL, *, jitter: float = DEFAULT_JITTER, rng: random.Random | None = None
) -> float:
    """Seconds until the next poll of a remote repository: uniformly in ``[base * (1 - jitter), base]``.

    The defaults give 120–180 s, the same spread as Argo CD's ``timeout.reconciliation: 120s`` plus
    ``timeout.reconciliation.jitter: 60s``, so that many Applications do not poll in step. ``base`` 0
    means polling is off (0 is returned).
    """
    if base < 0:
        raise ValueError(f"poll interval must be >= 0, got {base}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be between 0 and 1, got {jitter}")
    if base == 0:
        return 0.0
    return base * (1 - jitter * (rng or random).random())


@dataclass(eq=False)
class _Subscriber:
    url: str
    callback: RepoCallback
    task: asyncio.Task[None] | None = None
    again: bool = False


@dataclass(eq=False)
class _Watch:
    path: Path
    signature: object
    subscribers: list[_Subscriber] = field(default_factory=list)


class LocalRepoWatcher:
    """Calls ``await callback(url)`` soon after the refs of a watched local repository change (a commit, a
    new branch or tag, a reset, a checkout of another branch); ``url`` is the URL given to :meth:`watch`.

    Every ``interval`` seconds each watched repository is fingerprinted with ``stat`` calls only. A
    callback never runs twice at once for one subscription: a change seen while it runs makes it run once
    more afterwards. Callback errors are logged and do not stop the watcher. Use as ``async with`` or call
    :meth:`start` and :meth:`stop`; :meth:`watch` may be called before starting.
    """

    def __init__(self, *, interval: float = 0.5, base_dir: Path | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.base_dir = base_dir
        self._watches: dict[str, _Watch] = {}
        self._loop_task: asyncio.Task[None] | None = None

    def watch(self, url: str, callback: RepoCallback) -> None:
        """Watch the local repository ``url`` (a path or ``file://`` URL). Raises
        :class:`~tugboat.gitops.git.InvalidRepoURL` for a remote URL. Watching a path that holds no
        repository yet is allowed: its appearance counts as a change."""
        loc = parse_repo_url(url, base_dir=self.base_dir)
        if loc.local_path is None:
            raise InvalidRepoURL(f"only local repositories can be watched, not {loc.url}")
        watch = self._watches.get(loc.normalized)
        if watch is None:
            watch = _Watch(path=loc.local_path, signature=ref_signature(loc.local_path))
            self._watches[loc.normalized] = watch
        if not any(s.url == url and s.callback == callback for s in watch.subscribers):
            watch.subscribers.append(_Subscriber(url=url, callback=callback))

    def unwatch(self, url: str, callback: RepoCallback | None = None) -> None:
        """Stop calling ``callback`` (or every callback registered with ``url``) for ``url``."""
        loc = parse_repo_url(url, base_dir=self.base_dir)
        watch = self._watches.get(loc.normalized)
        if watch is None:
            return
        watch.subscribers = [
            s
            for s in watch.subscribers
            if not (s.url == url and (callback is None or s.callback == callback))
        ]
        if not watch.subscribers:
            del self._watches[loc.normalized]

    def watched(self) -> list[str]:
        """The normalised URLs currently watched."""
        return sorted(self._watches)

    async def check_now(self) -> list[str]:
        """Fingerprint every watched repository once and fire callbacks for those that changed; returns
        their normalised URLs (the loop calls this every ``interval``)."""
        changed: list[str] = []
        for normalized, watch in list(self._watches.items()):
            signature = ref_signature(watch.path)
            if signature == watch.signature:
                continue
            watch.signature = signature
            changed.append(normalized)
            for subscriber in list(watch.subscribers):
                self._fire(subscriber)
        return changed

    def _fire(self, subscriber: _Subscriber) -> None:
        if subscriber.task is not None and not subscriber.task.done():
            subscriber.again = True
            return
        subscriber.task = asyncio.create_task(self._deliver(subscriber))

    async def _deliver(self, subscriber: _Subscriber) -> None:
        while True:
            subscriber.again = False
            try:
                await subscriber.callback(subscriber.url)
            except Exception:
                log.exception("repository change callback for %s failed", subscriber.url)
            if not subscriber.again:
                return

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_now()
            except Exception:  # a bug here must not end change detection for every repository
                log.exception("checking local repositories for changes failed")

    async def start(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._run(), name="local-repo-watcher")

    async def stop(self) -> None:
        tasks: list[asyncio.Future[None]] = []
        if self._loop_task is not None:
            tasks.append(self._loop_task)
            self._loop_task = None
        for watch in self._watches.values():
            tasks.extend(s.task for s in watch.subscribers if s.task is not None and not s.task.done())
        with contextlib.suppress(Exception):
            await cancel_and_wait(tasks)

    async def __aenter__(self) -> LocalRepoWatcher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
