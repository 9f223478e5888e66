"""An Application's resource tree, as Argo CD's ``resource-tree`` endpoint and the web UI's tree show it.

The nodes are the app's managed resources (``status.resources``) that exist, plus everything they own,
found by ``ownerReferences``: the ReplicaSets of a Deployment or Rollout, their Pods, the Jobs of a
CronJob and their Pods, the Pods of StatefulSets and DaemonSets, the AnalysisRuns of a Rollout. Each
node carries its health (the GitOps health checks, with ``argocd-cm``'s customizations), the facts the
UI prints under it (``info``: a Pod's status reason, ready containers and restarts, a ReplicaSet's
revision, a Service's type), its images and its parents.

Reading is one list per kind and namespace, never a get per object, so a tree of hundreds of pods costs a
handful of requests: the kinds are those of the managed resources and the kinds they can own, in the
namespaces the managed resources live in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from tugboat.gitops import appdiff, comparison, health, resourcekey
from tugboat.kube import errors, podstatus
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind
from tugboat.server import appcaches
from tugboat.util import jsondata

GroupKind = tuple[str, str]

OWNED_KINDS: Mapping[GroupKind, tuple[GroupKind, ...]] = {
    ("apps", "Deployment"): (("apps", "ReplicaSet"),),
    ("argoproj.io", "Rollout"): (("apps", "ReplicaSet"), ("argoproj.io", "AnalysisRun")),
    ("apps", "ReplicaSet"): (("", "Pod"),),
    ("apps", "StatefulSet"): (("", "Pod"),),
    ("apps", "DaemonSet"): (("", "Pod"),),
    ("batch", "CronJob"): (("batch", "Job"),),
    ("batch", "Job"): (("", "Pod"),),
}
"""What each kind of workload creates and owns (the kinds worth listing to find its children)."""

_REVISION_ANNOTATIONS = ("deployment.kubernetes.io/revision", "rollout.argoproj.io/revision")


_field = jsondata.dig


def _text(obj: Any, *path: str) -> str:
    value = _field(obj, *path)
    return "" if value is None else str(value)


def managed_keys(app: Mapping[str, Any]) -> list[resourcekey.ResourceKey]:
    """The keys of the app's managed resources, as its status records them."""
    keys = []
    for entry in _field(app, "status", "resources") or []:
        if isinstance(entry, Mapping) and entry.get("kind") and entry.get("name"):
            keys.append(
                resourcekey.ResourceKey(
                    str(entry.get("group") or ""),
                    str(entry["kind"]),
                    str(entry.get("namespace") or ""),
                    str(entry["name"]),
                )
            )
    return keys


def owned_kinds(group_kinds: Iterable[GroupKind]) -> set[GroupKind]:
    """Every kind that objects of ``group_kinds`` (and what they own, recursively) can own."""
    found: set[GroupKind] = set()
    pending = list(group_kinds)
    while pending:
        for child in OWNED_KINDS.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


Lister = Callable[[Kind, str | None], Awaitable[list[Obj]]]


async def list_objects(client: Client, kind: Kind, namespace: str | None) -> list[Obj]:
    """The objects of ``kind`` in ``namespace`` (all namespaces: ``None``); none when not readable."""
    try:
        found, _ = await client.list(kind, namespace, all_namespaces=namespace is None)
    except errors.ApiError as exc:
        if exc.code in (403, 404):  # not ours to read, or gone: the tree is drawn without them
            return []
        raise
    return found


async def live_objects(
    client: Client, discovery: appcaches.Discovery, app: Mapping[str, Any], *, lister: Lister | None = None
) -> tuple[dict[resourcekey.ResourceKey, Obj], list[Obj]]:
    """The app's managed resources that exist (by key) and every object of the kinds they can own, in
    their namespaces; read with ``lister`` (a live stream reads its watches' caches), else listed."""

    async def read(kind: Kind, namespace: str | None) -> list[Obj]:
        return await (lister(kind, namespace) if lister else list_objects(client, kind, namespace))

    keys = managed_keys(app)
    managed_kinds = {(key.group, key.kind) for key in keys}
    namespaces = sorted({key.namespace for key in keys if key.namespace})
    wanted: set[tuple[Kind, str | None]] = set()
    for group, kind_name in managed_kinds | owned_kinds(managed_kinds):
        kind = await discovery.kind_for(group, kind_name)
        if kind is None:
            continue
        if not kind.namespaced:
            wanted.add((kind, None))
            continue
        for namespace in namespaces:
            wanted.add((kind, namespace))
    ordered = sorted(wanted, key=lambda pair: (str(pair[0]), pair[1] or ""))
    lists = await asyncio.gather(*(read(kind, namespace) for kind, namespace in ordered))
    objects = [obj for found in lists for obj in found]
    wanted_keys = set(keys)
    managed = {}
    for obj in objects:
        key = resourcekey.ResourceKey.of(obj)
        if key in wanted_keys:
            managed[key] = obj
    return managed, objects


# ---------------------------------------------------------------------------------------------- nodes


def _pod_info(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    """Argo CD's info entries of a Pod node, with kubectl's STATUS, READY and RESTARTS."""
    summary = podstatus.summarize(pod)
    info = [{"name": "Status Reason", "value": summary.reason}]
    if _text(pod, "spec", "nodeName"):
        info.append({"name": "Node", "value": _text(pod, "spec", "nodeName")})
    info.append({"name": "Containers", "value": summary.ready_text})
    info.append({"name": "Restart Count", "value": str(summary.restarts)})
    return info


def _info(obj: Mapping[str, Any]) -> list[dict[str, str]]:
    group_kind = resourcekey.group_kind_of(obj)
    if group_kind == ("", "Pod"):
        return _pod_info(obj)
    annotations = _field(obj, "metadata", "annotations") or {}
    if group_kind == ("apps", "ReplicaSet"):
        for name in _REVISION_ANNOTATIONS:
            if annotations.get(name):
                return [{"name": "Revision", "value": f"Rev:{annotations[name]}"}]
    if group_kind == ("", "Service"):
        info = [{"name": "Type", "value": _text(obj, "spec", "type") or "ClusterIP"}]
        if _text(obj, "spec", "clusterIP"):
            info.append({"name": "Cluster IP", "value": _text(obj, "spec", "clusterIP")})
        return info
    return []


def _networking(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """Argo CD's ``networkingInfo`` of Services and Ingresses: what they select and where they listen."""
    group_kind = resourcekey.group_kind_of(obj)
    if group_kind not in (("", "Service"), ("networking.k8s.io", "Ingress")):
        return None
    out: dict[str, Any] = {}
    selector = _field(obj, "spec", "selector")
    if group_kind == ("", "Service") and isinstance(selector, Mapping) and selector:
        out["targetLabels"] = dict(selector)
    ingress = _field(obj, "status", "loadBalancer", "ingress")
    if isinstance(ingress, list) and ingress:
        out["ingress"] = ingress
    return out or None


def _parent_ref(owner: Mapping[str, Any], namespace: str) -> dict[str, str]:
    return {
        "group": resourcekey.group_of(str(owner.get("apiVersion") or "")),
        "kind": str(owner.get("kind") or ""),
        "namespace": namespace,
        "name": str(owner.get("name") or ""),
        "uid": str(owner.get("uid") or ""),
    }


def node(
    obj: Mapping[str, Any],
    *,
    parents: Sequence[Mapping[str, Any]] = (),
    checks: health.HealthChecks = health.DEFAULT,
) -> dict[str, Any]:
    """The tree node of one live object; ``parents`` are the ownerReferences that link it into the tree,
    ``checks`` the health checks to judge it by (the built-ins and ``argocd-cm``'s customizations)."""
    meta = obj.get("metadata") or {}
    group, kind = resourcekey.group_kind_of(obj)
    namespace = str(meta.get("namespace") or "")
    out: dict[str, Any] = {
        "group": group,
        "version": str(obj.get("apiVersion") or "").rpartition("/")[2],
        "kind": kind,
        "namespace": namespace,
        "name": str(meta.get("name") or ""),
        "uid": str(meta.get("uid") or ""),
        "resourceVersion": str(meta.get("resourceVersion") or ""),
        "createdAt": meta.get("creationTimestamp"),
        "parentRefs": [_parent_ref(owner, namespace) for owner in parents],
        "info": _info(obj),
        "images": comparison.images_of([obj]),
    }
    status = checks.health_of(obj)
    if status is not None:
        out["health"] = status.to_dict()
    networking = _networking(obj)
    if networking is not None:
        out["networkingInfo"] = networking
    return out


def _owner_refs(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [ref for ref in _field(obj, "metadata", "ownerReferences") or [] if isinstance(ref, Mapping)]


def tree(
    managed: Mapping[resourcekey.ResourceKey, Obj],
    candidates: Iterable[Obj],
    *,
    checks: health.HealthChecks = health.DEFAULT,
) -> dict[str, Any]:
    """``{"nodes", "orphanedNodes"}``: the managed objects and, transitively, the candidates they own."""
    children: dict[str, list[Obj]] = {}
    for obj in candidates:
        for ref in _owner_refs(obj):
            if ref.get("uid"):
                children.setdefault(str(ref["uid"]), []).append(obj)
    nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    pending: list[Obj] = []
    for key in sorted(managed):
        obj = managed[key]
        uid = str(_field(obj, "metadata", "uid") or "")
        if uid in seen:
            continue
        seen.add(uid)
        nodes.append(node(obj, checks=checks))
        pending.append(obj)
    while pending:
        parent = pending.pop(0)
        parent_uid = str(_field(parent, "metadata", "uid") or "")
        for child in children.get(parent_uid, []):
            uid = str(_field(child, "metadata", "uid") or "")
            if uid in seen:
                continue
            seen.add(uid)
            in_tree = [ref for ref in _owner_refs(child) if str(ref.get("uid") or "") in seen]
            nodes.append(node(child, parents=in_tree, checks=checks))
            pending.append(child)
    return {"nodes": nodes, "orphanedNodes": []}


async def resource_tree(
    client: Client, discovery: appcaches.Discovery, app: Mapping[str, Any], *, lister: Lister | None = None
) -> dict[str, Any]:
    """The resource tree of ``app`` (see the module docstring), judged by the health checks of the
    ``argocd-cm`` of the app's namespace, as its controller judges them."""
    namespace = str(_field(app, "metadata", "namespace") or "argocd")
    (managed, objects), settings = await asyncio.gather(
        live_objects(client, discovery, app, lister=lister), appdiff.load_settings(client, namespace)
    )
    return tree(managed, objects, checks=settings.health_checks)


def find_node(
    found: Mapping[str, Any], *, kind: str, namespace: str, name: str, group: str = ""
) -> Obj | None:
    """The node of ``found`` (a tree) for this resource, if it is in the tree."""
    for candidate in found.get("nodes") or []:
        if (candidate["kind"], candidate["namespace"], candidate["name"]) == (kind, namespace, name) and (
            not group or candidate["group"] == group
        ):
            return dict(candidate)
    return None
