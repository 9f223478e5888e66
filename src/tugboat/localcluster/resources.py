"""The resource types the local cluster serves: the built-in catalogue and those that CRDs add.

Discovery, OpenAPI, routing and the REST semantics all read the same :class:`ResourceType` records, so a
CRD that is created appears everywhere at once and disappears everywhere when it is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScalePaths:
    """Where a resource keeps what its ``/scale`` subresource reads and writes."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None


@dataclass
class ResourceType:
    """One served resource (group, version, plural) and the rules its objects follow."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    generation: bool = False
    verbs: tuple[str, ...] = STANDARD_VERBS
    singular: str = ""
    list_kind: str = ""
    scale: ScalePaths | None = None
    crd_name: str | None = None
    schema: Any = None  # crdschema.Schema for custom resources
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    openapi_schema: dict[str, Any] | None = None
    storage_version: bool = True

    def __post_init__(self) -> None:
        if not self.singular:
            self.singular = self.kind.lower()
        if not self.list_kind:
            self.list_kind = f"{self.kind}List"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def builtin(self) -> bool:
        return self.crd_name is None

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def storage_prefix(self) -> str:
        """The key prefix of this resource's objects (shared by every version of the resource)."""
        return f"/{self.group or 'core'}/{self.resource}/"

    def key(self, namespace: str, name: str) -> str:
        return f"{self.storage_prefix}{namespace if self.namespaced else ''}/{name}"

    def list_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.storage_prefix}{namespace}/"
        return self.storage_prefix


def _rt(
    group: str,
    version: str,
    resource: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: Iterable[str] = (),
    all_category: bool = False,
    sub: Iterable[str] = (),
    generation: bool = False,
    verbs: tuple[str, ...] = STANDARD_VERBS,
    scale: ScalePaths | None = None,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        resource=resource,
        kind=kind,
        namespaced=namespaced,
        short_names=tuple(short),
        categories=("all",) if all_category else (),
        subresources=tuple(sub),
        generation=generation,
        verbs=verbs,
        scale=scale,
    )


_WORKLOAD_SCALE = ScalePaths()


def builtin_types() -> list[ResourceType]:
    """A fresh list of the built-in resource types, in discovery order."""
    return [
        _rt("", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"], sub=["status", "finalize"]),
        _rt("", "v1", "pods", "Pod", short=["po"], all_category=True, sub=["status", "log", "binding"]),
        _rt("", "v1", "services", "Service", short=["svc"], all_category=True, sub=["status"]),
        _rt("", "v1", "endpoints", "Endpoints", short=["ep"]),
        _rt("", "v1", "configmaps", "ConfigMap", short=["cm"]),
        _rt("", "v1", "secrets", "Secret"),
        _rt("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"], sub=["token"]),
        _rt("", "v1", "events", "Event", short=["ev"]),
        _rt("", "v1", "nodes", "Node", namespaced=False, short=["no"], sub=["status"]),
        _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=["pvc"], sub=["status"]),
        _rt(
            "", "v1", "persistentvolumes", "PersistentVolume", namespaced=False, short=["pv"], sub=["status"]
        ),
        _rt("", "v1", "podtemplates", "PodTemplate"),
        _rt(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            short=["deploy"],
            all_category=True,
            sub=["status", "scale"],
            generation=True,
            scale=_WORKLOAD_SCALE,
        ),
        _rt(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            short=["rs"],
            all_category=True,
            sub=["status", "scale"],
            generation=True,
            scale=_WORKLOAD_SCALE,
        ),
        _rt(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            short=["sts"],
            all_category=True,
            sub=["status", "scale"],
            generation=True,
            scale=_WORKLOAD_SCALE,
        ),
        _rt(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            short=["ds"],
            all_category=True,
            sub=["status"],
            generation=True,
        ),
        _rt("apps", "v1", "controllerrevisions", "ControllerRevision"),
        _rt("batch", "v1", "jobs", "Job", all_category=True, sub=["status"], generation=True),
        _rt(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            short=["cj"],
            all_category=True,
            sub=["status"],
            generation=True,
        ),
        _rt(
            "networking.k8s.io", "v1", "ingresses", "Ingress", short=["ing"], sub=["status"], generation=True
        ),
        _rt("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False, generation=True),
        _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=["netpol"], generation=True),
        _rt("coordination.k8s.io", "v1", "leases", "Lease"),
        _rt("events.k8s.io", "v1", "events", "Event", short=["ev"]),
        _rt(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            short=["hpa"],
            all_category=True,
            sub=["status"],
            generation=True,
        ),
        _rt(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            short=["pdb"],
            sub=["status"],
            generation=True,
        ),
        _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
        _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
        _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
        _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
        _rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False, short=["sc"]),
        _rt(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            namespaced=False,
            short=["crd", "crds"],
            sub=["status"],
            generation=True,
        ),
        _rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
        _rt(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            namespaced=False,
            verbs=("create",),
        ),
        _rt(
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "SelfSubjectReview",
            namespaced=False,
            verbs=("create",),
        ),
    ]


# Group preference order in discovery (kube lists the core-ish groups first).
GROUP_ORDER = [
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
]


class Registry:
    """Every served resource type, looked up by group, version and plural (or kind)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._order: list[tuple[str, str, str]] = []
        self.generation = 0
        for rt in builtin_types():
            self._add(rt)

    def _add(self, rt: ResourceType) -> None:
        ident = (rt.group, rt.version, rt.resource)
        if ident not in self._types:
            self._order.append(ident)
        self._types[ident] = rt

    def _changed(self) -> None:
        self.generation += 1

    def get(self, group: str, version: str, resource: str) -> ResourceType | None:
        return self._types.get((group, version, resource))

    def by_storage(self, group: str, resource: str) -> ResourceType | None:
        """The storage (preferred) version of a resource, whatever version was asked for."""
        fallback = None
        for rt in self._types.values():
            if rt.group == group and rt.resource == resource:
                if rt.storage_version:
                    return rt
                fallback = rt
        return fallback

    def all(self) -> list[ResourceType]:
        return [self._types[i] for i in self._order if i in self._types]

    def groups(self) -> list[tuple[str, list[str]]]:
        """Served groups with their versions, preferred first, in discovery order."""
        found: dict[str, list[str]] = {}
        for rt in self.all():
            versions = found.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)

        def order(group: str) -> tuple[int, str]:
            return (GROUP_ORDER.index(group), "") if group in GROUP_ORDER else (len(GROUP_ORDER), group)

        return [(g, found[g]) for g in sorted(found, key=order)]

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.all() if rt.group == group and rt.version == version]

    def set_custom(self, crd_name: str, types: list[ResourceType]) -> None:
        """Replace every resource type a CRD serves with ``types`` (empty to remove them)."""
        for ident in [i for i, rt in self._types.items() if rt.crd_name == crd_name]:
            del self._types[ident]
        self._order = [i for i in self._order if i in self._types]
        for rt in types:
            self._add(rt)
        self._changed()

    def namespaced_types(self) -> list[ResourceType]:
        """One (storage) version per namespaced resource: what namespace deletion must empty."""
        seen: set[tuple[str, str]] = set()
        result = []
        for rt in self.all():
            if rt.namespaced and (rt.group, rt.resource) not in seen and "list" in rt.verbs:
                seen.add((rt.group, rt.resource))
                result.append(rt)
        return result
