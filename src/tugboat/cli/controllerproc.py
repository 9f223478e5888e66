"""Running one controller as a process: a client from a kubeconfig, signals, and the parent's lifetime.

``tugboat gitops-controller`` and ``tugboat rollouts-controller`` share it: the controller runs until
SIGINT/SIGTERM, or - with ``exit_with_parent`` (``tugboat up`` passes it) - until standard input closes,
so an orphaned controller never lingers after ``tugboat up`` is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import typer

from tugboat.kube import errors as kube_errors
from tugboat.kube.client import Client


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run(
    kubeconfig: Path | None,
    make: Callable[[Client], Coroutine[Any, Any, None]],
    *,
    field_manager: str,
    exit_with_parent: bool,
) -> None:
    """Run ``make(client)`` (a controller's ``run()``) until a signal, the parent's exit, or its end."""
    client = Client.from_kubeconfig(kubeconfig, field_manager=field_manager)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watchers: list[asyncio.Task[None]] = []
    if exit_with_parent:
        parent = asyncio.create_task(_stdin_closed())
        parent.add_done_callback(lambda _: stop.set())
        watchers.append(parent)
    running = asyncio.create_task(make(client))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (running, stopping, *watchers):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await client.close()
    if running.done() and not running.cancelled() and running.exception() is not None:
        raise running.exception()  # type: ignore[misc]


def run_foreground(
    kubeconfig: Path | None,
    make: Callable[[Client], Coroutine[Any, Any, None]],
    *,
    field_manager: str,
    exit_with_parent: bool,
) -> None:
    """:func:`run` as a command's body: a cluster error is one ``error:`` line and exit status 1, Ctrl-C
    ends quietly."""
    try:
        asyncio.run(run(kubeconfig, make, field_manager=field_manager, exit_with_parent=exit_with_parent))
    except kube_errors.KubeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx2", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
