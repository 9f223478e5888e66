"""Sync hooks and waves, as Argo CD reads them from manifest annotations.

A manifest annotated ``argocd.argoproj.io/hook: PreSync`` (or ``Sync``, ``PostSync``, ``SyncFail``,
``PreDelete``, ``PostDelete``) is not part of the Application's resource set: it is created during the
sync phase it names and deleted by its ``hook-delete-policy``. ``Skip`` means "do not apply this
manifest". Helm charts carry ``helm.sh/hook`` annotations instead; Argo CD maps the install and upgrade
hooks onto its own phases, so charts written for ``helm install`` work unchanged. The rules here follow
gitops-engine's ``pkg/sync/hook``, ``hook/helm``, ``syncwaves`` and ``ignore`` packages (read for their
behaviour; the code is ours):

* the Argo annotation wins; Helm annotations are read only when it names no recognised type;
* a resource with a hook annotation but no recognised type (a Helm ``test`` hook, a typo) is ignored
  entirely: neither applied nor compared (:func:`is_ignored`);
* ``helm.sh/hook: crd-install`` is not a hook: the CRD is an ordinary resource;
* the wave is ``argocd.argoproj.io/sync-wave``, else ``helm.sh/hook-weight``, else 0.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from tugboat.gitops import syncoptions

Obj = dict[str, Any]

HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HELM_HOOK_ANNOTATION = "helm.sh/hook"
HOOK_DELETE_POLICY_ANNOTATION = "argocd.argoproj.io/hook-delete-policy"
HELM_HOOK_DELETE_POLICY_ANNOTATION = "helm.sh/hook-delete-policy"
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
HELM_HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight"
HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"

PRE_SYNC = "PreSync"
SYNC = "Sync"
POST_SYNC = "PostSync"
SYNC_FAIL = "SyncFail"
SKIP = "Skip"
PRE_DELETE = "PreDelete"
POST_DELETE = "PostDelete"
HOOK_TYPES = (PRE_SYNC, SYNC, POST_SYNC, SYNC_FAIL, SKIP, PRE_DELETE, POST_DELETE)
SYNC_PHASES = (PRE_SYNC, SYNC, POST_SYNC, SYNC_FAIL)

HOOK_SUCCEEDED = "HookSucceeded"
HOOK_FAILED = "HookFailed"
BEFORE_HOOK_CREATION = "BeforeHookCreation"
DELETE_POLICIES = (HOOK_SUCCEEDED, HOOK_FAILED, BEFORE_HOOK_CREATION)

HELM_HOOK_TYPES = {
    "pre-install": PRE_SYNC,
    "pre-upgrade": PRE_SYNC,
    "post-install": POST_SYNC,
    "post-upgrade": POST_SYNC,
    "pre-delete": PRE_DELETE,
    "post-delete": POST_DELETE,
}
HELM_CRD_INSTALL = "crd-install"
HELM_DELETE_POLICIES = {
    "hook-succeeded": HOOK_SUCCEEDED,
    "hook-failed": HOOK_FAILED,
    "before-hook-creation": BEFORE_HOOK_CREATION,
}

MAX_NAME_LENGTH = 253

_INTEGER = re.compile(r"[+-]?[0-9]+")


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def hook_types(obj: Mapping[str, Any]) -> list[str]:
    """The recognised hook types of a manifest, de-duplicated, in annotation order.

    From ``argocd.argoproj.io/hook`` when it names at least one known type; else mapped from
    ``helm.sh/hook`` (install/upgrade/delete hooks; ``test*``, rollback and ``crd-install`` give none).
    """
    argo = [t for t in syncoptions.annotation_csv(obj, HOOK_ANNOTATION) if t in HOOK_TYPES]
    if argo:
        return _unique(argo)
    helm = syncoptions.annotation_csv(obj, HELM_HOOK_ANNOTATION)
    return _unique([HELM_HOOK_TYPES[t] for t in helm if t in HELM_HOOK_TYPES])


def has_hook_annotation(obj: Mapping[str, Any]) -> bool:
    """Whether the manifest carries a hook annotation at all (``helm.sh/hook: crd-install`` does not
    count: Helm calls it a hook, but the CRD is applied as an ordinary resource)."""
    annotations = _annotations(obj)
    if HOOK_ANNOTATION in annotations:
        return True
    if HELM_HOOK_ANNOTATION not in annotations:
        return False
    return set(syncoptions.annotation_csv(obj, HELM_HOOK_ANNOTATION)) != {HELM_CRD_INSTALL}


def is_skip(obj: Mapping[str, Any]) -> bool:
    """Whether the manifest is marked ``Skip`` (not to be applied)."""
    return SKIP in hook_types(obj)


def is_hook(obj: Mapping[str, Any]) -> bool:
    """Whether the manifest is a hook: it has a recognised hook type other than a lone ``Skip``."""
    types = hook_types(obj)
    return bool(types) and types != [SKIP]


def is_ignored(obj: Mapping[str, Any]) -> bool:
    """Whether the manifest has a hook annotation naming no recognised type: it is left out entirely."""
    return has_hook_annotation(obj) and not hook_types(obj)


def sync_phases(obj: Mapping[str, Any]) -> list[str]:
    """The sync phases a manifest takes part in, in phase order.

    A plain resource: ``["Sync"]``. A hook: its PreSync/Sync/PostSync/SyncFail types (PreDelete and
    PostDelete hooks take part in no sync). Skipped or ignored manifests: none.
    """
    if is_ignored(obj):
        return []
    types = hook_types(obj)
    if not types:
        return [SYNC]
    if types == [SKIP]:
        return []
    return [phase for phase in SYNC_PHASES if phase in types]


def delete_policies(obj: Mapping[str, Any]) -> list[str]:
    """A hook's delete policies: Argo's annotation and Helm's (mapped), de-duplicated; by default
    ``["BeforeHookCreation"]``. Unknown values are dropped."""
    policies = [
        p for p in syncoptions.annotation_csv(obj, HOOK_DELETE_POLICY_ANNOTATION) if p in DELETE_POLICIES
    ]
    policies += [
        HELM_DELETE_POLICIES[p]
        for p in syncoptions.annotation_csv(obj, HELM_HOOK_DELETE_POLICY_ANNOTATION)
        if p in HELM_DELETE_POLICIES
    ]
    return _unique(policies) or [BEFORE_HOOK_CREATION]


def has_delete_policy(obj: Mapping[str, Any], policy: str) -> bool:
    """Whether ``policy`` is among the hook's delete policies."""
    return policy in delete_policies(obj)


def _integer(value: Any) -> int | None:
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def wave(obj: Mapping[str, Any]) -> int:
    """The sync wave: ``argocd.argoproj.io/sync-wave``, else ``helm.sh/hook-weight``, else 0.

    Values must be plain integers (``"-2"``, ``"+3"``); anything else is treated as absent, so an
    unparsable sync-wave falls back to the Helm weight, as in gitops-engine.
    """
    annotations = _annotations(obj)
    for key in (SYNC_WAVE_ANNOTATION, HELM_HOOK_WEIGHT_ANNOTATION):
        value = _integer(annotations.get(key))
        if value is not None:
            return value
    return 0


def generated_hook_name(
    generate_name: str, *, revision: str, phase: str, started_at: datetime.datetime
) -> str:
    """The deterministic name of a hook that only has ``metadata.generateName``.

    ``generate_name + "<revision[:7]>-<phase>-<unix seconds>"`` with that suffix lowercased, e.g.
    ``upgrade-sql-schema0d521c6-presync-1722506405``: the same operation always names the hook the
    same way, so a restarted controller finds the hook it created. A naive ``started_at`` is taken as
    UTC. When the result would exceed 253 characters, ``generate_name`` is shortened (the suffix is
    what makes the name unique).
    """
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=datetime.UTC)
    suffix = f"{revision[:7]}-{phase}-{int(started_at.timestamp())}".lower()
    prefix = generate_name[: max(0, MAX_NAME_LENGTH - len(suffix))]
    return (prefix + suffix)[:MAX_NAME_LENGTH]


def _finalizers(obj: Mapping[str, Any]) -> list[Any]:
    metadata = obj.get("metadata")
    finalizers = metadata.get("finalizers") if isinstance(metadata, Mapping) else None
    return list(finalizers) if isinstance(finalizers, list) else []


def has_hook_finalizer(obj: Mapping[str, Any]) -> bool:
    """Whether the object carries ``argocd.argoproj.io/hook-finalizer``."""
    return HOOK_FINALIZER in _finalizers(obj)


def add_hook_finalizer(obj: Obj) -> None:
    """Add the hook finalizer to a hook manifest, in place (no-op when present)."""
    finalizers = _finalizers(obj)
    if HOOK_FINALIZER in finalizers:
        return
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
        obj["metadata"] = metadata
    metadata["finalizers"] = [*finalizers, HOOK_FINALIZER]


def without_hook_finalizer(finalizers: list[Any] | None) -> list[Any]:
    """``finalizers`` minus the hook finalizer (to patch a completed hook with)."""
    return [f for f in finalizers or [] if f != HOOK_FINALIZER]
