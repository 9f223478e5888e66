"""The order in which a sync applies resources: gitops-engine's sync task ordering.

Argo CD applies a sync's tasks grouped by phase (PreSync, Sync, PostSync, SyncFail) and, inside a phase,
by wave; each group waits for the previous one to be healthy. Inside a group, tasks are listed in Helm's
install order of kinds (Namespaces and config before workloads, unknown kinds and custom resources last),
then by name. That order is also the order of ``status.operationState.syncResult.resources``, which
users and tests read, so we reproduce gitops-engine's ``syncTasks.Less`` exactly (read for behaviour,
``pkg/sync/sync_tasks.go``):

1. phase rank (PreSync -1, Sync 0, PostSync 1, SyncFail 2; any other phase 0);
2. wave;
3. kind rank in :data:`KIND_ORDER` by kind alone (the group is not looked at); every unknown kind
   shares one rank after all known ones, so unknown kinds are *not* grouped by kind: they interleave,
   ordered by name;
4. name. Upstream stops here (and its sort is not stable); we then break remaining ties by kind, group
   and namespace, and finally keep input order, so the result is deterministic.

After sorting, dependencies are pulled forward: a Namespace is moved just before the first resource
that lives in it, and a CustomResourceDefinition just before the first custom resource of the group and
kind it defines. Upstream does this across the whole task list and moves the dependency into the phase
and wave of its first dependent. :func:`order` keeps every item in its own (phase, wave) group and only
reorders inside a group, so callers can group its output by their own phase and wave; :func:`schedule`
does the upstream cross-wave move and reports the phase and wave each item ends up in.

Only items with a desired manifest take part in the dependency moves (upstream skips prune tasks);
``is_target`` tells which ones do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tugboat.gitops import resourcekey

T = TypeVar("T")

# (phase, wave, group, kind, namespace, name) of one item.
ItemKey = tuple[str, int, str, str, str, str]

KIND_ORDER: tuple[str, ...] = (
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}

PHASE_ORDER: dict[str, int] = {"PreSync": -1, "Sync": 0, "PostSync": 1, "SyncFail": 2}

CRD_GROUP = "apiextensions.k8s.io"
CRD_KIND = "CustomResourceDefinition"


def kind_rank(kind: str) -> int:
    """The position of ``kind`` in :data:`KIND_ORDER`; every unknown kind ranks ``len(KIND_ORDER)``."""
    return _KIND_RANK.get(kind, len(KIND_ORDER))


def phase_rank(phase: str) -> int:
    """The rank of a sync phase (unknown phases rank like ``Sync``, as upstream)."""
    return PHASE_ORDER.get(phase, 0)


def sort_key(
    *, phase: str, wave: int, group: str, kind: str, namespace: str, name: str
) -> tuple[int, int, int, str, str, str, str]:
    """The sort key of one item: ``(phase rank, wave, kind rank, name, kind, group, namespace)``.

    The first four are gitops-engine's comparison; the rest only break its ties deterministically.
    """
    return (phase_rank(phase), wave, kind_rank(kind), name, kind, group, namespace)


def crd_target_of(obj: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """``(group, kind)`` a CustomResourceDefinition manifest defines (``spec.group``,
    ``spec.names.kind``), or None for any other object or an incomplete CRD."""
    if obj is None or resourcekey.group_kind_of(obj) != (CRD_GROUP, CRD_KIND):
        return None
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return None
    group = spec.get("group")
    names = spec.get("names")
    kind = names.get("kind") if isinstance(names, Mapping) else None
    if isinstance(group, str) and isinstance(kind, str) and group and kind:
        return group, kind
    return None


@dataclass(frozen=True)
class Placement(Generic[T]):
    """An item in sync order, with the phase and wave it runs in (changed only by a dependency move)."""

    item: T
    phase: str
    wave: int


@dataclass
class _Entry(Generic[T]):
    item: T
    phase: str
    wave: int
    group: str
    kind: str
    namespace: str
    name: str
    target: bool
    crd: tuple[str, str] | None


def _no_crd(_item: Any) -> tuple[str, str] | None:
    return None


def _always(_item: Any) -> bool:
    return True


def _sorted_entries(
    items: Sequence[T],
    key: Callable[[T], ItemKey],
    crd_target: Callable[[T], tuple[str, str] | None],
    is_target: Callable[[T], bool],
) -> list[_Entry[T]]:
    entries = []
    for item in items:
        phase, wave, group, kind, namespace, name = key(item)
        entries.append(
            _Entry(item, phase, wave, group, kind, namespace, name, is_target(item), crd_target(item))
        )
    decorated = sorted(
        enumerate(entries),
        key=lambda pair: (
            sort_key(
                phase=pair[1].phase,
                wave=pair[1].wave,
                group=pair[1].group,
                kind=pair[1].kind,
                namespace=pair[1].namespace,
                name=pair[1].name,
            ),
            pair[0],
        ),
    )
    return [entry for _, entry in decorated]


def _namespace_defined(entry: _Entry[Any]) -> str | None:
    return entry.name if entry.kind == "Namespace" and entry.group == "" else None


def _namespace_used(entry: _Entry[Any]) -> str | None:
    return entry.namespace or None


def _kind_defined(entry: _Entry[Any]) -> str | None:
    return f"{entry.crd[0]}/{entry.crd[1]}" if entry.crd is not None else None


def _kind_used(entry: _Entry[Any]) -> str | None:
    return f"{entry.group}/{entry.kind}"


def _pull_forward(
    entries: list[_Entry[T]],
    defines: Callable[[_Entry[T]], str | None],
    uses: Callable[[_Entry[T]], str | None],
) -> None:
    """Move each item that ``defines`` something just before the first earlier item that ``uses`` it,
    giving it that item's phase and wave (in place)."""
    first_use: dict[str, int] = {}
    for index in range(len(entries)):
        entry = entries[index]
        if not entry.target:
            continue
        defined = defines(entry)
        if defined is not None:
            at = first_use.get(defined)
            if at is None:
                continue
            entry.phase = entries[at].phase
            entry.wave = entries[at].wave
            entries.insert(at, entries.pop(index))
            for dependency, position in first_use.items():
                if position >= at:
                    first_use[dependency] = position + 1
            continue
        used = uses(entry)
        if used is not None and used not in first_use:
            first_use[used] = index


def _pull_dependencies_forward(entries: list[_Entry[T]]) -> None:
    _pull_forward(entries, _namespace_defined, _namespace_used)
    _pull_forward(entries, _kind_defined, _kind_used)


def schedule(
    items: Sequence[T],
    key: Callable[[T], ItemKey],
    *,
    crd_target: Callable[[T], tuple[str, str] | None] = _no_crd,
    is_target: Callable[[T], bool] = _always,
) -> list[Placement[T]]:
    """Items in gitops-engine's sync order, with dependencies moved across waves exactly as upstream.

    A Namespace (or CRD) that sorts after a resource in it (or of its kind) is moved before that
    resource and takes its phase and wave; :attr:`Placement.phase` and :attr:`Placement.wave` say where
    each item ended up.
    """
    entries = _sorted_entries(items, key, crd_target, is_target)
    _pull_dependencies_forward(entries)
    return [Placement(entry.item, entry.phase, entry.wave) for entry in entries]


def order(
    items: Sequence[T],
    key: Callable[[T], ItemKey],
    *,
    crd_target: Callable[[T], tuple[str, str] | None] = _no_crd,
    is_target: Callable[[T], bool] = _always,
) -> list[T]:
    """Items in sync order, each staying in its own (phase, wave) group.

    ``key`` gives ``(phase, wave, group, kind, namespace, name)`` of an item; ``crd_target`` gives the
    ``(group, kind)`` a CRD item defines (see :func:`crd_target_of`), None for other items;
    ``is_target`` says whether an item has a desired manifest (prune tasks do not; they take no part
    in dependency moves). Sorted by :func:`sort_key` (stable); then inside each (phase, wave) group,
    Namespaces move ahead of the resources in them and CRDs ahead of their custom resources.
    """
    entries = _sorted_entries(items, key, crd_target, is_target)
    result: list[T] = []
    start = 0
    while start < len(entries):
        end = start
        group_id = (phase_rank(entries[start].phase), entries[start].wave)
        while end < len(entries) and (phase_rank(entries[end].phase), entries[end].wave) == group_id:
            end += 1
        group = entries[start:end]
        _pull_dependencies_forward(group)
        result.extend(entry.item for entry in group)
        start = end
    return result
