"""The worker processes that do the CPU-heavy part of rendering, with a timeout per task.

Parsing a large directory of YAML, evaluating Jsonnet or serializing big outputs would stall the
controller's event loop (and the GIL) if done in-process, and a hostile repository can make any of them
run forever. So they run here: a lazily created ``ProcessPoolExecutor`` of two ``spawn``ed workers shared
by the whole process. At most two tasks are handed to it at a time (per event loop), so a task's timeout
measures its own run time, not time spent queued behind others. A task that overruns its timeout has its
worker killed: the whole pool is torn down (``concurrent.futures`` cannot kill a single worker) and a new
one is created on the next call; a task that was running beside it fails with ``BrokenProcessPool`` and is
retried once, so only the overrunning render fails.

Functions given to ``run`` must be module-level (they are pickled by name) and pure: they read files and
return data, so running one twice is harmless.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import multiprocessing
import signal
import threading
import weakref
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from tugboat.gitops.errors import RenderError

T = TypeVar("T")

WORKERS = 2
_TASKS_PER_WORKER = 200  # recycle workers now and then, so memory a big render grew is given back

_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_shut_down: weakref.WeakSet[concurrent.futures.ProcessPoolExecutor] = weakref.WeakSet()
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


class _PoolBroke(Exception):
    """The pool a task ran in broke: a worker died, or the pool was killed or shut down."""

    def __init__(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        super().__init__("the worker pool broke")
        self.pool = pool


async def run(fn: Callable[..., T], /, *args: Any, timeout: float, what: str) -> T:
    """``fn(*args)`` in a worker process; ``RenderError`` if it runs longer than ``timeout`` seconds.

    ``what`` names the task in error messages ("parsing kustomize build output"). Exceptions ``fn``
    raises (``RenderError`` above all) are re-raised here.
    """
    for attempt in range(2):
        try:
            return await _run_once(fn, args, timeout=timeout, what=what)
        except _PoolBroke as broke:
            if broke.pool in _shut_down:
                raise RenderError(f"{what}: the render workers were shut down") from None
            if attempt == 1:
                break
    raise RenderError(f"{what}: the render worker process died (it may have run out of memory)")


def shutdown(*, kill: bool = False) -> None:
    """Stop the worker processes (a later ``run`` starts new ones).

    By default running tasks finish first; ``kill=True`` kills the workers at once (the controller
    stopping), failing their tasks.
    """
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is None:
        return
    _shut_down.add(pool)
    if kill:
        _kill(pool)
    else:
        pool.shutdown(wait=True, cancel_futures=True)


async def _run_once(fn: Callable[..., T], args: tuple[Any, ...], *, timeout: float, what: str) -> T:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots.setdefault(loop, asyncio.Semaphore(WORKERS))
    await slots.acquire()
    pool: concurrent.futures.ProcessPoolExecutor | None = None
    try:
        pool = _get_pool()
        future = pool.submit(fn, *args)
    except (BrokenProcessPool, RuntimeError) as exc:  # RuntimeError: shut down by a timeout elsewhere
        slots.release()
        if pool is None:
            raise
        _discard(pool)
        raise _PoolBroke(pool) from exc
    except BaseException:
        slots.release()
        raise
    # The slot is given back when the task really ends, even if we stop waiting for it earlier.
    future.add_done_callback(functools.partial(_release, loop, slots))
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        _kill(pool)
        raise RenderError(f"{what} timed out after {timeout:g}s") from None
    except BrokenProcessPool as exc:
        raise _PoolBroke(pool) from exc


def _release(loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore, _: object) -> None:
    with contextlib.suppress(RuntimeError):  # the loop may be closed already
        loop.call_soon_threadsafe(slots.release)


def _get_pool() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                max_tasks_per_child=_TASKS_PER_WORKER,
            )
        return _pool


def _discard(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None


def _kill(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill every worker of ``pool`` and forget it; its unfinished tasks end with ``BrokenProcessPool``."""
    _discard(pool)
    # ``_processes`` is private, but it is the only handle on the workers before Python 3.14's
    # ``kill_workers()``.
    processes = dict(getattr(pool, "_processes", None) or {})
    for process in processes.values():
        with contextlib.suppress(Exception):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _init_worker() -> None:
    # Ctrl-C in a terminal goes to the whole process group; the controller decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
