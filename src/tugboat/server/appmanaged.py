"""An Application's desired state next to its live state, for the managed-resources, resource and
manifests endpoints.

The desired state is the controller's own: :func:`comparison.compare` with the inputs the controller
gives it (``argocd-cm`` settings, repository Secrets, the AppProject, the app's tracked live objects),
at the revision the controller last compared (``status.sync.revision(s)``), so the diff shown is the one
behind the app's sync status. Renders go through the server's manifest cache, so one (source, revision)
renders once; live objects are listed per kind, the kinds the app's status records.

Secret values are masked everywhere they appear (live, desired, normalized, predicted, diff, manifests):
per key, equal values become the same run of ``+`` and different values runs of different lengths, so a
changed value still shows as a change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from tugboat.gitops import appdiff, comparison, diff, repos, resourcekey
from tugboat.gitops.errors import GitOpsError
from tugboat.kube.client import Client
from tugboat.server import appcaches
from tugboat.server.problems import Problem


def _app_namespace(app: Mapping[str, Any]) -> str:
    return str((app.get("metadata") or {}).get("namespace") or "argocd")


def compared_revisions(app: Mapping[str, Any]) -> tuple[str | None, list[str] | None]:
    """The revision (single source) or revisions (multi-source) the controller last compared."""
    sync = (app.get("status") or {}).get("sync") or {}
    _, multi = comparison.app_sources(app)
    if multi:
        revisions = sync.get("revisions")
        return None, [str(r) for r in revisions] if isinstance(revisions, list) and revisions else None
    return (str(sync["revision"]) if sync.get("revision") else None), None


def _group_kinds(app: Mapping[str, Any]) -> set[tuple[str, str]]:
    resources = (app.get("status") or {}).get("resources") or []
    return {
        (str(r.get("group") or ""), str(r["kind"]))
        for r in resources
        if isinstance(r, Mapping) and r.get("kind")
    }


def _namespaces(app: Mapping[str, Any]) -> set[str]:
    found = {str(comparison.destination_of(app).get("namespace") or "")}
    for resource in (app.get("status") or {}).get("resources") or []:
        if isinstance(resource, Mapping):
            found.add(str(resource.get("namespace") or ""))
    found.discard("")
    return found


async def compare(
    client: Client,
    app: Mapping[str, Any],
    caches: appcaches.AppCaches,
    *,
    revision: str | None = None,
    load_live: bool = True,
) -> comparison.Comparison:
    """Compare ``app`` as its controller does, at ``revision`` (a user's choice) or else at the revision
    the controller last compared; :class:`Problem` when the app's project is missing or unusable."""
    namespace = _app_namespace(app)
    try:
        project = await appdiff.load_project(client, app)
    except appdiff.AppDiffError as exc:
        raise Problem(400, str(exc)) from exc
    settings, secrets, found_kinds = await asyncio.gather(
        appdiff.load_settings(client, namespace),
        appdiff.load_repo_secrets(client, namespace),
        caches.discovery.kinds(),
    )
    live = appdiff.LiveObjects(client, found_kinds, tracking_method=settings.tracking_method)
    if load_live:
        try:
            await live.load(_group_kinds(app), namespaces=_namespaces(app))
        except appdiff.AppDiffError as exc:
            raise Problem(500, str(exc)) from exc
    env = comparison.Environment(
        repo_cache=caches.repo_cache,
        manifest_cache=caches.manifest_cache,
        cluster=live,
        control_namespace=namespace,
        settings=settings,
        repo_secrets=secrets,
    )
    if revision:
        return await comparison.compare(app, env, project=project, revision=revision)
    single, several = compared_revisions(app)
    if several:
        return await comparison.compare(app, env, project=project, revisions=several)
    return await comparison.compare(app, env, project=project, revision=single)


def _is_secret(key: resourcekey.ResourceKey) -> bool:
    return (key.group, key.kind) == ("", "Secret")


def masked(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``obj`` with its values masked if it is a Secret (``None`` stays ``None``)."""
    if obj is None:
        return None
    if resourcekey.group_kind_of(obj) == ("", "Secret"):
        return diff.mask_secret(obj)
    return dict(obj)


def json_text(obj: Any) -> str:
    """A JSON string, as Argo CD's API embeds manifests (``"null"`` for a missing object)."""
    return orjson.dumps(obj).decode("utf-8")


def managed_item(state: comparison.ResourceState) -> dict[str, Any]:
    """One entry of ``managed-resources``: Argo CD's ``ResourceDiff``, Secrets masked."""
    live, target = state.live, state.target
    if _is_secret(state.key):
        live, target = diff.mask_secrets(live, target)
    found = state.diff
    normalized = found.normalized_live if found is not None else live
    predicted = found.predicted_live if found is not None else target
    return {
        "group": state.key.group,
        "kind": state.key.kind,
        "namespace": state.key.namespace,
        "name": state.key.name,
        "version": state.version,
        "liveState": json_text(live),
        "targetState": json_text(target),
        "normalizedLiveState": json_text(normalized),
        "predictedLiveState": json_text(predicted),
        "diff": found.diff_text if found is not None else "",
        "hook": False,
        "modified": bool(state.modified),
    }


def _matches(state: comparison.ResourceState, filters: Mapping[str, str]) -> bool:
    key = state.key
    values = {"group": key.group, "kind": key.kind, "namespace": key.namespace, "name": key.name}
    return all(values[field] == wanted for field, wanted in filters.items() if wanted and field in values)


async def managed_resources(
    client: Client, app: Mapping[str, Any], caches: appcaches.AppCaches, *, filters: Mapping[str, str]
) -> dict[str, Any]:
    """``{"items"}``: every managed resource with its live and desired state and their diff."""
    compared = await compare(client, app, caches)
    return {"items": [managed_item(state) for state in compared.resources if _matches(state, filters)]}


async def desired_manifests(
    client: Client, app: Mapping[str, Any], caches: appcaches.AppCaches, *, revision: str | None
) -> dict[str, Any]:
    """``{"manifests", "revision", ...}``: the app's desired manifests (as the controller applies them)
    at ``revision`` (default: the app's target revision), each a JSON string, Secrets masked."""
    if revision:
        compared = await compare(client, app, caches, revision=revision, load_live=False)
    else:
        env_app = dict(app)
        env_app["status"] = {}  # the target revision, not the one last compared
        compared = await compare(client, env_app, caches, load_live=False)
    if compared.failed:
        raise Problem(400, "; ".join(str(c.get("message")) for c in compared.conditions))
    objs = [*compared.targets(), *compared.hooks]
    return {
        "manifests": [json_text(masked(obj)) for obj in objs],
        "revision": compared.revision,
        "revisions": compared.revisions if compared.multi_source else [],
        "sourceType": compared.source_type,
        "namespace": str(comparison.destination_of(app).get("namespace") or ""),
        "server": str(comparison.destination_of(app).get("server") or ""),
    }


def is_managed(app: Mapping[str, Any], key: resourcekey.ResourceKey) -> bool:
    """Whether the app's status lists the resource ``key`` (group, kind, namespace, name)."""
    for entry in (app.get("status") or {}).get("resources") or []:
        if not isinstance(entry, Mapping):
            continue
        found = resourcekey.ResourceKey(
            str(entry.get("group") or ""),
            str(entry.get("kind") or ""),
            str(entry.get("namespace") or ""),
            str(entry.get("name") or ""),
        )
        if found == key:
            return True
    return False


async def revision_metadata(
    client: Client,
    app: Mapping[str, Any],
    caches: appcaches.AppCaches,
    revision: str,
    *,
    source_index: int = 0,
) -> dict[str, Any]:
    """``{author, date, message, tags}`` of ``revision`` in the repository of the app's source
    ``source_index``, read through the server's repository cache with the app's repository credentials."""
    sources, _ = comparison.app_sources(app)
    if not 0 <= source_index < len(sources):
        raise Problem(400, f"source index {source_index} out of range")
    url = str(sources[source_index].get("repoURL") or "")
    if not url:
        raise Problem(400, "the application's source has no repoURL")
    project = str((app.get("spec") or {}).get("project") or "default")
    secrets = await appdiff.load_repo_secrets(client, _app_namespace(app))
    creds = repos.credentials_for(url, secrets, project=project)
    cache = caches.repo_cache
    try:
        commit = await cache.resolve(url, revision, creds=creds)
        info, refs = await asyncio.gather(
            cache.commit_info(url, commit, creds=creds), cache.ls_remote(url, creds=creds)
        )
    except repos.RevisionNotFound as exc:
        raise Problem(404, str(exc)) from exc
    except GitOpsError as exc:
        raise Problem(400, str(exc)) from exc
    return {
        "author": info.author,
        "date": info.date.isoformat().replace("+00:00", "Z"),
        "message": info.message,
        "tags": sorted(tag for tag, sha in refs.tags().items() if sha == commit),
    }
