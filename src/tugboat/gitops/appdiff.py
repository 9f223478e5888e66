"""What ``tugboat app diff`` and ``tugboat app manifests`` compute: an Application's desired state
compared with the cluster, outside the controller.

The answer must be the controller's own, so the comparison is :func:`comparison.compare` itself, given
the same inputs the controller gives it: the ``argocd-cm`` settings, the repository Secrets and the
AppProject of the Application's namespace, and the live objects tracked as the app's. Only the live
side differs. The controller's :class:`~tugboat.gitops.clustercache.ClusterCache` watches every kind of
the cluster, far too much for one command; :class:`LiveObjects` discovers the resource types once and
lists only the kinds the app can own: those of its rendered manifests, and those its
``status.resources`` records (so objects that would be pruned show up too).

``--local`` (a directory instead of Git) has no repository to resolve, so it cannot go through
``compare``; :func:`diff_local` renders the directory and pairs and diffs the manifests the way
``compare`` does after rendering (the same reconcile, tracking ids, ignore rules and diff).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tugboat.gitops import (
    clustercache,
    comparison,
    crds,
    diff,
    projects,
    reconcile,
    render,
    repos,
    resourcekey,
    tracking,
)
from tugboat.gitops import settings as settings_mod
from tugboat.gitops.errors import GitOpsError
from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds
from tugboat.kube.client import Client, Obj

log = logging.getLogger(__name__)

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
_ERROR_CONDITIONS = (comparison.COMPARISON_ERROR, comparison.INVALID_SPEC_ERROR)


class AppDiffError(GitOpsError):
    """The comparison cannot be made (missing project, unreadable directory, unlistable kind, ...)."""


# ------------------------------------------------------------------------------------------ live state


class LiveObjects:
    """The live side of a one-off comparison (:class:`comparison.LiveState`).

    Resource types come from one discovery (the cluster cache's, with its exclusions); objects only from
    the kinds passed to :meth:`load`. Everything else reads as absent.
    """

    def __init__(
        self,
        client: Client,
        kinds_by_group_kind: Mapping[tuple[str, str], kinds.Kind],
        *,
        tracking_method: str = tracking.METHOD_ANNOTATION,
    ) -> None:
        self.client = client
        self.tracking_method = tracking_method
        self._kinds = dict(kinds_by_group_kind)
        self._objects: dict[resourcekey.ResourceKey, Obj] = {}
        self._loaded: set[tuple[str, str]] = set()

    @classmethod
    async def discover(
        cls, client: Client, *, tracking_method: str = tracking.METHOD_ANNOTATION
    ) -> LiveObjects:
        """Discover the cluster's resource types; nothing is listed yet."""
        try:
            found = await clustercache.ClusterCache(client).discover()
        except clustercache.ClusterCacheError as exc:
            raise AppDiffError(str(exc)) from exc
        return cls(client, found, tracking_method=tracking_method)

    async def load(self, group_kinds: Iterable[tuple[str, str]], *, namespaces: Iterable[str] = ()) -> None:
        """List every object of these kinds (kinds the cluster does not serve are skipped). A kind that
        may not be listed cluster-wide is listed in ``namespaces`` instead."""
        wanted = sorted({gk for gk in group_kinds if gk in self._kinds and gk not in self._loaded})
        where = sorted({ns for ns in namespaces if ns})
        lists = await asyncio.gather(*(self._list(self._kinds[gk], where) for gk in wanted))
        for group_kind, objs in zip(wanted, lists, strict=True):
            self._loaded.add(group_kind)
            for obj in objs:
                self._objects[resourcekey.ResourceKey.of(obj)] = obj

    async def _list(self, kind: kinds.Kind, namespaces: Sequence[str]) -> list[Obj]:
        try:
            found, _ = await self.client.list(kind, all_namespaces=True)
            return found
        except kube_errors.ApiError as exc:
            if exc.code != 403 or not kind.namespaced or not namespaces:
                raise AppDiffError(f"cannot list {kind}: {exc.message or exc.reason} ({exc.code})") from exc
        out: list[Obj] = []
        for found, _ in await asyncio.gather(*(self.client.list(kind, ns) for ns in namespaces)):
            out.extend(found)
        return out

    def managed(self, instance: str) -> dict[resourcekey.ResourceKey, Obj]:
        """The loaded objects tracked as the Application instance's."""
        return {
            key: obj
            for key, obj in self._objects.items()
            if tracking.instance_of(obj, method=self.tracking_method) == instance
        }

    def is_namespaced(self, group: str, kind: str) -> bool | None:
        found = self._kinds.get((group, kind))
        return None if found is None else found.namespaced

    def get(self, key: resourcekey.ResourceKey) -> Obj | None:
        return self._objects.get(key)

    def kind_for(self, group: str, kind: str) -> kinds.Kind | None:
        return self._kinds.get((group, kind))


# ---------------------------------------------------------------------------------------------- inputs


def _app_namespace(app: Mapping[str, Any]) -> str:
    return str((app.get("metadata") or {}).get("namespace") or "argocd")


async def load_settings(client: Client, namespace: str) -> settings_mod.Settings:
    """``argocd-cm`` of ``namespace`` as the controller reads it: defaults when it is missing,
    unreadable or invalid (the controller would run on its defaults too)."""
    try:
        cm = await client.get_or_none(kinds.CONFIGMAP, settings_mod.CONFIGMAP_NAME, namespace)
    except kube_errors.ApiError as exc:
        if exc.code != 403:
            raise
        cm = None
    try:
        return settings_mod.from_configmap((cm or {}).get("data"))
    except settings_mod.SettingsError as exc:
        log.warning("ignoring invalid %s: %s", settings_mod.CONFIGMAP_NAME, exc)
        return settings_mod.Settings()


async def load_repo_secrets(client: Client, namespace: str) -> list[Obj]:
    """The repository and credential-template Secrets of ``namespace``; none when they may not be read."""
    try:
        found, _ = await client.list(kinds.SECRET, namespace, labels=SECRET_TYPE_LABEL)
    except kube_errors.ApiError as exc:
        if exc.code != 403:
            raise
        return []
    return found


async def load_project(client: Client, app: Mapping[str, Any]) -> projects.Project:
    """The app's AppProject, from the app's namespace."""
    name = str((app.get("spec") or {}).get("project") or "default")
    obj = await client.get_or_none(crds.APPPROJECT, name, _app_namespace(app))
    if obj is None:
        raise AppDiffError(projects.missing_project_message(name))
    try:
        return projects.Project.from_object(obj)
    except projects.ProjectError as exc:
        raise AppDiffError(f"AppProject {name}: {exc}") from exc


async def environment(
    client: Client,
    app: Mapping[str, Any],
    *,
    repo_cache: repos.RepoCache,
    manifest_cache: render.ManifestCache,
) -> tuple[comparison.Environment, LiveObjects]:
    """The comparison environment the controller of the app's namespace would use, with an empty
    :class:`LiveObjects` to :meth:`~LiveObjects.load`."""
    namespace = _app_namespace(app)
    settings, secrets = await asyncio.gather(
        load_settings(client, namespace), load_repo_secrets(client, namespace)
    )
    live = await LiveObjects.discover(client, tracking_method=settings.tracking_method)
    env = comparison.Environment(
        repo_cache=repo_cache,
        manifest_cache=manifest_cache,
        cluster=live,
        control_namespace=namespace,
        settings=settings,
        repo_secrets=secrets,
    )
    return env, live


# --------------------------------------------------------------------------------------------- results


@dataclasses.dataclass
class AppDiff:
    """The resources whose live state differs from the desired one (sorted by key), and why the answer
    may be incomplete: ``errors`` (the controller's ComparisonError/InvalidSpecError conditions) and
    ``warnings`` (other conditions, ignore rules that could not be applied)."""

    differences: list[diff.ResourceDiff]
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    revision: str = ""

    @property
    def modified(self) -> bool:
        return bool(self.differences)

    def text(self) -> str:
        """Each differing resource as ``argocd app diff`` shows it: its banner, then a unified diff of
        live (``---``) and desired (``+++``); Secret values are masked."""
        blocks = [f"{d.key.diff_header()}\n{d.diff_text.rstrip(chr(10))}" for d in self.differences]
        return "\n\n".join(blocks)


def _diff_warnings(diffs: Iterable[diff.ResourceDiff]) -> list[str]:
    return [f"{d.key}: {warning}" for d in diffs for warning in d.warnings]


def _from_comparison(compared: comparison.Comparison) -> AppDiff:
    diffs = sorted((s.diff for s in compared.resources if s.diff is not None), key=lambda d: d.key)
    errors = [c["message"] for c in compared.conditions if compared.failed or c["type"] in _ERROR_CONDITIONS]
    warnings = [
        c["message"]
        for c in compared.conditions
        if not compared.failed and c["type"] not in _ERROR_CONDITIONS
    ]
    return AppDiff(
        differences=[d for d in diffs if d.modified],
        errors=errors,
        warnings=[*warnings, *_diff_warnings(diffs)],
        revision=compared.revision,
    )


# ------------------------------------------------------------------------------------------------- Git


def _status_group_kinds(app: Mapping[str, Any]) -> set[tuple[str, str]]:
    resources = (app.get("status") or {}).get("resources") or []
    return {
        (str(r.get("group") or ""), str(r.get("kind")))
        for r in resources
        if isinstance(r, Mapping) and r.get("kind")
    }


def _namespaces(app: Mapping[str, Any], objs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Where the app's objects can be: its destination, its manifests' and its recorded resources'."""
    found = {str(comparison.destination_of(app).get("namespace") or "")}
    found |= {str((obj.get("metadata") or {}).get("namespace") or "") for obj in objs}
    for resource in (app.get("status") or {}).get("resources") or []:
        if isinstance(resource, Mapping):
            found.add(str(resource.get("namespace") or ""))
    found.discard("")
    return found


async def _prerender(
    env: comparison.Environment, app: Mapping[str, Any], *, revision: str | None, hard: bool
) -> tuple[list[Obj], list[str] | None]:
    """Render the app's sources (through the manifest cache, so ``compare`` renders nothing again) to
    learn which kinds to list; with the commit each source resolved to, so ``compare`` compares exactly
    what was rendered. ``([], None)`` on any failure: ``compare`` then meets and reports it itself."""
    sources, _ = comparison.app_sources(app)
    project = str((app.get("spec") or {}).get("project") or "default")
    manifests: list[Obj] = []
    resolved: list[str] = []
    try:
        for index, source in enumerate(sources):
            if source.get("ref") and not source.get("path") and not source.get("chart"):
                resolved.append("")  # a values-only source: compare resolves it itself
                continue
            wanted = dict(source)
            if index == 0 and revision:
                wanted["targetRevision"] = revision
            sha = await comparison.resolve_revision(env, wanted, project=project, force=hard)
            resolved.append(sha)
            found, _ = await comparison.render_source(env, app, source, sha, hard=hard)
            manifests.extend(obj for obj in found if isinstance(obj, dict))
    except GitOpsError:
        return [], None
    return manifests, resolved


async def _compare(
    client: Client,
    app: Mapping[str, Any],
    *,
    repo_cache: repos.RepoCache,
    manifest_cache: render.ManifestCache,
    revision: str | None,
    hard: bool,
    load_live: bool,
) -> comparison.Comparison:
    project = await load_project(client, app)
    env, live = await environment(client, app, repo_cache=repo_cache, manifest_cache=manifest_cache)
    manifests, resolved = await _prerender(env, app, revision=revision, hard=hard)
    if load_live:
        group_kinds = _group_kinds(manifests) | _status_group_kinds(app)
        await live.load(group_kinds, namespaces=_namespaces(app, manifests))
    if resolved is not None:
        return await comparison.compare(app, env, project=project, revisions=resolved)
    return await comparison.compare(app, env, project=project, revision=revision, hard=hard)


def _group_kinds(objs: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    return {resourcekey.group_kind_of(obj) for obj in objs}


async def diff_app(
    client: Client,
    app: Mapping[str, Any],
    *,
    repo_cache: repos.RepoCache,
    manifest_cache: render.ManifestCache,
    revision: str | None = None,
    hard: bool = False,
) -> AppDiff:
    """Compare the app's sources in Git (at ``revision`` for its first source, if given) with the cluster,
    exactly as the controller does; ``hard`` fetches and renders again."""
    compared = await _compare(
        client,
        app,
        repo_cache=repo_cache,
        manifest_cache=manifest_cache,
        revision=revision,
        hard=hard,
        load_live=True,
    )
    return _from_comparison(compared)


async def desired_manifests(
    client: Client,
    app: Mapping[str, Any],
    *,
    repo_cache: repos.RepoCache,
    manifest_cache: render.ManifestCache,
    revision: str | None = None,
) -> list[Obj]:
    """The app's manifests from Git as the controller would apply them (namespaces defaulted, tracking
    ids set): resources first, in render order, then hooks. Raises :class:`AppDiffError` when they
    cannot be built."""
    compared = await _compare(
        client,
        app,
        repo_cache=repo_cache,
        manifest_cache=manifest_cache,
        revision=revision,
        hard=False,
        load_live=False,
    )
    if compared.failed:
        raise AppDiffError("; ".join(c["message"] for c in compared.conditions))
    return [*compared.targets(), *compared.hooks]


async def live_manifests(client: Client, app: Mapping[str, Any]) -> list[Obj]:
    """The live objects the app manages, of the kinds its ``status.resources`` records, sorted by key."""
    settings = await load_settings(client, _app_namespace(app))
    live = await LiveObjects.discover(client, tracking_method=settings.tracking_method)
    await live.load(_status_group_kinds(app), namespaces=_namespaces(app, ()))
    found = live.managed(comparison.instance_of_app(app, _app_namespace(app)))
    found.pop(_self_key(app), None)
    return [found[key] for key in sorted(found)]


def _self_key(app: Mapping[str, Any]) -> resourcekey.ResourceKey:
    meta = app.get("metadata") or {}
    return resourcekey.ResourceKey(
        crds.APPLICATION.group,
        crds.APPLICATION.kind,
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


# ----------------------------------------------------------------------------------------------- local


def work_tree_root(directory: Path) -> Path:
    """The top of the git work tree holding ``directory``, else ``directory`` itself."""
    directory = directory.resolve()
    for candidate in (directory, *directory.parents):
        if repos.find_git_dir(candidate) is not None and (candidate / ".git").exists():
            return candidate
    return directory


def _check_manifest(obj: Any, index: int) -> None:
    if not isinstance(obj, Mapping) or not obj.get("apiVersion") or not obj.get("kind"):
        raise AppDiffError(f"manifest {index}: apiVersion and kind are required")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not (meta.get("name") or meta.get("generateName")):
        raise AppDiffError(f"manifest {index} ({obj.get('kind')}): metadata.name is required")


async def render_local(
    app: Mapping[str, Any], directory: Path, *, kube_version: str = "1.32", timeout: float = 60.0
) -> list[Obj]:
    """Render ``directory`` (the app's directory; the source's ``path`` is ignored) with the app's first
    source's tool settings, from the working tree as it is (uncommitted changes included)."""
    sources, multi = comparison.app_sources(app)
    if multi:
        raise AppDiffError("--local is not supported for multi-source applications")
    if not sources:
        raise AppDiffError("spec.source is required")
    if not directory.is_dir():
        raise AppDiffError(f"{directory} is not a directory")
    root = work_tree_root(directory)
    source = dict(sources[0])
    source["path"] = os.path.relpath(directory.resolve(), root)
    spec = app.get("spec") or {}
    try:
        rendered = await render.render(
            root,
            source,
            app_name=str((app.get("metadata") or {}).get("name") or ""),
            app_namespace=str(comparison.destination_of(app).get("namespace") or ""),
            revision="",
            repo_url=str(source.get("repoURL") or ""),
            project=str(spec.get("project") or "default"),
            kube_version=kube_version,
            timeout=timeout,
        )
    except GitOpsError as exc:
        raise AppDiffError(f"cannot render {directory}: {exc}") from exc
    for index, obj in enumerate(rendered.manifests):
        _check_manifest(obj, index)
    return rendered.manifests


def compare_manifests(
    app: Mapping[str, Any],
    manifests: Sequence[Obj],
    *,
    cluster: comparison.LiveState,
    settings: settings_mod.Settings,
    control_namespace: str,
) -> AppDiff:
    """Pair ``manifests`` with the app's live objects and diff them as ``compare`` does after rendering."""
    spec = app.get("spec") or {}
    instance = comparison.instance_of_app(app, control_namespace)
    live = cluster.managed(instance)
    self_key = _self_key(app)
    live.pop(self_key, None)
    try:
        ignore = [*settings.diff.ignore, *diff.ignore_rules(spec.get("ignoreDifferences"))]
    except GitOpsError as exc:
        return AppDiff(differences=[], errors=[str(exc)])
    dest_ns = str(comparison.destination_of(app).get("namespace") or "")
    result = reconcile.reconcile(manifests, live, namespace=dest_ns, is_namespaced=cluster.is_namespaced)
    out = AppDiff(differences=[])
    diffs = []
    for pair in result.pairs:
        if pair.key == self_key:
            continue
        if pair.target is not None:
            tracking.set_tracking(pair.target, instance, method=settings.tracking_method)
        try:
            diffs.append(
                diff.diff(
                    pair.target, pair.live, ignore=ignore, normalize_status=settings.diff.normalize_status
                )
            )
        except GitOpsError as exc:
            out.errors.append(f"{pair.key}: {exc}")
    out.differences = sorted((d for d in diffs if d.modified), key=lambda d: d.key)
    out.warnings = [
        f"{key}: appeared more than once among application resources" for key in result.duplicates
    ]
    out.warnings += _diff_warnings(diffs)
    return out


async def diff_local(client: Client, app: Mapping[str, Any], directory: Path) -> AppDiff:
    """Compare the manifests rendered from a local directory with the cluster (``app diff --local``)."""
    namespace = _app_namespace(app)
    settings = await load_settings(client, namespace)
    live = await LiveObjects.discover(client, tracking_method=settings.tracking_method)
    manifests = await render_local(app, directory)
    await live.load(
        _group_kinds(manifests) | _status_group_kinds(app), namespaces=_namespaces(app, manifests)
    )
    return compare_manifests(app, manifests, cluster=live, settings=settings, control_namespace=namespace)


# ---------------------------------------------------------------------------------------------- output


def masked(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj``, with its values masked if it is a Secret."""
    if resourcekey.group_kind_of(obj) == ("", "Secret"):
        return diff.mask_secret(obj)
    return dict(obj)


def yaml_documents(objs: Iterable[Mapping[str, Any]]) -> str:
    """Objects as YAML documents separated by ``---``, Secret values masked."""
    return "---\n".join(diff.to_yaml(masked(obj)) for obj in objs)
