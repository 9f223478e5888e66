"""Static validation of a Rollout spec: what makes the controller report ``InvalidSpec`` and stop.

The CRD schema only checks types; the rules that span fields (one strategy, selector matches the
template, distinct services, surge and unavailable not both zero, sane steps) live here, checked without
looking at any other object (Services and AnalysisTemplates are the controller's business). Upstream
reports the *first* error in the InvalidSpec condition as ``The Rollout "x" is invalid: <field error>``
and users search for those words, so checks run in upstream's order and every error is worded like
Kubernetes' ``field.Error`` (research/rollouts.md §2.2; behaviour of upstream
``pkg/apis/rollouts/validation``), including upstream's own field paths such as ``spec.strategy.maxSurge``
(without ``canary``).

Pod-template validation is limited to what ReplicaSets need (labels, containers, restart policy); the
API server validates the pods themselves when the ReplicaSet creates them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tugboat.kube import errors as kube_errors
from tugboat.kube import selectors
from tugboat.rollouts import conditions, defaults

INVALID_SET_WEIGHT = "SetWeight needs to be between 0 and {}"
INVALID_DURATION = "Duration needs to be greater than 0"
INVALID_MAX_SURGE_MAX_UNAVAILABLE = "MaxSurge and MaxUnavailable both can not be zero"
INVALID_STEP = (
    "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause"
)
INVALID_STRATEGY = "Multiple Strategies can not be listed"
DUPLICATED_SERVICES_BLUE_GREEN = (
    "This rollout uses the same service for the active and preview services, "
    "but two different services are required."
)
DUPLICATED_SERVICES_CANARY = (
    "This rollout uses the same service for the stable and canary services, "
    "but two different services are required."
)
INVALID_ANTI_AFFINITY_STRATEGY = "AntiAffinity must have exactly one strategy listed"
INVALID_ANTI_AFFINITY_WEIGHT = "AntiAffinity weight must be between 1-100"
SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT = (
    "This rollout's revision history limit can not be smaller than the rollout's scale down limit"
)
INVALID_TRAFFIC_ROUTING = "Canary service and Stable service must to be set to use Traffic Routing"
INVALID_CANARY_SCALE_DOWN_DELAY = "Canary scaleDownDelaySeconds can only be used with traffic routing"
INVALID_CANARY_DYNAMIC_STABLE_SCALE = "Canary dynamicStableScale can only be used with traffic routing"
INVALID_DYNAMIC_STABLE_SCALE_WITH_DELAY = (
    "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds"
)
INVALID_MAX_TRAFFIC_WEIGHT = "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins"
INVALID_PING_PONG = "Ping service and Pong service must to be set to use Ping-Pong feature"
DUPLICATED_PING_PONG = (
    "This rollout uses the same service for the ping and pong services, "
    "but two different services are required."
)
MISSED_ALB_ROOT_SERVICE = (
    "Root service field is required for the configuration with ALB and ping-pong feature enabled"
)
PING_PONG_ROUTERS_ONLY = "Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only"
INVALID_SET_CANARY_SCALE = "SetCanaryScale requires TrafficRouting to be set"
INVALID_SET_HEADER_ROUTE = "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix"
INVALID_SET_MIRROR_ROUTE = "SetMirrorRoute requires TrafficRouting, supports Istio and Plugins"
STRING_MATCH_MULTIPLE = "StringMatch match value must have exactly one of the following: exact, regex, prefix"
STRING_MATCH_MISSING = (
    "StringMatch value missed, match value must have one of the following: exact, regex, prefix"
)
HEADER_ROUTE_ALB_EXACT_ONLY = "SetHeaderRoute match value invalid. ALB supports 'exact' value only"
ROUTE_NOT_IN_MANAGED_ROUTES = (
    "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes"
)
EXPERIMENT_WEIGHT_WITHOUT_ROUTING = (
    "Experiment template weight cannot be set unless TrafficRouting is enabled"
)
EXPERIMENT_WEIGHT_UNSUPPORTED = (
    "Experiment template weight is only available for TrafficRouting with SMI, ALB, Istio and Plugins "
    "at this time"
)
EMPTY_SELECTOR = "empty selector is invalid for deployment"
SELECTOR_MISMATCH = "`selector` does not match template `labels`"
NON_NEGATIVE = "must be greater than or equal to 0"

# Routers for which canaryService and stableService are both required.
_SERVICE_ROUTERS = ("smi", "apisix", "ambassador", "nginx", "appMesh", "traefik")

_OMIT = object()


@dataclass(frozen=True)
class FieldError:
    """One problem, rendered like Kubernetes' ``field.Error``: ``<path>: <Type>[: <value>][: <detail>]``."""

    path: str
    type: str  # "Invalid value", "Required value", "Unsupported value", "Forbidden", "Internal error"
    value: Any = _OMIT
    detail: str = ""

    def __str__(self) -> str:
        body = self.type
        if self.value is not _OMIT:
            body = f"{body}: {render_value(self.value)}"
        if self.detail:
            body = f"{body}: {self.detail}"
        return f"{self.path}: {body}"


def render_value(value: Any) -> str:
    """A bad value as ``field.Error`` prints it: numbers and booleans plain, strings Go-quoted, anything
    else as compact JSON (Go's ``json.Marshal``: map keys sorted, ``<>&`` escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "Invalid value", value, detail)


def _required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "Required value", detail=detail)


def _missing(path: str, field: str) -> FieldError:
    return _required(path, conditions.MISSING_FIELD_MESSAGE.format(field))


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ------------------------------------------------------------------------------------------ entry


def validate(ro: Mapping[str, Any]) -> str | None:
    """The InvalidSpec message for the first problem of ``ro``, or ``None`` when the spec is valid."""
    found = field_errors(ro)
    if not found:
        return None
    name = str(_dict(ro.get("metadata")).get("name") or "")
    return conditions.invalid_spec_message(name, str(found[0]))


def field_errors(ro: Mapping[str, Any]) -> list[FieldError]:
    """Every problem of ``ro``'s spec, in upstream's order (the first is the one reported)."""
    spec = defaults.spec(ro)
    found: list[FieldError] = []
    replicas = defaults.replicas(ro)
    if replicas < 0:
        found.append(_invalid("spec.replicas", replicas, NON_NEGATIVE))
    found.extend(_selector_and_template(spec))
    min_ready = _int(spec.get("minReadySeconds")) or 0
    if min_ready < 0:
        found.append(_invalid("spec.minReadySeconds", min_ready, NON_NEGATIVE))
    history = defaults.revision_history_limit(ro)
    if history < 0:
        found.append(_invalid("spec.revisionHistoryLimit", history, NON_NEGATIVE))
    deadline = defaults.progress_deadline(ro)
    if deadline < 0:
        found.append(_invalid("spec.progressDeadlineSeconds", deadline, NON_NEGATIVE))
    if deadline <= min_ready:
        found.append(
            _invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
        )
    found.extend(_strategy(ro))
    return found


# ------------------------------------------------------------------------------- selector, template


def _selector_and_template(spec: Mapping[str, Any]) -> list[FieldError]:
    found: list[FieldError] = []
    workload_ref = spec.get("workloadRef") is not None
    raw_selector = spec.get("selector")
    template = _dict(spec.get("template"))
    metadata = _dict(template.get("metadata"))
    if not workload_ref:
        if raw_selector is None:
            found.append(_missing("spec.selector", ".spec.selector"))
        elif not _dict(raw_selector).get("matchLabels") and not _dict(raw_selector).get("matchExpressions"):
            found.append(_invalid("spec.selector", raw_selector, EMPTY_SELECTOR))
    elif metadata.get("labels") or metadata.get("annotations"):
        detail = "template must be empty for workload reference rollout"
        found.append(FieldError("spec.template", "Internal error", detail=detail))
    try:
        selector = selectors.from_label_selector(raw_selector)
    except kube_errors.SelectorError as exc:
        found.append(_invalid("spec.selector", raw_selector, f"invalid label selector: {exc}"))
        return found
    if not workload_ref:
        found.extend(_template(template, selector))
    return found


def _template(template: Mapping[str, Any], selector: selectors.LabelSelector) -> list[FieldError]:
    found: list[FieldError] = []
    labels = _dict(_dict(template.get("metadata")).get("labels"))
    if not selector.empty and not selector.matches({str(k): str(v) for k, v in labels.items()}):
        found.append(_invalid("spec.template.metadata.labels", dict(labels) or None, SELECTOR_MISMATCH))
    pod = _dict(template.get("spec"))
    containers = _list(pod.get("containers"))
    if not containers:
        found.append(_required("spec.template.spec.containers"))
    for i, container in enumerate(containers):
        if not _dict(container).get("name"):
            found.append(_required(f"spec.template.spec.containers[{i}].name"))
        if not _dict(container).get("image"):
            found.append(_required(f"spec.template.spec.containers[{i}].image"))
    restart_policy = pod.get("restartPolicy") or "Always"
    if restart_policy != "Always":
        found.append(
            FieldError(
                "spec.template.spec.restartPolicy",
                "Unsupported value",
                restart_policy,
                'supported values: "Always"',
            )
        )
    if pod.get("activeDeadlineSeconds") is not None:
        found.append(
            FieldError(
                "spec.template.spec.activeDeadlineSeconds",
                "Forbidden",
                detail="activeDeadlineSeconds in ReplicaSet is not Supported",
            )
        )
    return found


# ------------------------------------------------------------------------------------------ strategy


def _strategy(ro: Mapping[str, Any]) -> list[FieldError]:
    blue_green = defaults.blue_green(ro)
    canary = defaults.canary(ro)
    if blue_green is None and canary is None:
        return [_missing("spec.strategy.strategy", ".spec.strategy.canary or .spec.strategy.blueGreen")]
    if blue_green is not None and canary is not None:
        return [_invalid("spec.strategy.strategy", "blueGreen: true canary: true", INVALID_STRATEGY)]
    if blue_green is not None:
        return _blue_green(ro, blue_green)
    assert canary is not None
    return _canary(ro, canary)


def _blue_green(ro: Mapping[str, Any], bg: Mapping[str, Any]) -> list[FieldError]:
    found: list[FieldError] = []
    active = bg.get("activeService") or ""
    if not active:
        found.append(
            _missing("spec.strategy.blueGreen.activeService", ".spec.strategy.blueGreen.activeService")
        )
    elif active == (bg.get("previewService") or ""):
        found.append(_invalid("spec.strategy.activeService", active, DUPLICATED_SERVICES_BLUE_GREEN))
    limit = _int(bg.get("scaleDownDelayRevisionLimit"))
    if limit is not None and defaults.revision_history_limit(ro) < limit:
        path = "spec.strategy.scaleDownDelayRevisionLimit"
        found.append(_invalid(path, limit, SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT))
    found.extend(_anti_affinity(bg.get("antiAffinity")))
    return found


def _anti_affinity(raw: Any) -> list[FieldError]:
    if raw is None:
        return []
    anti = _dict(raw)
    preferred = anti.get("preferredDuringSchedulingIgnoredDuringExecution")
    required = anti.get("requiredDuringSchedulingIgnoredDuringExecution")
    found: list[FieldError] = []
    if (preferred is None) == (required is None):
        has_preferred, has_required = _go_bool(preferred is not None), _go_bool(required is not None)
        shown = (
            f"antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: {has_preferred} "
            f"antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: {has_required}"
        )
        found.append(_invalid("spec.strategy.antiAffinity", shown, INVALID_ANTI_AFFINITY_STRATEGY))
    if preferred is not None:
        weight = _int(_dict(preferred).get("weight")) or 0
        if not 1 <= weight <= 100:
            found.append(_invalid("spec.strategy.antiAffinity.weight", weight, INVALID_ANTI_AFFINITY_WEIGHT))
    return found


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def _surge_value(value: int | str) -> int:
    """An IntOrString as upstream's validation reads it: ``"N%"`` is N, other strings their integer (or 0)."""
    if isinstance(value, int):
        return value
    text = value[:-1] if value.endswith("%") else value
    try:
        return int(text)
    except ValueError:
        return 0


def _requires_both_services(canary: Mapping[str, Any], routing: Mapping[str, Any] | None) -> bool:
    if routing is None:
        return False
    ping_pong = canary.get("pingPong") is not None
    if routing.get("alb") is not None and not ping_pong:
        return True
    istio = routing.get("istio")
    if istio is not None and _dict(istio).get("destinationRule") is None and not ping_pong:
        return True
    return any(routing.get(name) is not None for name in _SERVICE_ROUTERS)


def _canary(ro: Mapping[str, Any], canary: Mapping[str, Any]) -> list[FieldError]:
    found: list[FieldError] = []
    routing = defaults.traffic_routing(ro)
    surge = defaults.max_surge_value(ro)
    if _surge_value(surge) == 0 and _surge_value(defaults.max_unavailable_value(ro)) == 0:
        found.append(_invalid("spec.strategy.maxSurge", surge, INVALID_MAX_SURGE_MAX_UNAVAILABLE))
    canary_service = canary.get("canaryService") or ""
    stable_service = canary.get("stableService") or ""
    if canary_service and stable_service and canary_service == stable_service:
        found.append(_invalid("spec.strategy.stableService", stable_service, DUPLICATED_SERVICES_CANARY))
    found.extend(_ping_pong(canary, routing))
    if _requires_both_services(canary, routing):
        if not stable_service:
            found.append(_invalid("spec.strategy.stableService", stable_service, INVALID_TRAFFIC_ROUTING))
        if not canary_service:
            found.append(_invalid("spec.strategy.canaryService", canary_service, INVALID_TRAFFIC_ROUTING))
    found.extend(_canary_scaling(canary, routing))
    for i, step in enumerate(_list(canary.get("steps"))):
        found.extend(_step(ro, routing, i, _dict(step)))
    found.extend(_anti_affinity(canary.get("antiAffinity")))
    return found


def _ping_pong(canary: Mapping[str, Any], routing: Mapping[str, Any] | None) -> list[FieldError]:
    if canary.get("pingPong") is None:
        return []
    ping_pong = _dict(canary.get("pingPong"))
    found: list[FieldError] = []
    alb = routing.get("alb") if routing is not None else None
    if routing is not None and alb is None and routing.get("istio") is None and not routing.get("plugins"):
        found.append(_invalid("spec.strategy.trafficRouting.alb", None, PING_PONG_ROUTERS_ONLY))
    ping = ping_pong.get("pingService") or ""
    pong = ping_pong.get("pongService") or ""
    if not ping:
        found.append(_invalid("spec.strategy.pingPong.pingService", ping, INVALID_PING_PONG))
    if not pong:
        found.append(_invalid("spec.strategy.pingPong.pongService", pong, INVALID_PING_PONG))
    if ping == pong:
        found.append(_invalid("spec.strategy.pingPong.pingService", ping, DUPLICATED_PING_PONG))
    if alb is not None and not _dict(alb).get("rootService"):
        found.append(_invalid("spec.strategy.trafficRouting.alb.rootService", "", MISSED_ALB_ROOT_SERVICE))
    return found


def _canary_scaling(canary: Mapping[str, Any], routing: Mapping[str, Any] | None) -> list[FieldError]:
    found: list[FieldError] = []
    delay = canary.get("scaleDownDelaySeconds")
    dynamic = canary.get("dynamicStableScale") is True
    if routing is None:
        if delay is not None:
            found.append(
                _invalid("spec.strategy.scaleDownDelaySeconds", delay, INVALID_CANARY_SCALE_DOWN_DELAY)
            )
        if dynamic:
            found.append(
                _invalid("spec.strategy.dynamicStableScale", True, INVALID_CANARY_DYNAMIC_STABLE_SCALE)
            )
        return found
    if delay is not None and dynamic:
        found.append(
            _invalid("spec.strategy.dynamicStableScale", True, INVALID_DYNAMIC_STABLE_SCALE_WITH_DELAY)
        )
    max_weight = routing.get("maxTrafficWeight")
    if max_weight is not None and routing.get("nginx") is None and not routing.get("plugins"):
        path = "spec.strategy.trafficRouting.maxTrafficWeight"
        found.append(_invalid(path, max_weight, INVALID_MAX_TRAFFIC_WEIGHT))
    return found


_STEP_KINDS = (
    "experiment",
    "pause",
    "setWeight",
    "analysis",
    "setCanaryScale",
    "setHeaderRoute",
    "setMirrorRoute",
    "plugin",
)


def _step(
    ro: Mapping[str, Any],
    routing: Mapping[str, Any] | None,
    index: int,
    step: Mapping[str, Any],
) -> list[FieldError]:
    path = f"spec.strategy.steps[{index}]"
    found: list[FieldError] = []
    has = {kind: step.get(kind) is not None for kind in _STEP_KINDS}
    if sum(has[k] for k in ("setWeight", "pause", "experiment", "analysis")) > 1:
        shown = " ".join(
            f"step.{label}: {_go_bool(has[key])}"
            for label, key in (
                ("Experiment", "experiment"),
                ("Pause", "pause"),
                ("SetWeight", "setWeight"),
                ("Analysis", "analysis"),
            )
        )
        found.append(_invalid(path, shown, INVALID_STEP))
    if not any(has.values()):
        # upstream prints "<kind> == nil" for each kind here, so every flag reads true
        shown = " ".join(f"step.{kind[0].upper()}{kind[1:]}: true" for kind in _STEP_KINDS)
        found.append(_invalid(path, shown, INVALID_STEP))
    max_weight = defaults.max_traffic_weight(ro)
    weight = step.get("setWeight")
    if weight is not None and (_int(weight) is None or not 0 <= weight <= max_weight):
        found.append(_invalid(f"{path}.setWeight", weight, INVALID_SET_WEIGHT.format(max_weight)))
    if has["pause"]:
        seconds = defaults.pause_duration_seconds(_dict(step.get("pause")))
        if seconds is not None and seconds < 0:
            found.append(_invalid(f"{path}.pause.duration", seconds, INVALID_DURATION))
    if has["setCanaryScale"] and routing is None:
        found.append(_required("spec.strategy.trafficRouting", INVALID_SET_CANARY_SCALE))
    found.extend(_step_routes(routing, path, step))
    found.extend(_experiment_weights(routing, path, step))
    return found


def _step_routes(routing: Mapping[str, Any] | None, path: str, step: Mapping[str, Any]) -> list[FieldError]:
    found: list[FieldError] = []
    header = step.get("setHeaderRoute")
    mirror = step.get("setMirrorRoute")
    if header is not None:
        supported = routing is not None and (
            any(routing.get(name) is not None for name in ("istio", "alb", "apisix"))
            or bool(routing.get("plugins"))
        )
        if not supported:
            found.append(_invalid(f"{path}.setHeaderRoute", header, INVALID_SET_HEADER_ROUTE))
        else:
            assert routing is not None
            for j, match in enumerate(_list(_dict(header).get("match"))):
                match_path = f"{path}.setHeaderRoute.match[{j}]"
                value = _dict(match).get("headerValue")
                if routing.get("alb") is not None:
                    found.extend(_alb_match(value, match_path))
                else:
                    found.extend(_string_match(value, match_path))
    if mirror is not None:
        if routing is None or (routing.get("istio") is None and not routing.get("plugins")):
            found.append(_invalid(f"{path}.setMirrorRoute", mirror, INVALID_SET_MIRROR_ROUTE))
        for j, match in enumerate(_list(_dict(mirror).get("match"))):
            match_path = f"{path}.setMirrorRoute.match[{j}]"
            for key in ("method", "path"):
                if _dict(match).get(key) is not None:
                    found.extend(_string_match(_dict(match)[key], match_path))
    if routing is not None and (header is not None or mirror is not None):
        managed = routing.get("managedRoutes")
        if managed is None:
            found.append(
                _missing(
                    "spec.strategy.trafficRouting.managedRoutes",
                    "spec.strategy.canary.trafficRouting.managedRoutes",
                )
            )
        else:
            names = {_dict(route).get("name") for route in _list(managed)}
            for key, route in (("setHeaderRoute", header), ("setMirrorRoute", mirror)):
                if route is not None and _dict(route).get("name") not in names:
                    name = _dict(route).get("name") or ""
                    found.append(_invalid(f"{path}.{key}", name, ROUTE_NOT_IN_MANAGED_ROUTES))
    return found


def _string_match(value: Any, path: str) -> list[FieldError]:
    if value is None:
        return [_invalid(path, None, STRING_MATCH_MISSING)]
    match = _dict(value)
    count = sum(bool(match.get(key)) for key in ("exact", "regex", "prefix"))
    if count > 1:
        return [_invalid(path, value, STRING_MATCH_MULTIPLE)]
    if count == 0:
        return [_invalid(path, value, STRING_MATCH_MISSING)]
    return []


def _alb_match(value: Any, path: str) -> list[FieldError]:
    if value is None:
        return [_invalid(path, None, STRING_MATCH_MISSING)]
    match = _dict(value)
    if not match.get("exact") or match.get("regex") or match.get("prefix"):
        return [_invalid(path, value, HEADER_ROUTE_ALB_EXACT_ONLY)]
    return []


def _experiment_weights(
    routing: Mapping[str, Any] | None, path: str, step: Mapping[str, Any]
) -> list[FieldError]:
    found: list[FieldError] = []
    templates: Sequence[Any] = _list(_dict(step.get("experiment")).get("templates"))
    for k, template in enumerate(templates):
        weight = _dict(template).get("weight")
        if weight is None:
            continue
        where = f"{path}.experiment.templates[{k}].weight"
        if routing is None:
            found.append(_invalid(where, weight, EXPERIMENT_WEIGHT_WITHOUT_ROUTING))
        elif not any(routing.get(name) is not None for name in ("alb", "smi", "istio")) and not routing.get(
            "plugins"
        ):
            found.append(_invalid(where, weight, EXPERIMENT_WEIGHT_UNSUPPORTED))
    return found
