"""``tugboat app …``: manage Argo-CD-compatible Applications the way ``argocd app …`` does.

There is no Tugboat API server yet, so the commands talk straight to the Kubernetes API and speak the
same contract Argo CD's own API server keeps with its controller (research/argocd.md §1.2, §1.7, §2):
a sync or rollback is a write of the top-level ``operation`` field, whose progress the controller
reports in ``status.operationState``; a refresh is the ``argocd.argoproj.io/refresh`` annotation; a
cascading delete is a resources finalizer; terminating an operation sets its phase to ``Terminating``.
Any Argo-CD-compatible controller (ours, or Argo CD itself) acts on what these commands write.

Rendering lives in :mod:`tugboat.cli.appview`; this module parses options, reads and writes objects,
follows them while something happens, and turns every failure into one line on stderr and exit code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import enum
import io
import os
import re
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import typer.core
import yaml
from rich.console import Console, RenderableType
from rich.live import Live

from tugboat.cli import appview
from tugboat.gitops import appdiff, crds, render, repos
from tugboat.gitops.errors import GitOpsError
from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.localcluster import server

FIELD_MANAGER = "tugboat-cli"
DEFAULT_APP_NAMESPACE = "argocd"
DEFAULT_SERVER = "https://kubernetes.default.svc"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
FOREGROUND_FINALIZER = "resources-finalizer.argocd.argoproj.io"
BACKGROUND_FINALIZER = "resources-finalizer.argocd.argoproj.io/background"
RESOURCES_FINALIZERS = (FOREGROUND_FINALIZER, BACKGROUND_FINALIZER)
_WRITE_ATTEMPTS = 5
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


class CliError(Exception):
    """A failure to report to the user as one line (no traceback)."""


class _Group(typer.core.TyperGroup):
    """Reports usage errors of ``tugboat app …`` (unknown flags, bad values) as one line and exit 1."""

    def invoke(self, ctx: Any) -> Any:  # a context of typer's vendored click, which is not public
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:  # typer's (vendored click's) usage and parameter errors
            typer.echo(f"error: {exc.format_message()}", err=True)
            raise typer.Exit(1) from None


app_cli = typer.Typer(
    cls=_Group,
    help="Manage Argo-CD-compatible Applications (like `argocd app`), straight through the Kubernetes API.",
    no_args_is_help=True,
)


class ListOutput(enum.StrEnum):
    json = "json"
    yaml = "yaml"
    name = "name"
    wide = "wide"


class GetOutput(enum.StrEnum):
    json = "json"
    yaml = "yaml"
    tree = "tree"


class DataOutput(enum.StrEnum):
    json = "json"
    yaml = "yaml"


class SyncPolicy(enum.StrEnum):
    automated = "automated"
    auto = "auto"
    none = "none"
    manual = "manual"


class Strategy(enum.StrEnum):
    hook = "hook"
    apply = "apply"


class Propagation(enum.StrEnum):
    foreground = "foreground"
    background = "background"


# ------------------------------------------------------------------------------------ common options

KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig (default: $KUBECONFIG, else the local cluster's under $TUGBOAT_HOME if it exists, "
        "else ~/.kube/config).",
    ),
]
AppNamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--app-namespace",
        "-N",
        help=f"Namespace of the Application objects (default: {DEFAULT_APP_NAMESPACE}).",
    ),
]
TimeoutOpt = Annotated[int, typer.Option("--timeout", help="Give up after this many seconds (0: never).")]
AsyncOpt = Annotated[bool, typer.Option("--async", help="Do not wait for the operation to finish.")]
SelectorOpt = Annotated[
    str, typer.Option("--selector", "-l", help="Select Applications by label (e.g. team=web).")
]
NamesArg = Annotated[list[str] | None, typer.Argument(help="Application names.", show_default=False)]


def default_kubeconfig() -> Path | None:
    """The kubeconfig to use when ``--kubeconfig`` is not given (``None``: lightkube's default lookup,
    i.e. ``$KUBECONFIG``, then ``~/.kube/config``, then in-cluster)."""
    if os.environ.get("KUBECONFIG"):
        return None
    local = server.default_state_dir() / "kubeconfig"
    return local if local.is_file() else None


def _app_namespace(value: str | None) -> str:
    return value or DEFAULT_APP_NAMESPACE


def qualify(name: str, app_namespace: str | None) -> tuple[str, str]:
    """``(namespace, name)`` of an Application given as ``NAME`` or ``NAMESPACE/NAME`` (what ``app list``
    prints); a qualified name wins over ``--app-namespace``."""
    namespace, slash, base = name.partition("/")
    if not slash:
        return _app_namespace(app_namespace), name
    if not namespace or not base or "/" in base:
        raise _fail(f"'{name}' is not an application name (NAME or NAMESPACE/NAME)")
    return namespace, base


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {_one_line(message)}", err=True)
    return typer.Exit(1)


@contextlib.contextmanager
def _reporting() -> Iterator[None]:
    """Turn every expected failure into one line on stderr and exit code 1."""
    try:
        yield
    except CliError as exc:
        raise _fail(str(exc)) from None
    except errors.ApiError as exc:
        raise _fail(f"{exc.message or exc.reason} ({exc.code} {exc.reason})") from None
    except errors.ConnectionFailed as exc:
        raise _fail(f"cannot reach the Kubernetes API server: {exc}") from None
    except errors.KubeError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _run(kubeconfig: Path | None, work: Callable[[Client], Awaitable[int]]) -> None:
    """Run ``work`` with a client for the cluster and exit with its code."""

    async def main() -> int:
        client = Client.from_kubeconfig(kubeconfig or default_kubeconfig(), field_manager=FIELD_MANAGER)
        async with client:
            return await work(client)

    with _reporting():
        code = asyncio.run(main())
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------------------------------ output


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _emit(renderable: RenderableType | str) -> None:
    """Print to stdout: styled for a terminal; plain, unwrapped and without trailing blanks otherwise."""
    if _is_terminal():
        Console(highlight=False).print(renderable)
        return
    buffer = io.StringIO()
    Console(file=buffer, width=10_000, color_system=None, highlight=False, soft_wrap=False).print(renderable)
    typer.echo("\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines()))


def _emit_data(obj: Any, output: str) -> None:
    typer.echo(appview.dump(obj, output))


# ----------------------------------------------------------------------------------------- reading


async def _get_app(client: Client, namespace: str, name: str) -> Obj:
    app = await client.get_or_none(crds.APPLICATION, name, namespace)
    if app is None:
        raise CliError(f"application '{namespace}/{name}' not found")
    return app


async def _resolve_names(
    client: Client, names: Sequence[str], *, selector: str, app_namespace: str | None
) -> list[tuple[str, str]]:
    """``(namespace, name)`` of the Applications named, plus those matching ``selector``."""
    found = [qualify(name, app_namespace) for name in names]
    if selector:
        namespace = _app_namespace(app_namespace)
        apps, _ = await client.list(crds.APPLICATION, namespace, labels=selector)
        if not apps:
            raise CliError(f"no applications in namespace '{namespace}' match the selector '{selector}'")
        selected = [(namespace, appview.text(app, "metadata", "name")) for app in apps]
        found += [target for target in selected if target not in found]
    if not found:
        raise CliError("give at least one application NAME or a --selector")
    return found


def _operation_in_progress(app: Mapping[str, Any]) -> bool:
    return bool(app.get("operation")) or appview.operation_phase(app) in appview.RUNNING_PHASES


async def _follow(
    client: Client,
    namespace: str,
    name: str,
    done: Callable[[Obj | None], bool],
    *,
    timeout: float | None,
    what: str,
) -> Obj | None:
    """Watch one Application (``None`` once it is gone) until ``done`` says so; ``done`` sees every
    version and may raise. A watch that ends or expires is resumed from a fresh read."""
    try:
        async with asyncio.timeout(timeout or None):
            while True:
                app = await client.get_or_none(crds.APPLICATION, name, namespace)
                if done(app):
                    return app
                version = appview.text(app, "metadata", "resourceVersion")
                async with contextlib.aclosing(_watch_versions(client, namespace, name, version)) as versions:
                    async for current in versions:
                        if done(current):
                            return current
    except TimeoutError:
        raise CliError(f"timed out after {timeout}s waiting for {what}") from None


async def _watch_versions(
    client: Client, namespace: str, name: str, version: str
) -> AsyncGenerator[Obj | None, None]:
    # An async generator (typed as an iterator): closed explicitly, so its HTTP stream ends here and now.
    events = cast(
        AsyncGenerator[tuple[str, Obj], None],
        client.watch(crds.APPLICATION, namespace, resource_version=version, fields=f"metadata.name={name}"),
    )
    try:
        async with contextlib.aclosing(events):
            async for event, obj in events:
                if event != "BOOKMARK":
                    yield None if event == "DELETED" else obj
    except errors.ApiError as exc:
        if not exc.gone:  # an expired revision: the caller starts over from a fresh read
            raise


# ------------------------------------------------------------------------------------------ create


@dataclass
class CreateOptions:
    """What ``app create`` was asked for; ``None`` and empty mean "not given" (keep the manifest's)."""

    name: str | None = None
    namespace: str | None = None
    repo: str | None = None
    path: str | None = None
    revision: str | None = None
    dest_server: str | None = None
    dest_name: str | None = None
    dest_namespace: str | None = None
    project: str | None = None
    sync_policy: SyncPolicy | None = None
    auto_prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    sync_options: list[str] = field(default_factory=list)
    directory_recurse: bool = False
    helm_set: list[str] = field(default_factory=list)
    helm_set_string: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    release_name: str | None = None
    kustomize_images: list[str] = field(default_factory=list)
    nameprefix: str | None = None
    labels: list[str] = field(default_factory=list)
    revision_history_limit: int | None = None
    set_finalizer: bool = False


def _key_value(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise CliError(f"{flag} expects KEY=VALUE, got '{item}'")
    return key, value


def _merge_options(existing: Sequence[Any], added: Sequence[str], flag: str) -> list[str]:
    """Sync options ``K=V``: a new value for a key replaces the old one."""
    merged = {str(item).partition("=")[0]: str(item) for item in existing}
    for item in added:
        merged[_key_value(item, flag)[0]] = item
    return list(merged.values())


def load_manifest(path: Path) -> Obj:
    """An Application manifest from a YAML or JSON file (``-`` reads stdin)."""
    try:
        content = sys.stdin.read() if str(path) == "-" else path.read_text()
        manifest = yaml.safe_load(content)
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("kind", "Application") != "Application":
        raise CliError(f"{path} does not hold an Application manifest")
    return manifest


def build_application(options: CreateOptions, manifest: Obj | None = None) -> Obj:
    """The Application to create: ``manifest`` (if any) with the flags applied over it."""
    app = copy.deepcopy(manifest) if manifest else {}
    app["apiVersion"] = crds.APPLICATION.api_version
    app["kind"] = crds.APPLICATION.kind
    meta = app.setdefault("metadata", {})
    if options.name:
        meta["name"] = options.name
    if not meta.get("name"):
        raise CliError("an application NAME is required (or metadata.name in the -f manifest)")
    meta["namespace"] = options.namespace or meta.get("namespace") or DEFAULT_APP_NAMESPACE
    for item in options.labels:
        key, value = _key_value(item, "--label")
        meta.setdefault("labels", {})[key] = value
    if options.set_finalizer and FOREGROUND_FINALIZER not in meta.get("finalizers", []):
        meta.setdefault("finalizers", []).append(FOREGROUND_FINALIZER)
    spec = app.setdefault("spec", {})
    spec["project"] = options.project or spec.get("project") or "default"
    _apply_source(spec, options)
    _apply_destination(spec, options)
    _apply_sync_policy(spec, options)
    if options.revision_history_limit is not None:
        spec["revisionHistoryLimit"] = options.revision_history_limit
    return app


def _source_flags_given(options: CreateOptions) -> bool:
    return any(
        (
            options.repo,
            options.path,
            options.revision,
            options.directory_recurse,
            options.helm_set,
            options.helm_set_string,
            options.values,
            options.release_name,
            options.kustomize_images,
            options.nameprefix,
        )
    )


def _apply_source(spec: Obj, options: CreateOptions) -> None:
    if spec.get("sources"):
        if _source_flags_given(options):
            raise CliError(
                "source flags (--repo, --path, --helm-set, …) cannot change a multi-source manifest"
            )
        return
    source = spec.setdefault("source", {})
    for key, value in (
        ("repoURL", options.repo),
        ("path", options.path),
        ("targetRevision", options.revision),
    ):
        if value:
            source[key] = value
    if not source.get("repoURL"):
        raise CliError("--repo is required")
    source.setdefault("targetRevision", "HEAD")
    if options.directory_recurse:
        source.setdefault("directory", {})["recurse"] = True
    _apply_helm(source, options)
    if options.kustomize_images or options.nameprefix:
        kustomize = source.setdefault("kustomize", {})
        if options.nameprefix:
            kustomize["namePrefix"] = options.nameprefix
        if options.kustomize_images:
            images = kustomize.setdefault("images", [])
            images += [image for image in options.kustomize_images if image not in images]


def _apply_helm(source: Obj, options: CreateOptions) -> None:
    if not (options.helm_set or options.helm_set_string or options.values or options.release_name):
        return
    helm = source.setdefault("helm", {})
    if options.release_name:
        helm["releaseName"] = options.release_name
    if options.values:
        files = helm.setdefault("valueFiles", [])
        files += [name for name in options.values if name not in files]
    parameters = {p.get("name"): p for p in helm.get("parameters", []) if isinstance(p, dict)}
    for flag, items, force in (
        ("--helm-set", options.helm_set, False),
        ("--helm-set-string", options.helm_set_string, True),
    ):
        for item in items:
            key, value = _key_value(item, flag)
            parameters[key] = {"name": key, "value": value, **({"forceString": True} if force else {})}
    if parameters:
        helm["parameters"] = list(parameters.values())


def _apply_destination(spec: Obj, options: CreateOptions) -> None:
    if options.dest_server and options.dest_name:
        raise CliError("give only one of --dest-server and --dest-name")
    destination = spec.setdefault("destination", {})
    if options.dest_server:
        destination.pop("name", None)
        destination["server"] = options.dest_server
    elif options.dest_name:
        destination.pop("server", None)
        destination["name"] = options.dest_name
    elif not destination.get("server") and not destination.get("name"):
        destination["server"] = DEFAULT_SERVER
    if options.dest_namespace:
        destination["namespace"] = options.dest_namespace


def _apply_sync_policy(spec: Obj, options: CreateOptions) -> None:
    policy = spec.get("syncPolicy") or {}
    if options.sync_policy in (SyncPolicy.automated, SyncPolicy.auto):
        policy.setdefault("automated", {})
    elif options.sync_policy in (SyncPolicy.none, SyncPolicy.manual):
        policy.pop("automated", None)
    for flag, key, given in (
        ("--auto-prune", "prune", options.auto_prune),
        ("--self-heal", "selfHeal", options.self_heal),
        ("--allow-empty", "allowEmpty", options.allow_empty),
    ):
        if not given:
            continue
        if not isinstance(policy.get("automated"), dict):
            raise CliError(f"{flag} needs automated sync (--sync-policy automated)")
        policy["automated"][key] = True
    if options.sync_options:
        policy["syncOptions"] = _merge_options(
            policy.get("syncOptions") or [], options.sync_options, "--sync-option"
        )
    if policy:
        spec["syncPolicy"] = policy
    else:
        spec.pop("syncPolicy", None)


def _same_application(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether creating ``wanted`` over ``existing`` would change nothing (spec, labels, finalizers)."""
    old_meta, new_meta = existing.get("metadata") or {}, wanted.get("metadata") or {}
    labels_kept = (new_meta.get("labels") or {}).items() <= (old_meta.get("labels") or {}).items()
    finalizers_kept = set(new_meta.get("finalizers") or []) <= set(old_meta.get("finalizers") or [])
    return existing.get("spec") == wanted.get("spec") and labels_kept and finalizers_kept


async def _create(client: Client, wanted: Obj, *, upsert: bool) -> int:
    meta = wanted["metadata"]
    qualified = f"{meta['namespace']}/{meta['name']}"
    existing = await client.get_or_none(crds.APPLICATION, meta["name"], meta["namespace"])
    if existing is None:
        await client.create(crds.APPLICATION, wanted)
        typer.echo(f"application '{qualified}' created")
        return 0
    if _same_application(existing, wanted):
        typer.echo(f"application '{qualified}' unchanged")
        return 0
    if not upsert:
        raise CliError(f"existing application '{qualified}' has a different spec; use --upsert to replace it")
    existing["spec"] = wanted["spec"]
    old_meta = existing["metadata"]
    old_meta["labels"] = {**(old_meta.get("labels") or {}), **(meta.get("labels") or {})}
    finalizers = list(old_meta.get("finalizers") or [])
    old_meta["finalizers"] = finalizers + [f for f in meta.get("finalizers") or [] if f not in finalizers]
    await client.replace(crds.APPLICATION, existing)
    typer.echo(f"application '{qualified}' updated")
    return 0


@app_cli.command("create")
def create(
    name: Annotated[str | None, typer.Argument(help="Application name (default: from -f).")] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="Repository URL.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Path in the repository.")] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Target revision (default HEAD).")
    ] = None,
    dest_server: Annotated[
        str | None, typer.Option("--dest-server", help=f"Destination cluster URL (default {DEFAULT_SERVER}).")
    ] = None,
    dest_name: Annotated[str | None, typer.Option("--dest-name", help="Destination cluster name.")] = None,
    dest_namespace: Annotated[
        str | None, typer.Option("--dest-namespace", help="Destination namespace.")
    ] = None,
    project: Annotated[str | None, typer.Option("--project", help="AppProject (default 'default').")] = None,
    sync_policy: Annotated[SyncPolicy | None, typer.Option("--sync-policy", help="Sync policy.")] = None,
    auto_prune: Annotated[
        bool, typer.Option("--auto-prune", help="Prune when syncing automatically.")
    ] = False,
    self_heal: Annotated[bool, typer.Option("--self-heal", help="Undo live changes automatically.")] = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Allow automated syncs that prune everything.")
    ] = False,
    sync_option: Annotated[list[str] | None, typer.Option("--sync-option", help="Sync option K=V.")] = None,
    directory_recurse: Annotated[
        bool, typer.Option("--directory-recurse", help="Read manifests in sub-directories.")
    ] = False,
    helm_set: Annotated[list[str] | None, typer.Option("--helm-set", help="Helm parameter k=v.")] = None,
    helm_set_string: Annotated[
        list[str] | None, typer.Option("--helm-set-string", help="Helm string parameter k=v.")
    ] = None,
    values: Annotated[
        list[str] | None, typer.Option("--values", help="Helm values file in the repo.")
    ] = None,
    release_name: Annotated[str | None, typer.Option("--release-name", help="Helm release name.")] = None,
    kustomize_image: Annotated[
        list[str] | None, typer.Option("--kustomize-image", help="Kustomize image override.")
    ] = None,
    nameprefix: Annotated[str | None, typer.Option("--nameprefix", help="Kustomize name prefix.")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Label k=v of the Application.")
    ] = None,
    revision_history_limit: Annotated[
        int | None, typer.Option("--revision-history-limit", help="History entries to keep (default 10).")
    ] = None,
    upsert: Annotated[
        bool, typer.Option("--upsert", help="Replace the spec of an existing application.")
    ] = False,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Application manifest (YAML or JSON).")
    ] = None,
    set_finalizer: Annotated[
        bool, typer.Option("--set-finalizer", help="Delete the app's resources when it is deleted.")
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Create an Application (flags override the -f manifest)."""
    if name and "/" in name:
        app_namespace, name = qualify(name, app_namespace)
    options = CreateOptions(
        name=name,
        namespace=app_namespace,
        repo=repo,
        path=path,
        revision=revision,
        dest_server=dest_server,
        dest_name=dest_name,
        dest_namespace=dest_namespace,
        project=project,
        sync_policy=sync_policy,
        auto_prune=auto_prune,
        self_heal=self_heal,
        allow_empty=allow_empty,
        sync_options=sync_option or [],
        directory_recurse=directory_recurse,
        helm_set=helm_set or [],
        helm_set_string=helm_set_string or [],
        values=values or [],
        release_name=release_name,
        kustomize_images=kustomize_image or [],
        nameprefix=nameprefix,
        labels=label or [],
        revision_history_limit=revision_history_limit,
        set_finalizer=set_finalizer,
    )
    with _reporting():
        wanted = build_application(options, load_manifest(file) if file else None)
    _run(kubeconfig, lambda client: _create(client, wanted, upsert=upsert))


# -------------------------------------------------------------------------------------- list / get


async def _list(client: Client, namespace: str, *, selector: str, projects: Sequence[str]) -> list[Obj]:
    apps, _ = await client.list(crds.APPLICATION, namespace, labels=selector)
    if projects:
        apps = [app for app in apps if appview.text(app, "spec", "project") in projects]
    return sorted(apps, key=appview.qualified_name)


@app_cli.command("list")
def list_apps(
    output: Annotated[ListOutput | None, typer.Option("--output", "-o", help="Output format.")] = None,
    selector: SelectorOpt = "",
    project: Annotated[list[str] | None, typer.Option("--project", "-p", help="Only these projects.")] = None,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """List Applications."""

    async def work(client: Client) -> int:
        apps = await _list(client, _app_namespace(app_namespace), selector=selector, projects=project or [])
        if output in (ListOutput.json, ListOutput.yaml):
            _emit_data(apps, output.value)
        elif output is ListOutput.name:
            for app in apps:
                typer.echo(appview.qualified_name(app))
        else:
            _emit(appview.list_table(apps, wide=output is ListOutput.wide))
        return 0

    _run(kubeconfig, work)


def _in_cluster(app: Mapping[str, Any]) -> bool:
    """Whether the destination is the cluster we talk to (the only one we can read children from)."""
    server_url = appview.text(app, "spec", "destination", "server")
    return server_url == DEFAULT_SERVER or appview.text(app, "spec", "destination", "name") == "in-cluster"


async def _live_children(client: Client, app: Mapping[str, Any]) -> list[Obj]:
    """ReplicaSets, Jobs and Pods in the namespaces of the app's resources: the candidates for children
    of its managed resources in the tree view."""
    if not _in_cluster(app):
        return []
    namespaces = {appview.text(r, "namespace") for r in appview.items(app, "status", "resources")}
    namespaces.add(appview.text(app, "spec", "destination", "namespace"))
    namespaces.discard("")

    async def listed(kind: kinds.Kind, namespace: str) -> list[Obj]:
        try:
            found, _ = await client.list(kind, namespace)
        except errors.ApiError:  # forbidden or unknown here: show the tree without these
            return []
        return found

    lists = await asyncio.gather(
        *(listed(kind, ns) for ns in sorted(namespaces) for kind in (kinds.REPLICASET, kinds.JOB, kinds.POD))
    )
    return [obj for found in lists for obj in found]


async def _refresh(client: Client, namespace: str, name: str, *, hard: bool, timeout: int) -> Obj:
    """Ask the controller for a refresh and wait until it has done it (it removes the annotation)."""
    await _get_app(client, namespace, name)
    mode = "hard" if hard else "normal"
    patch = {"metadata": {"annotations": {REFRESH_ANNOTATION: mode}}}
    await client.patch(crds.APPLICATION, name, patch, namespace=namespace)

    def refreshed(app: Obj | None) -> bool:
        if app is None:
            raise CliError(f"application '{namespace}/{name}' was deleted")
        return REFRESH_ANNOTATION not in (app["metadata"].get("annotations") or {})

    what = f"the {mode} refresh of '{namespace}/{name}' (is the controller running?)"
    app = await _follow(client, namespace, name, refreshed, timeout=timeout, what=what)
    assert app is not None
    return app


@app_cli.command("get")
def get(
    name: Annotated[str, typer.Argument(help="Application name.")],
    output: Annotated[GetOutput | None, typer.Option("--output", "-o", help="Output format.")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Refresh (compare with Git) first.")] = False,
    hard_refresh: Annotated[
        bool, typer.Option("--hard-refresh", help="Refresh and drop cached manifests first.")
    ] = False,
    show_operation: Annotated[
        bool, typer.Option("--show-operation", help="Also show the requested operation.")
    ] = False,
    timeout: TimeoutOpt = 60,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Show an Application: summary, last operation, conditions and resources."""
    namespace, name = qualify(name, app_namespace)

    async def work(client: Client) -> int:
        if refresh or hard_refresh:
            app = await _refresh(client, namespace, name, hard=hard_refresh, timeout=timeout)
        else:
            app = await _get_app(client, namespace, name)
        if output in (GetOutput.json, GetOutput.yaml):
            _emit_data(app, output.value)
        elif output is GetOutput.tree:
            _emit(appview.resource_tree(app, await _live_children(client, app)))
        else:
            _emit(appview.detail(app, show_operation=show_operation))
        return 0

    _run(kubeconfig, work)


@app_cli.command("refresh")
def refresh_app(
    name: Annotated[str, typer.Argument(help="Application name.")],
    hard: Annotated[bool, typer.Option("--hard", help="Also drop cached manifests.")] = False,
    timeout: TimeoutOpt = 60,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Ask the controller to compare the Application with Git now, then show it."""
    namespace, name = qualify(name, app_namespace)

    async def work(client: Client) -> int:
        _emit(appview.detail(await _refresh(client, namespace, name, hard=hard, timeout=timeout)))
        return 0

    _run(kubeconfig, work)


# ---------------------------------------------------------------------------------- sync / rollback


def _initiated_by() -> Obj:
    return {"username": os.environ.get("USER") or "tugboat"}


def parse_resource(spec: str) -> Obj:
    """``GROUP:KIND:NAME`` or ``GROUP:KIND:NAMESPACE/NAME`` as an ``operation.sync.resources`` entry."""
    parts = spec.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise CliError(f"--resource expects GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME, got '{spec}'")
    group, kind, where = parts
    namespace, _, name = where.rpartition("/")
    if not name:
        raise CliError(f"--resource '{spec}' has no name")
    resource: Obj = {"group": group, "kind": kind, "name": name}
    if namespace:
        resource["namespace"] = namespace
    return resource


def _duration(value: str, flag: str) -> str:
    if not _DURATION.match(value):
        raise CliError(f"{flag} expects a duration such as 5s, 3m or 1m30s, got '{value}'")
    return value


@dataclass
class SyncOptions:
    """What ``app sync`` was asked for."""

    revision: str | None = None
    prune: bool = False
    dry_run: bool = False
    force: bool = False
    strategy: Strategy = Strategy.hook
    resources: list[str] = field(default_factory=list)
    sync_options: list[str] = field(default_factory=list)
    replace: bool = False
    server_side: bool = False
    apply_out_of_sync_only: bool = False
    retry_limit: int = 0
    retry_backoff_duration: str = "5s"
    retry_backoff_max_duration: str = "3m"
    retry_backoff_factor: int = 2


def build_sync_operation(options: SyncOptions) -> Obj:
    """The top-level ``operation`` that asks the controller for a sync (research/argocd.md §1.2)."""
    sync: Obj = {}
    if options.revision:
        sync["revision"] = options.revision
    if options.prune:
        sync["prune"] = True
    if options.dry_run:
        sync["dryRun"] = True
    strategy: Obj = {"force": True} if options.force else {}
    sync["syncStrategy"] = {options.strategy.value: strategy}
    if options.resources:
        sync["resources"] = [parse_resource(spec) for spec in options.resources]
    flags = [
        ("Replace=true", options.replace),
        ("ServerSideApply=true", options.server_side),
        ("ApplyOutOfSyncOnly=true", options.apply_out_of_sync_only),
    ]
    sync_options = _merge_options([], [*options.sync_options, *(o for o, on in flags if on)], "--sync-option")
    if sync_options:
        sync["syncOptions"] = sync_options
    operation: Obj = {"sync": sync, "initiatedBy": _initiated_by()}
    if options.retry_limit:
        operation["retry"] = {
            "limit": options.retry_limit,
            "backoff": {
                "duration": _duration(options.retry_backoff_duration, "--retry-backoff-duration"),
                "factor": options.retry_backoff_factor,
                "maxDuration": _duration(options.retry_backoff_max_duration, "--retry-backoff-max-duration"),
            },
        }
    return operation


def _written_at(result: Mapping[str, Any], before: datetime.datetime) -> datetime.datetime:
    """When our write of ``operation`` happened, to second precision (what ``startedAt`` has).

    The earlier of our clock before the write and the API server's record of it (``managedFields``),
    so that neither a client clock ahead of the cluster's nor one behind it hides the operation.
    """
    recorded = [
        appview.parse_time(appview.text(entry, "time"))
        for entry in appview.items(result, "metadata", "managedFields")
        if entry.get("manager") == FIELD_MANAGER
    ]
    server_times = [stamp for stamp in recorded if stamp is not None]
    written = min(before, max(server_times)) if server_times else before
    return written.replace(microsecond=0)


async def _request_operation(
    client: Client,
    namespace: str,
    name: str,
    operation: Obj,
    *,
    check: Callable[[Obj], None] = lambda app: None,
) -> datetime.datetime:
    """Write ``operation`` unless one is in progress (the check and the write are one optimistic
    transaction); returns the moment of the write for :func:`_await_operation`."""
    for _ in range(_WRITE_ATTEMPTS):
        app = await _get_app(client, namespace, name)
        check(app)
        if _operation_in_progress(app):
            raise CliError(f"application '{namespace}/{name}': another operation is already in progress")
        patch = {"metadata": {"resourceVersion": app["metadata"]["resourceVersion"]}, "operation": operation}
        before = datetime.datetime.now(datetime.UTC)
        try:
            result = await client.patch(crds.APPLICATION, name, patch, namespace=namespace)
        except errors.ApiError as exc:
            if exc.conflict:
                continue
            raise
        return _written_at(result, before)
    raise CliError(f"application '{namespace}/{name}' kept changing; try again")


def _is_ours(app: Mapping[str, Any], since: datetime.datetime) -> bool:
    started = appview.parse_time(appview.text(app, "status", "operationState", "startedAt"))
    return started is not None and started >= since


class _Progress:
    """Shows an operation while it runs: a live view on a terminal, new plain lines otherwise."""

    def __init__(self) -> None:
        self.live: Live | None = None
        self.printed: set[str] = set()

    def __enter__(self) -> _Progress:
        if _is_terminal():
            self.live = Live(console=Console(highlight=False), transient=True, refresh_per_second=8)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def update(self, app: Mapping[str, Any], *, started: bool) -> None:
        if self.live is not None:
            self.live.update(appview.operation_view(app) if started else appview.waiting_view(app))
            return
        if not started:
            return
        for line in appview.progress_lines(app):
            if line not in self.printed:
                self.printed.add(line)
                typer.echo(line)


async def _await_operation(
    client: Client, namespace: str, name: str, since: datetime.datetime, *, timeout: int
) -> int:
    """Follow the operation written at ``since`` to its end, print the result; 0 when it succeeded."""
    qualified = f"{namespace}/{name}"
    with _Progress() as progress:

        def finished(app: Obj | None) -> bool:
            if app is None:
                raise CliError(f"application '{qualified}' was deleted during the operation")
            ours = _is_ours(app, since)
            progress.update(app, started=ours)
            return (
                ours and not app.get("operation") and appview.operation_phase(app) in appview.COMPLETED_PHASES
            )

        app = await _follow(
            client, namespace, name, finished, timeout=timeout, what=f"the operation on '{qualified}'"
        )
    assert app is not None
    _emit(appview.detail(app))
    phase = appview.operation_phase(app)
    if phase != "Succeeded":
        message = appview.text(app, "status", "operationState", "message")
        typer.echo(f"error: application '{qualified}': operation {phase}: {_one_line(message)}", err=True)
        return 1
    return 0


async def _operate(
    client: Client,
    targets: Sequence[tuple[str, str]],
    operation: Obj,
    *,
    asynchronous: bool,
    timeout: int,
    check: Callable[[Obj], None] = lambda app: None,
) -> int:
    code = 0
    for namespace, name in targets:
        since = await _request_operation(client, namespace, name, operation, check=check)
        if asynchronous:
            typer.echo(f"application '{namespace}/{name}': operation requested")
        else:
            code = max(code, await _await_operation(client, namespace, name, since, timeout=timeout))
    return code


@app_cli.command("sync")
def sync(
    names: NamesArg = None,
    selector: SelectorOpt = "",
    revision: Annotated[str | None, typer.Option("--revision", help="Sync to this revision.")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Delete resources no longer in Git.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only pretend.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace resources that cannot be patched.")] = False,
    strategy: Annotated[Strategy, typer.Option("--strategy", help="Sync strategy.")] = Strategy.hook,
    replace: Annotated[bool, typer.Option("--replace", help="Use replace/create instead of apply.")] = False,
    server_side: Annotated[bool, typer.Option("--server-side", help="Use server-side apply.")] = False,
    apply_out_of_sync_only: Annotated[
        bool, typer.Option("--apply-out-of-sync-only", help="Apply only out-of-sync resources.")
    ] = False,
    resource: Annotated[
        list[str] | None,
        typer.Option(
            "--resource", help="Sync only GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME (repeatable)."
        ),
    ] = None,
    sync_option: Annotated[list[str] | None, typer.Option("--sync-option", help="Sync option K=V.")] = None,
    retry_limit: Annotated[int, typer.Option("--retry-limit", help="Retry a failed sync this often.")] = 0,
    retry_backoff_duration: Annotated[str, typer.Option("--retry-backoff-duration")] = "5s",
    retry_backoff_max_duration: Annotated[str, typer.Option("--retry-backoff-max-duration")] = "3m",
    retry_backoff_factor: Annotated[int, typer.Option("--retry-backoff-factor")] = 2,
    asynchronous: AsyncOpt = False,
    timeout: TimeoutOpt = 0,
    assume_yes: Annotated[bool, typer.Option("--assumeYes", hidden=True)] = False,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Sync Applications to their target state in Git, and wait for the result."""
    options = SyncOptions(
        revision=revision,
        prune=prune,
        dry_run=dry_run,
        force=force,
        strategy=strategy,
        resources=resource or [],
        sync_options=sync_option or [],
        replace=replace,
        server_side=server_side,
        apply_out_of_sync_only=apply_out_of_sync_only,
        retry_limit=retry_limit,
        retry_backoff_duration=retry_backoff_duration,
        retry_backoff_max_duration=retry_backoff_max_duration,
        retry_backoff_factor=retry_backoff_factor,
    )
    with _reporting():
        operation = build_sync_operation(options)

    async def work(client: Client) -> int:
        targets = await _resolve_names(client, names or [], selector=selector, app_namespace=app_namespace)
        return await _operate(client, targets, operation, asynchronous=asynchronous, timeout=timeout)

    _run(kubeconfig, work)


@app_cli.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Application name.")],
    history_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="History ID (default: the previous deployment).")
    ] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Delete resources not in that revision.")] = False,
    asynchronous: AsyncOpt = False,
    timeout: TimeoutOpt = 0,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Sync an Application back to a deployment in its history."""
    namespace, name = qualify(name, app_namespace)

    async def work(client: Client) -> int:
        app = await _get_app(client, namespace, name)
        _refuse_automated(app)
        entry = appview.history_entry(app, history_id)
        if entry is None:
            if history_id is None:
                raise CliError(f"application '{namespace}/{name}' has no previous deployment to roll back to")
            raise CliError(
                f"application '{namespace}/{name}' does not have deployment id {history_id} in history"
            )
        operation = {"sync": _rollback_sync(entry, prune=prune), "initiatedBy": _initiated_by()}
        return await _operate(
            client,
            [(namespace, name)],
            operation,
            asynchronous=asynchronous,
            timeout=timeout,
            check=_refuse_automated,
        )

    _run(kubeconfig, work)


def _refuse_automated(app: Mapping[str, Any]) -> None:
    if appview.is_automated(app):
        raise CliError("rollback cannot be initiated when auto-sync is enabled")


def _rollback_sync(entry: Mapping[str, Any], *, prune: bool) -> Obj:
    sync: Obj = {}
    for key in ("revision", "source", "revisions", "sources"):
        if entry.get(key):
            sync[key] = copy.deepcopy(entry[key])
    if prune:
        sync["prune"] = True
    return sync


@app_cli.command("terminate-op")
def terminate_op(
    name: Annotated[str, typer.Argument(help="Application name.")],
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Stop the Application's running operation."""
    namespace, name = qualify(name, app_namespace)

    async def work(client: Client) -> int:
        for _ in range(_WRITE_ATTEMPTS):
            app = await _get_app(client, namespace, name)
            if appview.operation_phase(app) != "Running":
                raise CliError("Unable to terminate operation. No operation is in progress")
            patch = {
                "metadata": {"resourceVersion": app["metadata"]["resourceVersion"]},
                "status": {"operationState": {"phase": "Terminating"}},
            }
            try:
                await client.patch(crds.APPLICATION, name, patch, namespace=namespace)
            except errors.ApiError as exc:
                if exc.conflict:
                    continue
                raise
            typer.echo(f"Application '{namespace}/{name}' operation terminating")
            return 0
        raise CliError(f"application '{namespace}/{name}' kept changing; try again")

    _run(kubeconfig, work)


# ------------------------------------------------------------------------------------ wait / history


@dataclass(frozen=True)
class WaitFor:
    """The states ``app wait`` waits for (all of them at once)."""

    sync: bool = False
    health: bool = False
    operation: bool = False
    suspended: bool = False
    degraded: bool = False
    delete: bool = False

    def health_states(self) -> set[str]:
        wanted = {("Healthy", self.health), ("Suspended", self.suspended), ("Degraded", self.degraded)}
        return {state for state, on in wanted if on}

    def reached(self, app: Mapping[str, Any] | None) -> bool:
        if app is None:
            return self.delete
        if self.delete:
            return False
        if self.sync and appview.text(app, "status", "sync", "status") != "Synced":
            return False
        states = self.health_states()
        if states and appview.text(app, "status", "health", "status") not in states:
            return False
        return not (self.operation and _operation_in_progress(app))


@app_cli.command("wait")
def wait(
    names: NamesArg = None,
    selector: SelectorOpt = "",
    sync_: Annotated[bool, typer.Option("--sync", help="Wait until Synced.")] = False,
    health_: Annotated[bool, typer.Option("--health", help="Wait until Healthy.")] = False,
    operation: Annotated[bool, typer.Option("--operation", help="Wait until no operation runs.")] = False,
    suspended: Annotated[bool, typer.Option("--suspended", help="Wait until Suspended.")] = False,
    degraded: Annotated[bool, typer.Option("--degraded", help="Wait until Degraded.")] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Wait until deleted.")] = False,
    timeout: TimeoutOpt = 0,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Wait for Applications to be synced, healthy, idle (the default: all three), or deleted."""
    wanted = WaitFor(sync_, health_, operation, suspended, degraded, delete)
    if wanted == WaitFor():
        wanted = WaitFor(sync=True, health=True, operation=True)

    async def wait_one(client: Client, namespace: str, name: str) -> None:
        def reached(app: Obj | None) -> bool:
            if app is None and not wanted.delete:
                raise CliError(f"application '{namespace}/{name}' not found")
            return wanted.reached(app)

        app = await _follow(client, namespace, name, reached, timeout=timeout, what=f"'{namespace}/{name}'")
        if app is None:
            typer.echo(f"application '{namespace}/{name}' deleted")
        else:
            _emit(appview.detail(app))

    async def work(client: Client) -> int:
        targets = await _resolve_names(client, names or [], selector=selector, app_namespace=app_namespace)
        await asyncio.gather(*(wait_one(client, namespace, name) for namespace, name in targets))
        return 0

    _run(kubeconfig, work)


@app_cli.command("history")
def history(
    name: Annotated[str, typer.Argument(help="Application name.")],
    output: Annotated[DataOutput | None, typer.Option("--output", "-o", help="Output format.")] = None,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Show the Application's deployment history."""
    namespace, name = qualify(name, app_namespace)

    async def work(client: Client) -> int:
        app = await _get_app(client, namespace, name)
        if output is not None:
            _emit_data(appview.field(app, "status", "history") or [], output.value)
        else:
            _emit(appview.history(app))
        return 0

    _run(kubeconfig, work)


# ------------------------------------------------------------------------------------------ delete


def wanted_finalizers(current: Sequence[str], *, cascade: bool, policy: Propagation | None) -> list[str]:
    """The finalizers an Application needs before its deletion: a resources finalizer for a cascading
    delete (the policy's, or the one already there when no policy is given), none otherwise."""
    others = [f for f in current if f not in RESOURCES_FINALIZERS]
    if not cascade:
        return others
    if policy is None and any(f in RESOURCES_FINALIZERS for f in current):
        return list(current)
    wanted = BACKGROUND_FINALIZER if policy is Propagation.background else FOREGROUND_FINALIZER
    return [*others, wanted]


async def _delete(
    client: Client,
    namespace: str,
    name: str,
    *,
    cascade: bool,
    policy: Propagation | None,
    wait: bool,
    timeout: int,
) -> None:
    qualified = f"{namespace}/{name}"
    for _ in range(_WRITE_ATTEMPTS):
        app = await _get_app(client, namespace, name)
        meta = app["metadata"]
        finalizers = wanted_finalizers(meta.get("finalizers") or [], cascade=cascade, policy=policy)
        if finalizers == (meta.get("finalizers") or []):
            break
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": finalizers}}
        try:
            await client.patch(crds.APPLICATION, name, patch, namespace=namespace)
        except errors.ApiError as exc:
            if exc.conflict:
                continue
            raise
        break
    else:
        raise CliError(f"application '{qualified}' kept changing; try again")
    await client.delete(crds.APPLICATION, name, namespace)
    if not wait:
        typer.echo(
            f"application '{qualified}' deletion requested" + (" (with its resources)" if cascade else "")
        )
        return
    await _follow(
        client, namespace, name, lambda app: app is None, timeout=timeout, what=f"deletion of '{qualified}'"
    )
    typer.echo(f"application '{qualified}' deleted")


@app_cli.command("delete")
def delete(
    names: Annotated[list[str], typer.Argument(help="Application names.")],
    cascade: Annotated[
        bool, typer.Option("--cascade/--no-cascade", help="Also delete the Application's resources.")
    ] = True,
    propagation_policy: Annotated[
        Propagation | None, typer.Option("--propagation-policy", help="How the resources are deleted.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    wait_: Annotated[bool, typer.Option("--wait", help="Wait until the Application is gone.")] = False,
    timeout: TimeoutOpt = 0,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Delete Applications (by default with their resources, which the controller deletes)."""
    targets = [qualify(name, app_namespace) for name in names]
    if propagation_policy is not None and not cascade:
        raise _fail("--propagation-policy only applies to a cascading delete")
    if not yes:
        if not sys.stdin.isatty():
            raise _fail("refusing to delete without --yes: stdin is not a terminal to confirm on")
        what = " and all its resources" if cascade else ""
        targets = [
            (namespace, name)
            for namespace, name in targets
            if typer.confirm(f"Delete application '{namespace}/{name}'{what}?", default=False)
        ]
        if not targets:
            return

    async def work(client: Client) -> int:
        for namespace, name in targets:
            await _delete(
                client,
                namespace,
                name,
                cascade=cascade,
                policy=propagation_policy,
                wait=wait_,
                timeout=timeout,
            )
        return 0

    _run(kubeconfig, work)


# ----------------------------------------------------------------------------------- diff / manifests


class ManifestSource(enum.StrEnum):
    git = "git"
    live = "live"


DIFF_ERROR_EXIT = 2
"""``app diff``'s exit code for any failure (``argocd app diff``'s): 1 means "a difference was found"."""


def cli_cache_dir() -> Path:
    """Where ``app diff`` and ``app manifests`` keep their repository mirrors between runs."""
    return server.default_state_dir() / "cli-cache"


def _caches() -> tuple[repos.RepoCache, render.ManifestCache]:
    return repos.RepoCache(cli_cache_dir() / "repos", max_checkouts=8), render.ManifestCache()


def _run_diff(kubeconfig: Path | None, work: Callable[[Client], Awaitable[int]]) -> None:
    """:func:`_run`, with failures exiting :data:`DIFF_ERROR_EXIT` instead of 1 (which ``work`` returns
    for "a difference was found")."""
    found = 0

    async def counted(client: Client) -> int:
        nonlocal found
        found = await work(client)
        return 0

    try:
        _run(kubeconfig, counted)
    except typer.Exit as exc:
        raise typer.Exit(DIFF_ERROR_EXIT if exc.exit_code == 1 else exc.exit_code) from None
    if found:
        raise typer.Exit(found)


@contextlib.contextmanager
def _gitops_errors() -> Iterator[None]:
    try:
        yield
    except GitOpsError as exc:
        raise CliError(str(exc)) from exc


@app_cli.command("diff")
def diff_app(
    name: Annotated[str, typer.Argument(help="Application name.")],
    revision: Annotated[
        str | None, typer.Option("--revision", help="Compare with this revision instead of the target.")
    ] = None,
    local: Annotated[
        Path | None,
        typer.Option(
            "--local", help="Compare with the manifests of this local directory (the app's directory)."
        ),
    ] = None,
    hard_refresh: Annotated[
        bool, typer.Option("--hard-refresh", help="Fetch the repository and render again.")
    ] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code/--no-exit-code", help="Exit with 1 when a difference is found.")
    ] = True,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Show how the live resources differ from the desired ones (exit 0: none, 1: some, 2: error)."""
    try:
        namespace, name = qualify(name, app_namespace)
    except typer.Exit:
        raise typer.Exit(DIFF_ERROR_EXIT) from None
    if local is not None and revision:
        _fail("give only one of --local and --revision")
        raise typer.Exit(DIFF_ERROR_EXIT)

    async def work(client: Client) -> int:
        app = await _get_app(client, namespace, name)
        with _gitops_errors():
            if local is not None:
                result = await appdiff.diff_local(client, app, local)
            else:
                repo_cache, manifest_cache = _caches()
                result = await appdiff.diff_app(
                    client,
                    app,
                    repo_cache=repo_cache,
                    manifest_cache=manifest_cache,
                    revision=revision,
                    hard=hard_refresh,
                )
        if result.differences:
            typer.echo(result.text())
        for warning in result.warnings:
            typer.echo(f"warning: {_one_line(warning)}", err=True)
        if result.errors:
            raise CliError("; ".join(result.errors))
        return 1 if result.modified and exit_code else 0

    _run_diff(kubeconfig, work)


@app_cli.command("manifests")
def manifests(
    name: Annotated[str, typer.Argument(help="Application name.")],
    source: Annotated[
        ManifestSource,
        typer.Option("--source", help="git: the desired manifests; live: the live objects."),
    ] = ManifestSource.git,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Render this revision (with --source git).")
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    app_namespace: AppNamespaceOpt = None,
) -> None:
    """Print the Application's manifests as YAML (Secret values masked)."""
    namespace, name = qualify(name, app_namespace)
    if revision and source is ManifestSource.live:
        raise _fail("--revision only applies to --source git")

    async def work(client: Client) -> int:
        app = await _get_app(client, namespace, name)
        with _gitops_errors():
            if source is ManifestSource.live:
                objs = await appdiff.live_manifests(client, app)
            else:
                repo_cache, manifest_cache = _caches()
                objs = await appdiff.desired_manifests(
                    client, app, repo_cache=repo_cache, manifest_cache=manifest_cache, revision=revision
                )
        if objs:
            typer.echo(appdiff.yaml_documents(objs), nl=False)
        return 0

    _run(kubeconfig, work)
