"""Ephemeral metadata: labels and annotations a pod carries only while it plays a role.

A canary's ``canaryMetadata``/``stableMetadata`` and a blue-green's ``previewMetadata``/``activeMetadata``
let users tell the versions apart (``role: canary`` for a ServiceMonitor or a NetworkPolicy) without
changing the pod template, so the pod-template hash and the ReplicaSet stay the same when a ReplicaSet
changes role. Argo Rollouts injects them into the ReplicaSet's pod template and patches them onto its
running pods, and remembers what it injected in the ReplicaSet annotation
``rollout.argoproj.io/ephemeral-metadata`` so that it can take exactly that away again. This module holds
those rules as pure functions over dicts; the reconciler applies the patches.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

ANNOTATION = "rollout.argoproj.io/ephemeral-metadata"

Obj = dict[str, Any]
Metadata = Mapping[str, Any]  # {"labels": {...}, "annotations": {...}}


def configured(ro: Mapping[str, Any]) -> bool:
    """Whether the Rollout's strategy asks for ephemeral metadata at all."""
    strategy = (ro.get("spec") or {}).get("strategy") or {}
    canary, blue_green = strategy.get("canary"), strategy.get("blueGreen")
    if isinstance(canary, dict):
        return bool(canary.get("canaryMetadata") or canary.get("stableMetadata"))
    if isinstance(blue_green, dict):
        return bool(blue_green.get("previewMetadata") or blue_green.get("activeMetadata"))
    return False


def roles(ro: Mapping[str, Any]) -> tuple[Metadata | None, Metadata | None]:
    """The (new-version, stable-version) metadata: canary/stable or preview/active."""
    strategy = (ro.get("spec") or {}).get("strategy") or {}
    canary, blue_green = strategy.get("canary"), strategy.get("blueGreen")
    if isinstance(canary, dict):
        return _meta(canary.get("canaryMetadata")), _meta(canary.get("stableMetadata"))
    if isinstance(blue_green, dict):
        return _meta(blue_green.get("previewMetadata")), _meta(blue_green.get("activeMetadata"))
    return None, None


def _meta(value: Any) -> Metadata | None:
    return value if isinstance(value, dict) else None


def injected(rs: Mapping[str, Any]) -> Metadata | None:
    """What was injected into ``rs`` before (its annotation), or None."""
    raw = ((rs.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def apply(metadata: Mapping[str, Any], existing: Metadata | None, desired: Metadata | None) -> Obj:
    """``metadata`` (an ObjectMeta: pod template's or pod's) with ``desired`` injected and whatever of
    ``existing`` is no longer desired removed."""
    out = copy.deepcopy(dict(metadata))
    for field in ("labels", "annotations"):
        want = dict((desired or {}).get(field) or {})
        had = (existing or {}).get(field) or {}
        values = dict(out.get(field) or {})
        for key in had:
            if key not in want:
                values.pop(key, None)
        values.update({str(k): str(v) for k, v in want.items()})
        if values:
            out[field] = values
        else:
            out.pop(field, None)
    return out


def metadata_patch(metadata: Mapping[str, Any], target: Mapping[str, Any]) -> Obj | None:
    """A merge patch taking ``metadata``'s labels and annotations to ``target``'s, or None if equal."""
    patch: Obj = {}
    for field in ("labels", "annotations"):
        before = metadata.get(field) or {}
        after = target.get(field) or {}
        changes: Obj = {k: v for k, v in after.items() if before.get(k) != v}
        changes.update({k: None for k in before if k not in after})
        if changes:
            patch[field] = changes
    return patch or None


def replicaset_patch(rs: Mapping[str, Any], desired: Metadata | None) -> Obj | None:
    """The merge patch that gives ``rs``'s pod template ``desired`` (and records it), or None."""
    template_meta = ((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}
    target = apply(template_meta, injected(rs), desired)
    template_change = metadata_patch(template_meta, target)
    record = json.dumps(dict(desired), separators=(",", ":"), sort_keys=True) if desired else None
    current = ((rs.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    record_changed = (record is None) != (current is None) or (
        record is not None and injected(rs) != json.loads(record)
    )
    if template_change is None and not record_changed:
        return None
    patch: Obj = {}
    if template_change is not None:
        patch["spec"] = {"template": {"metadata": template_change}}
    if record_changed:
        patch["metadata"] = {"annotations": {ANNOTATION: record}}
    return patch


def without_injected(rs: Mapping[str, Any]) -> Obj:
    """``rs``'s pod template as the Rollout wrote it: what was injected taken out again."""
    template = copy.deepcopy(dict((rs.get("spec") or {}).get("template") or {}))
    existing = injected(rs)
    if existing is not None:
        template["metadata"] = apply(template.get("metadata") or {}, existing, None)
    return template


def inject(rs: Mapping[str, Any], desired: Metadata | None) -> Obj:
    """A copy of a ReplicaSet about to be created, with ``desired`` in its pod template (and recorded)."""
    out = copy.deepcopy(dict(rs))
    patch = replicaset_patch(out, desired)
    if patch is None:
        return out
    template = out.setdefault("spec", {}).setdefault("template", {})
    template["metadata"] = apply(template.get("metadata") or {}, None, desired)
    annotations = out.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[ANNOTATION] = patch["metadata"]["annotations"][ANNOTATION]
    return out
