"""``tugboat gitops-controller``: run the GitOps (Application) controller against a cluster.

The controller talks to the cluster only through the Kubernetes API, so the same command runs beside
the embedded local cluster (``tugboat up`` starts it) or against any real cluster (``--kubeconfig``).
It stops cleanly on SIGINT/SIGTERM, and when its standard input closes if ``--exit-with-parent`` is
given (``tugboat up`` passes it, so an orphaned controller never lingers). With ``--metrics-port`` it also
serves Prometheus metrics (Argo CD's names) on ``/metrics`` and a liveness check on ``/healthz``; off by
default (Argo CD's application controller uses port 8082).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Annotated

import prometheus_client
import typer

from tugboat.cli import controllerproc
from tugboat.gitops import comparison, controller
from tugboat.kube.client import Client
from tugboat.localcluster import server
from tugboat.util import metricsserve

log = logging.getLogger(__name__)

FIELD_MANAGER = comparison.SSA_MANAGER


async def _run(
    client: Client, options: controller.ControllerOptions, *, metrics_host: str, metrics_port: int
) -> None:
    """The controller, serving its metrics meanwhile when ``metrics_port`` is not 0."""
    ctl = controller.ApplicationController(client, options)
    serving: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
    if metrics_port:
        prometheus_client.disable_created_metrics()  # Argo serves no ``*_created`` series
        serving = metricsserve.serving(ctl.metrics.registry, host=metrics_host, port=metrics_port)
    async with serving:
        await ctl.run()


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
    metrics_port: Annotated[
        int, typer.Option(help="Serve /metrics and /healthz on this port (0: off; Argo uses 8082).")
    ] = 0,
    metrics_host: Annotated[str, typer.Option(help="Address the metrics port listens on.")] = "0.0.0.0",
    exit_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the GitOps controller: Applications synced from Git with Argo CD's semantics."""
    controllerproc.configure_logging(verbose)
    options = controller.ControllerOptions(
        namespace=namespace,
        state_dir=state_dir or server.default_state_dir() / "gitops",
        status_processors=status_processors,
        operation_processors=operation_processors,
        reconciliation=app_resync,
        self_heal_backoff=self_heal_backoff,
    )
    controllerproc.run_foreground(
        kubeconfig,
        lambda client: _run(client, options, metrics_host=metrics_host, metrics_port=metrics_port),
        field_manager=FIELD_MANAGER,
        exit_with_parent=exit_with_parent,
    )
