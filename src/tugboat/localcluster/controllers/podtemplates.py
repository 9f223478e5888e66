"""What the ReplicaSet and Deployment controllers share: pod templates, owners, readiness and revisions.

Upstream keeps these in ``pkg/controller`` and ``pkg/controller/deployment/util``. They are pure functions
over plain dict objects, kept apart from the controllers so that the arithmetic a rollout depends on (the
pod-template-hash, template equality, availability after ``minReadySeconds``, ``maxSurge`` rounding) can
be read and tested on its own.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from tugboat.kube.errors import ApiError, SelectorError
from tugboat.kube.informers import Informer, object_key
from tugboat.kube.selectors import LabelSelector, from_label_selector

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

# Deployment annotations that are never copied onto its ReplicaSets (upstream's annotationsToSkip).
ANNOTATIONS_NOT_COPIED = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)

# The alphabet of upstream's rand.SafeEncodeString: no vowels (no words) and no look-alike characters.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


# ------------------------------------------------------------------------------------------------- time


def now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 with second precision, as ``metav1.Time`` serialises."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------ accessors


def meta(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def spec(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("spec")
    return value if isinstance(value, dict) else {}


def status(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("status")
    return value if isinstance(value, dict) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, dict) else {}


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, dict) else {}


def uid(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def name(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def int_field(obj: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = obj.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def replicas(obj: Mapping[str, Any]) -> int:
    """``spec.replicas`` (1 when unset, as the API defaults it)."""
    return int_field(spec(obj), "replicas", 1)


def creation_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """Sort key of upstream's ``ReplicaSetsByCreationTimestamp``: oldest first, then by name."""
    return str(meta(obj).get("creationTimestamp") or ""), name(obj)


# ------------------------------------------------------------------------------------------- owners


def controller_ref(obj: Mapping[str, Any]) -> Obj | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controller_uid(obj: Mapping[str, Any]) -> list[str]:
    """Index function: the uid of the object's controller (none for orphans)."""
    ref = controller_ref(obj)
    return [str(ref.get("uid"))] if ref is not None else []


def new_controller_ref(owner: Mapping[str, Any]) -> Obj:
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": name(owner),
        "uid": uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


# Informer indexes the ReplicaSet and Deployment controllers share (same names, same functions).
CONTROLLER_INDEX = "podtemplates/controller-uid"
ORPHAN_INDEX = "podtemplates/orphans-by-namespace"
NAMESPACE_INDEX = "podtemplates/namespace"


def orphan_namespace(obj: Mapping[str, Any]) -> list[str]:
    """Index function: the namespace of an object without a controller (candidates for adoption)."""
    return [] if controller_ref(obj) is not None else [namespace(obj)]


def add_owner_indexes(informer: Informer, *, by_namespace: bool = False) -> None:
    """Index ``informer``'s objects by controller uid and orphans by namespace (and all by namespace)."""
    informer.add_index(CONTROLLER_INDEX, controller_uid)
    informer.add_index(ORPHAN_INDEX, orphan_namespace)
    if by_namespace:
        informer.add_index(NAMESPACE_INDEX, lambda obj: [namespace(obj)])


def cached_owner_key(owners: Informer, obj: Mapping[str, Any], kind: str) -> str | None:
    """The key of the cached ``kind`` in ``owners`` that controls ``obj`` (same name and uid), if any."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    owner = owners.get(str(ref.get("name")), namespace(obj))
    if owner is None or uid(owner) != ref.get("uid"):
        return None
    return object_key(owner)


def selector_of(obj: Mapping[str, Any]) -> LabelSelector | None:
    """An object's ``spec.selector`` (None when it is not a valid selector)."""
    try:
        return from_label_selector(spec(obj).get("selector"))
    except SelectorError:
        return None


def selecting_keys(owners: Iterable[Obj], obj: Mapping[str, Any]) -> list[str]:
    """Keys of the ``owners`` whose non-empty selector matches an orphan's labels (candidates to adopt it)."""
    keys = []
    obj_labels = labels_of(obj)
    for owner in owners:
        selector = selector_of(owner)
        if selector is not None and not selector.empty and selector.matches(obj_labels):
            keys.append(object_key(owner))
    return keys


def namespace_terminating(exc: ApiError) -> bool:
    """Whether a create failed because its namespace is going away (nothing to report or retry)."""
    details = exc.status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    return exc.code == 403 and any(
        isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes or []
    )


# ------------------------------------------------------------------------------------------- pods


def pod_condition(pod: Mapping[str, Any], kind: str) -> Obj | None:
    for cond in status(pod).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def pod_active(pod: Mapping[str, Any]) -> bool:
    """Not finished and not terminating (upstream's ``FilterActivePods``)."""
    return status(pod).get("phase") not in ("Succeeded", "Failed") and not deleting(pod)


def available_in(pod: Mapping[str, Any], min_ready_seconds: int, moment: datetime) -> float | None:
    """Seconds until a pod counts as available: 0 if it is, ``None`` if it is not even Ready.

    A pod is available once it has been Ready for ``minReadySeconds`` (upstream's ``IsPodAvailable``).
    """
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_time(cond.get("lastTransitionTime"))
    if since is None:
        return 0.0
    remaining = since.timestamp() + min_ready_seconds - moment.timestamp()
    # upstream requires the deadline to be strictly before now
    return 0.0 if remaining < 0 else remaining + 0.001


# --------------------------------------------------------------------------------------- templates


def _normalized(value: Any) -> Any:
    """Drop nulls and empty maps/lists, which the typed API treats like absent fields."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _normalized(item)
            if item is None or item == {} or item == []:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [_normalized(item) for item in value]
    return value


def _without_hash(template: Mapping[str, Any] | None) -> Any:
    clone = _normalized(dict(template or {}))
    template_meta = clone.get("metadata")
    if isinstance(template_meta, dict) and isinstance(template_meta.get("labels"), dict):
        template_labels = {k: v for k, v in template_meta["labels"].items() if k != POD_TEMPLATE_HASH}
        template_meta = {**template_meta, "labels": template_labels}
        if not template_labels:
            del template_meta["labels"]
        clone = {**clone, "metadata": template_meta}
        if not template_meta:
            del clone["metadata"]
    return clone


def equal_ignore_hash(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> bool:
    """Whether two pod templates are the same apart from the ``pod-template-hash`` label."""
    return bool(_without_hash(left) == _without_hash(right))


def fnv32a(data: bytes) -> int:
    value = _FNV32_OFFSET
    for byte in data:
        value ^= byte
        value = (value * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Upstream's ``rand.SafeEncodeString``: each byte picks a character of a vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in text)


def template_hash(template: Mapping[str, Any] | None, collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of a template: FNV-32a over its canonical form plus the collision count.

    Upstream hashes the Go struct dump; we hash sorted-key JSON of the normalised template, which is just
    as stable, and encode the decimal digest the same way, so names look alike (``web-5d78c9869d``).
    """
    data = orjson.dumps(_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0"
    return safe_encode(str(fnv32a(data)))


def with_hash_label(template: Mapping[str, Any], value: str) -> Obj:
    """A deep-enough copy of a pod template whose labels carry ``pod-template-hash``."""
    clone = orjson.loads(orjson.dumps(template))
    template_meta = clone.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), POD_TEMPLATE_HASH: value}
    return clone


def selector_with_hash(selector: Mapping[str, Any] | None, value: str) -> Obj:
    clone = orjson.loads(orjson.dumps(selector or {}))
    clone["matchLabels"] = {**(clone.get("matchLabels") or {}), POD_TEMPLATE_HASH: value}
    return clone


# ------------------------------------------------------------------------------------- int-or-string


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or a percentage of ``total`` rounded as asked."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        percent = int(text[:-1] or 0)
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


# ------------------------------------------------------------------------------------------ revisions


def revision(obj: Mapping[str, Any]) -> int:
    """The ``deployment.kubernetes.io/revision`` of an object (0 when missing or not a number)."""
    try:
        return int(annotations_of(obj).get(REVISION, "0") or "0")
    except ValueError:
        return 0


def max_revision(objs: Iterable[Mapping[str, Any]]) -> int:
    return max((revision(obj) for obj in objs), default=0)


def go_round(value: float) -> int:
    """Go's ``math.Round``: halves away from zero (Python's ``round`` rounds halves to even)."""
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)
