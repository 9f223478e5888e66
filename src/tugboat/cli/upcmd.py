"""``tugboat up``: everything Tugboat has, in the foreground, on the local cluster or a real one.

On the embedded local cluster (the default) the cluster serves and runs the GitOps controller and the
rollout controller as supervised companion processes; with ``--kubeconfig`` no local cluster starts and
the same controllers run, supervised the same way, against that cluster (they install their CRDs on it).
Each controller is restarted with back-off when it dies, writes its output to ``DIR/logs/<name>.log``, and
all of them stop together on Ctrl-C / SIGTERM. On first start against the local cluster a demo is
bootstrapped (a Git repository under ``DIR/demo-repo`` and Applications for it), so that a newcomer sees
live, synced applications at once. The API server and web UI (``tugboat server``) run as one more
companion on ``--ui-port``; once it answers, ``up`` prints its URL with the generated admin password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated

import httpx2 as httpx
import typer
from rich.console import Console

from tugboat.cli import demoapps
from tugboat.kube.client import Client
from tugboat.localcluster import companions, server
from tugboat.localcluster.controllers.base import SimulationOptions
from tugboat.server import auth

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


UI_HOST = "127.0.0.1"
UI_WAIT_SECONDS = 60.0
PASSWORD_HINT = "`tugboat admin initial-password`"


def server_spec(*, kubeconfig: str, port: int) -> companions.Spec:
    """The API server and web UI as a companion (``{kubeconfig}`` stands for the local cluster's)."""
    argv = [sys.executable, "-m", "tugboat.cli.main", "server", "--kubeconfig", kubeconfig]
    argv += ["--host", UI_HOST, "--port", str(port), "--exit-with-parent"]
    return companions.Spec("server", tuple(argv))


def port_free(port: int, host: str = UI_HOST) -> bool:
    """Whether a server could listen on ``host:port`` now (as uvicorn binds: with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ui_url(port: int) -> str:
    return f"http://{UI_HOST}:{port}"


def ui_line(port: int, password: str | None = None) -> str:
    return f"{ui_url(port)} (user admin, password: {password or PASSWORD_HINT})"


def _ui_port_or_none(ui_port: int) -> int | None:
    """``ui_port`` when the UI should start (0: not wanted; a port in use: said, and not started)."""
    if ui_port <= 0:
        return None
    if not port_free(ui_port):
        console.print(
            f"[yellow]UI:[/] not started: {UI_HOST}:{ui_port} is in use "
            "(pass --ui-port with a free port, or --ui-port 0 for no UI)"
        )
        return None
    return ui_port


async def _ui_answers(port: int, *, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=ui_url(port), timeout=2.0) as http:
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return True
            await asyncio.sleep(0.25)
    return False


async def announce_ui(kubeconfig: Path, port: int, *, timeout: float = UI_WAIT_SECONDS) -> None:
    """Once the UI answers, print its URL with the initial admin password (when its Secret exists)."""
    if not await _ui_answers(port, timeout=timeout):
        console.print(
            f"[yellow]UI:[/] {ui_url(port)} does not answer after {timeout:.0f} s (see logs/server.log)"
        )
        return
    password: str | None = None
    with contextlib.suppress(Exception):  # the announcement must never take `up` down
        async with Client.from_kubeconfig(kubeconfig, field_manager="tugboat-up") as client:
            password = await auth.initial_password(client)
    console.print(f"[bold green]UI ready:[/] {ui_line(port, password)}")


def _announce_in_thread(kubeconfig: Path, port: int) -> None:
    threading.Thread(target=asyncio.run, args=(announce_ui(kubeconfig, port),), daemon=True).start()


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
    ui_port: Annotated[
        int, typer.Option(help="Port of the API server and web UI (on 127.0.0.1); 0: do not start them.")
    ] = 8080,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start everything Tugboat has in the foreground: the local cluster (or --kubeconfig), the
    controllers and the API server with the web UI, supervised, with their logs under STATE_DIR/logs."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for noisy in ("httpx2", "httpx", "httpcore"):  # one line per request otherwise
            logging.getLogger(noisy).setLevel(logging.WARNING)
    state = state_dir or server.default_state_dir()
    logs = state / "logs"
    ui = _ui_port_or_none(ui_port)
    if kubeconfig is not None:
        _up_on(kubeconfig, state, logs, gitops=gitops, rollouts=rollouts, ui_port=ui)
        return
    specs = controller_specs(state, gitops=gitops, rollouts=rollouts, kubeconfig="{kubeconfig}")
    if ui is not None:
        specs.append(server_spec(kubeconfig="{kubeconfig}", port=ui))
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
            *([("UI", ui_line(ui))] if ui is not None else []),
            ("state", str(state)),
            ("kubeconfig", str(config)),
            ("try", f"kubectl --kubeconfig {config} get rollouts,applications -A"),
            ("stop", "Ctrl-C"),
        ]
        _print_status("tugboat up: everything is running", lines)
        if ui is not None:
            _announce_in_thread(config, ui)
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


def _up_on(
    kubeconfig: Path, state: Path, logs: Path, *, gitops: bool, rollouts: bool, ui_port: int | None
) -> None:
    """The controllers (and the UI), supervised, against a cluster that already exists."""
    if not kubeconfig.is_file():
        console.print(f"[bold red]error:[/] kubeconfig {kubeconfig} does not exist")
        raise typer.Exit(1)
    specs = controller_specs(state, gitops=gitops, rollouts=rollouts, kubeconfig=str(kubeconfig))
    if ui_port is not None:
        specs.append(server_spec(kubeconfig=str(kubeconfig), port=ui_port))
    if not specs:
        console.print("[bold red]error:[/] nothing to run (--no-gitops, --no-rollouts and --ui-port 0)")
        raise typer.Exit(1)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = [companions.Companion(spec.argv, name=spec.name, log_dir=logs) for spec in specs]
        announcing: asyncio.Task[None] | None = None
        try:
            for companion in running:
                await companion.start(kubeconfig)
            lines = [
                ("cluster", f"{kubeconfig} (the controllers install their CRDs there)"),
                *((c.name, f"running (pid {c.pid}, log: {c.log_path})") for c in running),
                *([("UI", ui_line(ui_port))] if ui_port is not None else []),
                ("stop", "Ctrl-C"),
            ]
            _print_status("tugboat up: controllers running against your cluster", lines)
            if ui_port is not None:
                announcing = asyncio.create_task(announce_ui(kubeconfig, ui_port))
            await stop.wait()
        finally:
            if announcing is not None:
                announcing.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*(c.stop() for c in running))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    console.print("stopped")
