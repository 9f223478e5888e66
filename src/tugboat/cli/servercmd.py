"""``tugboat server`` and ``tugboat admin …``: run the API server, read what it generated.

The server needs the admin account and its signing key before it answers; both are made (or read) in
the cluster at start, so a restart keeps every session and password. ``admin initial-password`` prints
the first password the way ``argocd admin initial-password`` does. The server speaks plain HTTP on one
port, metrics (``/metrics``) included; once it listens it prints its URL (the port it got, with
``--port 0``). ``tugboat up`` runs it as a supervised companion (``--exit-with-parent``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn

from tugboat.cli import appcmd, controllerproc
from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.server import app as server_app
from tugboat.server import auth, servermetrics

FIELD_MANAGER = "tugboat-server"

admin_cli = typer.Typer(cls=appcmd._Group, help="Administer the API server's accounts.", no_args_is_help=True)

NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace of Argo CD's settings and Applications.")
]


SHUTDOWN_GRACE = 5  # seconds open streams get to end on shutdown


def _bound_port(web: uvicorn.Server, requested: int) -> int:
    for listener in getattr(web, "servers", None) or []:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    return requested


async def _ensure_namespace(client: Client, namespace: str) -> None:
    """Create the settings namespace when missing (the server may start before the GitOps controller)."""
    if await client.get_or_none(kinds.NAMESPACE, namespace) is not None:
        return
    try:
        await client.create(kinds.NAMESPACE, {"metadata": {"name": namespace}})
    except kube_errors.ApiError as exc:
        if not exc.already_exists:
            raise


async def _serve(client: Client, *, host: str, port: int, namespace: str, access_log: bool) -> None:
    """Bootstrap the admin account and key, then serve until cancelled or told to stop."""
    await _ensure_namespace(client, namespace)
    key = await auth.bootstrap(client, namespace=namespace)
    asgi = server_app.create_app(client, secret_key=key, namespace=namespace)
    servermetrics.instrument(asgi)  # a no-op when create_app did it
    config = uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )
    web = uvicorn.Server(config)
    serving = asyncio.create_task(web.serve())
    while not web.started and not serving.done():
        await asyncio.sleep(0.05)
    if web.started:
        url = f"http://{host}:{_bound_port(web, port)}"
        typer.echo(f"tugboat server: serving the API and the UI at {url} (metrics: {url}/metrics)", err=True)
    await serving


def server(
    kubeconfig: appcmd.KubeconfigOpt = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    namespace: NamespaceOpt = auth.DEFAULT_NAMESPACE,
    access_log: Annotated[bool, typer.Option(help="Log one line per request.")] = True,
    exit_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run the API server (REST API with Argo CD's paths, the web UI, /metrics) in the foreground."""
    controllerproc.run_foreground(
        kubeconfig or appcmd.default_kubeconfig(),
        lambda client: _serve(client, host=host, port=port, namespace=namespace, access_log=access_log),
        field_manager=FIELD_MANAGER,
        exit_with_parent=exit_with_parent,
    )


@admin_cli.command("initial-password")
def initial_password(
    kubeconfig: appcmd.KubeconfigOpt = None, namespace: NamespaceOpt = auth.DEFAULT_NAMESPACE
) -> None:
    """Print the admin password generated on the server's first start."""

    async def work(client: Client) -> int:
        password = await auth.initial_password(client, namespace=namespace)
        if password is None:
            raise appcmd.CliError(
                f"secret '{namespace}/{auth.INITIAL_SECRET}' not found (has the server started yet?)"
            )
        typer.echo(password)
        return 0

    appcmd._run(kubeconfig, work)


def register(app: typer.Typer) -> None:
    """Add ``server`` and ``admin`` to the ``tugboat`` command."""
    app.command("server")(server)
    app.add_typer(admin_cli, name="admin")
