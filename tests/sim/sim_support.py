"""Helpers every simulation test module may use: clusters running a few controllers, namespaces, polling.

Most modules run a cluster with only the controllers under test (a module-scoped fixture over
:func:`controllers_cluster`) and play the missing components themselves. Checks are polled: :func:`wait_for`
for synchronous ones, :func:`eventually` for coroutines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from clusterproc import ClusterProcess, start_cluster
from tugboat.kube import kinds
from tugboat.kube.client import Client

T = TypeVar("T")


def controllers_cluster(
    tmp_path_factory: pytest.TempPathFactory, directory: str, controllers: str
) -> Iterator[ClusterProcess]:
    """A simulated cluster running only ``controllers`` (comma-separated), stopped after the module.

    For a module-scoped fixture: ``yield from controllers_cluster(tmp_path_factory, "dir", "a,b")``.
    """
    proc = start_cluster(tmp_path_factory.mktemp(directory), "--controllers", controllers, simulate=True)
    yield proc
    proc.stop()


async def new_namespace(client: Client, name: str) -> str:
    await client.create(kinds.NAMESPACE, {"metadata": {"name": name}})
    return name


def stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(
    check: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or check.__name__} (last: {last!r})")


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy without failing (an assertion, a missing key...)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
        except (AssertionError, KeyError, IndexError, ValueError):
            if time.monotonic() > deadline:
                raise
        else:
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout}s (last result {result!r})")
        await asyncio.sleep(0.05)
