"""Server-side ``meta.k8s.io/v1`` Tables: the columns and cells that ``kubectl get`` prints.

``kubectl get`` does not format objects itself: it asks the API server for a ``Table`` (``Accept:
application/json;as=Table;v=v1;g=meta.k8s.io``) and prints the columns it is given, hiding those with
``priority > 0`` unless ``-o wide``. The local cluster therefore has to compute every cell kube-apiserver
would: a pod's READY and STATUS, a service's PORT(S), a deployment's ``2/3`` and every AGE. This module holds
those printers (modelled on ``pkg/printers/internalversion`` and the CRD table convertor of
apiextensions-apiserver, rewritten here from their documented behaviour), the ``additionalPrinterColumns``
support for custom resources, and the assembly of the Table document. It is pure: the caller passes the
objects and the current time, and the HTTP layer serialises the result.

Like kube-apiserver, rows always carry the wide (priority 1) cells; kubectl drops them client-side.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import jsonpath, podstatus
from tugboat.kube.errors import JSONPathError
from tugboat.util import jsondata

__all__ = [
    "INCLUDE_OBJECT_VALUES",
    "Column",
    "build_table",
    "columns_for",
    "crd_columns",
    "crd_row",
    "has_printer",
    "human_duration",
    "row_for",
]

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

Obj = Mapping[str, Any]
RowFn = Callable[[Obj, datetime], list[Any]]

# --------------------------------------------------------------------------------------------------------
# Columns


@dataclass(frozen=True)
class Column:
    """One ``TableColumnDefinition``. ``priority`` 0 is always shown, 1 only with ``kubectl get -o wide``."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def _col(name: str, type_: str = "string", description: str = "", *, wide: bool = False) -> Column:
    return Column(name, type_, "", description, 1 if wide else 0)


_NAME = Column(
    "Name",
    "string",
    "name",
    "Name must be unique within a namespace. It is required when creating resources and cannot be updated.",
)
_AGE = _col("Age", description="CreationTimestamp: the server time when this object was created.")
_CREATED_AT = Column("Created At", "date", "", _AGE.description)
_CONTAINERS = _col("Containers", description="Names of each container in the template.", wide=True)
_IMAGES = _col("Images", description="Images referenced by each container in the template.", wide=True)
_SELECTOR = _col("Selector", description="Label query over the pods this object manages.", wide=True)


@dataclass(frozen=True)
class _Printer:
    columns: tuple[Column, ...]
    row: RowFn


_PRINTERS: dict[tuple[str, str], _Printer] = {}


def _printer(*keys: tuple[str, str], columns: Sequence[Column]) -> Callable[[RowFn], RowFn]:
    """Register ``row`` as the printer of every ``(group, resource)`` in ``keys``."""

    def register(row: RowFn) -> RowFn:
        for key in keys:
            _PRINTERS[key] = _Printer(tuple(columns), row)
        return row

    return register


# --------------------------------------------------------------------------------------------------------
# Small readers that tolerate missing or mistyped fields (objects in the store are not validated deeply).


_get = jsondata.dig


def _map(obj: Any, *path: str) -> Mapping[str, Any]:
    value = _get(obj, *path)
    return value if isinstance(value, Mapping) else {}


def _dicts(obj: Any, *path: str) -> list[Mapping[str, Any]]:
    value = _get(obj, *path)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strs(obj: Any, *path: str) -> list[str]:
    value = _get(obj, *path)
    return [str(item) for item in value] if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _name(obj: Obj) -> str:
    return _str(_get(obj, "metadata", "name"))


def _condition_true(conditions: Iterable[Mapping[str, Any]], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


# --------------------------------------------------------------------------------------------------------
# Time


def human_duration(seconds: float) -> str:
    """A duration with ~2-3 significant figures, as kubectl prints AGE (``duration.HumanDuration``).

    Up to two minutes in seconds (``90s``); then ``3m20s`` below ten minutes, whole minutes below three
    hours (``125m``), ``5h7m`` below eight hours, hours below two days (``30h``), ``3d4h`` below eight days,
    days below two years (``45d``), ``2y3d`` below eight years, then years. A clock up to two seconds ahead
    prints ``0s``; further ahead is ``<invalid>``.
    """
    whole = int(seconds)  # truncates toward zero, like Go's conversion
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def _parse_time(value: Any) -> datetime | None:
    """An RFC 3339 ``Time``/``MicroTime`` string as an aware datetime; ``None`` if absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if "." in text:  # Python accepts at most microseconds; Kubernetes may send nanoseconds
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}" if digits else f"{head}{tail}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _elapsed(moment: datetime | None, now: datetime) -> str:
    """kubectl's ``translateTimestampSince``: the age of a moment, ``<unknown>`` when unset."""
    if moment is None:
        return "<unknown>"
    return human_duration((_aware(now) - moment).total_seconds())


def _since(value: Any, now: datetime) -> str:
    """The age of a timestamp string (``<unknown>`` when unset or malformed)."""
    return _elapsed(_parse_time(value), now)


def _rfc3339(value: Any) -> str:
    moment = _parse_time(value)
    if moment is None:
        return "0001-01-01T00:00:00Z"  # Go's zero time, which kube prints for an unset timestamp
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------------
# Shared formatters


def _format_labels(labels: Mapping[str, Any]) -> str:
    """``labels.FormatLabels``: ``a=1,b=2`` sorted by key, ``<none>`` when empty."""
    return ",".join(f"{key}={_str(labels[key])}" for key in sorted(labels)) or "<none>"


def _selector_string(selector: Any) -> str:
    """A ``LabelSelector`` in the string form of ``kubectl get -l`` (empty for none or everything)."""
    if not isinstance(selector, Mapping):
        return ""
    requirements = [(key, f"{key}={_str(value)}") for key, value in _map(selector, "matchLabels").items()]
    for expression in _dicts(selector, "matchExpressions"):
        key = _str(expression.get("key"))
        values = ",".join(sorted(_strs(expression, "values")))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(_str(expression.get("operator")))
        if text is not None:
            requirements.append((key, text))
    requirements.sort(key=lambda requirement: requirement[0])
    return ",".join(text for _, text in requirements)


def _format_selector(selector: Any) -> str:
    return _selector_string(selector) or "<none>"


def _container_cells(pod_spec: Any) -> list[Any]:
    containers = _dicts(pod_spec, "containers")
    names = ",".join(_str(c.get("name")) for c in containers)
    images = ",".join(_str(c.get("image")) for c in containers)
    return [names, images]


def _list_with_more(items: list[str], total: int, limit: int, empty: str) -> str:
    text = ",".join(items[:limit])
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or empty


def _access_modes(modes: list[str]) -> str:
    """``RWO,ROX,RWX,RWOP`` in that fixed order, as kubectl abbreviates them."""
    short = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    return ",".join(abbreviation for mode, abbreviation in short if mode in modes)


def _load_balancer_addresses(status: Any) -> list[str]:
    addresses = []
    for ingress in _dicts(status, "loadBalancer", "ingress"):
        address = _str(ingress.get("ip")) or _str(ingress.get("hostname"))
        if address:
            addresses.append(address)
    return addresses


def _age_only(obj: Obj, now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


# --------------------------------------------------------------------------------------------------------
# Pods


def _readiness_gates(pod: Obj) -> str:
    gates = _dicts(pod, "spec", "readinessGates")
    if not gates:
        return "<none>"
    conditions = {_str(c.get("type")): c.get("status") for c in _dicts(pod, "status", "conditions")}
    true = sum(1 for gate in gates if conditions.get(_str(gate.get("conditionType"))) == "True")
    return f"{true}/{len(gates)}"


def _pod_ip(status: Mapping[str, Any]) -> str:
    ips = _dicts(status, "podIPs")
    return (_str(ips[0].get("ip")) if ips else _str(status.get("podIP"))) or "<none>"


@_printer(
    ("", "pods"),
    columns=[
        _NAME,
        _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", description="The aggregate status of the containers in this pod."),
        _col("Restarts", description="The number of times the containers in this pod have been restarted."),
        _AGE,
        _col("IP", description="IP address allocated to the pod.", wide=True),
        _col("Node", description="The node the pod is scheduled onto.", wide=True),
        _col("Nominated Node", description="The node the scheduler nominated for preemption.", wide=True),
        _col("Readiness Gates", description="Readiness gates that are satisfied.", wide=True),
    ],
)
def _pod_row(pod: Obj, now: datetime) -> list[Any]:
    summary = podstatus.summarize(pod)
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        restarts = f"{summary.restarts} ({_elapsed(summary.last_restart, now)} ago)"
    status = _map(pod, "status")
    return [
        _name(pod),
        summary.ready_text,
        summary.reason,
        restarts,
        _age_only(pod, now),
        _pod_ip(status),
        _str(_get(pod, "spec", "nodeName")) or "<none>",
        _str(status.get("nominatedNodeName")) or "<none>",
        _readiness_gates(pod),
    ]


# --------------------------------------------------------------------------------------------------------
# Workloads (apps, batch)


def _replicas(obj: Obj) -> int:
    """``spec.replicas``, which the API server defaults to 1."""
    return _int(_get(obj, "spec", "replicas"), 1)


@_printer(
    ("apps", "deployments"),
    columns=[
        _NAME,
        _col("Ready", description="Number of the pod with ready state."),
        _col("Up-to-date", "integer", "Total number of non-terminated pods with the desired template."),
        _col("Available", "integer", "Total number of available pods (ready for at least minReadySeconds)."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _SELECTOR,
    ],
)
def _deployment_row(obj: Obj, now: datetime) -> list[Any]:
    status = _map(obj, "status")
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_replicas(obj)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age_only(obj, now),
        *_container_cells(_get(obj, "spec", "template", "spec")),
        _selector_string(_get(obj, "spec", "selector")),
    ]


@_printer(
    ("apps", "replicasets"),
    columns=[
        _NAME,
        _col("Desired", "integer", "Number of desired pods."),
        _col("Current", "integer", "Number of actual replicas."),
        _col("Ready", "integer", "The number of ready replicas."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _SELECTOR,
    ],
)
def _replicaset_row(obj: Obj, now: datetime) -> list[Any]:
    status = _map(obj, "status")
    return [
        _name(obj),
        _replicas(obj),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age_only(obj, now),
        *_container_cells(_get(obj, "spec", "template", "spec")),
        _format_selector(_get(obj, "spec", "selector")),
    ]


@_printer(
    ("apps", "statefulsets"),
    columns=[
        _NAME,
        _col("Ready", description="Number of the pod with ready state."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
    ],
)
def _statefulset_row(obj: Obj, now: datetime) -> list[Any]:
    ready = _int(_get(obj, "status", "readyReplicas"))
    return [
        _name(obj),
        f"{ready}/{_replicas(obj)}",
        _age_only(obj, now),
        *_container_cells(_get(obj, "spec", "template", "spec")),
    ]


@_printer(
    ("apps", "daemonsets"),
    columns=[
        _NAME,
        _col("Desired", "integer", "The total number of nodes that should be running the daemon pod."),
        _col("Current", "integer", "The number of nodes running at least one daemon pod."),
        _col("Ready", "integer", "The number of nodes with a ready daemon pod."),
        _col("Up-to-date", "integer", "The number of nodes running the updated daemon pod."),
        _col("Available", "integer", "The number of nodes with an available daemon pod."),
        _col("Node Selector", description="The node selector of the pod template."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _SELECTOR,
    ],
)
def _daemonset_row(obj: Obj, now: datetime) -> list[Any]:
    status = _map(obj, "status")
    template = _get(obj, "spec", "template", "spec")
    return [
        _name(obj),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        _format_labels(_map(template, "nodeSelector")),
        _age_only(obj, now),
        *_container_cells(template),
        _format_selector(_get(obj, "spec", "selector")),
    ]


@_printer(
    ("apps", "controllerrevisions"),
    columns=[
        _NAME,
        _col("Controller", description="The controller that owns this revision."),
        _col("Revision", "integer", "The revision number."),
        _AGE,
    ],
)
def _controllerrevision_row(obj: Obj, now: datetime) -> list[Any]:
    controller = "<none>"
    for ref in _dicts(obj, "metadata", "ownerReferences"):
        if ref.get("controller") is True:
            api_version = _str(ref.get("apiVersion"))
            group = api_version.rpartition("/")[0]
            kind = _str(ref.get("kind")) + (f".{group}" if group else "")
            controller = f"{kind.lower()}/{_str(ref.get('name'))}"
            break
    return [_name(obj), controller, _int(_get(obj, "revision")), _age_only(obj, now)]


def _job_status(job: Obj) -> str:
    conditions = _dicts(job, "status", "conditions")
    for type_, label in (("Complete", "Complete"), ("Failed", "Failed")):
        if _condition_true(conditions, type_):
            return label
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    for type_ in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _condition_true(conditions, type_):
            return type_
    return "Running"


def _job_completions(job: Obj) -> str:
    succeeded = _int(_get(job, "status", "succeeded"))
    completions = _get(job, "spec", "completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        return f"{succeeded}/{completions}"
    parallelism = _int(_get(job, "spec", "parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(job: Obj, now: datetime) -> str:
    started = _parse_time(_get(job, "status", "startTime"))
    if started is None:
        return ""
    finished = _parse_time(_get(job, "status", "completionTime"))
    return human_duration(((finished or _aware(now)) - started).total_seconds())


@_printer(
    ("batch", "jobs"),
    columns=[
        _NAME,
        _col("Status", description="Status of the job."),
        _col("Completions", description="The desired number of successfully finished pods."),
        _col("Duration", description="Time required to complete the job."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _SELECTOR,
    ],
)
def _job_row(obj: Obj, now: datetime) -> list[Any]:
    return [
        _name(obj),
        _job_status(obj),
        _job_completions(obj),
        _job_duration(obj, now),
        _age_only(obj, now),
        *_container_cells(_get(obj, "spec", "template", "spec")),
        _format_selector(_get(obj, "spec", "selector")),
    ]


@_printer(
    ("batch", "cronjobs"),
    columns=[
        _NAME,
        _col("Schedule", description="The schedule in Cron format."),
        _col("Timezone", description="The time zone the schedule is interpreted in."),
        _col("Suspend", "boolean", "Whether subsequent executions are suspended."),
        _col("Active", "integer", "The number of currently running jobs."),
        _col("Last Schedule", description="When the job was last successfully scheduled."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _SELECTOR,
    ],
)
def _cronjob_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj, "spec")
    last = _get(obj, "status", "lastScheduleTime")
    job_spec = _get(spec, "jobTemplate", "spec")
    return [
        _name(obj),
        _str(spec.get("schedule")),
        _str(spec.get("timeZone")) or "<none>",
        "True" if spec.get("suspend") is True else "False",  # the API server defaults suspend to false
        len(_dicts(obj, "status", "active")),
        _since(last, now) if last else "<none>",
        _age_only(obj, now),
        *_container_cells(_get(job_spec, "template", "spec")),
        _format_selector(_get(job_spec, "selector")),
    ]


# --------------------------------------------------------------------------------------------------------
# Services and networking


def _service_external_ip(service: Obj) -> str:
    spec = _map(service, "spec")
    service_type = _str(spec.get("type")) or "ClusterIP"
    external_ips = _strs(spec, "externalIPs")
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) or "<none>"
    if service_type == "LoadBalancer":
        addresses = _load_balancer_addresses(_get(service, "status")) + external_ips
        return ",".join(addresses) or "<pending>"
    if service_type == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _service_ports(spec: Mapping[str, Any]) -> str:
    pieces = []
    for port in _dicts(spec, "ports"):
        protocol = _str(port.get("protocol")) or "TCP"
        node_port = _int(port.get("nodePort"))
        number = _int(port.get("port"))
        pieces.append(f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}")
    return ",".join(pieces) or "<none>"


@_printer(
    ("", "services"),
    columns=[
        _NAME,
        _col(
            "Type", description="The type of the service: ClusterIP, NodePort, LoadBalancer or ExternalName."
        ),
        _col("Cluster-IP", description="The IP address of the service inside the cluster."),
        _col("External-IP", description="External addresses of the service (load balancer or externalIPs)."),
        _col("Port(s)", description="The ports exposed by this service."),
        _AGE,
        _col("Selector", description="Route service traffic to pods with labels matching this.", wide=True),
    ],
)
def _service_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj, "spec")
    cluster_ips = _strs(spec, "clusterIPs")
    cluster_ip = cluster_ips[0] if cluster_ips else _str(spec.get("clusterIP"))
    return [
        _name(obj),
        _str(spec.get("type")) or "ClusterIP",
        cluster_ip or "<none>",
        _service_external_ip(obj),
        _service_ports(spec),
        _age_only(obj, now),
        _format_labels(_map(spec, "selector")),
    ]


def _format_endpoints(endpoints: Obj, limit: int = 3) -> str:
    subsets = _dicts(endpoints, "subsets")
    if not subsets:
        return "<none>"
    shown: list[str] = []
    total = 0
    for subset in subsets:
        ips = [_str(address.get("ip")) for address in _dicts(subset, "addresses")]
        ports = _dicts(subset, "ports")
        if not ports:
            shown.extend(ips)
            total += len(ips)
            continue
        for port in ports:
            number = _int(port.get("port"))
            shown.extend(f"[{ip}]:{number}" if ":" in ip else f"{ip}:{number}" for ip in ips)
            total += len(ips)
    return _list_with_more(shown, total, limit, "")


@_printer(
    ("", "endpoints"),
    columns=[_NAME, _col("Endpoints", description="Endpoints of the service: address:port pairs."), _AGE],
)
def _endpoints_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _format_endpoints(obj), _age_only(obj, now)]


@_printer(
    ("discovery.k8s.io", "endpointslices"),
    columns=[
        _NAME,
        _col("AddressType", description="The type of address carried by this EndpointSlice."),
        _col("Ports", description="The ports exposed by this EndpointSlice."),
        _col("Endpoints", description="The addresses of the endpoints in this EndpointSlice."),
        _AGE,
    ],
)
def _endpointslice_row(obj: Obj, now: datetime) -> list[Any]:
    ports = []
    for port in _dicts(obj, "ports"):
        number = port.get("port")
        ports.append(_str(number) if number is not None else _str(port.get("name")) or "*")
    addresses = [address for endpoint in _dicts(obj, "endpoints") for address in _strs(endpoint, "addresses")]
    return [
        _name(obj),
        _str(obj.get("addressType")),
        _list_with_more(ports, len(ports), 3, "<unset>"),
        _list_with_more(addresses, len(addresses), 3, "<unset>"),
        _age_only(obj, now),
    ]


def _ingress_hosts(rules: list[Mapping[str, Any]], limit: int = 3) -> str:
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == limit:
            more = True
            break
        if rule.get("host"):
            hosts.append(_str(rule.get("host")))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - limit} more..." if more else text


@_printer(
    ("networking.k8s.io", "ingresses"),
    columns=[
        _NAME,
        _col("Class", description="The name of the IngressClass this ingress uses."),
        _col("Hosts", description="Hosts that incoming requests are matched against."),
        _col("Address", description="Address is a list containing ingress points for the load-balancer."),
        _col("Ports", description="Ports of TLS configurations that open."),
        _AGE,
    ],
)
def _ingress_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj, "spec")
    return [
        _name(obj),
        _str(spec.get("ingressClassName")) or "<none>",
        _ingress_hosts(_dicts(spec, "rules")),
        ",".join(_load_balancer_addresses(_get(obj, "status"))),
        "80, 443" if _dicts(spec, "tls") else "80",
        _age_only(obj, now),
    ]


@_printer(
    ("networking.k8s.io", "ingressclasses"),
    columns=[
        _NAME,
        _col("Controller", description="The name of the controller that implements this class."),
        _col("Parameters", description="A link to a custom resource holding the controller's configuration."),
        _AGE,
    ],
)
def _ingressclass_row(obj: Obj, now: datetime) -> list[Any]:
    params = _get(obj, "spec", "parameters")
    text = "<none>"
    if isinstance(params, Mapping):
        group = _str(params.get("apiGroup"))
        text = _str(params.get("kind")) + (f".{group}" if group else "") + "/" + _str(params.get("name"))
    return [_name(obj), _str(_get(obj, "spec", "controller")), text, _age_only(obj, now)]


# --------------------------------------------------------------------------------------------------------
# Configuration, identity and cluster objects


@_printer(("", "configmaps"), columns=[_NAME, _col("Data", "integer", "Number of keys."), _AGE])
def _configmap_row(obj: Obj, now: datetime) -> list[Any]:
    keys = len(_map(obj, "data")) + len(_map(obj, "binaryData"))
    return [_name(obj), keys, _age_only(obj, now)]


@_printer(
    ("", "secrets"),
    columns=[_NAME, _col("Type", description="The type of the secret."), _col("Data", "integer"), _AGE],
)
def _secret_row(obj: Obj, now: datetime) -> list[Any]:
    keys = set(_map(obj, "data")) | set(_map(obj, "stringData"))
    return [_name(obj), _str(obj.get("type")) or "Opaque", len(keys), _age_only(obj, now)]


@_printer(
    ("", "serviceaccounts"),
    columns=[_NAME, _col("Secrets", "integer", "Secrets listed by the service account."), _AGE],
)
def _serviceaccount_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), len(_dicts(obj, "secrets")), _age_only(obj, now)]


def _subjects(binding: Obj, kind: str) -> str:
    names = []
    for subject in _dicts(binding, "subjects"):
        if subject.get("kind") != kind:
            continue
        name = _str(subject.get("name"))
        names.append(f"{_str(subject.get('namespace'))}/{name}" if kind == "ServiceAccount" else name)
    return ", ".join(names)


@_printer(
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    columns=[
        _NAME,
        _col("Role", description="The Role or ClusterRole the binding grants."),
        _AGE,
        _col("Users", description="Users in the binding.", wide=True),
        _col("Groups", description="Groups in the binding.", wide=True),
        _col("ServiceAccounts", description="ServiceAccounts in the binding.", wide=True),
    ],
)
def _rolebinding_row(obj: Obj, now: datetime) -> list[Any]:
    ref = _map(obj, "roleRef")
    return [
        _name(obj),
        f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}",
        _age_only(obj, now),
        _subjects(obj, "User"),
        _subjects(obj, "Group"),
        _subjects(obj, "ServiceAccount"),
    ]


@_printer(
    ("", "namespaces"),
    columns=[_NAME, _col("Status", description="The phase of the namespace: Active or Terminating."), _AGE],
)
def _namespace_row(obj: Obj, now: datetime) -> list[Any]:
    phase = _str(_get(obj, "status", "phase")) or "Active"  # the API server sets Active on create
    return [_name(obj), phase, _age_only(obj, now)]


def _node_status(node: Obj) -> str:
    ready = [c for c in _dicts(node, "status", "conditions") if c.get("type") == "Ready"]
    parts = ["Unknown"] if not ready else ["Ready" if ready[-1].get("status") == "True" else "NotReady"]
    if _get(node, "spec", "unschedulable") is True:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _node_roles(node: Obj) -> str:
    roles: set[str] = set()
    for key, value in _map(node, "metadata", "labels").items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(_str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Obj, type_: str) -> str:
    for address in _dicts(node, "status", "addresses"):
        if address.get("type") == type_:
            return _str(address.get("address"))
    return "<none>"


@_printer(
    ("", "nodes"),
    columns=[
        _NAME,
        _col("Status", description="The status of the node."),
        _col("Roles", description="The roles of the node."),
        _AGE,
        _col("Version", description="Kubelet version reported by the node."),
        _col("Internal-IP", description="The internal IP address of the node.", wide=True),
        _col("External-IP", description="The external IP address of the node.", wide=True),
        _col("OS-Image", description="OS image reported by the node.", wide=True),
        _col("Kernel-Version", description="Kernel version reported by the node.", wide=True),
        _col("Container-Runtime", description="Container runtime version reported by the node.", wide=True),
    ],
)
def _node_row(obj: Obj, now: datetime) -> list[Any]:
    info = _map(obj, "status", "nodeInfo")
    return [
        _name(obj),
        _node_status(obj),
        _node_roles(obj),
        _age_only(obj, now),
        _str(info.get("kubeletVersion")),
        _node_address(obj, "InternalIP"),
        _node_address(obj, "ExternalIP"),
        _str(info.get("osImage")) or "<unknown>",
        _str(info.get("kernelVersion")) or "<unknown>",
        _str(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


@_printer(
    ("coordination.k8s.io", "leases"),
    columns=[_NAME, _col("Holder", description="The identity of the holder of the lease."), _AGE],
)
def _lease_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _str(_get(obj, "spec", "holderIdentity")), _age_only(obj, now)]


# --------------------------------------------------------------------------------------------------------
# Events (core/v1 and events.k8s.io/v1 share one printer, as in kube-apiserver)


def _first(obj: Obj, *keys: str) -> Any:
    for key in keys:
        value = obj.get(key)
        if value not in (None, "", 0, {}):
            return value
    return None


def _event_source(event: Obj) -> str:
    source = _map(event, "source") or _map(event, "deprecatedSource")
    component = _str(source.get("component")) or _str(event.get("reportingController"))
    instance = _str(source.get("host")) or _str(event.get("reportingInstance"))
    if not component:
        return ""
    return f"{component}, {instance}" if instance else component


@_printer(
    ("", "events"),
    ("events.k8s.io", "events"),
    columns=[
        _col(
            "Last Seen",
            description="The time at which the most recent occurrence of this event was recorded.",
        ),
        _col("Type", description="Type of this event (Normal, Warning)."),
        _col("Reason", description="A short, machine understandable string for the transition."),
        _col("Object", description="The object that this event is about."),
        _col("Subobject", description="The field of the object the event is about.", wide=True),
        _col("Source", description="The component reporting this event.", wide=True),
        _col("Message", description="A human-readable description of the status of this operation."),
        _col("First Seen", description="The time at which the event was first recorded.", wide=True),
        _col("Count", description="The number of times this event has occurred.", wide=True),
        Column("Name", "string", "name", _NAME.description, 1),
    ],
)
def _event_row(obj: Obj, now: datetime) -> list[Any]:
    first_time = _first(obj, "firstTimestamp", "deprecatedFirstTimestamp") or obj.get("eventTime")
    first_seen = _since(first_time, now)
    last_time = _first(obj, "lastTimestamp", "deprecatedLastTimestamp")
    last_seen = _since(last_time, now) if last_time else first_seen
    count = _int(_first(obj, "count", "deprecatedCount"))
    series = obj.get("series")
    if isinstance(series, Mapping):
        last_seen = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = _map(obj, "involvedObject") or _map(obj, "regarding")
    kind, name = _str(involved.get("kind")).lower(), _str(involved.get("name"))
    message = _str(_first(obj, "message", "note"))
    return [
        last_seen,
        _str(obj.get("type")),
        _str(obj.get("reason")),
        f"{kind}/{name}" if name else kind,
        _str(involved.get("fieldPath")),
        _event_source(obj),
        message.strip(),
        first_seen,
        count,
        _name(obj),
    ]


# --------------------------------------------------------------------------------------------------------
# Storage, autoscaling and policy


def _claim_class(claim: Obj) -> str:
    beta = _get(claim, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class")
    return _str(beta) if beta is not None else _str(_get(claim, "spec", "storageClassName"))


@_printer(
    ("", "persistentvolumeclaims"),
    columns=[
        _NAME,
        _col("Status", description="The phase of the claim."),
        _col("Volume", description="The volume bound to this claim."),
        _col("Capacity", description="The actual resources of the underlying volume."),
        _col("Access Modes", description="The access modes of the underlying volume."),
        _col("StorageClass", description="The storage class required by the claim."),
        _col("VolumeAttributesClass", description="The VolumeAttributesClass used by the claim."),
        _AGE,
        _col("VolumeMode", description="The type of volume required by the claim.", wide=True),
    ],
)
def _pvc_row(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else _str(status.get("phase"))
    bound = bool(_str(spec.get("volumeName")))
    return [
        _name(obj),
        phase,
        _str(spec.get("volumeName")),
        _str(_get(status, "capacity", "storage")) if bound else "",
        _access_modes(_strs(status, "accessModes")) if bound else "",
        _claim_class(obj),
        _str(spec.get("volumeAttributesClassName")) or "<unset>",
        _age_only(obj, now),
        _str(spec.get("volumeMode")) or "<unset>",
    ]


@_printer(
    ("", "persistentvolumes"),
    columns=[
        _NAME,
        _col("Capacity", description="The capacity of the volume."),
        _col("Access Modes", description="The ways the volume can be mounted."),
        _col("Reclaim Policy", description="What happens to the volume when released from its claim."),
        _col("Status", description="The phase of the volume."),
        _col("Claim", description="The claim bound to this volume."),
        _col("StorageClass", description="The storage class the volume belongs to."),
        _col("VolumeAttributesClass", description="The VolumeAttributesClass the volume belongs to."),
        _col("Reason", description="The reason for a failure, if any."),
        _AGE,
        _col("VolumeMode", description="Whether the volume is a filesystem or a block device.", wide=True),
    ],
)
def _pv_row(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    claim = _map(spec, "claimRef")
    beta = _get(obj, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class")
    return [
        _name(obj),
        _str(_get(spec, "capacity", "storage")),
        _access_modes(_strs(spec, "accessModes")),
        _str(spec.get("persistentVolumeReclaimPolicy")),
        "Terminating" if _get(obj, "metadata", "deletionTimestamp") else _str(status.get("phase")),
        f"{_str(claim.get('namespace'))}/{_str(claim.get('name'))}" if claim else "",
        _str(beta) if beta is not None else _str(spec.get("storageClassName")),
        _str(spec.get("volumeAttributesClassName")) or "<unset>",
        _str(status.get("reason")),
        _age_only(obj, now),
        _str(spec.get("volumeMode")) or "<unset>",
    ]


def _metric_target(
    target: Mapping[str, Any], current: Mapping[str, Any], *, utilization: bool, avg_suffix: bool
) -> str:
    if utilization and target.get("averageValue") is None:
        now_value = current.get("averageUtilization")
        shown = f"{_int(now_value)}%" if now_value is not None else "<unknown>"
        wanted = target.get("averageUtilization")
        return f"{shown}/{_int(wanted)}%" if wanted is not None else f"{shown}/<auto>"
    key = "averageValue" if target.get("averageValue") is not None else "value"
    shown = _str(current.get(key)) or "<unknown>"
    suffix = " (avg)" if key == "averageValue" and avg_suffix else ""
    return f"{shown}/{_str(target.get(key))}{suffix}"


def _hpa_metric(spec: Mapping[str, Any], status: Mapping[str, Any] | None) -> str:
    kind = _str(spec.get("type"))
    field_name = kind[:1].lower() + kind[1:]  # Resource -> resource, ContainerResource -> containerResource
    source = _map(spec, field_name)
    current = _map(status, field_name, "current") if status else {}
    target = _map(source, "target")
    if kind in ("Resource", "ContainerResource"):
        shown = _metric_target(target, current, utilization=True, avg_suffix=False)
        return f"{_str(source.get('name'))}: {shown}"
    return _metric_target(target, current, utilization=False, avg_suffix=kind in ("Object", "External"))


def _hpa_targets(hpa: Obj) -> str:
    spec, status = _map(hpa, "spec"), _map(hpa, "status")
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        current = status.get("currentCPUUtilizationPercentage")
        shown = f"{_int(current)}%" if current is not None else "<unknown>"
        return f"cpu: {shown}/{_int(spec.get('targetCPUUtilizationPercentage'))}%"
    metrics = _dicts(spec, "metrics")
    statuses = _dicts(status, "currentMetrics")
    texts = [_hpa_metric(m, statuses[i] if i < len(statuses) else None) for i, m in enumerate(metrics)]
    if not texts:
        return "<none>"
    joined = ", ".join(texts[:2])
    return f"{joined} + {len(texts) - 2} more..." if len(texts) > 2 else joined


@_printer(
    ("autoscaling", "horizontalpodautoscalers"),
    columns=[
        _NAME,
        _col("Reference", description="The target resource being scaled."),
        _col("Targets", description="Current and target values of the metrics."),
        _col("MinPods", description="The lower limit for the number of pods."),
        _col("MaxPods", "integer", "The upper limit for the number of pods."),
        _col("Replicas", "integer", "Current number of pods managed by this autoscaler."),
        _AGE,
    ],
)
def _hpa_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj, "spec")
    ref = _map(spec, "scaleTargetRef")
    minimum = spec.get("minReplicas")
    return [
        _name(obj),
        f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}",
        _hpa_targets(obj),
        str(_int(minimum)) if minimum is not None else "<unset>",
        _int(spec.get("maxReplicas")),
        _int(_get(obj, "status", "currentReplicas")),
        _age_only(obj, now),
    ]


@_printer(
    ("policy", "poddisruptionbudgets"),
    columns=[
        _NAME,
        _col("Min Available", description="The minimum number of pods that must be available."),
        _col("Max Unavailable", description="The maximum number of pods that may be unavailable."),
        _col("Allowed Disruptions", "integer", "Number of pod disruptions that are currently allowed."),
        _AGE,
    ],
)
def _pdb_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj, "spec")
    minimum, maximum = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(obj),
        _str(minimum) if minimum is not None else "N/A",
        _str(maximum) if maximum is not None else "N/A",
        _int(_get(obj, "status", "disruptionsAllowed")),
        _age_only(obj, now),
    ]


# --------------------------------------------------------------------------------------------------------
# Public API: built-ins


_DEFAULT_COLUMNS = (_NAME, _CREATED_AT)


def has_printer(group: str, resource: str) -> bool:
    """Whether ``(group, resource)`` has a dedicated printer (otherwise the default Name/Created At)."""
    return (group, resource) in _PRINTERS


def columns_for(group: str, resource: str) -> list[Column]:
    """The column definitions kube-apiserver serves for a built-in resource (``""`` is the core group)."""
    printer = _PRINTERS.get((group, resource))
    return list(printer.columns if printer else _DEFAULT_COLUMNS)


def row_for(group: str, resource: str, obj: Obj, now: datetime) -> list[Any]:
    """The cells of ``obj`` in the order of ``columns_for(group, resource)``; ages are relative to ``now``."""
    printer = _PRINTERS.get((group, resource))
    if printer is None:
        return [_name(obj), _rfc3339(_get(obj, "metadata", "creationTimestamp"))]
    return printer.row(obj, now)


# --------------------------------------------------------------------------------------------------------
# Public API: custom resources


_CRD_DEFAULT_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": _AGE.description,
    }
]


def _effective_printer_columns(
    printer_columns: Sequence[Mapping[str, Any]] | None,
) -> Sequence[Mapping[str, Any]]:
    """A CRD version without ``additionalPrinterColumns`` is served with a single date column, Age."""
    return printer_columns if printer_columns else _CRD_DEFAULT_COLUMNS


def crd_columns(printer_columns: Sequence[Mapping[str, Any]] | None) -> list[Column]:
    """Name followed by one column per ``additionalPrinterColumns`` entry (or Age when there are none)."""
    columns = [_NAME]
    for spec in _effective_printer_columns(printer_columns):
        path = _str(spec.get("jsonPath"))
        description = _str(spec.get("description")) or (
            f"Custom resource definition column (in JSONPath format): {path}"
        )
        columns.append(
            Column(
                name=_str(spec.get("name")),
                type=_str(spec.get("type")) or "string",
                format=_str(spec.get("format")),
                description=description,
                priority=_int(spec.get("priority")),
            )
        )
    return columns


def crd_row(printer_columns: Sequence[Mapping[str, Any]] | None, obj: Obj, now: datetime) -> list[Any]:
    """The cells of a custom resource: its name, then each column's first JSONPath match (None if none)."""
    cells: list[Any] = [_name(obj)]
    for spec in _effective_printer_columns(printer_columns):
        try:
            matches = jsonpath.compile(_str(spec.get("jsonPath"))).find(obj)
        except JSONPathError:
            matches = []
        type_ = _str(spec.get("type")) or "string"
        cells.append(_crd_cell(type_, matches[0], now) if matches else None)
    return cells


def _crd_cell(type_: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if type_ == "string":
        return _jsonpath_text(value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if type_ == "integer":
        return int(value) if is_number else None
    if type_ == "number":
        return float(value) if is_number else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date" and isinstance(value, str):
        moment = _parse_time(value)
        return "<invalid>" if moment is None else human_duration((_aware(now) - moment).total_seconds())
    return None


def _jsonpath_text(value: Any) -> str:
    """A value as ``kubectl -o jsonpath`` prints it: scalars bare, objects and arrays as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# --------------------------------------------------------------------------------------------------------
# Public API: the Table document


def _row_object(obj: Obj, include_object: str) -> Any:
    if include_object == "Object":
        return dict(obj)
    if include_object == "Metadata":
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(_map(obj, "metadata")),
        }
    return None


def build_table(
    columns: Sequence[Column],
    rows: Iterable[tuple[list[Any], Obj]],
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
) -> dict[str, Any]:
    """The ``meta.k8s.io/v1`` Table document for ``rows`` of ``(cells, object)``.

    ``include_object`` is the ``includeObject`` query parameter: ``Metadata`` (kubectl's default) attaches a
    ``PartialObjectMetadata`` to each row, ``Object`` the whole object and ``None`` a null. Like
    kube-apiserver, ``resourceVersion`` and ``continue`` are left out of ``metadata`` when empty. Raises
    ``ValueError`` for any other ``include_object``.
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise ValueError(
            f"includeObject must be one of {', '.join(INCLUDE_OBJECT_VALUES)}, not {include_object!r}"
        )
    metadata: dict[str, str] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [column.to_json() for column in columns],
        "rows": [{"cells": list(cells), "object": _row_object(obj, include_object)} for cells, obj in rows],
    }
