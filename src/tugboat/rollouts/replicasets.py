"""The ReplicaSets of a Rollout: naming, revisions, desired replicas and scale-down deadlines.

One ReplicaSet per pod template, named ``<rollout>-<hash>`` with the label ``rollouts-pod-template-hash``
on the ReplicaSet, its selector and its template (research/rollouts.md §2.8). Revisions count up in the
``rollout.argoproj.io/revision`` annotation; going back to an older template re-uses its ReplicaSet and
gives it the next revision. Old ReplicaSets wait for their ``scale-down-deadline`` annotation before they
are scaled to zero.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tugboat.rollouts import ephemeral

HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
REVISION_HISTORY = "rollout.argoproj.io/revision-history"
DESIRED_REPLICAS = "rollout.argoproj.io/desired-replicas"
SCALE_DOWN_DEADLINE = "scale-down-deadline"
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    "notified.notifications.argoproj.io",
}

Obj = dict[str, Any]


def hash_of(rs: Mapping[str, Any]) -> str:
    return str(((rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL) or "")


def revision_of(obj: Mapping[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def first_revision(rs: Mapping[str, Any]) -> int:
    """The revision a ReplicaSet was created at: a return to an older template renumbers it to the newest
    revision and keeps the earlier numbers in ``revision-history``, so the smallest number orders creation."""
    annotations = (rs.get("metadata") or {}).get("annotations") or {}
    numbers = [revision_of(rs)]
    for part in str(annotations.get(REVISION_HISTORY) or "").split(","):
        if part.strip().isdigit():
            numbers.append(int(part))
    return min(numbers)


def spec_replicas(rs: Mapping[str, Any]) -> int:
    value = (rs.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def available(rs: Mapping[str, Any] | None) -> int:
    return int(((rs or {}).get("status") or {}).get("availableReplicas") or 0)


def ready(rs: Mapping[str, Any] | None) -> int:
    return int(((rs or {}).get("status") or {}).get("readyReplicas") or 0)


def current(rs: Mapping[str, Any] | None) -> int:
    return int(((rs or {}).get("status") or {}).get("replicas") or 0)


def without_hash(template: Mapping[str, Any]) -> Obj:
    """A pod template with the hash label removed (to compare templates)."""
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return out


def find_new(replicasets: Iterable[Obj], template: Mapping[str, Any], pod_hash: str) -> Obj | None:
    """The ReplicaSet of ``template``: by hash label, else by an equal template (one made elsewhere)."""
    candidates = list(replicasets)
    for rs in candidates:
        if hash_of(rs) == pod_hash:
            return rs
    wanted = without_hash(template)
    for rs in candidates:
        if own_template(rs) == wanted:
            return rs
    return None


def own_template(rs: Mapping[str, Any]) -> Obj:
    """``rs``'s pod template without the hash label and without injected ephemeral metadata."""
    return without_hash(ephemeral.without_injected(rs))


def build(ro: Mapping[str, Any], template: Mapping[str, Any], pod_hash: str, revision: int) -> Obj:
    """A new ReplicaSet for ``template`` with zero replicas, owned by the Rollout."""
    meta = ro["metadata"]
    tpl = copy.deepcopy(dict(template))
    tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = copy.deepcopy(dict((ro.get("spec") or {}).get("selector") or {}))
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_COPIED}
    annotations[REVISION] = str(revision)
    annotations[DESIRED_REPLICAS] = str((ro.get("spec") or {}).get("replicas", 1))
    spec: Obj = {"replicas": 0, "selector": selector, "template": tpl}
    if (ro.get("spec") or {}).get("minReadySeconds"):
        spec["minReadySeconds"] = ro["spec"]["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta["namespace"],
            "labels": dict(tpl["metadata"]["labels"]),
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Rollout",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 time (``Z`` or an offset; none means UTC), or None when absent or malformed."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def deadline_of(rs: Mapping[str, Any]) -> datetime | None:
    return parse_time(((rs.get("metadata") or {}).get("annotations") or {}).get(SCALE_DOWN_DEADLINE))


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
