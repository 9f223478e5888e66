"""The ``tugboat`` command: one entry point for the local cluster, the controllers and the UI.

Sub-commands stay thin: they parse options, then call the component that does the work, so everything
the CLI can do is also reachable (and tested) from Python.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tugboat import __version__
from tugboat.cli import (
    analysiscmd,
    appcmd,
    democmd,
    gitopscmd,
    logincmd,
    rolloutcmd,
    rolloutsctlcmd,
    servercmd,
    upcmd,
)
from tugboat.localcluster import server
from tugboat.localcluster.controllers.base import SimulationOptions

app = typer.Typer(
    help="GitOps and progressive delivery for Kubernetes, with an embedded local cluster.",
    no_args_is_help=True,
    add_completion=False,
)
cluster_app = typer.Typer(help="The embedded local cluster.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")
app.command("gitops-controller")(gitopscmd.gitops_controller)
app.command("rollouts-controller")(rolloutsctlcmd.rollouts_controller)
app.add_typer(appcmd.app_cli, name="app")
app.add_typer(rolloutcmd.rollout_cli, name="rollout")
app.add_typer(analysiscmd.analysis_cli, name="analysis")
app.command("demo")(democmd.demo)
servercmd.register(app)
logincmd.register(app)

console = Console(stderr=True)

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="State directory (default: $TUGBOAT_HOME or ~/.local/state/tugboat)."),
]


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for noisy in ("httpx2", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _run_cluster(options: server.ServeOptions, title: str) -> None:
    def ready(url: str, kubeconfig: Path) -> None:
        console.print(f"[bold green]{title}[/] local cluster serving at [bold]{url}[/]")
        console.print(f"  state:      {options.state_dir}")
        console.print(f"  kubeconfig: {kubeconfig}")
        console.print(f"  try:        kubectl --kubeconfig {kubeconfig} get namespaces")
        console.print("  stop:       Ctrl-C")

    try:
        asyncio.run(server.serve(options, on_ready=ready))
    except server.ServerError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    console.print("stopped")


@cluster_app.command("serve")
def cluster_serve(
    state_dir: StateDir = None,
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 6443,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    tls: Annotated[
        bool, typer.Option("--tls", help="Serve HTTPS with a generated certificate and token.")
    ] = False,
    nodes: Annotated[int, typer.Option(help="Number of simulated nodes (0: no simulation at all).")] = 3,
    controllers: Annotated[
        str, typer.Option(help="Comma-separated simulated controllers to run (default: all).", hidden=True)
    ] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    # Hidden knobs for tests: make bookmarks and compaction happen within seconds.
    bookmark_interval: Annotated[float, typer.Option(hidden=True)] = 60.0,
    retain_revisions: Annotated[int, typer.Option(hidden=True)] = 1000,
    retain_seconds: Annotated[float, typer.Option(hidden=True)] = 300.0,
    compact_interval: Annotated[float, typer.Option(hidden=True)] = 30.0,
) -> None:
    """Run the local cluster's API server in the foreground."""
    _configure_logging(verbose)
    options = server.ServeOptions(
        state_dir=state_dir or server.default_state_dir(),
        host=host,
        port=port,
        tls=tls,
        bookmark_interval=bookmark_interval,
        retain_revisions=retain_revisions,
        retain_seconds=retain_seconds,
        compact_interval=compact_interval,
        simulation=SimulationOptions(nodes=nodes) if nodes > 0 else None,
        controllers=[c for c in controllers.split(",") if c] or None,
    )
    _run_cluster(options, "tugboat")


app.command("up")(upcmd.up)


@app.command("version")
def version() -> None:
    """Print Tugboat's version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
