"""``tugboat rollout …``: drive Argo-Rollouts-compatible Rollouts the way ``kubectl argo rollouts`` does.

Argo Rollouts has no API of its own: its kubectl plugin changes a Rollout by patching it through the
Kubernetes API, and the controller reacts to what it finds (research/rollouts.md §1.9, §2.7). These
commands write exactly the fields the plugin writes, in the same places, so either CLI drives either
controller: promote, abort and retry are merge patches of ``status`` through the ``/status``
subresource (falling back to the main resource on 404, for controllers whose CRD has no status
subresource); pause, restart, set-image and undo change the spec. ``get``, ``list`` and ``status`` read
objects and show them with :mod:`tugboat.cli.rolloutview`, using the client-side phase of §2.3.

Kubeconfig lookup, one-line errors and plain-or-rich output are shared with ``tugboat app``
(:mod:`tugboat.cli.appcmd`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
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
from tugboat.kube import errors, informers, kinds, selectors
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, defaults, validation

# Defined here rather than imported from tugboat.rollouts.crds, which is being written at the same time.
ROLLOUT = crds.ROLLOUT
PODTEMPLATE = kinds.Kind("", "v1", "PodTemplate", "podtemplates")
WORKLOAD_KINDS = {"Deployment": kinds.DEPLOYMENT, "ReplicaSet": kinds.REPLICASET, "PodTemplate": PODTEMPLATE}

DEFAULT_NAMESPACE = "default"
_CHILD_LABELS = rolloutview.HASH_LABEL  # ReplicaSets and Pods of Rollouts carry this label
_REDRAW_MIN_SECONDS = 0.2  # get --watch redraws at most this often ...
_REDRAW_MAX_SECONDS = 1.0  # ... and at least this often on a terminal (ages move on)
_SYNC_TIMEOUT = 30.0
_WRITE_ATTEMPTS = 5

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


@contextlib.contextmanager
def _not_found_as(kind: kinds.Kind, namespace: str, name: str) -> Iterator[None]:
    """Report a missing object as ``<kind> 'ns/name' not found`` (and a missing API as such)."""
    try:
        yield
    except errors.ApiError as exc:
        if not exc.not_found:
            raise
        details = exc.status.get("details")
        if isinstance(details, Mapping) and details.get("name"):
            raise appcmd.CliError(f"{kind.kind.lower()} '{_qualified(namespace, name)}' not found") from None
        raise appcmd.CliError(f"the server has no {kind} API ({exc.message or exc.reason})") from None


async def _get_rollout(client: Client, namespace: str, name: str) -> Obj:
    with _not_found_as(ROLLOUT, namespace, name):
        return await client.get(ROLLOUT, name, namespace)


async def write_status(
    client: Client,
    kind: kinds.Kind,
    namespace: str,
    name: str,
    *,
    status_patch: Obj | None,
    spec_patch: Obj | None = None,
    unified_patch: Obj | None = None,
) -> None:
    """Merge-patch ``status_patch`` through ``/status``, then ``spec_patch`` into the object, the way the
    upstream plugin does. Where the status subresource does not exist (404), the object is patched once
    with ``unified_patch`` (spec and status together) instead, and ``spec_patch`` is not sent."""
    with _not_found_as(kind, namespace, name):
        if status_patch is not None:
            try:
                await client.patch(kind, name, status_patch, namespace=namespace, subresource="status")
            except errors.ApiError as exc:
                if not exc.not_found:
                    raise
                spec_patch = unified_patch if unified_patch is not None else status_patch
        if spec_patch is not None:
            await client.patch(kind, name, spec_patch, namespace=namespace)


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


def _advanced_step(ro: Obj) -> int | None:
    """The canary step index after the current one (capped at the number of steps), or ``None`` without
    canary steps."""
    _, index = rolloutview.current_step(ro)
    if index is None:
        return None
    return min(index + 1, len(rolloutview.canary_steps(ro)))


def _inconclusive_step_analysis(ro: Obj) -> bool:
    run = appview.text(ro, "status", "canary", "currentStepAnalysisRunStatus", "status")
    return rolloutview.strategy(ro) == "Canary" and run == "Inconclusive"


def promote_patches(ro: Obj, *, full: bool) -> tuple[Obj | None, Obj | None, Obj]:
    """``(spec patch, status patch, unified patch)`` that promote ``ro`` as ``kubectl argo rollouts
    promote [--full]`` does (research/rollouts.md §1.9); ``None`` where nothing is to be written."""
    paused = appview.field(ro, "spec", "paused") is True
    spec_patch: Obj | None = {"spec": {"paused": False}} if paused else None
    status_patch: Obj | None = None
    if full:
        if appview.text(ro, "status", "currentPodHash") != appview.text(ro, "status", "stableRS"):
            status_patch = {"status": {"promoteFull": True}}
        return spec_patch, status_patch, {"spec": {"paused": False}, "status": {"promoteFull": True}}
    unified: Obj = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
    has_pauses = bool(appview.items(ro, "status", "pauseConditions"))
    next_step = _advanced_step(ro)
    controller_pause = appview.field(ro, "status", "controllerPause") is True
    if _inconclusive_step_analysis(ro) and has_pauses and controller_pause:
        if next_step is not None:
            status_patch = {
                "status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": next_step}
            }
    elif has_pauses:
        status_patch = {"status": {"pauseConditions": None}}
    elif rolloutview.strategy(ro) == "Canary" and next_step is not None:
        # Nothing pauses the rollout: skip the running step (an analysis or experiment), never both.
        status_patch = {"status": {"pauseConditions": None, "currentStepIndex": next_step}}
        unified = {
            "spec": {"paused": False},
            "status": {"pauseConditions": None, "currentStepIndex": next_step},
        }
    return spec_patch, status_patch, unified


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
        ro = await _get_rollout(client, namespace, name)
        spec_patch, status_patch, unified = promote_patches(ro, full=full)
        await write_status(
            client,
            ROLLOUT,
            namespace,
            name,
            status_patch=status_patch,
            spec_patch=spec_patch,
            unified_patch=unified,
        )
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
        await write_status(client, ROLLOUT, namespace, name, status_patch={"status": {"abort": True}})
        typer.echo(f"rollout '{name}' aborted")

    appcmd._run(kubeconfig, _each(names, one))


@rollout_cli.command("retry")
def retry(
    names: NamesArg, namespace: NamespaceOpt = DEFAULT_NAMESPACE, kubeconfig: appcmd.KubeconfigOpt = None
) -> None:
    """Retry aborted Rollouts (clear the abort; the update starts again)."""

    async def one(client: Client, name: str) -> None:
        await write_status(client, ROLLOUT, namespace, name, status_patch={"status": {"abort": False}})
        typer.echo(f"rollout '{name}' retried")

    appcmd._run(kubeconfig, _each(names, one))


@rollout_cli.command("pause")
def pause(
    names: NamesArg, namespace: NamespaceOpt = DEFAULT_NAMESPACE, kubeconfig: appcmd.KubeconfigOpt = None
) -> None:
    """Pause Rollouts (spec.paused=true)."""

    async def one(client: Client, name: str) -> None:
        with _not_found_as(ROLLOUT, namespace, name):
            await client.patch(ROLLOUT, name, {"spec": {"paused": True}}, namespace=namespace)
        typer.echo(f"rollout '{name}' paused")

    appcmd._run(kubeconfig, _each(names, one))


def resume_patches(ro: Obj) -> tuple[Obj | None, Obj | None, Obj]:
    """``(spec patch, status patch, unified patch)`` that resume ``ro`` like Argo CD's ``resume`` action:
    clear the pause conditions, and ``spec.paused`` if it is set."""
    paused = appview.field(ro, "spec", "paused") is True
    spec_patch: Obj | None = {"spec": {"paused": False}} if paused else None
    pauses = bool(appview.items(ro, "status", "pauseConditions"))
    status_patch: Obj | None = {"status": {"pauseConditions": None}} if pauses else None
    unified: Obj = {"status": {"pauseConditions": None}}
    if paused:
        unified["spec"] = {"paused": False}
    return spec_patch, status_patch, unified


@rollout_cli.command("resume")
def resume(
    names: NamesArg, namespace: NamespaceOpt = DEFAULT_NAMESPACE, kubeconfig: appcmd.KubeconfigOpt = None
) -> None:
    """Resume paused Rollouts (clear status.pauseConditions and spec.paused)."""

    async def one(client: Client, name: str) -> None:
        ro = await _get_rollout(client, namespace, name)
        spec_patch, status_patch, unified = resume_patches(ro)
        if spec_patch is None and status_patch is None:
            typer.echo(f"rollout '{name}' is not paused")
            return
        await write_status(
            client,
            ROLLOUT,
            namespace,
            name,
            status_patch=status_patch,
            spec_patch=spec_patch,
            unified_patch=unified,
        )
        typer.echo(f"rollout '{name}' resumed")

    appcmd._run(kubeconfig, _each(names, one))


# --------------------------------------------------------------------------------------- restart


def restart_time(now: datetime.datetime, delay_seconds: float) -> str:
    """``spec.restartAt``: RFC 3339 in UTC, whole seconds."""
    moment = now.astimezone(datetime.UTC) + datetime.timedelta(seconds=delay_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
        patch = {"spec": {"restartAt": restart_time(_now(), delay)}}
        with _not_found_as(ROLLOUT, namespace, name):
            await client.patch(ROLLOUT, name, patch, namespace=namespace)
        typer.echo(f"rollout '{name}' restarts in {in_ or '0s'}")
        return 0

    appcmd._run(kubeconfig, work)


# ------------------------------------------------------------------------------------- set-image


def set_image(obj: Obj, container: str, image: str) -> Obj:
    """A copy of ``obj`` (a Rollout or a Deployment) with the image of the named container (``*``: every
    container) replaced among ``initContainers``, ``containers`` and ``ephemeralContainers``."""
    updated = copy.deepcopy(obj)
    pod_spec = appview.field(updated, "spec", "template", "spec")
    found = False
    for key in ("initContainers", "containers", "ephemeralContainers"):
        entries = pod_spec.get(key) if isinstance(pod_spec, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and (container == "*" or entry.get("name") == container):
                entry["image"] = image
                found = True
    if not found:
        raise appcmd.CliError(f'unable to find container named "{container}"')
    return updated


def _container_image(value: str) -> tuple[str, str]:
    container, sep, image = value.partition("=")
    if not sep or not container or not image or "=" in image:
        raise appcmd.CliError(f"expected CONTAINER=IMAGE, got '{value}'")
    return container, image


async def _image_target(client: Client, namespace: str, name: str) -> tuple[kinds.Kind, Obj]:
    """The object whose pod template holds the images: the Rollout, or the Deployment of its workloadRef."""
    ro = await _get_rollout(client, namespace, name)
    ref = appview.field(ro, "spec", "workloadRef")
    if not isinstance(ref, Mapping):
        return ROLLOUT, ro
    ref_name = ref.get("name")
    if not isinstance(ref_name, str) or not ref_name:
        raise appcmd.CliError(
            f"rollout '{_qualified(namespace, name)}': spec.workloadRef.name is not a string"
        )
    with _not_found_as(kinds.DEPLOYMENT, namespace, ref_name):
        return kinds.DEPLOYMENT, await client.get(kinds.DEPLOYMENT, ref_name, namespace)


@rollout_cli.command("set-image")
def set_image_cmd(
    name: NameArg,
    container_image: Annotated[
        str, typer.Argument(metavar="CONTAINER=IMAGE", help="Container name ('*': all) and its new image.")
    ],
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    kubeconfig: appcmd.KubeconfigOpt = None,
) -> None:
    """Set a container image of the Rollout (or of its workloadRef Deployment)."""
    with appcmd._reporting():
        container, image = _container_image(container_image)

    async def work(client: Client) -> int:
        for attempt in range(_WRITE_ATTEMPTS):
            kind, obj = await _image_target(client, namespace, name)
            try:
                await client.replace(kind, set_image(obj, container, image))
            except errors.ApiError as exc:
                if exc.conflict and attempt < _WRITE_ATTEMPTS - 1:
                    continue
                raise
            typer.echo(f'{kind.kind.lower()} "{rolloutview.name_of(obj)}" image updated')
            return 0
        return 1  # not reached: the last attempt returns or raises

    appcmd._run(kubeconfig, work)


# ------------------------------------------------------------------------------------------- undo


def derivative(wanted: Any, actual: Any) -> bool:
    """Whether ``actual`` has everything ``wanted`` sets (empty and missing values in ``wanted`` are not
    compared): the semantic comparison ``undo`` uses to skip a rollback to the current template."""
    if wanted is None:
        return True
    if isinstance(wanted, Mapping):
        if not wanted:
            return True
        if not isinstance(actual, Mapping) or len(wanted) > len(actual):
            return False
        return all(key in actual and derivative(value, actual[key]) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not wanted:
            return True
        if not isinstance(actual, list) or len(wanted) > len(actual):
            return False
        return all(derivative(w, a) for w, a in zip(wanted, actual, strict=False))
    if isinstance(wanted, str):
        return wanted == "" or wanted == actual
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    return bool(type(wanted) in (int, float) and type(actual) in (int, float) and wanted == actual)


def _without_hash(template: Any) -> Obj:
    """A copy of a pod template without the ``rollouts-pod-template-hash`` label."""
    copied: Obj = copy.deepcopy(template) if isinstance(template, dict) else {}
    labels = appview.field(copied, "metadata", "labels")
    if isinstance(labels, dict):
        labels.pop(rolloutview.HASH_LABEL, None)
        if not labels:
            del copied["metadata"]["labels"]
    return copied


def _controlled_by(obj: Obj, owner: Obj) -> bool:
    uid = appview.text(owner, "metadata", "uid")
    return any(
        ref.get("controller") is True and appview.text(ref, "uid") == uid
        for ref in appview.items(obj, "metadata", "ownerReferences")
    )


def revision_replicaset(replicasets: Sequence[Obj], to_revision: int, rollout_name: str) -> tuple[Obj, int]:
    """The ReplicaSet of revision ``to_revision`` (0: the one before the latest) and its revision."""
    ranked = sorted(replicasets, key=rolloutview.revision_of, reverse=True)
    if to_revision > 0:
        for rs in ranked:
            if rolloutview.revision_of(rs) == to_revision:
                return rs, to_revision
        raise appcmd.CliError(f"unable to find specified revision {to_revision} in history")
    if len(ranked) < 2:
        raise appcmd.CliError(f'no revision found for rollout "{rollout_name}"')
    return ranked[1], rolloutview.revision_of(ranked[1])


async def _owned_replicasets(client: Client, ro: Obj) -> list[Obj]:
    selector = appview.field(ro, "spec", "selector")
    labels = selectors.selector_string(selector) if isinstance(selector, Mapping) else ""
    found, _ = await client.list(kinds.REPLICASET, appview.text(ro, "metadata", "namespace"), labels=labels)
    return [rs for rs in found if _controlled_by(rs, ro)]


async def _patch_template(client: Client, ro: Obj, template: Obj) -> None:
    """Replace the pod template of the Rollout, or of the workload its ``workloadRef`` names."""
    namespace, name = appview.text(ro, "metadata", "namespace"), rolloutview.name_of(ro)
    ref = appview.field(ro, "spec", "workloadRef")
    kind, target, path = ROLLOUT, name, "/spec/template"
    if isinstance(ref, Mapping):
        kind_name = appview.text(ref, "kind")
        if kind_name not in WORKLOAD_KINDS:
            raise appcmd.CliError(f"workload of type {kind_name or '(none)'} is not supported")
        kind, target = WORKLOAD_KINDS[kind_name], appview.text(ref, "name")
        path = "/template" if kind is PODTEMPLATE else path
    patch = [{"op": "replace", "path": path, "value": template}]
    with _not_found_as(kind, namespace, target):
        await client.patch(kind, target, patch, namespace=namespace, patch_type="json")


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
        ro = await _get_rollout(client, namespace, name)
        rs, revision = revision_replicaset(await _owned_replicasets(client, ro), to_revision, name)
        current = appview.field(ro, "spec", "template")
        target = _without_hash(appview.field(rs, "spec", "template"))
        if isinstance(current, Mapping) and derivative(_without_hash(current), target):
            typer.echo(f"skipped rollback (current template already matches revision {revision})")
            return 0
        await _patch_template(client, ro, target)
        typer.echo(f"rollout '{name}' undo")
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
