"""The Applications part of the API, with Argo CD's paths and payloads.

Like Argo CD's API server, it asks the GitOps controller for work only through the Application object:
a sync is a write of the top-level ``operation`` (refused while another one runs), a refresh is the
``argocd.argoproj.io/refresh`` annotation. Lists can be narrowed by project, label selector and name,
and trimmed to the fields a client asks for, so a page of thousands of apps stays small; long lists come in
pages (``limit`` and an opaque ``continue`` token naming the last app of the page before, so a page is
stable by name while apps come and go).
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tugboat.gitops import crds
from tugboat.kube import errors, selectors
from tugboat.kube.client import Client, Obj
from tugboat.server.problems import Problem
from tugboat.util import jsondata

REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
BACKGROUND_FINALIZER = "resources-finalizer.argocd.argoproj.io/background"
FOREGROUND_FINALIZER = "resources-finalizer.argocd.argoproj.io/foreground"
CASCADE_FINALIZERS = (RESOURCES_FINALIZER, BACKGROUND_FINALIZER, FOREGROUND_FINALIZER)
REFRESH_MODES = ("normal", "hard")
RUNNING_PHASES = ("Running", "Terminating")
_WRITE_ATTEMPTS = 5


_field = jsondata.dig


def split_list(values: Iterable[str]) -> list[str]:
    """Repeated query values, each of which may also be a comma list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _select_labels(apps: list[Obj], selector: str) -> list[Obj]:
    if not selector:
        return apps
    try:
        parsed = selectors.parse_labels(selector)
    except selectors.SelectorError as exc:
        raise Problem(400, f"invalid selector '{selector}': {exc}") from exc
    return [app for app in apps if parsed.matches(_field(app, "metadata", "labels"))]


async def list_applications(
    client: Client,
    namespace: str,
    *,
    projects: Sequence[str],
    selector: str,
    search: str,
    cached: tuple[list[Obj], str] | None = None,
) -> dict[str, Any]:
    """``{"metadata", "items"}`` of the Applications in ``namespace`` that pass every filter given: from
    ``cached`` (the server's watch of them, and its resourceVersion) when given, else listed from the
    cluster."""
    if cached is not None:
        apps, version = _select_labels(cached[0], selector), cached[1]
    else:
        try:
            apps, version = await client.list(crds.APPLICATION, namespace, labels=selector)
        except errors.ApiError as exc:
            if exc.code == 400:
                raise Problem(400, f"invalid selector '{selector}': {exc.message}") from exc
            if exc.not_found:
                raise Problem(
                    404, "the cluster has no Application API (are the Argo CD CRDs installed?)"
                ) from exc
            raise
    if projects:
        apps = [app for app in apps if _field(app, "spec", "project") in projects]
    if search:
        apps = [app for app in apps if search in str(_field(app, "metadata", "name"))]
    apps = sorted(apps, key=lambda app: str(_field(app, "metadata", "name")))
    return {"metadata": {"resourceVersion": version}, "items": apps}


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(f"after:{name}".encode()).decode("ascii").rstrip("=")


def _decode_token(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "invalid continue token") from exc
    if not text.startswith("after:"):
        raise Problem(400, "invalid continue token")
    return text.removeprefix("after:")


def parse_limit(value: str | None) -> int | None:
    """The ``limit`` query value: ``None`` (no paging) when absent or 0."""
    if not value:
        return None
    try:
        limit = int(value)
    except ValueError as exc:
        raise Problem(400, f"invalid limit '{value}': must be a number") from exc
    if limit < 0:
        raise Problem(400, f"invalid limit '{value}': must not be negative")
    return limit or None


def paginate(items: Sequence[Obj], *, limit: int | None, token: str) -> tuple[list[Obj], str]:
    """One page of ``items`` (sorted by name): those after the app ``token`` names, at most ``limit``,
    and the token of the next page (empty on the last page)."""
    after = _decode_token(token) if token else None
    start = 0
    if after is not None:
        names = [str(_field(item, "metadata", "name")) for item in items]
        start = bisect.bisect_right(names, after)
    if limit is None:
        return list(items[start:]), ""
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return page, _encode_token(str(_field(page[-1], "metadata", "name"))) if more and page else ""


def _field_tree(paths: Iterable[str]) -> dict[str, Any]:
    """Dotted paths as a tree of keys; an empty node keeps its whole value."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        parts = [part for part in path.split(".") if part]
        for index, part in enumerate(parts):
            if part in node and not node[part]:
                break  # a shorter path already keeps all of it
            child = node.setdefault(part, {})
            if index == len(parts) - 1:
                child.clear()
            node = child
    return tree


def _select(value: Any, tree: Mapping[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_select(item, tree) for item in value]
    if isinstance(value, Mapping):
        return {key: _select(value[key], sub) for key, sub in tree.items() if key in value}
    return value


def select_fields(response: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """``response`` with only the dotted ``paths`` kept (lists are walked through: ``items.metadata.name``
    keeps the name of every item); all of it when no path is given."""
    tree = _field_tree(paths)
    return dict(_select(response, tree)) if tree else dict(response)


async def get_application(client: Client, namespace: str, name: str) -> Obj:
    app = await client.get_or_none(crds.APPLICATION, name, namespace)
    if app is None:
        raise Problem(404, f'applications.argoproj.io "{name}" not found')
    return app


async def refresh(client: Client, namespace: str, name: str, mode: str) -> Obj:
    """Set the refresh annotation (``normal`` or ``hard``) for the controller, which removes it once done."""
    if mode not in REFRESH_MODES:
        raise Problem(400, f"unknown refresh mode '{mode}': use normal or hard")
    await get_application(client, namespace, name)
    patch = {"metadata": {"annotations": {REFRESH_ANNOTATION: mode}}}
    return await client.patch(crds.APPLICATION, name, patch, namespace=namespace)


def _resources(value: Any) -> list[Obj]:
    if not isinstance(value, list):
        raise Problem(400, "resources must be a list of {group, kind, name, namespace}")
    resources: list[Obj] = []
    for entry in value:
        if not isinstance(entry, Mapping) or not entry.get("kind") or not entry.get("name"):
            raise Problem(400, "each of resources needs at least kind and name")
        resource: Obj = {"group": str(entry.get("group") or ""), "kind": entry["kind"], "name": entry["name"]}
        if entry.get("namespace"):
            resource["namespace"] = str(entry["namespace"])
        resources.append(resource)
    return resources


def _sync_options(value: Any) -> list[str]:
    items = value.get("items") if isinstance(value, Mapping) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Problem(400, "syncOptions must be {items: [...]} or a list of strings")
    return list(items)


def _strategy(value: Any) -> Obj:
    if not isinstance(value, Mapping) or len(value) != 1 or not set(value) <= {"hook", "apply"}:
        raise Problem(400, "strategy must be {hook: {...}} or {apply: {...}}")
    kind, options = next(iter(value.items()))
    force = isinstance(options, Mapping) and options.get("force") is True
    return {kind: {"force": True} if force else {}}


def sync_operation(body: Mapping[str, Any], *, username: str) -> Obj:
    """The ``operation`` that asks for the sync described by a sync request body (Argo CD's
    ``ApplicationSyncRequest``): the same fields ``tugboat app sync`` writes."""
    sync: Obj = {}
    if body.get("revision"):
        sync["revision"] = str(body["revision"])
    if body.get("prune") is True:
        sync["prune"] = True
    if body.get("dryRun") is True:
        sync["dryRun"] = True
    sync["syncStrategy"] = _strategy(body["strategy"]) if body.get("strategy") else {"hook": {}}
    if body.get("resources"):
        sync["resources"] = _resources(body["resources"])
    if body.get("syncOptions"):
        sync["syncOptions"] = _sync_options(body["syncOptions"])
    operation: Obj = {"sync": sync, "initiatedBy": {"username": username}}
    if isinstance(body.get("retryStrategy"), Mapping):
        operation["retry"] = dict(body["retryStrategy"])
    return operation


def refuse_revision_under_auto_sync(app: Mapping[str, Any], operation: Mapping[str, Any]) -> None:
    """Argo CD's rule: with automated sync on, a real (not dry-run) sync may not go to another revision
    than the one Git names, since auto-sync would take the app straight back."""
    sync = operation.get("sync") or {}
    revision = str(sync.get("revision") or "")
    automated = _field(app, "spec", "syncPolicy", "automated") is not None
    if not automated or not revision or sync.get("dryRun"):
        return
    target = str(_field(app, "spec", "source", "targetRevision") or "HEAD")
    if _field(app, "spec", "sources") or revision in (target, _field(app, "status", "sync", "revision")):
        return
    raise Problem(400, f"Cannot sync to {revision}: auto-sync currently set to {target}")


def operation_in_progress(app: Mapping[str, Any]) -> bool:
    return bool(app.get("operation")) or _field(app, "status", "operationState", "phase") in RUNNING_PHASES


async def request_operation(
    client: Client,
    namespace: str,
    name: str,
    operation: Obj,
    *,
    check: Callable[[Mapping[str, Any]], None] | None = None,
) -> Obj:
    """Write ``operation`` unless one is in progress or ``check`` refuses the app as it is (check and
    write are one optimistic transaction)."""

    def build(app: Obj) -> Obj:
        if check is not None:
            check(app)
        if operation_in_progress(app):
            raise Problem(400, "another operation is already in progress")
        return {"operation": operation}

    return await _patch_with_retry(client, namespace, name, build)


async def _patch_with_retry(
    client: Client, namespace: str, name: str, build: Callable[[Obj], Obj | None]
) -> Obj:
    """Patch the app with what ``build`` makes of it as it is now (``None``: nothing to write), again
    when it changed in between; :class:`Problem` 409 when it never stops changing."""
    for _ in range(_WRITE_ATTEMPTS):
        app = await get_application(client, namespace, name)
        patch = build(app)
        if patch is None:
            return app
        patch.setdefault("metadata", {})["resourceVersion"] = app["metadata"]["resourceVersion"]
        try:
            return await client.patch(crds.APPLICATION, name, patch, namespace=namespace)
        except errors.ApiError as exc:
            if not exc.conflict:
                raise
    raise Problem(409, f"application '{namespace}/{name}' kept changing; try again")


# --------------------------------------------------------------------------------------------- rollback


def is_automated(app: Mapping[str, Any]) -> bool:
    """Whether automated sync is on (``automated: {}`` counts; ``enabled: false`` turns it off)."""
    automated = _field(app, "spec", "syncPolicy", "automated")
    return isinstance(automated, Mapping) and automated.get("enabled") is not False


def refuse_automated(app: Mapping[str, Any]) -> None:
    if is_automated(app):
        raise Problem(400, "rollback cannot be initiated when auto-sync is enabled")


def history_id(value: Any) -> int:
    """A rollback's ``id`` (a JSON number, or a string as gRPC gateways send int64)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Problem(400, "id must be the id of a history entry")
    try:
        return int(value)
    except ValueError as exc:
        raise Problem(400, f"id must be the id of a history entry, not '{value}'") from exc


def rollback_operation(app: Mapping[str, Any], body: Mapping[str, Any], *, username: str) -> Obj:
    """The sync ``operation`` that goes back to the history entry ``body["id"]``: its revision(s) and
    source(s), with ``prune`` and ``dryRun`` as asked."""
    refuse_automated(app)
    wanted = history_id(body.get("id"))
    for entry in _field(app, "status", "history") or []:
        if isinstance(entry, Mapping) and entry.get("id") == wanted:
            break
    else:
        name = _field(app, "metadata", "name")
        raise Problem(400, f"application {name} does not have deployment with id {wanted}")
    sync: Obj = {key: entry[key] for key in ("revision", "source", "revisions", "sources") if entry.get(key)}
    if body.get("prune") is True:
        sync["prune"] = True
    if body.get("dryRun") is True:
        sync["dryRun"] = True
    return {"sync": sync, "initiatedBy": {"username": username}}


# ---------------------------------------------------------------------------------------------- delete


def cascade_finalizer(policy: str) -> str:
    """The finalizer that asks the controller to delete the app's resources with ``policy``: the plain
    one for the default (foreground) deletion, the ``/background`` one for background deletion."""
    wanted = policy.lower()
    if wanted in ("", "foreground"):
        return RESOURCES_FINALIZER
    if wanted == "background":
        return BACKGROUND_FINALIZER
    raise Problem(400, f"invalid propagation policy: {policy}")


def wanted_finalizers(current: Sequence[str], *, cascade: bool | None, policy: str) -> list[str]:
    """The app's finalizers for a delete: unchanged when ``cascade`` is not given, the cascade finalizer
    of ``policy`` instead of any other for a cascading delete, none of them otherwise."""
    if cascade is None:
        return list(current)
    others = [f for f in current if f not in CASCADE_FINALIZERS]
    return [*others, cascade_finalizer(policy)] if cascade else others


async def delete_application(
    client: Client, namespace: str, name: str, *, cascade: bool | None, policy: str
) -> None:
    """Delete the app; with ``cascade`` its resources finalizer is set first (the controller then deletes
    the resources and lets the app go), without it every resources finalizer is removed first."""
    if cascade is not True and policy:
        cascade_finalizer(policy)  # still refuse a policy that names nothing

    def finalizers(app: Obj) -> Obj | None:
        current = list(_field(app, "metadata", "finalizers") or [])
        wanted = wanted_finalizers(current, cascade=cascade, policy=policy)
        return None if wanted == current else {"metadata": {"finalizers": wanted or None}}

    await _patch_with_retry(client, namespace, name, finalizers)
    await client.delete(crds.APPLICATION, name, namespace)


# ------------------------------------------------------------------------------------------- terminate


async def terminate_operation(client: Client, namespace: str, name: str) -> Obj:
    """Ask the controller to stop the running operation: ``status.operationState.phase`` becomes
    ``Terminating``, which the controller reads, stops the sync at and ends as Failed."""

    def terminating(app: Obj) -> Obj | None:
        if _field(app, "status", "operationState", "phase") != "Running":
            raise Problem(400, "Unable to terminate operation. No operation is in progress")
        return {"status": {"operationState": {"phase": "Terminating"}}}

    return await _patch_with_retry(client, namespace, name, terminating)
