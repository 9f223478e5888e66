"""Pairing desired manifests with live objects: gitops-engine's ``pkg/sync/reconcile.go``.

Diffing, sync status and the sync itself all work on pairs ``(desired, live)`` of one resource: both
present (compare, maybe update), desired only (create), live only (an extra object: prune candidate).
Building the pairs needs a few rules that every caller must apply the same way, so they live here:

* hooks are not resources of the Application: they are set aside, unpaired; ``Skip`` manifests and
  manifests with an unrecognised hook type are dropped (:mod:`tugboat.gitops.hooks`);
* a manifest without a namespace lives in the destination namespace, unless its kind is
  cluster-scoped, in which case any namespace it carries is meaningless and dropped. When the scope is
  unknown (a custom resource whose CRD is not installed yet), the manifest is defaulted like a
  namespaced one, but a live object at the cluster-scoped key is accepted as its match;
* the same live object seen through two API groups (``extensions/Ingress`` and
  ``networking.k8s.io/Ingress``: same ``metadata.uid``) is kept once, preferring the key a manifest
  asks for;
* two manifests for the same resource: the last one wins, and the key is reported in ``duplicates``
  (Argo CD shows a "RepeatedResourceWarning").

Inputs are never modified: a manifest whose namespace changes is deep-copied first.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tugboat.gitops import hooks, resourcekey

Obj = dict[str, Any]
ResourceKey = resourcekey.ResourceKey


@dataclass
class Pair:
    """One resource: its desired manifest (None: extra live object) and live object (None: missing)."""

    key: ResourceKey
    target: Obj | None
    live: Obj | None

    @property
    def obj(self) -> Obj | None:
        """The desired manifest if there is one, else the live object."""
        return self.target if self.target is not None else self.live


@dataclass
class Reconciliation:
    """Pairs in a stable order (targets in input order, then extra live objects sorted by key), the
    hooks set aside, and the keys that more than one manifest described."""

    pairs: list[Pair]
    hooks: list[Obj]
    duplicates: list[ResourceKey] = field(default_factory=list)


def _namespace_of(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return namespace if isinstance(namespace, str) else ""


def _with_namespace(obj: Obj, namespace: str) -> Obj:
    """A deep copy of ``obj`` with ``metadata.namespace`` set (or removed, for ``""``)."""
    result = copy.deepcopy(obj)
    metadata = result.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
        result["metadata"] = metadata
    if namespace:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    return result


@dataclass
class _Target:
    obj: Obj
    key: ResourceKey
    fallback: ResourceKey | None  # cluster-scoped key to try when the scope is unknown


def _normalize(obj: Obj, *, namespace: str, is_namespaced: Callable[[str, str], bool | None]) -> _Target:
    key = ResourceKey.of(obj)
    scope = is_namespaced(key.group, key.kind)
    own_namespace = _namespace_of(obj)
    if scope is False:
        metadata = obj.get("metadata")
        if isinstance(metadata, Mapping) and "namespace" in metadata:
            obj = _with_namespace(obj, "")
        return _Target(obj, ResourceKey(key.group, key.kind, "", key.name), None)
    if not own_namespace and namespace:
        obj = _with_namespace(obj, namespace)
    key = ResourceKey(key.group, key.kind, own_namespace or namespace, key.name)
    fallback = ResourceKey(key.group, key.kind, "", key.name) if scope is None and key.namespace else None
    return _Target(obj, key, fallback)


def _split(targets: Sequence[Obj | None]) -> tuple[list[Obj], list[Obj]]:
    resources: list[Obj] = []
    hook_objs: list[Obj] = []
    for obj in targets:
        if obj is None or hooks.is_ignored(obj):
            continue
        if hooks.is_hook(obj):
            hook_objs.append(obj)
        elif not hooks.is_skip(obj):
            resources.append(obj)
    return resources, hook_objs


def _last_wins(items: list[_Target]) -> tuple[list[_Target], list[ResourceKey]]:
    last_index = {item.key: index for index, item in enumerate(items)}
    duplicates: list[ResourceKey] = []
    kept: list[_Target] = []
    for index, item in enumerate(items):
        if last_index[item.key] == index:
            kept.append(item)
        elif item.key not in duplicates:
            duplicates.append(item.key)
    return kept, duplicates


def _dedup_live(live: dict[ResourceKey, Obj], wanted: set[ResourceKey]) -> None:
    """Keep one live object per ``metadata.uid`` (in place): those a manifest asks for, else the one
    with the smallest key. Objects without a uid are all kept."""
    by_uid: dict[str, list[ResourceKey]] = {}
    for key, obj in live.items():
        metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
        uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
        if isinstance(uid, str) and uid:
            by_uid.setdefault(uid, []).append(key)
    for keys in by_uid.values():
        if len(keys) < 2:
            continue
        keep = [key for key in keys if key in wanted] or [min(keys)]
        for key in keys:
            if key not in keep:
                del live[key]


def reconcile(
    targets: Sequence[Obj],
    live: Mapping[ResourceKey, Obj],
    *,
    namespace: str,
    is_namespaced: Callable[[str, str], bool | None],
) -> Reconciliation:
    """Pair desired manifests with live objects.

    ``live`` maps keys to the managed live objects (its keys are trusted as the objects' keys);
    ``namespace`` is the destination namespace; ``is_namespaced(group, kind)`` says whether a kind is
    namespaced (True), cluster-scoped (False) or unknown (None).
    """
    resources, hook_objs = _split(targets)
    normalized = [_normalize(obj, namespace=namespace, is_namespaced=is_namespaced) for obj in resources]
    kept, duplicates = _last_wins(normalized)

    remaining = {key: obj for key, obj in live.items() if obj is not None}
    wanted = {t.key for t in kept} | {t.fallback for t in kept if t.fallback is not None}
    _dedup_live(remaining, wanted)

    pairs: list[Pair] = []
    for target in kept:
        key = target.key
        live_obj = remaining.pop(key, None)
        if live_obj is None and target.fallback is not None and target.fallback in remaining:
            key = target.fallback
            live_obj = remaining.pop(key)
        pairs.append(Pair(key, target.obj, live_obj))
    pairs.extend(Pair(key, None, remaining[key]) for key in sorted(remaining))
    return Reconciliation(pairs=pairs, hooks=hook_objs, duplicates=duplicates)
