"""``tugboat up``: everything Tugboat has, in the foreground, on the local cluster or a real one.

On the embedded local cluster (the default) the cluster serves and runs the GitOps controller and the
rollout controller as supervised companion processes; with ``--kubeconfig`` no local cluster starts and
the same controllers run, supervised the same way, against that cluster (they install their CRDs on it).
Each controller is restarted with back-off when it dies, writes its output to ``DIR/logs/<name>.log``, and
all of them stop together on Ctrl-C / SIGTERM. On first start against the local cluster a demo is
bootstrapped (a Git repository under ``DIR/demo-repo`` and Applications for it), so that a newcomer sees
live, synced applications at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tugboat.cli import demoapps
from tugboat.localcluster import companions, server
from tugboat.localcluster.controllers.base import SimulationOptions

log = logging.getLogger(__name__)
console = Console(stderr=True, soft_wrap=True)  # long paths stay on one line


def controller_specs(state: Path, *, gitops: bool, rollouts: bool, kubeconfig: str) -> list[companions.Spec]:
    """The controller processes ``up`` supervises (``{kubeconfig}`` stands for the local cluster's)."""
    python = [sys.executable, "-m", "tugboat.cli.main"]
    specs = []
    if gitops:
        argv = [
            *python,
            "gitops-controller",
            "--kubeconfig",
            kubeconfig,
            "--state-dir",
            str(state / "gitops"),
        ]
        specs.append(companions.Spec("gitops-controller", (*argv, "--exit-with-parent")))
    if rollouts:
        argv = [*python, "rollouts-controller", "--kubeconfig", kubeconfig]
        specs.append(companions.Spec("rollouts-controller", (*argv, "--exit-with-parent")))
    return specs


def _print_status(title: str, lines: list[tuple[str, str]]) -> None:
    console.print(f"[bold green]{title}[/]")
    for key, value in lines:
        console.print(f"  {key + ':':<22}{value}")


def _bootstrap_demo(state: Path, kubeconfig: Path) -> None:
    """Create the demo repository and Applications once (in a thread with its own event loop)."""
    try:
        created = demoapps.bootstrap(state, kubeconfig)
    except Exception as exc:  # the demo must never take `up` down
        console.print(f"[yellow]demo:[/] not bootstrapped: {exc}")
        return
    if created:
        console.print(
            f"[green]demo:[/] created {', '.join(created)} (repository {demoapps.repo_path(state)})"
        )


def up(
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="State directory (default: $TUGBOAT_HOME or ~/.local/state/tugboat)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Local cluster port; 0 picks a free one.")] = 6443,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="Run the controllers against this (real) cluster instead of the local one."),
    ] = None,
    nodes: Annotated[int, typer.Option(help="Number of simulated nodes.")] = 3,
    gitops: Annotated[bool, typer.Option(help="Run the GitOps controller.")] = True,
    rollouts: Annotated[bool, typer.Option(help="Run the rollout controller.")] = True,
    demo: Annotated[bool, typer.Option(help="Bootstrap the demo applications on first start.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start everything Tugboat has in the foreground: the local cluster (or --kubeconfig) and the
    controllers, supervised, with their logs under STATE_DIR/logs."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for noisy in ("httpx2", "httpx", "httpcore"):  # one line per request otherwise
            logging.getLogger(noisy).setLevel(logging.WARNING)
    state = state_dir or server.default_state_dir()
    logs = state / "logs"
    if kubeconfig is not None:
        _up_on(kubeconfig, state, logs, gitops=gitops, rollouts=rollouts)
        return
    specs = controller_specs(state, gitops=gitops, rollouts=rollouts, kubeconfig="{kubeconfig}")
    options = server.ServeOptions(
        state_dir=state,
        port=port,
        simulation=SimulationOptions(nodes=nodes) if nodes > 0 else None,
        companions=list(specs),
        companion_logs=logs,
    )

    def ready(url: str, config: Path) -> None:
        lines = [
            ("local cluster", f"serving at {url}"),
            *((spec.name, f"running (log: {logs / (spec.name + '.log')})") for spec in specs),
            ("state", str(state)),
            ("kubeconfig", str(config)),
            ("try", f"kubectl --kubeconfig {config} get rollouts,applications -A"),
            ("stop", "Ctrl-C"),
        ]
        _print_status("tugboat up: everything is running", lines)
        if demo and gitops and rollouts:
            threading.Thread(target=_bootstrap_demo, args=(state, config), daemon=True).start()

    try:
        asyncio.run(server.serve(options, on_ready=ready))
    except server.ServerError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    console.print("stopped")


def _up_on(kubeconfig: Path, state: Path, logs: Path, *, gitops: bool, rollouts: bool) -> None:
    """The controllers, supervised, against a cluster that already exists."""
    if not kubeconfig.is_file():
        console.print(f"[bold red]error:[/] kubeconfig {kubeconfig} does not exist")
        raise typer.Exit(1)
    specs = controller_specs(state, gitops=gitops, rollouts=rollouts, kubeconfig=str(kubeconfig))
    if not specs:
        console.print("[bold red]error:[/] nothing to run (--no-gitops and --no-rollouts)")
        raise typer.Exit(1)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = [companions.Companion(spec.argv, name=spec.name, log_dir=logs) for spec in specs]
        try:
            for companion in running:
                await companion.start(kubeconfig)
            lines = [
                ("cluster", f"{kubeconfig} (the controllers install their CRDs there)"),
                *((c.name, f"running (pid {c.pid}, log: {c.log_path})") for c in running),
                ("stop", "Ctrl-C"),
            ]
            _print_status("tugboat up: controllers running against your cluster", lines)
            await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.gather(*(c.stop() for c in running))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    console.print("stopped")
