"""Comparing an Application's desired state (Git) with its live state (the cluster).

Argo CD's ``CompareAppState`` (research/argocd.md §3.3): resolve the source's revision, render it
(through the manifest cache), mark every manifest with the tracking id, check it against the project,
pair it with the live objects the cluster cache tracks for the app (``reconcile``), diff each pair, and
judge health. The result holds everything the status needs (sync status, per-resource states, health,
conditions, images) and everything a sync needs (the targets, hooks and live objects).

Anything that stops the comparison - an unreachable repository, an unknown revision, a manifest that
does not parse - yields sync status ``Unknown`` and a ``ComparisonError`` condition, with the live
resources listed as they are: nothing is judged missing or extra, so nothing gets pruned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from tugboat.gitops import (
    diff,
    health,
    hooks,
    projects,
    reconcile,
    repos,
    resourcekey,
    syncoptions,
    tracking,
)
from tugboat.gitops import settings as settings_mod
from tugboat.gitops.errors import GitOpsError
from tugboat.gitops.render import ManifestCache, render_cached
from tugboat.kube import errors as kube_errors
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind
from tugboat.util import jsondata

log = logging.getLogger(__name__)

SYNCED = "Synced"
OUT_OF_SYNC = "OutOfSync"
UNKNOWN = "Unknown"

SSA_MANAGER = "argocd-controller"
"""The field manager of every server-side apply (and dry run) the controller makes, as in Argo CD."""

IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"

COMPARISON_ERROR = "ComparisonError"
INVALID_SPEC_ERROR = "InvalidSpecError"
REPEATED_RESOURCE_WARNING = "RepeatedResourceWarning"


@dataclasses.dataclass
class ResourceState:
    """One managed resource: desired and live object, their diff and the live object's health."""

    key: resourcekey.ResourceKey
    version: str
    target: Obj | None
    live: Obj | None
    status: str
    health: health.HealthStatus | None = None
    modified: bool = False
    requires_pruning: bool = False
    wave: int = 0
    permitted: bool = True
    message: str = ""
    diff: diff.ResourceDiff | None = None

    def to_status(self) -> dict[str, Any]:
        """The entry of ``status.resources``."""
        out: dict[str, Any] = {}
        if self.key.group:
            out["group"] = self.key.group
        out["version"] = self.version
        out["kind"] = self.key.kind
        if self.key.namespace:
            out["namespace"] = self.key.namespace
        out["name"] = self.key.name
        out["status"] = self.status
        if self.health is not None:
            out["health"] = self.health.to_dict()
        if self.requires_pruning:
            out["requiresPruning"] = True
        if self.wave:
            out["syncWave"] = self.wave
        return out


@dataclasses.dataclass
class Comparison:
    """The outcome of one comparison (see the module docstring)."""

    revision: str
    revisions: list[str]
    sources: list[Obj]
    multi_source: bool
    source_types: list[str]
    destination: Obj
    resources: list[ResourceState]
    hooks: list[Obj]
    sync_status: str
    health: health.HealthStatus
    conditions: list[Obj]
    images: list[str]
    failed: bool = False
    ignore_rules: list[diff.IgnoreRule] = dataclasses.field(default_factory=list)

    @property
    def source_type(self) -> str:
        return self.source_types[0] if self.source_types else ""

    def targets(self) -> list[Obj]:
        return [r.target for r in self.resources if r.target is not None]


class LiveState(Protocol):
    """What a comparison reads from the destination cluster: the controller's
    :class:`~tugboat.gitops.clustercache.ClusterCache`, or a one-off read of the few kinds an app uses
    (:mod:`tugboat.gitops.appdiff`, for the CLI)."""

    def managed(self, instance: str) -> dict[resourcekey.ResourceKey, Obj]: ...

    def is_namespaced(self, group: str, kind: str) -> bool | None: ...

    def get(self, key: resourcekey.ResourceKey) -> Obj | None: ...

    def kind_for(self, group: str, kind: str) -> Kind | None: ...


@dataclasses.dataclass
class Environment:
    """What a comparison reads besides the Application: shared across every comparison."""

    repo_cache: repos.RepoCache
    manifest_cache: ManifestCache
    cluster: LiveState
    control_namespace: str = "argocd"
    settings: settings_mod.Settings = dataclasses.field(default_factory=settings_mod.Settings)
    repo_secrets: list[Obj] = dataclasses.field(default_factory=list)
    render_timeout: float = 60.0
    kube_version: str = "1.32"
    # Server-side diff (an SSA dry run per existing resource) needs a client; see ``_server_side_diff``.
    client: Client | None = None
    server_side_diff_cache: dict[tuple[Any, ...], diff.ResourceDiff] = dataclasses.field(default_factory=dict)


class ComparisonFailed(GitOpsError):
    """The desired state could not be built (its message becomes the ``ComparisonError`` condition)."""


def app_sources(app: Mapping[str, Any]) -> tuple[list[Obj], bool]:
    """The Application's sources and whether it is a multi-source app (``spec.sources`` wins)."""
    spec = app.get("spec") or {}
    if spec.get("sources"):
        return [dict(s) for s in spec["sources"] if isinstance(s, Mapping)], True
    source = spec.get("source")
    return ([dict(source)] if isinstance(source, Mapping) else []), False


def instance_of_app(app: Mapping[str, Any], control_namespace: str) -> str:
    meta = app.get("metadata") or {}
    return tracking.instance_name(
        meta.get("name", ""), meta.get("namespace") or control_namespace, control_namespace=control_namespace
    )


def destination_of(app: Mapping[str, Any]) -> Obj:
    dest = dict((app.get("spec") or {}).get("destination") or {})
    return {k: v for k, v in dest.items() if k in ("server", "name", "namespace") and v}


def check_destination(dest: Mapping[str, Any]) -> None:
    """Only the cluster the controller runs against is a destination today (``in-cluster``)."""
    server, name = dest.get("server"), dest.get("name")
    if server and name:
        raise ComparisonFailed("application destination can't have both name and server defined")
    if not server and not name:
        raise ComparisonFailed("application destination server or name is required")
    if server and server.rstrip("/") != IN_CLUSTER_SERVER:
        raise ComparisonFailed(
            f"Unable to find destination server: there are no clusters with this URL: {server}"
        )
    if name and name != IN_CLUSTER_NAME:
        raise ComparisonFailed(f"there are no clusters with this name: {name}")


async def resolve_revision(env: Environment, source: Mapping[str, Any], *, project: str, force: bool) -> str:
    url = source.get("repoURL") or ""
    if not url:
        raise ComparisonFailed("spec.source.repoURL is required")
    creds = repos.credentials_for(url, env.repo_secrets, project=project)
    try:
        return await env.repo_cache.resolve(
            url, source.get("targetRevision") or "HEAD", creds=creds, force=force
        )
    except GitOpsError as exc:
        raise ComparisonFailed(f"rpc error: code = Unknown desc = {exc}") from exc


async def render_source(
    env: Environment,
    app: Mapping[str, Any],
    source: Mapping[str, Any],
    revision: str,
    *,
    hard: bool,
) -> tuple[list[Obj], str]:
    """The manifests of one source at ``revision`` (a resolved SHA) and its source type."""
    meta = app.get("metadata") or {}
    spec = app.get("spec") or {}
    project = spec.get("project") or "default"
    url = source.get("repoURL") or ""
    creds = repos.credentials_for(url, env.repo_secrets, project=project)
    dest_ns = (spec.get("destination") or {}).get("namespace") or ""
    try:
        async with env.repo_cache.checked_out(url, revision, creds=creds) as root:
            rendered = await render_cached(
                env.manifest_cache,
                Path(root),
                source,
                app_name=meta.get("name", ""),
                app_namespace=dest_ns,
                revision=revision,
                repo_url=url,
                project=project,
                kube_version=env.kube_version,
                timeout=env.render_timeout,
                refresh=hard,
            )
    except GitOpsError as exc:
        raise ComparisonFailed(f"rpc error: code = Unknown desc = {exc}") from exc
    return rendered.manifests, rendered.source_type


def _check_manifest(obj: Any, index: int) -> None:
    if not isinstance(obj, Mapping):
        raise ComparisonFailed(f"manifest {index}: not an object")
    if not obj.get("apiVersion") or not obj.get("kind"):
        raise ComparisonFailed(f"manifest {index}: apiVersion and kind are required")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not (meta.get("name") or meta.get("generateName")):
        raise ComparisonFailed(f"manifest {index} ({obj.get('kind')}): metadata.name is required")


def images_of(objs: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """Container images named by pod templates and pods among ``objs`` (``status.summary.images``)."""
    found: set[str] = set()
    for obj in objs:
        if not obj:
            continue
        spec = obj.get("spec") or {}
        pod_specs = [spec] if obj.get("kind") == "Pod" else []
        template = spec.get("template") if isinstance(spec, Mapping) else None
        if isinstance(template, Mapping):
            pod_specs.append(template.get("spec") or {})
        job_template = spec.get("jobTemplate") if isinstance(spec, Mapping) else None
        if isinstance(job_template, Mapping):
            inner = ((job_template.get("spec") or {}).get("template") or {}).get("spec") or {}
            pod_specs.append(inner)
        for pod_spec in pod_specs:
            if not isinstance(pod_spec, Mapping):
                continue
            for field in ("initContainers", "containers", "ephemeralContainers"):
                for container in pod_spec.get(field) or []:
                    if isinstance(container, Mapping) and isinstance(container.get("image"), str):
                        found.add(container["image"])
    return sorted(found)


def _version_of(obj: Mapping[str, Any] | None) -> str:
    api_version = str((obj or {}).get("apiVersion") or "")
    return api_version.rpartition("/")[2]


def _condition(kind: str, message: str) -> Obj:
    return {"type": kind, "message": message}


async def compare(
    app: Mapping[str, Any],
    env: Environment,
    *,
    project: projects.Project | None,
    revision: str | None = None,
    revisions: Sequence[str] | None = None,
    hard: bool = False,
    sources: Sequence[Mapping[str, Any]] | None = None,
) -> Comparison:
    """Compare ``app`` at its target revision (or ``revision``/``revisions``, resolved SHAs or symbolic
    names, with ``sources`` instead of the spec's: a sync to another revision or a rollback)."""
    spec_sources, multi = app_sources(app)
    use_sources = [dict(s) for s in sources] if sources else spec_sources
    spec = app.get("spec") or {}
    dest = destination_of(app)
    instance = instance_of_app(app, env.control_namespace)
    live = env.cluster.managed(instance)
    conditions: list[Obj] = []
    self_key = resourcekey.ResourceKey(
        "argoproj.io",
        "Application",
        (app.get("metadata") or {}).get("namespace", ""),
        app["metadata"]["name"],
    )
    live.pop(self_key, None)

    resolved: list[str] = []
    source_types: list[str] = []
    try:
        if not use_sources:
            raise ComparisonFailed("spec.source or spec.sources is required")
        check_destination(dest)
        if project is not None:
            for source in use_sources:
                problems = projects.violations(
                    project,
                    repo_url=source.get("repoURL") or "",
                    destination_server=dest.get("server") or (IN_CLUSTER_SERVER if dest.get("name") else ""),
                    destination_name=dest.get("name") or IN_CLUSTER_NAME,
                    destination_namespace=dest.get("namespace") or "",
                )
                if problems:
                    raise _InvalidSpec("; ".join(problems))
        wanted = list(revisions or ([revision] if revision else []))
        manifests: list[Obj] = []
        for index, source in enumerate(use_sources):
            if source.get("ref") and not source.get("path") and not source.get("chart"):
                resolved.append(await resolve_revision(env, source, project=_project(app), force=hard))
                source_types.append("")
                continue
            rev_source = dict(source)
            if index < len(wanted) and wanted[index]:
                rev_source["targetRevision"] = wanted[index]
            sha = await resolve_revision(env, rev_source, project=_project(app), force=hard)
            resolved.append(sha)
            found, source_type = await render_source(env, app, source, sha, hard=hard)
            source_types.append(source_type)
            manifests.extend(found)
        for index, obj in enumerate(manifests):
            _check_manifest(obj, index)
        ignore = [*env.settings.diff.ignore, *diff.ignore_rules(spec.get("ignoreDifferences"))]
    except _InvalidSpec as exc:
        return _failed(
            app, env, live, dest, use_sources, multi, resolved, source_types, INVALID_SPEC_ERROR, str(exc)
        )
    except (ComparisonFailed, GitOpsError) as exc:
        return _failed(
            app, env, live, dest, use_sources, multi, resolved, source_types, COMPARISON_ERROR, str(exc)
        )

    dest_ns = dest.get("namespace") or ""
    result = reconcile.reconcile(manifests, live, namespace=dest_ns, is_namespaced=env.cluster.is_namespaced)
    for pair in result.pairs:  # targets are copies with their namespace filled in
        if pair.target is not None:
            tracking.set_tracking(pair.target, instance, method=env.settings.tracking_method)
    # A hook's tracking id must name the hook itself once its namespace is known.
    hook_objs = []
    for hook in result.hooks:
        hook = jsondata.clone(hook)
        meta = hook.setdefault("metadata", {})
        if env.cluster.is_namespaced(*resourcekey.group_kind_of(hook)) is not False and not meta.get(
            "namespace"
        ):
            meta["namespace"] = dest_ns
        if meta.get("name"):
            tracking.set_tracking(hook, instance, method=env.settings.tracking_method)
        hook_objs.append(hook)
    for key in result.duplicates:
        where = f"{key.namespace}/{key.name}" if key.namespace else key.name
        conditions.append(
            _condition(
                REPEATED_RESOURCE_WARNING,
                f"Resource {key.group_kind} {where} appeared more than once among application resources",
            )
        )

    states: list[ResourceState] = []
    checks = env.settings.health_checks
    not_permitted: list[str] = []
    for pair in result.pairs:
        if pair.key == self_key:
            continue
        target, live_obj = pair.target, pair.live
        if target is None and live_obj is not None and hooks.is_hook(live_obj):
            continue  # a hook left by a sync: never part of the app's resources, never pruned
        reference = target if target is not None else live_obj
        assert reference is not None
        state = ResourceState(
            key=pair.key,
            version=_version_of(live_obj or target),
            target=target,
            live=live_obj,
            status=SYNCED,
            wave=hooks.wave(reference),
        )
        if project is not None and target is not None:
            namespaced = env.cluster.is_namespaced(pair.key.group, pair.key.kind)
            message = projects.resource_violation(
                project,
                group=pair.key.group,
                kind=pair.key.kind,
                namespace=pair.key.namespace,
                name=pair.key.name,
                namespaced=bool(pair.key.namespace) if namespaced is None else namespaced,
            )
            if message:
                state.permitted = False
                state.message = message
                state.status = UNKNOWN
                not_permitted.append(message)
        if live_obj is not None:
            state.health = checks.health_of(live_obj)
        elif target is not None and checks.has_check(*resourcekey.group_kind_of(target)):
            state.health = health.HealthStatus(health.MISSING)
        if state.permitted:
            try:
                server_side: diff.ResourceDiff | None = None
                if target is not None and live_obj is not None and _wants_server_side_diff(app, target, env):
                    server_side = await _server_side_diff(env, target, live_obj, ignore=ignore)
                result_diff = server_side or diff.diff(
                    target,
                    live_obj,
                    ignore=ignore,
                    normalize_status=env.settings.diff.normalize_status,
                )
            except GitOpsError as exc:
                conditions.append(_condition(COMPARISON_ERROR, f"{pair.key}: {exc}"))
                state.status = UNKNOWN
            else:
                state.diff = result_diff
                state.modified = result_diff.modified
                if target is None:
                    state.requires_pruning = True
                    state.status = OUT_OF_SYNC
                elif state.modified:
                    state.status = OUT_OF_SYNC
        states.append(state)
    for message in not_permitted:
        conditions.append(_condition(INVALID_SPEC_ERROR, message))

    sync_status = SYNCED
    for state in states:
        if state.status == OUT_OF_SYNC:
            if (
                state.target is None
                and state.live is not None
                and syncoptions.has_compare_option(state.live, "IgnoreExtraneous")
            ):
                continue
            sync_status = OUT_OF_SYNC
        elif state.status == UNKNOWN and sync_status == SYNCED:
            sync_status = OUT_OF_SYNC
    if any(c["type"] == COMPARISON_ERROR for c in conditions):
        sync_status = UNKNOWN
    app_health = health.aggregate(
        [(s.live, s.health, False) for s in states if s.target is not None or s.live is not None],
        self_key=self_key,
    )
    images = images_of([s.live for s in states])
    return Comparison(
        revision=resolved[0] if resolved else "",
        revisions=resolved,
        sources=use_sources,
        multi_source=multi,
        source_types=source_types,
        destination=dest,
        resources=states,
        hooks=hook_objs,
        sync_status=sync_status,
        health=app_health,
        conditions=conditions,
        images=images,
        ignore_rules=ignore,
    )


class _InvalidSpec(Exception):
    pass


SERVER_SIDE_DIFF = "ServerSideDiff"
_SSD_CACHE_MAX = 20_000


def _wants_server_side_diff(app: Mapping[str, Any], target: Mapping[str, Any], env: Environment) -> bool:
    """``ServerSideDiff=true|false`` as a compare option of the resource, else of the Application, else
    the controller default (``controller.diff.server.side`` in ``argocd-cm``)."""
    if env.client is None:
        return False
    for obj in (target, app):
        value = syncoptions.compare_option(obj, SERVER_SIDE_DIFF)
        if value is not None:
            return value.lower() == "true"
    return env.settings.server_side_diff


async def _server_side_diff(
    env: Environment, target: Obj, live: Obj, *, ignore: Sequence[diff.IgnoreRule]
) -> diff.ResourceDiff | None:
    """Diff ``live`` against the API server's own dry run of applying ``target`` (cached until the live
    object or the desired one changes); ``None`` when the dry run is impossible (then the caller diffs
    locally)."""
    assert env.client is not None
    group, kind_name = resourcekey.group_kind_of(target)
    kind = env.cluster.kind_for(group, kind_name)
    if kind is None:
        return None
    meta = live.get("metadata") or {}
    key = (
        group,
        kind_name,
        meta.get("namespace"),
        meta.get("name"),
        meta.get("resourceVersion"),
        orjson.dumps(target, option=orjson.OPT_SORT_KEYS),
        tuple(ignore),
    )
    cached = env.server_side_diff_cache.get(key)
    if cached is not None:
        return cached
    version = str(target.get("apiVersion") or "").rpartition("/")[2] or kind.version
    path = dataclasses.replace(kind, version=version).object_path(meta.get("name", ""), meta.get("namespace"))
    try:
        predicted = await env.client.request(
            "PATCH",
            path,
            params={"fieldManager": SSA_MANAGER, "force": "true", "dryRun": "All"},
            body=target,
            content_type="application/apply-patch+yaml",
        )
    except kube_errors.KubeError as exc:
        log.debug("server-side diff of %s failed, diffing locally: %s", resourcekey.ResourceKey.of(live), exc)
        return None
    found = diff.server_side_diff(
        predicted, live, ignore=ignore, normalize_status=env.settings.diff.normalize_status
    )
    if len(env.server_side_diff_cache) >= _SSD_CACHE_MAX:
        env.server_side_diff_cache.clear()
    env.server_side_diff_cache[key] = found
    return found


def failed_comparison(app: Mapping[str, Any], env: Environment, condition: str, message: str) -> Comparison:
    """A comparison that stopped before rendering (e.g. the project does not exist)."""
    sources, multi = app_sources(app)
    live = env.cluster.managed(instance_of_app(app, env.control_namespace))
    return _failed(app, env, live, destination_of(app), sources, multi, [], [], condition, message)


def _project(app: Mapping[str, Any]) -> str:
    return (app.get("spec") or {}).get("project") or "default"


def _failed(
    app: Mapping[str, Any],
    env: Environment,
    live: Mapping[resourcekey.ResourceKey, Obj],
    dest: Obj,
    sources: list[Obj],
    multi: bool,
    resolved: list[str],
    source_types: list[str],
    condition: str,
    message: str,
) -> Comparison:
    """A comparison that could not build the desired state: live resources as they are, sync Unknown."""
    checks = env.settings.health_checks
    states = []
    for key in sorted(live):
        obj = live[key]
        if hooks.is_hook(obj):
            continue
        states.append(
            ResourceState(
                key=key,
                version=_version_of(obj),
                target=None,
                live=obj,
                status=UNKNOWN,
                health=checks.health_of(obj),
                wave=hooks.wave(obj),
            )
        )
    app_health = health.aggregate([(s.live, s.health, False) for s in states])
    return Comparison(
        revision=resolved[0] if resolved else "",
        revisions=resolved,
        sources=sources,
        multi_source=multi,
        source_types=source_types,
        destination=dest,
        resources=states,
        hooks=[],
        sync_status=UNKNOWN,
        health=app_health,
        conditions=[_condition(condition, message)],
        images=images_of([s.live for s in states]),
        failed=True,
    )


async def gather_limited(limit: int, *coros: Any) -> list[Any]:
    """Run coroutines with at most ``limit`` at once (kubectl's parallelism limit)."""
    semaphore = asyncio.Semaphore(limit)

    async def run(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))
