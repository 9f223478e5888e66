"""How the lists inside built-in Kubernetes types merge (patch strategies and list-map keys).

Strategic merge patch, server-side apply and the GitOps diff all need to know, for a list at some path
inside a built-in object, whether it merges by key (and which key), is a set of scalars, or is replaced
whole. Upstream keeps this in the Go struct tags of ``k8s.io/api``; we keep the subset our server and
controllers meet as one small table of struct types. Everything not named here is atomic (lists) or
merged recursively (maps and structs), which is also what upstream does for untagged fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """What is known of one field of a struct type.

    ``elem`` names the struct type of the value (for a struct field), of the items (for a list) or of the
    values (for a map); ``None`` means scalars or an opaque structure. ``list_type`` is ``"map"`` (items
    merge by ``keys``), ``"set"`` (a set of scalars) or ``None`` (not a list with a merge strategy, so
    atomic if it is a list). ``keys[0]`` is the strategic-merge ``patchMergeKey``; all of ``keys`` are the
    server-side-apply list-map keys, and ``key_defaults`` the schema defaults of some of them (an applied
    item that omits such a key is keyed with its default). ``retain_keys`` is the ``retainKeys`` patch
    strategy.
    """

    elem: str | None = None
    list_type: str | None = None
    keys: tuple[str, ...] = ()
    retain_keys: bool = False
    is_map: bool = False
    key_defaults: tuple[tuple[str, str], ...] = ()

    @property
    def merge_key(self) -> str | None:
        return self.keys[0] if self.keys else None


def _lm(
    elem: str | None, *keys: str, retain_keys: bool = False, key_defaults: tuple[tuple[str, str], ...] = ()
) -> Field:
    return Field(
        elem=elem, list_type="map", keys=tuple(keys), retain_keys=retain_keys, key_defaults=key_defaults
    )


_TCP = (("protocol", "TCP"),)


_SET = Field(list_type="set")
_CONDITIONS = _lm(None, "type")

TYPES: dict[str, dict[str, Field]] = {
    "ObjectMeta": {
        "ownerReferences": _lm(None, "uid"),
        "finalizers": _SET,
    },
    "PodTemplateSpec": {"metadata": Field("ObjectMeta"), "spec": Field("PodSpec")},
    "PodSpec": {
        "containers": _lm("Container", "name"),
        "initContainers": _lm("Container", "name"),
        "ephemeralContainers": _lm("Container", "name"),
        "imagePullSecrets": _lm(None, "name"),
        "volumes": _lm(None, "name", retain_keys=True),
        "resourceClaims": _lm(None, "name", retain_keys=True),
        "hostAliases": _lm(None, "ip"),
        "topologySpreadConstraints": _lm(None, "topologyKey", "whenUnsatisfiable"),
        "schedulingGates": _lm(None, "name"),
    },
    "Container": {
        "ports": _lm(None, "containerPort", "protocol", key_defaults=_TCP),
        "env": _lm(None, "name"),
        "volumeMounts": _lm(None, "mountPath"),
        "volumeDevices": _lm(None, "devicePath"),
    },
    "PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": _lm(None, "ip"),
        "hostIPs": _lm(None, "ip"),
    },
    "Pod": {"metadata": Field("ObjectMeta"), "spec": Field("PodSpec"), "status": Field("PodStatus")},
    "PodTemplate": {"metadata": Field("ObjectMeta"), "template": Field("PodTemplateSpec")},
    "WorkloadSpec": {
        "template": Field("PodTemplateSpec"),
        "strategy": Field(retain_keys=True),
    },
    "ConditionsStatus": {"conditions": _CONDITIONS},
    "Workload": {
        "metadata": Field("ObjectMeta"),
        "spec": Field("WorkloadSpec"),
        "status": Field("ConditionsStatus"),
    },
    "JobTemplateSpec": {"metadata": Field("ObjectMeta"), "spec": Field("WorkloadSpec")},
    "CronJobSpec": {"jobTemplate": Field("JobTemplateSpec")},
    "CronJob": {"metadata": Field("ObjectMeta"), "spec": Field("CronJobSpec")},
    "ServiceSpec": {"ports": _lm(None, "port", "protocol", key_defaults=_TCP)},
    "Service": {"metadata": Field("ObjectMeta"), "spec": Field("ServiceSpec")},
    "ServiceAccount": {"metadata": Field("ObjectMeta"), "secrets": _lm(None, "name")},
    "NodeSpec": {"podCIDRs": _SET},
    "NodeStatus": {"conditions": _CONDITIONS, "addresses": _lm(None, "type")},
    "Node": {"metadata": Field("ObjectMeta"), "spec": Field("NodeSpec"), "status": Field("NodeStatus")},
    "WithConditions": {"metadata": Field("ObjectMeta"), "status": Field("ConditionsStatus")},
    "Object": {"metadata": Field("ObjectMeta")},
}

# (group, kind) -> root struct type. Kinds not listed use "Object" (only metadata is known).
KINDS: dict[tuple[str, str], str] = {
    ("", "Pod"): "Pod",
    ("", "PodTemplate"): "PodTemplate",
    ("", "Service"): "Service",
    ("", "ServiceAccount"): "ServiceAccount",
    ("", "Node"): "Node",
    ("", "Namespace"): "WithConditions",
    ("", "PersistentVolumeClaim"): "WithConditions",
    ("apps", "Deployment"): "Workload",
    ("apps", "ReplicaSet"): "Workload",
    ("apps", "StatefulSet"): "Workload",
    ("apps", "DaemonSet"): "Workload",
    ("batch", "Job"): "Workload",
    ("batch", "CronJob"): "CronJob",
}


def root_type(group: str, kind: str) -> str:
    """The struct type name at the root of an object of this group and kind."""
    return KINDS.get((group, kind), "Object")


def field(type_name: str | None, name: str) -> Field | None:
    """What is known of field ``name`` of struct type ``type_name`` (``None`` when nothing is)."""
    if type_name is None:
        return None
    return TYPES.get(type_name, {}).get(name)


def type_at(group: str, kind: str, path: Sequence[str]) -> tuple[str | None, Field | None]:
    """Walk field names from the root of an object; return the struct type reached and the last field.

    List items and map values are stepped over implicitly: ``("spec", "template", "spec",
    "containers", "env")`` reaches the ``env`` field of ``Container``.
    """
    current: str | None = root_type(group, kind)
    last: Field | None = None
    for name in path:
        last = field(current, name)
        current = last.elem if last is not None else None
    return current, last
