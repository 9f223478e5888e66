"""``tugboat server`` and ``tugboat admin …``: run the API server, read what it generated.

The server needs the admin account and its signing key before it answers; both are made (or read) in
the cluster at start, so a restart keeps every session and password. ``admin initial-password`` prints
the first password the way ``argocd admin initial-password`` does.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from tugboat.cli import appcmd
from tugboat.kube.client import Client
from tugboat.server import app as server_app
from tugboat.server import auth

FIELD_MANAGER = "tugboat-server"

admin_cli = typer.Typer(cls=appcmd._Group, help="Administer the API server's accounts.", no_args_is_help=True)

NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace of Argo CD's settings and Applications.")
]


def server(
    kubeconfig: appcmd.KubeconfigOpt = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    namespace: NamespaceOpt = auth.DEFAULT_NAMESPACE,
) -> None:
    """Run the API server (REST API with Argo CD's paths) in the foreground."""

    async def work(client: Client) -> int:
        key = await auth.bootstrap(client, namespace=namespace)
        asgi = server_app.create_app(client, secret_key=key, namespace=namespace)
        await uvicorn.Server(uvicorn.Config(asgi, host=host, port=port, log_level="info")).serve()
        return 0

    appcmd._run(kubeconfig, work)


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
