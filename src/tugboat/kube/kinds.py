"""Resource kinds as the controllers address them: group, version, kind, plural and scope.

Controllers work on plain dicts, so a kind is all a request needs to build its URL; no discovery round
trip and no typed models (research/deps.md §1.3: decoding is most of a typed client's cost).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One resource type at one version."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, name: str, namespace: str | None = None, subresource: str | None = None) -> str:
        path = f"{self.collection_path(namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


NAMESPACE = Kind("", "v1", "Namespace", "namespaces", namespaced=False)
NODE = Kind("", "v1", "Node", "nodes", namespaced=False)
POD = Kind("", "v1", "Pod", "pods")
SERVICE = Kind("", "v1", "Service", "services")
ENDPOINTS = Kind("", "v1", "Endpoints", "endpoints")
CONFIGMAP = Kind("", "v1", "ConfigMap", "configmaps")
SECRET = Kind("", "v1", "Secret", "secrets")
SERVICEACCOUNT = Kind("", "v1", "ServiceAccount", "serviceaccounts")
EVENT = Kind("", "v1", "Event", "events")
PVC = Kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
PV = Kind("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False)
DEPLOYMENT = Kind("apps", "v1", "Deployment", "deployments")
REPLICASET = Kind("apps", "v1", "ReplicaSet", "replicasets")
STATEFULSET = Kind("apps", "v1", "StatefulSet", "statefulsets")
DAEMONSET = Kind("apps", "v1", "DaemonSet", "daemonsets")
CONTROLLERREVISION = Kind("apps", "v1", "ControllerRevision", "controllerrevisions")
JOB = Kind("batch", "v1", "Job", "jobs")
CRONJOB = Kind("batch", "v1", "CronJob", "cronjobs")
INGRESS = Kind("networking.k8s.io", "v1", "Ingress", "ingresses")
LEASE = Kind("coordination.k8s.io", "v1", "Lease", "leases")
ENDPOINTSLICE = Kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")
CRD = Kind(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
)

BUILTIN: tuple[Kind, ...] = (
    NAMESPACE,
    NODE,
    POD,
    SERVICE,
    ENDPOINTS,
    CONFIGMAP,
    SECRET,
    SERVICEACCOUNT,
    EVENT,
    PVC,
    PV,
    DEPLOYMENT,
    REPLICASET,
    STATEFULSET,
    DAEMONSET,
    CONTROLLERREVISION,
    JOB,
    CRONJOB,
    INGRESS,
    LEASE,
    ENDPOINTSLICE,
    CRD,
)
