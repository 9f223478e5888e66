"""``tugboat rollouts-controller``: run the rollout controller against a cluster.

Like the GitOps controller it only talks to the Kubernetes API, so it runs beside the embedded local
cluster (``tugboat up`` starts it) or against any real cluster (``--kubeconfig``). With ``--metrics-port``
it also serves Prometheus metrics (Argo Rollouts' names, read from the controllers' caches at scrape time)
on ``/metrics`` and a liveness check on ``/healthz``; off by default (Argo Rollouts uses port 8090).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import prometheus_client
import typer

from tugboat.cli import controllerproc
from tugboat.kube.client import Client
from tugboat.rollouts import controller, crds, experimentcontroller, metrics
from tugboat.rollouts.analysis import controller as analysis_controller
from tugboat.util import metricsserve

FIELD_MANAGER = "rollouts-controller"
CONTROLLERS = ("rollouts", "analysis", "experiments")


async def _run_all(
    client: Client,
    names: set[str],
    *,
    rollout_threads: int,
    analysis_threads: int,
    experiment_threads: int = 10,
    metrics_host: str = "0.0.0.0",
    metrics_port: int = 0,
) -> None:
    """The chosen controllers side by side in one process; the first to end ends them all. The CRDs are
    installed (or upgraded) once, before any controller starts watching them. With ``metrics_port`` the
    metrics are served meanwhile, read from the caches of the controllers that run."""
    await crds.install(client)
    runs: list[Callable[[], Coroutine[Any, Any, None]]] = []
    sources: dict[str, metrics.ObjectSource] = {}
    if "rollouts" in names:
        rollouts = controller.RolloutController(client, workers=rollout_threads, install_crds=False)
        runs.append(rollouts.run)
        sources.update(
            rollouts=rollouts.rollouts, analysis_runs=rollouts.analysisruns, experiments=rollouts.experiments
        )
    if "analysis" in names:
        analysis = analysis_controller.AnalysisRunController(client, workers=analysis_threads)
        runs.append(analysis.run)
        sources["analysis_runs"] = analysis.runs
    if "experiments" in names:
        experiments = experimentcontroller.ExperimentController(client, workers=experiment_threads)
        runs.append(experiments.run)
        sources["experiments"] = experiments.experiments
    serving: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
    if metrics_port:
        prometheus_client.disable_created_metrics()  # Argo serves no ``*_created`` series
        registry = metrics.make_registry(**sources)
        serving = metricsserve.serving(registry, host=metrics_host, port=metrics_port)
    async with serving:
        await _run_together([run() for run in runs])


async def _run_together(runs: list[Coroutine[Any, Any, None]]) -> None:
    tasks = [asyncio.ensure_future(r) for r in runs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _parse_controllers(text: str) -> set[str]:
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = names - set(CONTROLLERS)
    if unknown or not names:
        wrong = ", ".join(sorted(unknown)) or "(none)"
        raise typer.BadParameter(f"unknown controller(s) {wrong}; choose from {', '.join(CONTROLLERS)}")
    return names


def rollouts_controller(
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig of the cluster (default: $KUBECONFIG or ~/.kube/config).")
    ] = None,
    rollout_threads: Annotated[int, typer.Option(help="Concurrent Rollout reconciles.")] = 10,
    analysis_threads: Annotated[int, typer.Option(help="Concurrent AnalysisRun reconciles.")] = 20,
    experiment_threads: Annotated[int, typer.Option(help="Concurrent Experiment reconciles.")] = 10,
    controllers: Annotated[
        str, typer.Option(help=f"Comma-separated controllers to run ({', '.join(CONTROLLERS)}).")
    ] = ",".join(CONTROLLERS),
    metrics_port: Annotated[
        int, typer.Option(help="Serve /metrics and /healthz on this port (0: off; Argo uses 8090).")
    ] = 0,
    metrics_host: Annotated[str, typer.Option(help="Address the metrics port listens on.")] = "0.0.0.0",
    exit_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the rollout controller: blue-green and canary Rollouts, AnalysisRuns and Experiments, with
    Argo Rollouts' semantics."""
    names = _parse_controllers(controllers)
    controllerproc.configure_logging(verbose)
    controllerproc.run_foreground(
        kubeconfig,
        lambda client: _run_all(
            client,
            names,
            rollout_threads=rollout_threads,
            analysis_threads=analysis_threads,
            experiment_threads=experiment_threads,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        ),
        field_manager=FIELD_MANAGER,
        exit_with_parent=exit_with_parent,
    )
