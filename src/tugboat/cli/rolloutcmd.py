"""``tugboat rollout …``: drive Argo-Rollouts-compatible Rollouts the way ``kubectl argo rollouts`` does.

Argo Rollouts has no API of its own: its kubectl plugin changes a Rollout by patching it through the
Kubernetes API, and the controller reacts to what it finds (research/rollouts.md §1.9, §2.7). These
commands write exactly the fields the plugin writes, in the same places, so either CLI drives either
controller; the writes themselves (promote, abort, retry, pause, resume, restart, set-image, undo) are
:mod:`tugboat.rollouts.actions`, shared with the API server, and this module words their outcome and
their errors. ``get``, ``list`` and ``status`` read objects and show them with
:mod:`tugboat.cli.rolloutview`, using the client-side phase of §2.3.

Kubeconfig lookup, one-line errors and plain-or-rich output are shared with ``tugboat app``
(:mod:`tugboat.cli.appcmd`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console, OverflowMethod
from rich.live import Live
from rich.text import Text

from tugboat.cli import appcmd, appview, rolloutview
from tugboat.kube import errors, informers, kinds
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import actions, crds, defaults, validation

ROLLOUT = crds.ROLLOUT

DEFAULT_NAMESPACE = "default"
_CHILD_LABELS = rolloutview.HASH_LABEL  # ReplicaSets and Pods of Rollouts carry this label
_REDRAW_MIN_SECONDS = 0.2  # get --watch redraws at most this often ...
_REDRAW_MAX_SECONDS = 1.0  # ... and at least this often on a terminal (ages move on)
_SYNC_TIMEOUT = 30.0

rollout_cli = typer.Typer(
    cls=appcmd._Group,
    help="Manage Argo-Rollouts-compatible Rollouts through the Kubernetes API, like `kubectl argo rollouts`.",
    no_args_is_help=True,
)


class DataOutput(enum.StrEnum):
    json = "json"
    yaml = "yaml"


class ListOutput(enum.StrEnum):
    json = "json"
    yaml = "yaml"
    name = "name"


NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the Rollouts.")]
NameArg = Annotated[str, typer.Argument(help="Rollout name.", show_default=False)]
NamesArg = Annotated[list[str], typer.Argument(help="Rollout names.", show_default=False)]


# ------------------------------------------------------------------------------------------ helpers


def parse_duration(value: str, flag: str) -> float:
    """Seconds in a Go duration (``30s``, ``1m30s``, ``500ms``, ``0``), as the upstream flags take them."""
    try:
        seconds = defaults.parse_go_duration(value.strip())
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise appcmd.CliError(f"{flag}: '{value}' is not a duration (e.g. 30s, 5m, 1h30m)")
    return seconds


def _qualified(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _cli_error(exc: actions.ActionError) -> appcmd.CliError:
    """An action's failure in the CLI's words: ``<kind> 'ns/name' not found`` for a missing object."""
    if isinstance(exc, actions.NotFound) and exc.kind is not None:
        if not exc.served:
            return appcmd.CliError(f"the server has no {exc.kind} API ({exc.detail})")
        return appcmd.CliError(f"{exc.kind.kind.lower()} '{_qualified(exc.namespace, exc.name)}' not found")
    return appcmd.CliError(exc.message)


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """Report an action's failure as a one-line CLI error."""
    try:
        yield
    except actions.ActionError as exc:
        raise _cli_error(exc) from None


@contextlib.contextmanager
def _not_found_as(kind: kinds.Kind, namespace: str, name: str) -> Iterator[None]:
    """Report a missing object as ``<kind> 'ns/name' not found`` (and a missing API as such)."""
    with _reported(), actions.not_found_as(kind, namespace, name):
        yield


async def _get_rollout(client: Client, namespace: str, name: str) -> Obj:
    with _reported():
        return await actions.get_rollout(client, namespace, name)


def _each(
    names: Sequence[str], work: Callable[[Client, str], Awaitable[None]]
) -> Callable[[Client], Awaitable[int]]:
    """Work for ``appcmd._run`` that does ``work`` for each name in turn."""

    async def run(client: Client) -> int:
        for name in names:
            await work(client, name)
        return 0

    return run


# ------------------------------------------------------------------------------------------ list


@rollout_cli.command("list")
def list_rollouts(
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List Rollouts of every namespace.")
    ] = False,
    name: Annotated[str, typer.Option("--name", help="Only the Rollout with this name.")] = "",
    output: Annotated[ListOutput | None, typer.Option("--output", "-o", help="Output format.")] = None,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """List Rollouts: strategy, status, canary step and weight, replica counts."""

    async def work(client: Client) -> int:
        fields = f"metadata.name={name}" if name else ""
        with _not_found_as(ROLLOUT, namespace, name):
            found, _ = await client.list(ROLLOUT, namespace, fields=fields, all_namespaces=all_namespaces)
        found.sort(key=lambda ro: (appview.text(ro, "metadata", "namespace"), rolloutview.name_of(ro)))
        if output in (ListOutput.json, ListOutput.yaml):
            appcmd._emit_data(found, output.value)
        elif output is ListOutput.name:
            for ro in found:
                typer.echo(f"rollout.argoproj.io/{rolloutview.name_of(ro)}")
        elif not found:
            typer.echo("No resources found.", err=True)
        else:
            appcmd._emit(rolloutview.list_table(found, all_namespaces=all_namespaces))
        return 0

    appcmd._run(kubeconfig, work)


# ------------------------------------------------------------------------------------------- get


# What ``get`` shows besides ReplicaSets and Pods. Their CRDs may be missing (a cluster with only the
# Rollout CRD): then there are none, as upstream's view shows none.
_ANALYSIS_KINDS = (crds.EXPERIMENT, crds.ANALYSISRUN)


async def list_if_served(client: Client, kind: kinds.Kind, namespace: str) -> list[Obj] | None:
    """The objects of ``kind`` in ``namespace``, or ``None`` when the server does not serve that kind."""
    try:
        found, _ = await client.list(kind, namespace)
    except errors.ApiError as exc:
        if exc.not_found:
            return None
        raise
    return found


async def _get_objects(client: Client, namespace: str) -> dict[str, list[Obj]]:
    """What ``get`` shows of the namespace besides the Rollout, as :func:`rolloutview.rollout_info`
    keyword arguments (the view keeps what belongs to the Rollout)."""
    replicasets, _ = await client.list(kinds.REPLICASET, namespace, labels=_CHILD_LABELS)
    pods, _ = await client.list(kinds.POD, namespace, labels=_CHILD_LABELS)
    experiments = await list_if_served(client, crds.EXPERIMENT, namespace) or []
    runs = await list_if_served(client, crds.ANALYSISRUN, namespace) or []
    return {"replicasets": replicasets, "pods": pods, "experiments": experiments, "analysisruns": runs}


class _Sources:
    """The objects ``get --watch`` shows, kept current by informers: the Rollout, the ReplicaSets and Pods
    of its namespace that belong to Rollouts, and its Experiments and AnalysisRuns (when the server has
    those kinds). ``changed`` is set on every update."""

    def __init__(self, client: Client, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.changed = asyncio.Event()
        self.rollouts = informers.Informer(
            client, ROLLOUT, namespace=namespace, fields=f"metadata.name={name}"
        )
        self.replicasets = informers.Informer(
            client, kinds.REPLICASET, namespace=namespace, labels=_CHILD_LABELS
        )
        self.pods = informers.Informer(client, kinds.POD, namespace=namespace, labels=_CHILD_LABELS)
        self.analysis: dict[str, informers.Informer] = {}  # by kind, for the served kinds only
        self.all: tuple[informers.Informer, ...] = (self.rollouts, self.replicasets, self.pods)

    async def _add_analysis_informers(self) -> None:
        for kind in _ANALYSIS_KINDS:
            if await list_if_served(self.client, kind, self.namespace) is not None:
                self.analysis[kind.kind] = informers.Informer(self.client, kind, namespace=self.namespace)
        self.all += tuple(self.analysis.values())

    def _analysis_objects(self, kind: kinds.Kind) -> list[Obj]:
        informer = self.analysis.get(kind.kind)
        return informer.objects() if informer is not None else []

    async def __aenter__(self) -> _Sources:
        await self._add_analysis_informers()
        for informer in self.all:
            informer.add_handler(lambda old, new: self.changed.set())
            informer.start()
        try:
            await asyncio.gather(*(informer.wait_synced(_SYNC_TIMEOUT) for informer in self.all))
        except BaseException as exc:  # cancelled (the caller's timeout) or failed: stop the informers
            await self.__aexit__()
            if isinstance(exc, TimeoutError):
                raise appcmd.CliError("timed out reading the Rollout and what belongs to it") from None
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for informer in self.all:
            await informer.stop()

    def info(self) -> rolloutview.RolloutInfo:
        ro = self.rollouts.get(self.name, self.namespace)
        if ro is None:
            raise appcmd.CliError(f"rollout '{_qualified(self.namespace, self.name)}' was deleted")
        return rolloutview.rollout_info(
            ro,
            self.replicasets.objects(),
            self.pods.objects(),
            experiments=self._analysis_objects(crds.EXPERIMENT),
            analysisruns=self._analysis_objects(crds.ANALYSISRUN),
        )


class _Screen:
    """Where ``get --watch`` draws: a rich live view on a terminal; otherwise every changed view in
    plain text, separated by blank lines."""

    def __init__(self) -> None:
        self.live: Live | None = None
        self.last = ""

    def __enter__(self) -> _Screen:
        if appcmd._is_terminal():
            self.live = Live(console=Console(highlight=False), auto_refresh=False)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def show(self, view: Text, *, changed: bool) -> None:
        if self.live is not None:
            self.live.update(view, refresh=True)
            return
        if not changed or view.plain == self.last:
            return
        if self.last:
            typer.echo("")
        self.last = view.plain
        appcmd._emit(view)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _view(info: rolloutview.RolloutInfo, *, color: bool, overflow: OverflowMethod = "ignore") -> Text:
    """The ``get`` view, without its styles for ``--no-color``. Its lines are never wrapped by rich (that
    would break the tree's columns): printed whole for the terminal to wrap, like upstream's, or cropped
    in a live view, whose redraw counts lines."""
    view = rolloutview.detail(info, _now())
    view = view if color else Text(view.plain)
    view.no_wrap, view.overflow = True, overflow
    return view


async def _watch_view(client: Client, namespace: str, name: str, *, timeout: float, color: bool) -> None:
    """Redraw the ``get`` view on every update (at most every 200 ms) until ``timeout`` (0: never)."""
    await _get_rollout(client, namespace, name)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout or None), _Sources(client, namespace, name) as sources:
            with _Screen() as screen:
                changed = True
                while True:
                    drawn = loop.time()
                    sources.changed.clear()
                    screen.show(_view(sources.info(), color=color, overflow="crop"), changed=changed)
                    try:
                        await asyncio.wait_for(sources.changed.wait(), _REDRAW_MAX_SECONDS)
                        changed = True
                    except TimeoutError:
                        changed = False
                    await asyncio.sleep(max(0.0, drawn + _REDRAW_MIN_SECONDS - loop.time()))


@rollout_cli.command("get")
def get(
    name: NameArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw on every change.")] = False,
    timeout_seconds: Annotated[
        int, typer.Option("--timeout-seconds", help="Stop watching after this many seconds (0: never).")
    ] = 0,
    output: Annotated[DataOutput | None, typer.Option("--output", "-o", help="Output format.")] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="Do not colorize output.")] = False,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Show a Rollout: status, strategy, images, replicas, and its revisions with their ReplicaSets and
    Pods, Experiments, AnalysisRuns and analysis Jobs."""

    async def work(client: Client) -> int:
        if watch and output is None:
            await _watch_view(client, namespace, name, timeout=timeout_seconds, color=not no_color)
            return 0
        ro = await _get_rollout(client, namespace, name)
        if output is not None:
            appcmd._emit_data(ro, output.value)
            return 0
        info = rolloutview.rollout_info(ro, **await _get_objects(client, namespace))
        appcmd._emit(_view(info, color=not no_color))
        return 0

    appcmd._run(kubeconfig, work)


# ---------------------------------------------------------------------------------------- status


async def _follow_status(client: Client, namespace: str, name: str, *, timeout: float) -> tuple[str, str]:
    """Print ``Status - Message`` whenever it changes, until Healthy or Degraded; the last phase."""
    await _get_rollout(client, namespace, name)
    informer = informers.Informer(client, ROLLOUT, namespace=namespace, fields=f"metadata.name={name}")
    changed = asyncio.Event()
    informer.add_handler(lambda old, new: changed.set())
    informer.start()
    printed = ""
    try:
        async with asyncio.timeout(timeout or None):
            await informer.wait_synced()
            while True:
                changed.clear()
                ro = informer.get(name, namespace)
                if ro is None:
                    raise appcmd.CliError(f"rollout '{_qualified(namespace, name)}' was deleted")
                status, message = rolloutview.phase(ro)
                line = rolloutview.status_line(status, message)
                if line != printed:
                    typer.echo(line)
                    printed = line
                if status in rolloutview.DONE_PHASES:
                    return status, message
                await changed.wait()
    except TimeoutError:
        raise appcmd.CliError("rollout status watch exceeded timeout") from None
    finally:
        await informer.stop()


@rollout_cli.command("status")
def status(
    name: NameArg,
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", "-w", help="Wait until the Rollout is Healthy or Degraded.")
    ] = True,
    timeout: Annotated[
        str, typer.Option("--timeout", "-t", help="Give up watching after this long (e.g. 60s; 0: never).")
    ] = "0",
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Show the Rollout's status, following it until it is Healthy or Degraded.

    Prints ``Status - Message`` lines; exits 0 when Healthy, 1 when Degraded or at the timeout. As
    upstream, a Paused Rollout is still in progress for --watch; with --no-watch any state but Degraded
    exits 0.
    """
    with appcmd._reporting():
        seconds = parse_duration(timeout, "--timeout")

    async def work(client: Client) -> int:
        if watch:
            phase, message = await _follow_status(client, namespace, name, timeout=seconds)
        else:
            phase, message = rolloutview.phase(await _get_rollout(client, namespace, name))
            typer.echo(phase if phase in rolloutview.DONE_PHASES else rolloutview.status_line(phase, message))
        if phase == "Degraded":
            raise appcmd.CliError(f"the rollout is in a degraded state with message: {message}")
        return 0

    appcmd._run(kubeconfig, work)


# --------------------------------------------------------------------------------------- promote


@rollout_cli.command("promote")
def promote(
    name: NameArg,
    full: Annotated[
        bool, typer.Option("--full", help="Promote fully, skipping the remaining steps, pauses and analysis.")
    ] = False,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Promote a Rollout paused at a canary step or before a blue-green switch (or skip the running step)."""

    async def work(client: Client) -> int:
        with _reported():
            await actions.promote(client, namespace, name, full=full)
        typer.echo(f"rollout '{name}' {'fully promoted' if full else 'promoted'}")
        return 0

    appcmd._run(kubeconfig, work)


# ------------------------------------------------------------------------ abort / retry / pause / resume


@rollout_cli.command("abort")
def abort(
    names: NamesArg, namespace: NamespaceOpt = DEFAULT_NAMESPACE, kubeconfig: appcmd.KubeconfigOpt = None
) -> None:
    """Abort Rollouts: go back to the stable ReplicaSet (the spec keeps the new version)."""

    async def one(client: Client, name: str) -> None:
        with _reported():
            await actions.abort(client, namespace, name)
        typer.echo(f"rollout '{name}' aborted")

    appcmd._run(kubeconfig, _each(names, one))


@rollout_cli.command("retry")
def retry(
    names: NamesArg, namespace: NamespaceOpt = DEFAULT_NAMESPACE, kubeconfig: appcmd.KubeconfigOpt = None
) -> None:
    """Retry aborted Rollouts (clear the abort; the update starts again)."""

    async def one(client: Client, name: str) -> None:
        with _reported():
            await actions.retry(client, namespace, name)
        typer.echo(f"rollout '{name}' retried")

    appcmd._run(kubeconfig, _each(names, one))


@rollout_cli.command("pause")
def pause(
    names: NamesArg, namespace: NamespaceOpt = DEFAULT_NAMESPACE, kubeconfig: appcmd.KubeconfigOpt = None
) -> None:
    """Pause Rollouts (spec.paused=true)."""

    async def one(client: Client, name: str) -> None:
        with _reported():
            await actions.pause(client, namespace, name)
        typer.echo(f"rollout '{name}' paused")

    appcmd._run(kubeconfig, _each(names, one))


@rollout_cli.command("resume")
def resume(
    names: NamesArg, namespace: NamespaceOpt = DEFAULT_NAMESPACE, kubeconfig: appcmd.KubeconfigOpt = None
) -> None:
    """Resume paused Rollouts (clear status.pauseConditions and spec.paused)."""

    async def one(client: Client, name: str) -> None:
        with _reported():
            resumed = await actions.resume(client, namespace, name)
        typer.echo(f"rollout '{name}' {'resumed' if resumed else 'is not paused'}")

    appcmd._run(kubeconfig, _each(names, one))


# --------------------------------------------------------------------------------------- restart


@rollout_cli.command("restart")
def restart(
    name: NameArg,
    in_: Annotated[str, typer.Option("--in", "-i", help="Restart after this long (e.g. 30s, 5m).")] = "",
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Restart the Rollout's Pods (spec.restartAt), now or after --in."""
    with appcmd._reporting():
        delay = parse_duration(in_, "--in") if in_ else 0.0

    async def work(client: Client) -> int:
        with _reported():
            await actions.restart(client, namespace, name, at=_now() + datetime.timedelta(seconds=delay))
        typer.echo(f"rollout '{name}' restarts in {in_ or '0s'}")
        return 0

    appcmd._run(kubeconfig, work)


# ------------------------------------------------------------------------------------- set-image


def _container_image(value: str) -> tuple[str, str]:
    container, sep, image = value.partition("=")
    if not sep or not container or not image or "=" in image:
        raise appcmd.CliError(f"expected CONTAINER=IMAGE, got '{value}'")
    return container, image


@rollout_cli.command("set-image")
def set_image_cmd(
    name: NameArg,
    container_image: Annotated[
        str, typer.Argument(metavar="CONTAINER=IMAGE", help="Container name ('*': all) and its new image.")
    ],
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Set a container image of the Rollout (or of its workloadRef workload)."""
    with appcmd._reporting():
        container, image = _container_image(container_image)

    async def work(client: Client) -> int:
        with _reported():
            kind, obj = await actions.set_image(client, namespace, name, container=container, image=image)
        typer.echo(f'{kind.kind.lower()} "{rolloutview.name_of(obj)}" image updated')
        return 0

    appcmd._run(kubeconfig, work)


# ------------------------------------------------------------------------------------------- undo


@rollout_cli.command("undo")
def undo(
    name: NameArg,
    to_revision: Annotated[
        int,
        typer.Option("--to-revision", min=0, help="Revision to go back to (default 0: the previous one)."),
    ] = 0,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Roll back to an earlier revision: copy its ReplicaSet's pod template into the Rollout."""

    async def work(client: Client) -> int:
        with _reported():
            revision, written = await actions.undo(client, namespace, name, revision=to_revision)
        if written:
            typer.echo(f"rollout '{name}' undo")
        else:
            typer.echo(f"skipped rollback (current template already matches revision {revision})")
        return 0

    appcmd._run(kubeconfig, work)


# ------------------------------------------------------------------------------------------- lint


def _is_rollout(doc: Any) -> bool:
    if not isinstance(doc, Mapping) or doc.get("kind") != "Rollout":
        return False
    return str(doc.get("apiVersion") or "").partition("/")[0] == ROLLOUT.group


def lint_errors(ro: Mapping[str, Any]) -> list[str]:
    """The problems of one Rollout manifest, worded like upstream's field errors (empty when valid)."""
    return [str(problem) for problem in validation.field_errors(ro)]


@rollout_cli.command("lint")
def lint(
    file: Annotated[
        Path, typer.Option("--filename", "-f", help="Manifest file (YAML or JSON, '-' for stdin).")
    ],
) -> None:
    """Check the Rollouts in a manifest file, offline; print each problem, exit 1 if there is any."""
    with appcmd._reporting():
        try:
            text = typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text()
            docs = list(yaml.safe_load_all(text))
        except (OSError, yaml.YAMLError) as exc:
            raise appcmd.CliError(f"cannot read {file}: {exc}") from exc
        problems = [problem for doc in docs if _is_rollout(doc) for problem in lint_errors(doc)]
        for problem in problems:
            typer.echo(problem)
        if problems:
            raise appcmd.CliError(problems[0])
