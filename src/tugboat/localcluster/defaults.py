"""Server-side defaulting of built-in kinds, as kube-apiserver does it on every write.

Why this exists: a real API server fills in many fields the client never sent (the ``SetDefaults_*``
functions of ``k8s.io/api``, plus a few admission plugins and registry strategies). ``kubectl describe``,
``kubectl rollout status``, ``kubectl apply``'s three-way diff and every controller read those fields back
and misbehave without them: a Deployment with no ``strategy.rollingUpdate`` cannot roll, a Service with no
``clusterIP`` has no address, a Job with no generated selector owns no pods. This module reproduces the
subset they rely on.

It is pure: it edits the JSON-shaped object in place, never fills a field the client set (``null`` counts
as unset, as it does in Go), and leaves every allocation (cluster IPs, node ports) to callables owned by the
caller. It runs before validation; fields of the wrong type are left for validation (or strict decoding) to
reject rather than overwritten.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

JSONObject = dict[str, Any]

# Upstream string constants, named once.
ROLLING_UPDATE = "RollingUpdate"
IPV4 = "IPv4"
HEADLESS = "None"

JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300
DEFAULT_FILE_MODE = 420  # 0644, the default mode of projected files.


@dataclass(frozen=True)
class _Context:
    """What a kind's defaulter may need beyond the object itself."""

    allocate_cluster_ip: Callable[[], str] | None
    allocate_node_port: Callable[[], int] | None
    old: JSONObject | None


Defaulter = Callable[[JSONObject, _Context], None]


def apply_defaults(
    group: str,
    kind: str,
    obj: JSONObject,
    *,
    allocate_cluster_ip: Callable[[], str] | None = None,
    allocate_node_port: Callable[[], int] | None = None,
    old: JSONObject | None = None,
) -> None:
    """Fill in, in place, the fields kube-apiserver defaults for ``group``/``kind`` (core is ``""``).

    ``allocate_cluster_ip`` and ``allocate_node_port`` are called only for fields that still need a value;
    when one is ``None`` the field stays unset. ``old`` is the stored object on an update: a Service that
    omits its allocated ``clusterIP``/``nodePort`` keeps the old ones instead of allocating new ones, as
    upstream does. Jobs need ``metadata.uid`` (and ``metadata.name``) set before the call, since the
    generated selector is built from them. Kinds not known here are left untouched.
    """
    defaulter = _DEFAULTERS.get((_normalize_group(group), kind))
    if defaulter is not None:
        defaulter(obj, _Context(allocate_cluster_ip, allocate_node_port, old))


def image_pull_policy_for(image: str) -> str:
    """The ``imagePullPolicy`` upstream defaults for ``image``: Always for ``:latest``, stated or implied."""
    return "Always" if _image_tag(image) == "latest" else "IfNotPresent"


# --------------------------------------------------------------------------------------------------------
# Small helpers over JSON-shaped objects


def _normalize_group(group: str) -> str:
    return "" if group in ("", "core") else group


def _unset(parent: JSONObject, key: str) -> bool:
    return parent.get(key) is None


def _setdefault(parent: JSONObject, key: str, value: Any) -> None:
    if _unset(parent, key):
        parent[key] = value


def _child(parent: JSONObject, key: str) -> JSONObject:
    """``parent[key]`` as a dict, created when unset; a detached dict when it holds something else."""
    value = parent.get(key)
    if value is None:
        value = {}
        parent[key] = value
    return value if isinstance(value, dict) else {}


def _existing(parent: Any, key: str) -> JSONObject | None:
    """``parent[key]`` when it is a dict, else ``None`` (never creates anything)."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _items(parent: Any, key: str) -> list[JSONObject]:
    """The dict items of the list ``parent[key]`` (an empty list when absent or malformed)."""
    if not isinstance(parent, dict):
        return []
    value = parent.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _name(obj: JSONObject) -> str:
    name = _child(obj, "metadata").get("name")
    return name if isinstance(name, str) else ""


# --------------------------------------------------------------------------------------------------------
# Containers and pod specs


def _image_tag(image: str) -> str:
    """An image reference's tag: ``latest`` when it has neither tag nor digest, ``""`` with only a digest."""
    if not image:
        return ""
    reference, _, digest = image.partition("@")
    last_component = reference.rsplit("/", 1)[-1]
    _, colon, tag = last_component.partition(":")
    if colon:
        return tag
    return "" if digest else "latest"


def _default_handler(handler: JSONObject) -> None:
    """An exec/httpGet/tcpSocket/grpc action, of a probe or of a lifecycle hook."""
    http_get = _existing(handler, "httpGet")
    if http_get is not None:
        _setdefault(http_get, "path", "/")
        _setdefault(http_get, "scheme", "HTTP")
    grpc = _existing(handler, "grpc")
    if grpc is not None:
        _setdefault(grpc, "service", "")


def _default_probe(probe: JSONObject) -> None:
    _setdefault(probe, "timeoutSeconds", 1)
    _setdefault(probe, "periodSeconds", 10)
    _setdefault(probe, "successThreshold", 1)
    _setdefault(probe, "failureThreshold", 3)
    _default_handler(probe)


def _default_field_refs(holder: JSONObject) -> None:
    """``fieldRef`` and ``resourceFieldRef`` inside an env ``valueFrom`` or a downward-API item."""
    field_ref = _existing(holder, "fieldRef")
    if field_ref is not None:
        _setdefault(field_ref, "apiVersion", "v1")
    resource_ref = _existing(holder, "resourceFieldRef")
    if resource_ref is not None:
        _setdefault(resource_ref, "divisor", "0")


def _default_container_ports(container: JSONObject, *, host_network: bool) -> None:
    for port in _items(container, "ports"):
        _setdefault(port, "protocol", "TCP")
        if host_network and not port.get("hostPort"):
            port["hostPort"] = port.get("containerPort")


def _default_container(container: JSONObject, *, host_network: bool) -> None:
    image = container.get("image")
    _setdefault(container, "imagePullPolicy", image_pull_policy_for(image if isinstance(image, str) else ""))
    _setdefault(container, "terminationMessagePath", "/dev/termination-log")
    _setdefault(container, "terminationMessagePolicy", "File")
    _setdefault(container, "resources", {})
    _default_container_ports(container, host_network=host_network)
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _existing(container, probe_key)
        if probe is not None:
            _default_probe(probe)
    lifecycle = _existing(container, "lifecycle")
    for hook_key in ("postStart", "preStop"):
        hook = _existing(lifecycle, hook_key)
        if hook is not None:
            _default_handler(hook)
    for env in _items(container, "env"):
        value_from = _existing(env, "valueFrom")
        if value_from is not None:
            _default_field_refs(value_from)


def _default_projection(source: JSONObject) -> None:
    """One source of a ``projected`` volume."""
    token = _existing(source, "serviceAccountToken")
    if token is not None:
        _setdefault(token, "expirationSeconds", 3600)
    for item in _items(_existing(source, "downwardAPI"), "items"):
        _default_field_refs(item)


def _default_volume(volume: JSONObject) -> None:
    if all(key == "name" or value is None for key, value in volume.items()):
        volume["emptyDir"] = {}
        return
    for source_key in ("configMap", "secret", "downwardAPI", "projected"):
        source = _existing(volume, source_key)
        if source is not None:
            _setdefault(source, "defaultMode", DEFAULT_FILE_MODE)
    for item in _items(_existing(volume, "downwardAPI"), "items"):
        _default_field_refs(item)
    for projection in _items(_existing(volume, "projected"), "sources"):
        _default_projection(projection)
    host_path = _existing(volume, "hostPath")
    if host_path is not None:
        _setdefault(host_path, "type", "")
    claim_template = _existing(_existing(volume, "ephemeral"), "volumeClaimTemplate")
    claim_spec = _existing(claim_template, "spec")
    if claim_spec is not None:
        _default_pvc_spec(claim_spec)


def _all_containers(spec: JSONObject) -> list[JSONObject]:
    return [
        container
        for key in ("initContainers", "containers", "ephemeralContainers")
        for container in _items(spec, key)
    ]


def _default_pod_spec(spec: JSONObject) -> None:
    """Defaults shared by Pods and by the pod templates of every workload kind."""
    _setdefault(spec, "restartPolicy", "Always")
    _setdefault(spec, "dnsPolicy", "ClusterFirst")
    _setdefault(spec, "terminationGracePeriodSeconds", 30)
    _setdefault(spec, "schedulerName", "default-scheduler")
    _setdefault(spec, "securityContext", {})
    host_network = spec.get("hostNetwork") is True
    for container in _all_containers(spec):
        _default_container(container, host_network=host_network)
    for volume in _items(spec, "volumes"):
        _default_volume(volume)


def _default_template(template: JSONObject) -> None:
    _default_pod_spec(_child(template, "spec"))


# --------------------------------------------------------------------------------------------------------
# Pods (defaulting plus what the ServiceAccount, Priority and DefaultTolerationSeconds admission add)


def _tolerates(tolerations: list[JSONObject], taint_key: str) -> bool:
    """Whether a NoExecute toleration for ``taint_key`` (or a wildcard one) is already present."""
    return any(
        toleration.get("key") in (None, "", taint_key) and toleration.get("effect") in (None, "", "NoExecute")
        for toleration in tolerations
    )


def _add_default_tolerations(spec: JSONObject) -> None:
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return
    existing = [item for item in tolerations if isinstance(item, dict)]
    for taint_key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not _tolerates(existing, taint_key):
            tolerations.append(
                {
                    "key": taint_key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }
            )
    spec["tolerations"] = tolerations


def _default_requests_from_limits(container: JSONObject) -> None:
    resources = _existing(container, "resources")
    limits = _existing(resources, "limits")
    if resources is None or not limits:
        return
    requests = _child(resources, "requests")
    for resource_name, quantity in limits.items():
        requests.setdefault(resource_name, quantity)


def _default_service_account(spec: JSONObject) -> None:
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = account
    spec["serviceAccount"] = account


def _default_pod(pod: JSONObject, _: _Context) -> None:
    spec = _child(pod, "spec")
    _default_pod_spec(spec)
    for container in _all_containers(spec):
        _default_requests_from_limits(container)
    _default_service_account(spec)
    _setdefault(spec, "enableServiceLinks", True)
    if not spec.get("priorityClassName"):
        _setdefault(spec, "priority", 0)
        _setdefault(spec, "preemptionPolicy", "PreemptLowerPriority")
    _add_default_tolerations(spec)
    status = _child(pod, "status")
    _setdefault(status, "phase", "Pending")
    _setdefault(status, "qosClass", pod_qos_class(spec))


# Quantity suffixes as in k8s.io/apimachinery resource.Quantity.
_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(quantity: object) -> Decimal | None:
    """A resource quantity (``"500m"``, ``"1Gi"``, ``2``) as a number, or ``None`` when unparseable."""
    if isinstance(quantity, bool):
        return None
    if isinstance(quantity, int | float):
        return Decimal(str(quantity))
    if not isinstance(quantity, str) or not quantity:
        return None
    text = quantity.strip()
    multiplier: Decimal | int = 1
    if text[-2:] in _BINARY_SUFFIXES:
        multiplier, text = _BINARY_SUFFIXES[text[-2:]], text[:-2]
    elif text[-1:] in _DECIMAL_SUFFIXES:
        multiplier, text = _DECIMAL_SUFFIXES[text[-1:]], text[:-1]
    try:
        return Decimal(text) * multiplier
    except InvalidOperation:
        return None


def _resource_map(container: JSONObject, key: str) -> dict[str, Decimal | None]:
    values = _existing(_existing(container, "resources"), key) or {}
    return {str(name): parse_quantity(quantity) for name, quantity in values.items()}


def pod_qos_class(spec: JSONObject) -> str:
    """The QoS class of a pod spec: ``Guaranteed``, ``Burstable`` or ``BestEffort``."""
    containers = _items(spec, "initContainers") + _items(spec, "containers")
    compute = ("cpu", "memory")
    requests = [_resource_map(container, "requests") for container in containers]
    limits = [_resource_map(container, "limits") for container in containers]
    if not any(
        value for resources in requests + limits for name, value in resources.items() if name in compute
    ):
        return "BestEffort"
    guaranteed = all(
        all(lim.get(name) and req.get(name, lim.get(name)) == lim.get(name) for name in compute)
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _default_pod_template(obj: JSONObject, _: _Context) -> None:
    _default_template(_child(obj, "template"))


# --------------------------------------------------------------------------------------------------------
# Workloads


def _default_deployment(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "replicas", 1)
    strategy = _child(spec, "strategy")
    _setdefault(strategy, "type", ROLLING_UPDATE)
    if strategy.get("type") == ROLLING_UPDATE:
        rolling = _child(strategy, "rollingUpdate")
        _setdefault(rolling, "maxUnavailable", "25%")
        _setdefault(rolling, "maxSurge", "25%")
    _setdefault(spec, "revisionHistoryLimit", 10)
    _setdefault(spec, "progressDeadlineSeconds", 600)
    _default_template(_child(spec, "template"))


def _default_replica_set(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "replicas", 1)
    _default_template(_child(spec, "template"))


def _default_replication_controller(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "replicas", 1)
    template = _child(spec, "template")
    template_labels = _existing(_existing(template, "metadata"), "labels")
    if template_labels:
        if not spec.get("selector"):
            spec["selector"] = dict(template_labels)
        metadata = _child(obj, "metadata")
        if not metadata.get("labels"):
            metadata["labels"] = dict(template_labels)
    _default_template(template)


def _default_stateful_set(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "replicas", 1)
    _setdefault(spec, "podManagementPolicy", "OrderedReady")
    strategy = _child(spec, "updateStrategy")
    if _unset(strategy, "type"):
        strategy["type"] = ROLLING_UPDATE
        _setdefault(strategy, "rollingUpdate", {})
    rolling = _existing(strategy, "rollingUpdate")
    if strategy.get("type") == ROLLING_UPDATE and rolling is not None:
        _setdefault(rolling, "partition", 0)
    _setdefault(spec, "revisionHistoryLimit", 10)
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    _setdefault(retention, "whenDeleted", "Retain")
    _setdefault(retention, "whenScaled", "Retain")
    for claim in _items(spec, "volumeClaimTemplates"):
        _default_claim(claim)
    _default_template(_child(spec, "template"))


def _default_daemon_set(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    strategy = _child(spec, "updateStrategy")
    _setdefault(strategy, "type", ROLLING_UPDATE)
    if strategy.get("type") == ROLLING_UPDATE:
        rolling = _child(strategy, "rollingUpdate")
        _setdefault(rolling, "maxUnavailable", 1)
        _setdefault(rolling, "maxSurge", 0)
    _setdefault(spec, "revisionHistoryLimit", 10)
    _default_template(_child(spec, "template"))


def _generate_job_selector(obj: JSONObject, spec: JSONObject) -> None:
    """The selector and pod labels the Job registry generates unless ``manualSelector`` is true."""
    uid = _child(obj, "metadata").get("uid")
    if spec.get("manualSelector") is True or not uid:
        return
    labels = _child(_child(_child(spec, "template"), "metadata"), "labels")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, _name(obj))
    for key in (LEGACY_JOB_UID_LABEL, JOB_UID_LABEL):
        labels.setdefault(key, uid)
    _child(_child(spec, "selector"), "matchLabels").setdefault(JOB_UID_LABEL, uid)


def _default_job_labels(obj: JSONObject, template_labels: JSONObject | None) -> None:
    """A Job without labels takes its template's (upstream: at decode, then again when read back)."""
    metadata = _child(obj, "metadata")
    if not metadata.get("labels") and template_labels:
        metadata["labels"] = dict(template_labels)


def _default_job(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    if _unset(spec, "completions") and _unset(spec, "parallelism"):
        spec["completions"] = 1
    _setdefault(spec, "parallelism", 1)
    _setdefault(spec, "backoffLimit", 2**31 - 1 if spec.get("backoffLimitPerIndex") is not None else 6)
    _setdefault(spec, "completionMode", "NonIndexed")
    _setdefault(spec, "suspend", False)
    failure_policy = _existing(spec, "podFailurePolicy")
    for rule in _items(failure_policy, "rules"):
        for condition in _items(rule, "onPodConditions"):
            _setdefault(condition, "status", "True")
    _setdefault(spec, "podReplacementPolicy", "Failed" if failure_policy else "TerminatingOrFailed")
    template = _child(spec, "template")
    _default_job_labels(obj, _existing(_existing(template, "metadata"), "labels"))
    _generate_job_selector(obj, spec)
    _default_job_labels(obj, _existing(_existing(template, "metadata"), "labels"))
    _default_template(template)


def _default_cron_job(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "concurrencyPolicy", "Allow")
    _setdefault(spec, "suspend", False)
    _setdefault(spec, "successfulJobsHistoryLimit", 3)
    _setdefault(spec, "failedJobsHistoryLimit", 1)
    job_spec = _child(_child(spec, "jobTemplate"), "spec")
    _default_template(_child(job_spec, "template"))


def _default_hpa(obj: JSONObject, _: _Context) -> None:
    # Only what autoscaling/v1 and v2 share: the default CPU metric differs in shape between them.
    _setdefault(_child(obj, "spec"), "minReplicas", 1)


# --------------------------------------------------------------------------------------------------------
# Services


def _needs_cluster_ip(spec: JSONObject) -> bool:
    return spec.get("type") != "ExternalName"


def _needs_node_ports(spec: JSONObject) -> bool:
    service_type = spec.get("type")
    if service_type == "NodePort":
        return True
    return service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _needs_health_check_node_port(spec: JSONObject) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _default_service_ports(spec: JSONObject) -> None:
    for port in _items(spec, "ports"):
        _setdefault(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")


def _keep_old_cluster_ips(spec: JSONObject, old_spec: JSONObject) -> None:
    """An update that omits the allocated addresses keeps them (upstream ``patchAllocatedValues``)."""
    if not (_needs_cluster_ip(spec) and _needs_cluster_ip(old_spec)):
        return
    if not spec.get("clusterIP") and not spec.get("clusterIPs"):
        for key in ("clusterIP", "clusterIPs"):
            if old_spec.get(key) is not None:
                spec[key] = old_spec[key]


def _keep_old_node_ports(spec: JSONObject, old_spec: JSONObject) -> None:
    if not (_needs_node_ports(spec) and _needs_node_ports(old_spec)):
        return
    new_ports = _items(spec, "ports")
    in_use = {port.get("nodePort") for port in new_ports if port.get("nodePort")}
    old_by_name = {port.get("name"): port.get("nodePort") for port in _items(old_spec, "ports")}
    for port in new_ports:
        old_value = old_by_name.get(port.get("name"))
        if not port.get("nodePort") and old_value and old_value not in in_use:
            port["nodePort"] = old_value
            in_use.add(old_value)
    if _needs_health_check_node_port(spec) and _needs_health_check_node_port(old_spec):
        _setdefault(spec, "healthCheckNodePort", old_spec.get("healthCheckNodePort"))


def _assign_cluster_ips(spec: JSONObject, ctx: _Context) -> None:
    cluster_ip = spec.get("clusterIP")
    cluster_ips = spec.get("clusterIPs")
    if cluster_ip and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif cluster_ips and isinstance(cluster_ips, list) and not cluster_ip:
        spec["clusterIP"] = cluster_ips[0]
    elif not cluster_ip and not cluster_ips and ctx.allocate_cluster_ip is not None:
        allocated = ctx.allocate_cluster_ip()
        spec["clusterIP"] = allocated
        spec["clusterIPs"] = [allocated]


def _default_ip_families(spec: JSONObject) -> None:
    headless_without_selector = spec.get("clusterIP") == HEADLESS and not spec.get("selector")
    _setdefault(spec, "ipFamilyPolicy", "RequireDualStack" if headless_without_selector else "SingleStack")
    _setdefault(spec, "ipFamilies", [IPV4])


def _allocate_node_ports(spec: JSONObject, ctx: _Context) -> None:
    if ctx.allocate_node_port is None:
        return
    if _needs_node_ports(spec):
        for port in _items(spec, "ports"):
            if not port.get("nodePort"):
                port["nodePort"] = ctx.allocate_node_port()
    if _needs_health_check_node_port(spec) and not spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = ctx.allocate_node_port()


def _default_service(obj: JSONObject, ctx: _Context) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "type", "ClusterIP")
    _setdefault(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "ClientIP":
        client_ip = _child(_child(spec, "sessionAffinityConfig"), "clientIP")
        _setdefault(client_ip, "timeoutSeconds", 10800)
    _default_service_ports(spec)
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        _setdefault(spec, "externalTrafficPolicy", "Cluster")
    if spec.get("type") == "LoadBalancer":
        _setdefault(spec, "allocateLoadBalancerNodePorts", True)
    old_spec = _existing(ctx.old, "spec")
    if old_spec is not None:
        _keep_old_cluster_ips(spec, old_spec)
        _keep_old_node_ports(spec, old_spec)
    if _needs_cluster_ip(spec):
        _setdefault(spec, "internalTrafficPolicy", "Cluster")
        _assign_cluster_ips(spec, ctx)
        _default_ip_families(spec)
    _allocate_node_ports(spec, ctx)


# --------------------------------------------------------------------------------------------------------
# Other core kinds


def _default_namespace(obj: JSONObject, _: _Context) -> None:
    _setdefault(_child(obj, "spec"), "finalizers", ["kubernetes"])
    _setdefault(_child(obj, "status"), "phase", "Active")
    name = _name(obj)
    if name:
        _child(_child(obj, "metadata"), "labels")[NAMESPACE_NAME_LABEL] = name


def _default_secret(obj: JSONObject, _: _Context) -> None:
    """``type`` Opaque, and ``stringData`` folded into ``data`` (upstream does it when decoding)."""
    _setdefault(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _child(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(("" if value is None else str(value)).encode()).decode()


def _default_pvc_spec(spec: JSONObject) -> None:
    _setdefault(spec, "volumeMode", "Filesystem")


def _default_claim(claim: JSONObject) -> None:
    """A PersistentVolumeClaim, standalone or as a StatefulSet ``volumeClaimTemplates`` item."""
    _default_pvc_spec(_child(claim, "spec"))
    _setdefault(_child(claim, "status"), "phase", "Pending")


def _default_pvc(obj: JSONObject, _: _Context) -> None:
    _default_claim(obj)


def _default_pv(obj: JSONObject, _: _Context) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "persistentVolumeReclaimPolicy", "Retain")
    _setdefault(spec, "volumeMode", "Filesystem")
    _setdefault(_child(obj, "status"), "phase", "Pending")


def _default_node(obj: JSONObject, _: _Context) -> None:
    status = _existing(obj, "status")
    if status is not None and _unset(status, "allocatable") and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _default_endpoints(obj: JSONObject, _: _Context) -> None:
    for subset in _items(obj, "subsets"):
        for port in _items(subset, "ports"):
            _setdefault(port, "protocol", "TCP")


_DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): _default_pod,
    ("", "PodTemplate"): _default_pod_template,
    ("", "ReplicationController"): _default_replication_controller,
    ("", "Service"): _default_service,
    ("", "Namespace"): _default_namespace,
    ("", "Secret"): _default_secret,
    ("", "PersistentVolumeClaim"): _default_pvc,
    ("", "PersistentVolume"): _default_pv,
    ("", "Node"): _default_node,
    ("", "Endpoints"): _default_endpoints,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replica_set,
    ("apps", "StatefulSet"): _default_stateful_set,
    ("apps", "DaemonSet"): _default_daemon_set,
    ("batch", "Job"): _default_job,
    ("batch", "CronJob"): _default_cron_job,
    ("autoscaling", "HorizontalPodAutoscaler"): _default_hpa,
}
