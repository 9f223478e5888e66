"""The Applications part of the API, with Argo CD's paths and payloads.

Like Argo CD's API server, it asks the GitOps controller for work only through the Application object:
a sync is a write of the top-level ``operation`` (refused while another one runs), a refresh is the
``argocd.argoproj.io/refresh`` annotation. Lists can be narrowed by project, label selector and name,
and trimmed to the fields a client asks for, so a page of thousands of apps stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tugboat.gitops import crds
from tugboat.kube import errors
from tugboat.kube.client import Client, Obj
from tugboat.server.problems import Problem

REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
REFRESH_MODES = ("normal", "hard")
RUNNING_PHASES = ("Running", "Terminating")
_WRITE_ATTEMPTS = 5


def _field(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def split_list(values: Iterable[str]) -> list[str]:
    """Repeated query values, each of which may also be a comma list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


async def list_applications(
    client: Client, namespace: str, *, projects: Sequence[str], selector: str, search: str
) -> dict[str, Any]:
    """``{"metadata", "items"}`` of the Applications in ``namespace`` that pass every filter given."""
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
    apps.sort(key=lambda app: str(_field(app, "metadata", "name")))
    return {"metadata": {"resourceVersion": version}, "items": apps}


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


def operation_in_progress(app: Mapping[str, Any]) -> bool:
    return bool(app.get("operation")) or _field(app, "status", "operationState", "phase") in RUNNING_PHASES


async def request_operation(client: Client, namespace: str, name: str, operation: Obj) -> Obj:
    """Write ``operation`` unless one is in progress (check and write are one optimistic transaction)."""
    for _ in range(_WRITE_ATTEMPTS):
        app = await get_application(client, namespace, name)
        if operation_in_progress(app):
            raise Problem(400, "another operation is already in progress")
        patch = {"metadata": {"resourceVersion": app["metadata"]["resourceVersion"]}, "operation": operation}
        try:
            return await client.patch(crds.APPLICATION, name, patch, namespace=namespace)
        except errors.ApiError as exc:
            if not exc.conflict:
                raise
    raise Problem(409, f"application '{namespace}/{name}' kept changing; try again")
