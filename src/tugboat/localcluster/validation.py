"""Validation of built-in kinds, with kube-apiserver's field paths and messages.

Why this exists: the local cluster must refuse what a real cluster refuses, or manifests that pass locally
break in production. And it must refuse it in the same words: ``kubectl`` prints the ``Status`` message
verbatim (``Deployment.apps "web" is invalid: spec.selector: Required value``), users search for those
messages, and tests compare them. Controllers also depend on invariants enforced here (a workload's selector
matches its pod template and never changes).

The module is pure and covers what kubectl users and our controllers actually meet, not all of upstream's
validation. It expects objects already passed through ``defaults.apply_defaults`` (e.g. a Job template
without ``restartPolicy`` has been defaulted to ``Always`` and is rejected for it, as upstream does).

Entry points:

- ``validate_object_meta`` — metadata checks for any kind, custom resources included (names, labels,
  annotations);
- ``validate`` — the spec checks of one built-in kind, plus immutability checks when ``old`` is given;
- ``invalid_message`` / ``invalid_status`` — the 422 ``Status`` built from the causes.

Values in messages are rendered the way Go's ``fmt`` prints them upstream (``"x"``, ``map[string]string{…}``,
``v1.LabelSelector{…}``), because those strings are what users see from a real cluster.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

JSONObject = dict[str, Any]

# Cause types (``StatusCause.reason`` on the wire).
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
DUPLICATE = "FieldValueDuplicate"
NOT_FOUND = "FieldValueNotFound"
TOO_LONG = "FieldValueTooLong"

_TYPE_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    FORBIDDEN: "Forbidden",
    DUPLICATE: "Duplicate value",
    NOT_FOUND: "Not found",
    TOO_LONG: "Too long",
}


@dataclass(frozen=True)
class Cause:
    """One validation failure: ``message`` is upstream's error body, without the field path."""

    type: str
    field: str
    message: str

    def to_status_cause(self) -> dict[str, str]:
        """The ``Status.details.causes`` entry (the type travels under the JSON key ``reason``)."""
        return {"reason": self.type, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# --------------------------------------------------------------------------------------------------------
# Rendering values as Go prints them


@dataclass(frozen=True)
class GoValue:
    """A value already rendered as Go's ``%#v`` prints it (maps, slices, structs)."""

    text: str


def go_quote(text: str) -> str:
    """Go's ``%q`` for a string (JSON quoting is the same for everything but rare control characters)."""
    return json.dumps(text, ensure_ascii=False)


def render_value(value: object) -> str:
    """A bad value as upstream's ``field.Error`` prints it."""
    if isinstance(value, GoValue):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_quote(json.dumps(value, sort_keys=True))


def go_string_map(mapping: object) -> GoValue:
    if not isinstance(mapping, dict):
        return GoValue("map[string]string(nil)")
    pairs = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(mapping.items()))
    return GoValue(f"map[string]string{{{pairs}}}")


def go_string_slice(items: object) -> GoValue:
    if not isinstance(items, list):
        return GoValue("[]string(nil)")
    return GoValue("[]string{" + ", ".join(go_quote(str(item)) for item in items) + "}")


def go_label_selector(selector: object) -> GoValue:
    selector = selector if isinstance(selector, dict) else {}
    expressions = selector.get("matchExpressions")
    if isinstance(expressions, list):
        rendered = ", ".join(
            "v1.LabelSelectorRequirement{"
            f"Key:{go_quote(str(expr.get('key', '')))}, Operator:{go_quote(str(expr.get('operator', '')))}, "
            f"Values:{go_string_slice(expr.get('values')).text}}}"
            for expr in expressions
            if isinstance(expr, dict)
        )
        expressions_text = f"[]v1.LabelSelectorRequirement{{{rendered}}}"
    else:
        expressions_text = "[]v1.LabelSelectorRequirement(nil)"
    labels_text = go_string_map(selector.get("matchLabels")).text
    return GoValue(f"v1.LabelSelector{{MatchLabels:{labels_text}, MatchExpressions:{expressions_text}}}")


def go_int_or_string(value: object) -> GoValue:
    if isinstance(value, str):
        return GoValue(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}")
    number = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return GoValue(f'intstr.IntOrString{{Type:0, IntVal:{number}, StrVal:""}}')


# --------------------------------------------------------------------------------------------------------
# Building causes


def _body(cause_type: str, detail: str, *, value: object = None, with_value: bool = False) -> str:
    text = _TYPE_TEXT[cause_type]
    if with_value:
        text = f"{text}: {render_value(value)}"
    return f"{text}: {detail}" if detail else text


def required(field: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, field, _body(REQUIRED, detail))


def forbidden(field: str, detail: str) -> Cause:
    return Cause(FORBIDDEN, field, _body(FORBIDDEN, detail))


def too_long(field: str, detail: str) -> Cause:
    return Cause(TOO_LONG, field, _body(TOO_LONG, detail))


def invalid(field: str, value: object, detail: str) -> Cause:
    return Cause(INVALID, field, _body(INVALID, detail, value=value, with_value=True))


def duplicate(field: str, value: object) -> Cause:
    return Cause(DUPLICATE, field, _body(DUPLICATE, "", value=value, with_value=True))


def not_found(field: str, value: object) -> Cause:
    return Cause(NOT_FOUND, field, _body(NOT_FOUND, "", value=value, with_value=True))


def not_supported(field: str, value: object, supported: Sequence[str]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(item) for item in supported)
    return Cause(NOT_SUPPORTED, field, _body(NOT_SUPPORTED, detail, value=value, with_value=True))


def invalid_message(kind: str, group: str, name: str, causes: Sequence[Cause]) -> str:
    """The ``Status.message`` of a 422: ``Deployment.apps "web" is invalid: [a: …, b: …]``."""
    qualified = f"{kind}.{group}" if group else kind
    head = f"{qualified} {go_quote(name)} is invalid"
    errors = list(dict.fromkeys(str(cause) for cause in causes))
    if not errors:
        return head
    body = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return f"{head}: {body}"


def invalid_status(kind: str, group: str, name: str, causes: Sequence[Cause]) -> JSONObject:
    """The whole 422 ``Status`` object kube-apiserver returns for ``causes``."""
    details: JSONObject = {"name": name, "kind": kind, "causes": [c.to_status_cause() for c in causes]}
    if group:
        details["group"] = group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": invalid_message(kind, group, name, causes),
        "reason": "Invalid",
        "details": details,
        "code": 422,
    }


# --------------------------------------------------------------------------------------------------------
# Names, labels and other identifier formats (k8s.io/apimachinery/pkg/util/validation)

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"

_LABEL_MAX = 63
_SUBDOMAIN_MAX = 253
_ANNOTATIONS_MAX_BYTES = 256 * 1024
_DATA_MAX_BYTES = 1024 * 1024
_CRONJOB_NAME_MAX = 52


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """Upstream's ``RegexError`` text, down to its doubled space between examples."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _matches(fmt: str, value: str) -> bool:
    return re.fullmatch(fmt, value) is not None


def dns1123_label_problems(value: str) -> list[str]:
    problems = [_max_len(_LABEL_MAX)] if len(value) > _LABEL_MAX else []
    if not _matches(_DNS1123_LABEL_FMT, value):
        problems.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return problems


def dns1123_subdomain_problems(value: str) -> list[str]:
    problems = [_max_len(_SUBDOMAIN_MAX)] if len(value) > _SUBDOMAIN_MAX else []
    if not _matches(_DNS1123_SUBDOMAIN_FMT, value):
        problems.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return problems


def dns1035_label_problems(value: str) -> list[str]:
    problems = [_max_len(_LABEL_MAX)] if len(value) > _LABEL_MAX else []
    if not _matches(_DNS1035_LABEL_FMT, value):
        problems.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return problems


def qualified_name_problems(value: str) -> list[str]:
    """A label or annotation key: an optional DNS-subdomain prefix and ``/``, then a name of ≤63 chars."""
    parts = value.split("/")
    if len(parts) > 2:
        message = "a qualified name " + _QUALIFIED_NAME_MSG
        return [
            regex_error(message, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    problems: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems.extend("prefix part " + problem for problem in dns1123_subdomain_problems(prefix))
    if not name:
        return [*problems, "name part must be non-empty"]
    if len(name) > _LABEL_MAX:
        problems.append("name part " + _max_len(_LABEL_MAX))
    if not _matches(_QUALIFIED_NAME_FMT, name):
        message = "name part " + _QUALIFIED_NAME_MSG
        problems.append(regex_error(message, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return problems


def label_value_problems(value: str) -> list[str]:
    problems = [_max_len(_LABEL_MAX)] if len(value) > _LABEL_MAX else []
    if not _matches(_LABEL_VALUE_FMT, value):
        problems.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return problems


def config_key_problems(key: str) -> list[str]:
    """A ConfigMap or Secret data key."""
    problems = [_max_len(_SUBDOMAIN_MAX)] if len(key) > _SUBDOMAIN_MAX else []
    if not _matches(_CONFIG_KEY_FMT, key):
        problems.append(regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        problems.append("must not be '.'")
    elif key == "..":
        problems.append("must not be '..'")
    elif key.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def port_name_problems(name: str) -> list[str]:
    """An IANA service name, as container port names and named target ports must be."""
    problems: list[str] = []
    if len(name) > 15:
        problems.append("must be no more than 15 characters")
    if not _matches("[-a-z0-9]+", name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens")
    if not re.search("[a-z]", name):
        problems.append("must contain at least one letter (a-z)")
    if name.startswith("-") or name.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


# Kinds whose metadata.name is a DNS label rather than a DNS subdomain.
_LABEL_NAMED_KINDS = {("", "Namespace"), ("", "Service"), ("apps", "StatefulSet")}


def _normalize_group(group: str) -> str:
    return "" if group in ("", "core") else group


def name_is_label(group: str, kind: str) -> bool:
    """Whether ``metadata.name`` of this kind must be a DNS label (≤63) rather than a subdomain (≤253).

    Services are stricter still (an RFC 1035 label, starting with a letter); ``validate_object_meta``
    applies that rule.
    """
    return (_normalize_group(group), kind) in _LABEL_NAMED_KINDS


def validate_metadata_name(name: str, *, label: bool) -> str | None:
    """The first problem with ``name`` as a DNS label (``label``) or DNS subdomain, or ``None`` if valid."""
    problems = dns1123_label_problems(name) if label else dns1123_subdomain_problems(name)
    return problems[0] if problems else None


def _name_problems(group: str, kind: str, name: str, *, prefix: bool) -> list[str]:
    if prefix and len(name) > 1 and name.endswith("-"):
        name = name[:-1] + "a"  # A generateName may end with '-': random characters follow it.
    key = (_normalize_group(group), kind)
    if key == ("", "Service"):
        return dns1035_label_problems(name)
    if key in _LABEL_NAMED_KINDS:
        return dns1123_label_problems(name)
    return dns1123_subdomain_problems(name)


def _validate_labels(labels: object, field: str) -> list[Cause]:
    if not isinstance(labels, dict):
        return []
    causes: list[Cause] = []
    for key, value in labels.items():
        causes.extend(invalid(field, key, problem) for problem in qualified_name_problems(str(key)))
        if not isinstance(value, str):
            causes.append(invalid(field, value, "must be a string"))
            continue
        causes.extend(invalid(field, value, problem) for problem in label_value_problems(value))
    return causes


def _validate_annotations(annotations: object, field: str) -> list[Cause]:
    if not isinstance(annotations, dict):
        return []
    causes: list[Cause] = []
    for key in annotations:
        causes.extend(invalid(field, key, problem) for problem in qualified_name_problems(str(key).lower()))
    size = sum(len(str(key)) + len(str(value)) for key, value in annotations.items())
    if size > _ANNOTATIONS_MAX_BYTES:
        causes.append(too_long(field, f"may not be more than {_ANNOTATIONS_MAX_BYTES} bytes"))
    return causes


def validate_object_meta(group: str, kind: str, obj: JSONObject) -> list[Cause]:
    """Metadata checks for an object of any kind, custom resources included: names, labels, annotations."""
    metadata = _dict(obj.get("metadata"))
    name = metadata.get("name")
    generate_name = metadata.get("generateName")
    causes: list[Cause] = []
    if not name and not generate_name:
        causes.append(required("metadata.name", "name or generateName is required"))
    if isinstance(name, str) and name:
        for problem in _name_problems(group, kind, name, prefix=False):
            causes.append(invalid("metadata.name", name, problem))
        if (_normalize_group(group), kind) == ("batch", "CronJob") and len(name) > _CRONJOB_NAME_MAX:
            causes.append(invalid("metadata.name", name, _max_len(_CRONJOB_NAME_MAX)))
    if isinstance(generate_name, str) and generate_name:
        for problem in _name_problems(group, kind, generate_name, prefix=True):
            causes.append(invalid("metadata.generateName", generate_name, problem))
    causes.extend(_validate_labels(metadata.get("labels"), "metadata.labels"))
    causes.extend(_validate_annotations(metadata.get("annotations"), "metadata.annotations"))
    return causes


# --------------------------------------------------------------------------------------------------------
# Generic helpers


def _dict(value: object) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _pruned(value: object) -> object:
    """``value`` without nulls and empty containers, so that equality follows Go's omitempty round trip."""
    if isinstance(value, dict):
        items = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _same(left: object, right: object) -> bool:
    return _pruned(left) == _pruned(right)


def _nonnegative(spec: JSONObject, key: str, path: str) -> list[Cause]:
    value = _int(spec.get(key))
    if value is not None and value < 0:
        return [invalid(f"{path}.{key}", value, "must be greater than or equal to 0")]
    return []


def _port_range(value: object, field: str) -> list[Cause]:
    number = _int(value)
    if number is None or not 1 <= number <= 65535:
        return [invalid(field, value, "must be between 1 and 65535, inclusive")]
    return []


def _enum(
    value: object, field: str, supported: Sequence[str], *, required_when_empty: bool = False
) -> list[Cause]:
    if value in (None, ""):
        return [required(field)] if required_when_empty else []
    if value not in supported:
        return [not_supported(field, value, supported)]
    return []


def _immutable(new: object, old: object, field: str, rendered: object) -> list[Cause]:
    return [] if _same(new, old) else [invalid(field, rendered, "field is immutable")]


# --------------------------------------------------------------------------------------------------------
# Label selectors

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _validate_selector(selector: JSONObject, path: str) -> list[Cause]:
    causes = _validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for index, expression in enumerate(_list(selector.get("matchExpressions"))):
        expr_path = f"{path}.matchExpressions[{index}]"
        expression = _dict(expression)
        operator = expression.get("operator")
        values = _list(expression.get("values"))
        if operator in ("In", "NotIn") and not values:
            causes.append(
                required(f"{expr_path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            )
        elif operator in ("Exists", "DoesNotExist") and values:
            detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            causes.append(forbidden(f"{expr_path}.values", detail))
        elif operator not in _SELECTOR_OPERATORS:
            causes.append(invalid(f"{expr_path}.operator", operator, "not a valid selector operator"))
        key = str(expression.get("key", ""))
        causes.extend(invalid(f"{expr_path}.key", key, problem) for problem in qualified_name_problems(key))
    return causes


def _expression_matches(expression: JSONObject, labels: JSONObject) -> bool:
    key = expression.get("key")
    operator = expression.get("operator")
    values = _list(expression.get("values"))
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def selector_matches(selector: JSONObject, labels: JSONObject) -> bool:
    """Whether a ``LabelSelector`` (matchLabels and matchExpressions) selects ``labels``."""
    for key, value in _dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    return all(_expression_matches(_dict(expr), labels) for expr in _list(selector.get("matchExpressions")))


def _selector_is_empty(selector: JSONObject) -> bool:
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _validate_selector_and_template(
    spec: JSONObject, path: str, what: str, *, required_selector: bool = True
) -> list[Cause]:
    """``spec.selector`` is present, non-empty, well formed and selects the template's labels."""
    selector = spec.get("selector")
    labels_path = f"{path}.template.metadata.labels"
    template_labels = _dict(_dict(spec.get("template")).get("metadata")).get("labels")
    causes = _validate_labels(template_labels, labels_path)
    if not isinstance(selector, dict):
        return [*causes, required(f"{path}.selector")] if required_selector else causes
    selector_causes = _validate_selector(selector, f"{path}.selector")
    causes.extend(selector_causes)
    if _selector_is_empty(selector):
        rendered = go_label_selector(selector)
        causes.append(invalid(f"{path}.selector", rendered, f"empty selector is invalid for {what}"))
    elif not selector_causes and not selector_matches(selector, _dict(template_labels)):
        rendered_labels = go_string_map(template_labels)
        causes.append(invalid(labels_path, rendered_labels, "`selector` does not match template `labels`"))
    return causes


def _selector_immutable(spec: JSONObject, old_spec: JSONObject, path: str) -> list[Cause]:
    selector = spec.get("selector")
    return _immutable(selector, old_spec.get("selector"), f"{path}.selector", go_label_selector(selector))


# --------------------------------------------------------------------------------------------------------
# Pod specs

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_VOLUME_NAME_KEYS = ("name",)


def _validate_container_ports(container: JSONObject, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen_names: set[str] = set()
    for index, port in enumerate(_list(container.get("ports"))):
        port = _dict(port)
        port_path = f"{path}.ports[{index}]"
        causes.extend(_port_range(port.get("containerPort"), f"{port_path}.containerPort"))
        if port.get("hostPort"):
            causes.extend(_port_range(port.get("hostPort"), f"{port_path}.hostPort"))
        causes.extend(_enum(port.get("protocol"), f"{port_path}.protocol", _PROTOCOLS))
        name = port.get("name")
        if isinstance(name, str) and name:
            causes.extend(invalid(f"{port_path}.name", name, problem) for problem in port_name_problems(name))
            if name in seen_names:
                causes.append(duplicate(f"{port_path}.name", name))
            seen_names.add(name)
    return causes


def _validate_volume_mounts(container: JSONObject, path: str, volume_names: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    seen_paths: set[str] = set()
    for index, mount in enumerate(_list(container.get("volumeMounts"))):
        mount = _dict(mount)
        mount_path = f"{path}.volumeMounts[{index}]"
        name = mount.get("name")
        if not name:
            causes.append(required(f"{mount_path}.name"))
        elif name not in volume_names:
            causes.append(not_found(f"{mount_path}.name", name))
        target = mount.get("mountPath")
        if not target:
            causes.append(required(f"{mount_path}.mountPath"))
        elif target in seen_paths:
            causes.append(invalid(f"{mount_path}.mountPath", target, "must be unique"))
        else:
            seen_paths.add(target)
    return causes


def _validate_env(container: JSONObject, path: str) -> list[Cause]:
    return [
        required(f"{path}.env[{index}].name")
        for index, env in enumerate(_list(container.get("env")))
        if not _dict(env).get("name")
    ]


def _validate_container(container: JSONObject, path: str, volume_names: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    name = container.get("name")
    if not name:
        causes.append(required(f"{path}.name"))
    elif isinstance(name, str):
        causes.extend(invalid(f"{path}.name", name, problem) for problem in dns1123_label_problems(name))
    if not container.get("image"):
        causes.append(required(f"{path}.image"))
    causes.extend(_enum(container.get("imagePullPolicy"), f"{path}.imagePullPolicy", _PULL_POLICIES))
    causes.extend(_validate_container_ports(container, path))
    causes.extend(_validate_volume_mounts(container, path, volume_names))
    causes.extend(_validate_env(container, path))
    return causes


def _validate_volumes(spec: JSONObject, path: str) -> tuple[list[Cause], set[str]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for index, volume in enumerate(_list(spec.get("volumes"))):
        volume = _dict(volume)
        volume_path = f"{path}.volumes[{index}]"
        name = volume.get("name")
        if not name:
            causes.append(required(f"{volume_path}.name"))
        elif isinstance(name, str):
            problems = dns1123_label_problems(name)
            causes.extend(invalid(f"{volume_path}.name", name, problem) for problem in problems)
            if name in names:
                causes.append(duplicate(f"{volume_path}.name", name))
            names.add(name)
        sources = [key for key, value in volume.items() if key not in _VOLUME_NAME_KEYS and value is not None]
        if len(sources) > 1:
            causes.append(forbidden(f"{volume_path}.{sources[1]}", "may not specify more than 1 volume type"))
    return causes, names


def _validate_container_list(
    spec: JSONObject, key: str, path: str, volume_names: set[str], seen: set[str]
) -> list[Cause]:
    causes: list[Cause] = []
    for index, container in enumerate(_list(spec.get(key))):
        container = _dict(container)
        container_path = f"{path}.{key}[{index}]"
        causes.extend(_validate_container(container, container_path, volume_names))
        name = container.get("name")
        if isinstance(name, str) and name:
            if name in seen:
                causes.append(duplicate(f"{container_path}.name", name))
            seen.add(name)
    return causes


def validate_pod_spec(spec: JSONObject, path: str, *, extra_volumes: Iterable[str] = ()) -> list[Cause]:
    """A PodSpec at ``path`` (``spec`` for a Pod, ``spec.template.spec`` for a workload).

    ``extra_volumes`` are names mounts may use besides ``volumes`` (a StatefulSet's claim templates).
    """
    causes, volume_names = _validate_volumes(spec, path)
    volume_names.update(extra_volumes)
    if not _list(spec.get("containers")):
        causes.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        causes.extend(_validate_container_list(spec, key, path, volume_names, seen))
    causes.extend(_enum(spec.get("restartPolicy"), f"{path}.restartPolicy", _RESTART_POLICIES))
    causes.extend(_enum(spec.get("dnsPolicy"), f"{path}.dnsPolicy", _DNS_POLICIES))
    causes.extend(_nonnegative(spec, "terminationGracePeriodSeconds", path))
    return causes


def _validate_template_spec(
    spec: JSONObject, path: str, allowed_restart: Sequence[str], *, extra_volumes: Iterable[str] = ()
) -> list[Cause]:
    """The pod template of a workload at ``path`` (its ``.template``), with the restart policies it allows."""
    template_spec = _dict(_dict(spec.get("template")).get("spec"))
    spec_path = f"{path}.template.spec"
    causes = validate_pod_spec(template_spec, spec_path, extra_volumes=extra_volumes)
    restart = template_spec.get("restartPolicy")
    if restart in _RESTART_POLICIES and restart not in allowed_restart:
        causes.append(not_supported(f"{spec_path}.restartPolicy", restart, allowed_restart))
    return causes


def _no_active_deadline(spec: JSONObject, path: str, kind: str) -> list[Cause]:
    """Long-running workloads refuse ``activeDeadlineSeconds`` (Deployments word it as ReplicaSets do)."""
    deadline = _dict(_dict(spec.get("template")).get("spec")).get("activeDeadlineSeconds")
    if deadline is None:
        return []
    field = f"{path}.template.spec.activeDeadlineSeconds"
    if kind in ("Deployment", "ReplicaSet"):
        return [invalid(field, deadline, "activeDeadlineSeconds in ReplicaSet is not Supported")]
    return [forbidden(field, f"activeDeadlineSeconds in {kind} is not Supported")]


# --------------------------------------------------------------------------------------------------------
# Rolling-update parameters (int or percentage)


def _percent(value: object) -> int | None:
    if isinstance(value, str) and _matches(_PERCENT_FMT, value):
        return int(value[:-1])
    return None


def _int_or_percent_value(value: object) -> int:
    percent = _percent(value)
    if percent is not None:
        return percent
    return _int(value) or 0


def _validate_int_or_percent(value: object, field: str) -> list[Cause]:
    if value is None:
        return []
    if isinstance(value, str):
        if _percent(value) is None:
            message = regex_error(_PERCENT_MSG, _PERCENT_FMT, "1%", "93%")
            return [invalid(field, go_int_or_string(value), message)]
        return []
    number = _int(value)
    if number is None:
        return [invalid(field, go_int_or_string(value), "must be an integer or percentage (e.g '5%')")]
    return [invalid(field, number, "must be greater than or equal to 0")] if number < 0 else []


def _not_over_100_percent(value: object, field: str) -> list[Cause]:
    percent = _percent(value)
    if percent is not None and percent > 100:
        return [invalid(field, go_int_or_string(value), "must not be greater than 100%")]
    return []


# --------------------------------------------------------------------------------------------------------
# Workloads

_DEPLOYMENT_STRATEGIES = ("Recreate", "RollingUpdate")
_DAEMONSET_STRATEGIES = ("OnDelete", "RollingUpdate")
_RETENTION_POLICIES = ("Retain", "Delete")
_STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _validate_workload_common(
    spec: JSONObject, old_spec: JSONObject | None, what: str, kind: str, **template_options: Any
) -> list[Cause]:
    """What Deployments, ReplicaSets, StatefulSets and DaemonSets share: selector, template, counters."""
    causes = _nonnegative(spec, "replicas", "spec")
    causes += _nonnegative(spec, "minReadySeconds", "spec")
    causes += _nonnegative(spec, "revisionHistoryLimit", "spec")
    causes += _validate_selector_and_template(spec, "spec", what)
    causes += _validate_template_spec(spec, "spec", ("Always",), **template_options)
    causes += _no_active_deadline(spec, "spec", kind)
    if old_spec is not None:
        causes += _selector_immutable(spec, old_spec, "spec")
    return causes


def _validate_rolling_update_deployment(rolling: JSONObject, path: str) -> list[Cause]:
    max_unavailable, max_surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    causes = _validate_int_or_percent(max_unavailable, f"{path}.maxUnavailable")
    causes += _validate_int_or_percent(max_surge, f"{path}.maxSurge")
    if _int_or_percent_value(max_unavailable) == 0 and _int_or_percent_value(max_surge) == 0:
        rendered = go_int_or_string(max_unavailable)
        causes.append(invalid(f"{path}.maxUnavailable", rendered, "may not be 0 when `maxSurge` is 0"))
    causes += _not_over_100_percent(max_unavailable, f"{path}.maxUnavailable")
    return causes


def _validate_deployment_strategy(spec: JSONObject) -> list[Cause]:
    strategy = _dict(spec.get("strategy"))
    strategy_type = strategy.get("type")
    if strategy_type == "Recreate" and strategy.get("rollingUpdate") is not None:
        detail = "may not be specified when strategy `type` is 'Recreate'"
        return [forbidden("spec.strategy.rollingUpdate", detail)]
    if strategy_type == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            return [required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")]
        return _validate_rolling_update_deployment(rolling, "spec.strategy.rollingUpdate")
    return _enum(strategy_type, "spec.strategy.type", _DEPLOYMENT_STRATEGIES, required_when_empty=True)


def _validate_deployment(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    old_spec = _dict(old.get("spec")) if old is not None else None
    causes = _validate_workload_common(spec, old_spec, "deployment", "Deployment")
    causes += _validate_deployment_strategy(spec)
    deadline = _int(spec.get("progressDeadlineSeconds"))
    if deadline is not None:
        causes += _nonnegative(spec, "progressDeadlineSeconds", "spec")
        if deadline <= (_int(spec.get("minReadySeconds")) or 0):
            causes.append(
                invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    return causes


def _validate_replica_set(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    old_spec = _dict(old.get("spec")) if old is not None else None
    return _validate_workload_common(spec, old_spec, "replicaset", "ReplicaSet")


def _validate_replication_controller(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    causes = _nonnegative(spec, "replicas", "spec")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not selector:
        causes.append(required("spec.selector"))
    else:
        causes += _validate_labels(selector, "spec.selector")
        labels = _dict(_dict(_dict(spec.get("template")).get("metadata")).get("labels"))
        if not selector_matches({"matchLabels": selector}, labels):
            detail = "`selector` does not match template `labels`"
            causes.append(invalid("spec.template.metadata.labels", go_string_map(labels), detail))
    causes += _validate_template_spec(spec, "spec", ("Always",))
    return causes


def _validate_stateful_set_strategy(spec: JSONObject) -> list[Cause]:
    strategy = _dict(spec.get("updateStrategy"))
    strategy_type = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if strategy_type == "OnDelete" and rolling is not None:
        detail = "only allowed for updateStrategy 'RollingUpdate'"
        return [invalid("spec.updateStrategy.rollingUpdate", GoValue(json.dumps(rolling)), detail)]
    if strategy_type == "RollingUpdate" and isinstance(rolling, dict):
        return _nonnegative(rolling, "partition", "spec.updateStrategy.rollingUpdate")
    if strategy_type in (None, ""):
        return [required("spec.updateStrategy")]
    if strategy_type not in ("RollingUpdate", "OnDelete"):
        return [invalid("spec.updateStrategy.type", strategy_type, "must be 'RollingUpdate' or 'OnDelete'")]
    return []


def _validate_stateful_set_update(spec: JSONObject, old_spec: JSONObject) -> list[Cause]:
    def frozen(value: JSONObject) -> JSONObject:
        return {key: item for key, item in value.items() if key not in _STATEFULSET_MUTABLE}

    if _same(frozen(spec), frozen(old_spec)):
        return []
    allowed = ", ".join(f"'{key}'" for key in _STATEFULSET_MUTABLE[:-1])
    detail = (
        f"updates to statefulset spec for fields other than {allowed} and "
        f"'{_STATEFULSET_MUTABLE[-1]}' are forbidden"
    )
    return [forbidden("spec", detail)]


def _validate_stateful_set(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    old_spec = _dict(old.get("spec")) if old is not None else None
    claim_names = [
        str(_dict(_dict(claim).get("metadata")).get("name", ""))
        for claim in _list(spec.get("volumeClaimTemplates"))
    ]
    causes = _validate_workload_common(
        spec, old_spec, "statefulset", "StatefulSet", extra_volumes=claim_names
    )
    policy = spec.get("podManagementPolicy")
    if policy in (None, ""):
        causes.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        causes.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    causes += _validate_stateful_set_strategy(spec)
    retention = _dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for key in ("whenDeleted", "whenScaled"):
        if key in retention:
            field = f"spec.persistentVolumeClaimRetentionPolicy.{key}"
            causes += _enum(retention[key], field, _RETENTION_POLICIES, required_when_empty=True)
    if old_spec is not None:
        causes += _validate_stateful_set_update(spec, old_spec)
    return causes


def _validate_daemon_set_strategy(spec: JSONObject) -> list[Cause]:
    strategy = _dict(spec.get("updateStrategy"))
    strategy_type = strategy.get("type")
    path = "spec.updateStrategy.rollingUpdate"
    if strategy_type == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            return [required(path)]
        max_unavailable, max_surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        causes = _validate_int_or_percent(max_unavailable, f"{path}.maxUnavailable")
        causes += _validate_int_or_percent(max_surge, f"{path}.maxSurge")
        causes += _not_over_100_percent(max_unavailable, f"{path}.maxUnavailable")
        causes += _not_over_100_percent(max_surge, f"{path}.maxSurge")
        has_unavailable = _int_or_percent_value(max_unavailable) != 0
        has_surge = _int_or_percent_value(max_surge) != 0
        if has_unavailable and has_surge:
            detail = "may not be set when maxUnavailable is non-zero"
            causes.append(invalid(f"{path}.maxSurge", go_int_or_string(max_surge), detail))
        elif not has_unavailable and not has_surge:
            causes.append(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
        return causes
    return _enum(strategy_type, "spec.updateStrategy.type", _DAEMONSET_STRATEGIES, required_when_empty=True)


def _validate_daemon_set(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    old_spec = _dict(old.get("spec")) if old is not None else None
    causes = _validate_workload_common(spec, old_spec, "daemonset", "DaemonSet")
    return causes + _validate_daemon_set_strategy(spec)


# --------------------------------------------------------------------------------------------------------
# Jobs and CronJobs

_JOB_RESTART_POLICIES = ("OnFailure", "Never")
_COMPLETION_MODES = ("NonIndexed", "Indexed")
_CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")


def _validate_job_spec(spec: JSONObject, path: str, *, selector_required: bool) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit"):
        causes += _nonnegative(spec, key, path)
    causes += _enum(spec.get("completionMode"), f"{path}.completionMode", _COMPLETION_MODES)
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        causes.append(required(f"{path}.completions", "when completion mode is Indexed"))
    causes += _validate_selector_and_template(spec, path, "job", required_selector=selector_required)
    causes += _validate_template_spec(spec, path, _JOB_RESTART_POLICIES)
    return causes


def _validate_job_update(spec: JSONObject, old_spec: JSONObject) -> list[Cause]:
    causes = _selector_immutable(spec, old_spec, "spec")
    causes += _immutable(
        spec.get("completionMode"),
        old_spec.get("completionMode"),
        "spec.completionMode",
        spec.get("completionMode"),
    )
    if spec.get("completionMode") != "Indexed":
        completions = spec.get("completions")
        causes += _immutable(completions, old_spec.get("completions"), "spec.completions", completions)
    if old_spec.get("suspend") is not True:
        rendered = GoValue("core.PodTemplateSpec{...}")
        causes += _immutable(spec.get("template"), old_spec.get("template"), "spec.template", rendered)
    return causes


def _validate_job(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    causes = _validate_job_spec(spec, "spec", selector_required=True)
    if old is not None:
        causes += _validate_job_update(spec, _dict(old.get("spec")))
    return causes


def _validate_cron_job(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    causes: list[Cause] = []
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(required("spec.schedule"))
    causes += _enum(spec.get("concurrencyPolicy"), "spec.concurrencyPolicy", _CONCURRENCY_POLICIES)
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit", "startingDeadlineSeconds"):
        causes += _nonnegative(spec, key, "spec")
    job_spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    causes += _validate_job_spec(job_spec, "spec.jobTemplate.spec", selector_required=False)
    return causes


# --------------------------------------------------------------------------------------------------------
# Pods and pod templates


def _validate_pod(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    return validate_pod_spec(_dict(obj.get("spec")), "spec")


def _validate_pod_template(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    template = _dict(obj.get("template"))
    labels = _dict(template.get("metadata")).get("labels")
    return _validate_labels(labels, "template.metadata.labels") + validate_pod_spec(
        _dict(template.get("spec")), "template.spec"
    )


# --------------------------------------------------------------------------------------------------------
# Services

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_SESSION_AFFINITIES = ("ClientIP", "None")
_TRAFFIC_POLICIES = ("Cluster", "Local")
_IP_EXAMPLE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _go_service_port_key(port: JSONObject) -> GoValue:
    protocol = go_quote(str(port.get("protocol", "")))
    number = _int(port.get("port")) or 0
    return GoValue(
        f'core.ServicePort{{Name:"", Protocol:{protocol}, AppProtocol:(*string)(nil), Port:{number}, '
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def _validate_target_port(port: JSONObject, path: str) -> list[Cause]:
    target = port.get("targetPort")
    if target is None:
        return []
    if isinstance(target, str):
        return [invalid(f"{path}.targetPort", target, problem) for problem in port_name_problems(target)]
    return _port_range(target, f"{path}.targetPort")


def _validate_service_port(
    port: JSONObject, path: str, *, name_required: bool, node_ports_allowed: bool, service_type: object
) -> list[Cause]:
    causes: list[Cause] = []
    name = port.get("name")
    if name_required and not name:
        causes.append(required(f"{path}.name"))
    elif isinstance(name, str) and name:
        causes.extend(invalid(f"{path}.name", name, problem) for problem in dns1123_label_problems(name))
    causes += _port_range(port.get("port"), f"{path}.port")
    causes += _enum(port.get("protocol"), f"{path}.protocol", _PROTOCOLS)
    causes += _validate_target_port(port, path)
    if port.get("nodePort") and not node_ports_allowed:
        causes.append(forbidden(f"{path}.nodePort", f"may not be used when `type` is '{service_type}'"))
    return causes


def _validate_service_ports(spec: JSONObject) -> list[Cause]:
    ports = [_dict(port) for port in _list(spec.get("ports"))]
    service_type = spec.get("type")
    node_ports_allowed = service_type in ("NodePort", "LoadBalancer")
    causes: list[Cause] = []
    names: set[str] = set()
    keys: set[tuple[object, object]] = set()
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        causes += _validate_service_port(
            port,
            path,
            name_required=len(ports) > 1,
            node_ports_allowed=node_ports_allowed,
            service_type=service_type,
        )
        name = port.get("name")
        if isinstance(name, str) and name:
            if name in names:
                causes.append(duplicate(f"{path}.name", name))
            names.add(name)
        key = (port.get("port"), port.get("protocol"))
        if key in keys:
            causes.append(duplicate(path, _go_service_port_key(port)))
        keys.add(key)
    return causes


def _validate_cluster_ips(spec: JSONObject) -> list[Cause]:
    causes: list[Cause] = []
    for index, address in enumerate(_list(spec.get("clusterIPs"))):
        if address in ("None", ""):
            continue
        try:
            ipaddress.ip_address(str(address))
        except ValueError:
            causes.append(invalid(f"spec.clusterIPs[{index}]", address, _IP_EXAMPLE))
    return causes


def _validate_service_update(spec: JSONObject, old_spec: JSONObject) -> list[Cause]:
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    new_ips, old_ips = _list(spec.get("clusterIPs")), _list(old_spec.get("clusterIPs"))
    if new_ips and old_ips and new_ips[0] != old_ips[0]:
        return [invalid("spec.clusterIPs[0]", go_string_slice(new_ips), "may not change once set")]
    return []


def _validate_service(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    service_type = spec.get("type")
    causes = _enum(service_type, "spec.type", _SERVICE_TYPES)
    if service_type == "ExternalName":
        external_name = spec.get("externalName")
        if not external_name:
            causes.append(required("spec.externalName"))
        elif isinstance(external_name, str):
            problems = dns1123_subdomain_problems(external_name.rstrip("."))
            causes += [invalid("spec.externalName", external_name, problem) for problem in problems]
    elif not _list(spec.get("ports")) and spec.get("clusterIP") != "None":
        causes.append(required("spec.ports"))
    causes += _validate_service_ports(spec)
    causes += _enum(spec.get("sessionAffinity"), "spec.sessionAffinity", _SESSION_AFFINITIES)
    causes += _enum(spec.get("externalTrafficPolicy"), "spec.externalTrafficPolicy", _TRAFFIC_POLICIES)
    causes += _enum(spec.get("internalTrafficPolicy"), "spec.internalTrafficPolicy", _TRAFFIC_POLICIES)
    causes += _validate_cluster_ips(spec)
    if old is not None:
        causes += _validate_service_update(spec, _dict(old.get("spec")))
    return causes


# --------------------------------------------------------------------------------------------------------
# ConfigMaps and Secrets

_IMMUTABLE_DETAIL = "field is immutable when `immutable` is set"
_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _validate_data_keys(obj: JSONObject, keys: Sequence[str]) -> list[Cause]:
    causes: list[Cause] = []
    for data_key in keys:
        for key in _dict(obj.get(data_key)):
            causes += [
                invalid(f"{data_key}[{key}]", key, problem) for problem in config_key_problems(str(key))
            ]
    return causes


def _data_size(obj: JSONObject, keys: Sequence[str]) -> int:
    return sum(len(str(value)) for data_key in keys for value in _dict(obj.get(data_key)).values())


def _validate_immutable_data(obj: JSONObject, old: JSONObject, keys: Sequence[str]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes = [] if obj.get("immutable") is True else [forbidden("immutable", _IMMUTABLE_DETAIL)]
    for data_key in keys:
        if not _same(obj.get(data_key), old.get(data_key)):
            causes.append(forbidden(data_key, _IMMUTABLE_DETAIL))
    return causes


def _validate_config_map(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    keys = ("data", "binaryData")
    causes = _validate_data_keys(obj, keys)
    binary = _dict(obj.get("binaryData"))
    for key in _dict(obj.get("data")):
        if key in binary:
            causes.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    if _data_size(obj, keys) > _DATA_MAX_BYTES:
        causes.append(too_long("[]", f"must have at most {_DATA_MAX_BYTES} bytes"))
    if old is not None:
        causes += _validate_immutable_data(obj, old, keys)
    return causes


def _validate_secret(obj: JSONObject, old: JSONObject | None) -> list[Cause]:
    keys = ("data", "stringData")
    causes = _validate_data_keys(obj, keys)
    data = {**_dict(obj.get("data")), **_dict(obj.get("stringData"))}
    for key in _SECRET_REQUIRED_KEYS.get(str(obj.get("type")), ()):
        if key not in data:
            causes.append(required(f"data[{key}]"))
    if _data_size(obj, keys) > _DATA_MAX_BYTES:
        causes.append(too_long("data", f"must have at most {_DATA_MAX_BYTES} bytes"))
    if old is not None:
        causes += _immutable(obj.get("type"), old.get("type"), "type", obj.get("type"))
        causes += _validate_immutable_data(obj, old, ("data",))
    return causes


# --------------------------------------------------------------------------------------------------------
# Entry point

Validator = Callable[[JSONObject, JSONObject | None], list[Cause]]

_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): _validate_pod,
    ("", "PodTemplate"): _validate_pod_template,
    ("", "ReplicationController"): _validate_replication_controller,
    ("", "Service"): _validate_service,
    ("", "ConfigMap"): _validate_config_map,
    ("", "Secret"): _validate_secret,
    ("apps", "Deployment"): _validate_deployment,
    ("apps", "ReplicaSet"): _validate_replica_set,
    ("apps", "StatefulSet"): _validate_stateful_set,
    ("apps", "DaemonSet"): _validate_daemon_set,
    ("batch", "Job"): _validate_job,
    ("batch", "CronJob"): _validate_cron_job,
}


def validate(group: str, kind: str, obj: JSONObject, *, old: JSONObject | None = None) -> list[Cause]:
    """The spec-level problems of a built-in object (``[]`` when valid or when the kind is not covered).

    ``old`` is the stored object on an update and turns on the immutability checks. Metadata is checked
    separately by ``validate_object_meta``, which applies to every kind.
    """
    validator = _VALIDATORS.get((_normalize_group(group), kind))
    return validator(obj, old) if validator is not None else []
