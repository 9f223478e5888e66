"""``tugboat analysis …``: read AnalysisRuns, the results of a Rollout's or Experiment's analysis.

A run's verdict is what aborts or promotes a Rollout, so when one fails users want its metrics and
measurements, which ``tugboat rollout get`` only sums up in one cell. ``get`` shows one run in full and
``list`` the runs of a namespace; both only read, through the Kubernetes API, and print what
:mod:`tugboat.cli.analysisview` lays out. A cluster without the AnalysisRun CRD gets a one-line error.

Kubeconfig lookup, one-line errors and plain-or-rich output are shared with ``tugboat app``
(:mod:`tugboat.cli.appcmd`).
"""

from __future__ import annotations

import datetime
import enum
from typing import Annotated

import typer
from rich.text import Text

from tugboat.cli import analysisview, appcmd, appview
from tugboat.kube import errors
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds

DEFAULT_NAMESPACE = "default"

analysis_cli = typer.Typer(
    cls=appcmd._Group,
    help="Read Argo-Rollouts-compatible AnalysisRuns: their status, metrics and measurements.",
    no_args_is_help=True,
)


class DataOutput(enum.StrEnum):
    json = "json"
    yaml = "yaml"


NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the AnalysisRuns.")]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="Do not colorize output.")]


def _missing_api(exc: errors.ApiError) -> appcmd.CliError:
    return appcmd.CliError(f"the server has no {crds.ANALYSISRUN} API ({exc.message or exc.reason})")


async def get_run(client: Client, namespace: str, name: str) -> Obj:
    """The AnalysisRun, or a :class:`appcmd.CliError` naming what is missing: the run or its API."""
    try:
        return await client.get(crds.ANALYSISRUN, name, namespace)
    except errors.ApiError as exc:
        if not exc.not_found:
            raise
        details = exc.status.get("details")
        if isinstance(details, dict) and details.get("name"):
            raise appcmd.CliError(f"analysisrun '{namespace}/{name}' not found") from None
        raise _missing_api(exc) from None


def _printable(view: Text, *, color: bool) -> Text:
    """``view`` without its styles for ``--no-color``, and never wrapped by rich (that would break the
    tables' columns): long lines are left to the terminal."""
    view = view if color else Text(view.plain)
    view.no_wrap, view.overflow = True, "ignore"
    return view


@analysis_cli.command("get")
def get(
    name: Annotated[str, typer.Argument(help="AnalysisRun name.", show_default=False)],
    output: Annotated[DataOutput | None, typer.Option("--output", "-o", help="Output format.")] = None,
    no_color: NoColorOpt = False,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Show an AnalysisRun: status, message, arguments, and each metric with its measurements."""

    async def work(client: Client) -> int:
        run = await get_run(client, namespace, name)
        if output is not None:
            appcmd._emit_data(run, output.value)
        else:
            appcmd._emit(_printable(analysisview.detail(run), color=not no_color))
        return 0

    appcmd._run(kubeconfig, work)


@analysis_cli.command("list")
def list_runs(
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List AnalysisRuns of every namespace.")
    ] = False,
    no_color: NoColorOpt = False,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """List AnalysisRuns, oldest first: status, age and measurement counts."""

    async def work(client: Client) -> int:
        try:
            found, _ = await client.list(crds.ANALYSISRUN, namespace, all_namespaces=all_namespaces)
        except errors.ApiError as exc:
            if exc.not_found:
                raise _missing_api(exc) from None
            raise
        if not found:
            typer.echo("No resources found.", err=True)
            return 0
        found.sort(
            key=lambda run: (
                appview.text(run, "metadata", "namespace"),
                appview.text(run, "metadata", "creationTimestamp"),
                appview.text(run, "metadata", "name"),
            )
        )
        now = datetime.datetime.now(datetime.UTC)
        view = analysisview.list_table(found, now, all_namespaces=all_namespaces)
        appcmd._emit(_printable(view, color=not no_color))
        return 0

    appcmd._run(kubeconfig, work)
