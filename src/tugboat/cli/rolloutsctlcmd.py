"""``tugboat rollouts-controller``: run the rollout controller against a cluster.

Like the GitOps controller it only talks to the Kubernetes API, so it runs beside the embedded local
cluster (``tugboat up`` starts it) or against any real cluster (``--kubeconfig``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from tugboat.cli import controllerproc
from tugboat.kube import errors as kube_errors
from tugboat.rollouts import controller

FIELD_MANAGER = "rollouts-controller"


def rollouts_controller(
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig of the cluster (default: $KUBECONFIG or ~/.kube/config).")
    ] = None,
    rollout_threads: Annotated[int, typer.Option(help="Concurrent Rollout reconciles.")] = 10,
    exit_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the rollout controller: blue-green and canary Rollouts with Argo Rollouts' semantics."""
    controllerproc.configure_logging(verbose)
    try:
        asyncio.run(
            controllerproc.run(
                kubeconfig,
                lambda client: controller.RolloutController(client, workers=rollout_threads).run(),
                field_manager=FIELD_MANAGER,
                exit_with_parent=exit_with_parent,
            )
        )
    except kube_errors.KubeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
