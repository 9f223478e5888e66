"""``tugboat gitops-controller``: run the GitOps (Application) controller against a cluster.

The controller talks to the cluster only through the Kubernetes API, so the same command runs beside
the embedded local cluster (``tugboat up`` starts it) or against any real cluster (``--kubeconfig``).
It stops cleanly on SIGINT/SIGTERM, and when its standard input closes if ``--exit-with-parent`` is
given (``tugboat up`` passes it, so an orphaned controller never lingers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from tugboat.gitops import controller
from tugboat.kube import errors as kube_errors
from tugboat.kube.client import Client
from tugboat.localcluster import server

log = logging.getLogger(__name__)

FIELD_MANAGER = "argocd-controller"


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run(
    kubeconfig: Path | None, options: controller.ControllerOptions, *, exit_with_parent: bool
) -> None:
    client = Client.from_kubeconfig(kubeconfig, field_manager=FIELD_MANAGER)
    ctl = controller.ApplicationController(client, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watchers: list[asyncio.Task[None]] = []
    if exit_with_parent:
        parent = asyncio.create_task(_stdin_closed())
        parent.add_done_callback(lambda _: stop.set())
        watchers.append(parent)
    running = asyncio.create_task(ctl.run())
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


def gitops_controller(
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig of the cluster (default: $KUBECONFIG or ~/.kube/config).")
    ] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of Applications and AppProjects.")] = "argocd",
    state_dir: Annotated[
        Path | None, typer.Option(help="Where repository mirrors live (default: $TUGBOAT_HOME/gitops).")
    ] = None,
    status_processors: Annotated[int, typer.Option(help="Concurrent refreshes.")] = 20,
    operation_processors: Annotated[int, typer.Option(help="Concurrent sync operations.")] = 10,
    app_resync: Annotated[
        float | None,
        typer.Option(
            help="Seconds between periodic refreshes (default: argocd-cm, else 120 + up to 60 jitter)."
        ),
    ] = None,
    self_heal_backoff: Annotated[float, typer.Option(help="First self-heal back-off, seconds.")] = 2.0,
    exit_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the GitOps controller: Applications synced from Git with Argo CD's semantics."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx2", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = controller.ControllerOptions(
        namespace=namespace,
        state_dir=state_dir or server.default_state_dir() / "gitops",
        status_processors=status_processors,
        operation_processors=operation_processors,
        reconciliation=app_resync,
        self_heal_backoff=self_heal_backoff,
    )
    try:
        asyncio.run(run(kubeconfig, options, exit_with_parent=exit_with_parent))
    except kube_errors.KubeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
