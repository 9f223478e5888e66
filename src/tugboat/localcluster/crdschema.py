"""CustomResourceDefinition checks and the structural-schema pipeline for custom resources.

Why this exists: the local cluster serves Argo's CRDs (Application, Rollout, ...) to the real kubectl, so a
custom resource must go through the same steps kube-apiserver applies (research/kubeapi.md §2.7, §2.8):
unknown fields are pruned (or, with ``fieldValidation=Strict``, reported as ``unknown field "spec.foo"``),
``default:`` values are materialised, and the OpenAPI v3 value validations are enforced with 422 causes
worded like upstream, because kubectl prints them verbatim and users grep for them.

Semantics follow ``k8s.io/apiextensions-apiserver`` 1.32 and kube-openapi, including their quirks:

* pruning treats the root and every ``x-kubernetes-embedded-resource`` as an object carrying
  ``apiVersion``/``kind``/``metadata`` (kept), with ``metadata`` reduced to the ObjectMeta fields;
  non-nullable ``null`` values without a default are dropped as part of pruning;
* ``additionalProperties: true`` keeps the keys of that map but prunes inside their values as if they had
  no schema (upstream behaviour), while an ``additionalProperties`` schema is followed;
* a default is applied only where its parent object exists (or was itself defaulted);
* type errors are ``FieldValueTypeInvalid`` (upstream's ``field.TypeInvalid``), ``maxLength`` is
  ``FieldValueTooLong`` and ``maxItems``/``maxProperties`` are ``FieldValueTooMany``, as kube reports them;
  composite ``anyOf``/``oneOf``/``allOf``/``not`` failures carry the field ``<nil>`` as upstream does;
* ``x-kubernetes-list-type: set|map`` uniqueness is checked (``FieldValueDuplicate``).

Not implemented (documented gaps): CEL rules (``x-kubernetes-validations``) are skipped; ``metadata`` is
only checked to be an object; formats other than date-time, date, uuid*, ipv4, ipv6, cidr and byte are
accepted as is; ``default`` values inside a CRD are not themselves validated; ``anyOf``/``oneOf`` report the
branch with the fewest errors where kube-openapi picks the one with the most passed checks.

Everything here is pure: no I/O, objects are plain JSON-like dicts and lists.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

JSONDict = dict[str, Any]

FIELD_VALUE_REQUIRED = "FieldValueRequired"
FIELD_VALUE_INVALID = "FieldValueInvalid"
FIELD_VALUE_NOT_SUPPORTED = "FieldValueNotSupported"
FIELD_VALUE_DUPLICATE = "FieldValueDuplicate"
FIELD_VALUE_FORBIDDEN = "FieldValueForbidden"
FIELD_VALUE_TYPE_INVALID = "FieldValueTypeInvalid"
FIELD_VALUE_TOO_LONG = "FieldValueTooLong"
FIELD_VALUE_TOO_MANY = "FieldValueTooMany"

NIL_FIELD = "<nil>"

OBJECT_META_FIELDS = frozenset(
    [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "selfLink",
    ]
)
_META_FIELDS = ("apiVersion", "kind", "metadata")
_SCHEMA_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_LIST_TYPES = ("atomic", "set", "map")


# ============================================================================ causes


@dataclass(frozen=True)
class Cause:
    """One field error; ``message`` is the body kube puts in ``details.causes[].message``."""

    type: str
    field: str
    message: str

    def text(self) -> str:
        """``field: message``, the form kube joins into a Status message."""
        return f"{self.field}: {self.message}"


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(FIELD_VALUE_INVALID, path, _with_detail(f"Invalid value: {go_value(value)}", detail))


def _type_invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(FIELD_VALUE_TYPE_INVALID, path, _with_detail(f"Invalid value: {go_value(value)}", detail))


def _required(path: str, detail: str = "") -> Cause:
    return Cause(FIELD_VALUE_REQUIRED, path, _with_detail("Required value", detail))


def _forbidden(path: str, detail: str) -> Cause:
    return Cause(FIELD_VALUE_FORBIDDEN, path, _with_detail("Forbidden", detail))


def _not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    quoted = ", ".join(go_quote(s) for s in supported)
    detail = f"supported values: {quoted}" if quoted else ""
    return Cause(
        FIELD_VALUE_NOT_SUPPORTED, path, _with_detail(f"Unsupported value: {go_value(value)}", detail)
    )


def _duplicate(path: str, value: Any) -> Cause:
    return Cause(FIELD_VALUE_DUPLICATE, path, f"Duplicate value: {go_value(value)}")


def _too_long(path: str, max_length: int) -> Cause:
    return Cause(FIELD_VALUE_TOO_LONG, path, f"Too long: may not be more than {max_length} bytes")


def _too_many(path: str, actual: int, maximum: int) -> Cause:
    return Cause(FIELD_VALUE_TOO_MANY, path, f"Too many: {actual}: must have at most {maximum} items")


# ============================================================================ Go-style rendering


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """Go's ``%q`` for a string (``strconv.Quote``)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``abs(f)`` and the decimal point position (value = 0.DIGITS * 10**dp)."""
    _, digit_tuple, exponent = Decimal(repr(abs(f))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digit_tuple).lstrip("0")
    stripped = digits.rstrip("0")
    dp = len(digits) + exponent
    return stripped or "0", dp


def go_float(f: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, exponent form when the exponent is below -4 or above 5."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    digits, dp = _shortest_digits(f)
    exp = dp - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + _plain_digits(digits, dp)


def _plain_digits(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def _go_json_float(f: float) -> str:
    """Go's ``encoding/json`` rendering of a float64."""
    if f == 0:
        return "0"
    if f.is_integer() and abs(f) < 1e21:
        return str(int(f))
    digits, dp = _shortest_digits(f)
    exp = dp - 1
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{'-' if f < 0 else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp)}"
    return ("-" if f < 0 else "") + _plain_digits(digits, dp)


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of an unstructured value (sorted keys, compact)."""
    if isinstance(value, float):
        return _go_json_float(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(k)}:{go_json(value[k])}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _go_sharp_v(value: Any) -> str:
    """Go's ``%#v`` of an unstructured value, as field errors print maps and slices."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, dict):
        items = (f"{go_quote(str(k))}:{_go_sharp_v(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_sharp_v(v) for v in value) + "}"
    return go_value(value)


def go_value(value: Any) -> str:
    """How ``field.Error.ErrorBody`` renders a bad value (kube 1.32)."""
    if value is None:
        return go_quote("null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict | list):
        return _go_sharp_v(value)
    return go_quote(str(value))


# ============================================================================ JSON helpers


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(a: Any, b: Any) -> bool:
    """Deep equality where booleans are not numbers but 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _identity(value: Any) -> tuple[str, ...]:
    """A hashable identity for set semantics (scalars by type and value, compounds by JSON)."""
    if isinstance(value, dict | list):
        return ("compound", go_json(value))
    return ("scalar", type(value).__name__, repr(value))


def _as_dict(value: Any) -> JSONDict:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ============================================================================ schema node accessors


def _properties(node: JSONDict | None) -> JSONDict:
    return _as_dict(node.get("properties")) if node else {}


def _items(node: JSONDict | None) -> JSONDict | None:
    items = node.get("items") if node else None
    return items if isinstance(items, dict) else None


def _additional(node: JSONDict | None) -> JSONDict | bool | None:
    """The ``additionalProperties`` schema, ``True`` for ``additionalProperties: true``, else None."""
    extra = node.get("additionalProperties") if node else None
    if isinstance(extra, dict):
        return extra
    return True if extra is True else None


def _additional_schema(node: JSONDict | None) -> JSONDict | None:
    extra = _additional(node)
    return extra if isinstance(extra, dict) else None


def _flag(node: JSONDict | None, key: str) -> bool:
    return node is not None and node.get(key) is True


def _preserves_unknown(node: JSONDict | None) -> bool:
    return _flag(node, "x-kubernetes-preserve-unknown-fields")


def _embedded(node: JSONDict | None) -> bool:
    return _flag(node, "x-kubernetes-embedded-resource")


def _nullable(node: JSONDict | None) -> bool:
    return _flag(node, "nullable")


def _field_schema(node: JSONDict | None, key: str) -> JSONDict | None:
    prop = _properties(node).get(key)
    if isinstance(prop, dict):
        return prop
    return _additional_schema(node)


# ============================================================================ path rendering


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _key(path: str, key: str) -> str:
    return f"{path}[{key}]"


def _error_field(raw: str) -> str:
    """kube-openapi's raw path to the cause field (apiextensions trims a leading dot; empty is ``<nil>``)."""
    if not raw or raw == ".":
        return NIL_FIELD
    return raw.removeprefix(".")


# ============================================================================ pruning


class _Pruner:
    """Walks an object against a structural schema collecting (and optionally dropping) unknown fields."""

    def __init__(self, mutate: bool) -> None:
        self.mutate = mutate
        self.unknown: list[str] = []
        self.embedded_meta: list[str] = []

    def drop(self, obj: JSONDict, key: str, path: str) -> None:
        self.unknown.append(_child(path, key))
        if self.mutate:
            del obj[key]

    def coerce_metadata(self, obj: JSONDict, path: str, out: list[str]) -> None:
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            return
        meta_path = _child(path, "metadata")
        for key in sorted(k for k in meta if k not in OBJECT_META_FIELDS):
            out.append(_child(meta_path, key))
            if self.mutate:
                del meta[key]

    def prune(self, value: Any, node: JSONDict | None, path: str) -> None:
        if node is not None and _preserves_unknown(node):
            self.skip_prune(value, node, path)
        elif isinstance(value, dict):
            self._prune_object(value, node, path)
        elif isinstance(value, list):
            items = _items(node)
            for i, item in enumerate(value):
                self.prune(item, items, _index(path, i))

    def _prune_object(self, obj: JSONDict, node: JSONDict | None, path: str) -> None:
        if node is None:
            for key in list(obj):
                self.drop(obj, key, path)
            return
        embedded = _embedded(node)
        props = _properties(node)
        extra = _additional(node)
        for key in list(obj):
            if embedded and key in _META_FIELDS:
                continue
            if key in props:
                self.prune(obj[key], _as_dict(props[key]), _child(path, key))
            elif extra is not None:
                self.prune(obj[key], extra if isinstance(extra, dict) else None, _child(path, key))
            elif key not in _META_FIELDS or path:
                self.drop(obj, key, path)
            elif self.mutate:
                del obj[key]
        if embedded and path:
            self.coerce_metadata(obj, path, self.embedded_meta)

    def skip_prune(self, value: Any, node: JSONDict | None, path: str) -> None:
        if node is None:
            return
        if isinstance(value, dict):
            embedded = _embedded(node)
            props = _properties(node)
            extra = _additional(node)
            for key in list(value):
                if embedded and key in _META_FIELDS:
                    continue
                if key in props:
                    self.prune(value[key], _as_dict(props[key]), _child(path, key))
                elif extra is not None:
                    self.prune(value[key], extra if isinstance(extra, dict) else None, _child(path, key))
            if embedded and path:
                self.coerce_metadata(value, path, self.embedded_meta)
        elif isinstance(value, list):
            items = _items(node)
            for i, item in enumerate(value):
                self.skip_prune(item, items, _index(path, i))


def _prune_non_nullable_nulls(value: Any, node: JSONDict | None) -> None:
    """Drop ``null`` values whose schema is neither nullable nor defaulted (kube does this when pruning)."""
    if isinstance(value, dict):
        for key in list(value):
            sub = _field_schema(node, key)
            if value[key] is None and sub is not None and not _nullable(sub) and sub.get("default") is None:
                del value[key]
            else:
                _prune_non_nullable_nulls(value[key], sub)
    elif isinstance(value, list):
        items = _items(node)
        for item in value:
            _prune_non_nullable_nulls(item, items)


# ============================================================================ defaulting


def _default_value(node: JSONDict | None) -> Any:
    return node.get("default") if node else None


def _is_non_nullable_null(value: Any, node: JSONDict | None) -> bool:
    return value is None and node is not None and not _nullable(node)


def _apply_defaults(value: Any, node: JSONDict | None) -> None:
    if node is None:
        return
    if isinstance(value, dict):
        _default_object(value, node)
    elif isinstance(value, list):
        items = _items(node)
        for i in range(len(value)):
            if _is_non_nullable_null(value[i], items) and _default_value(items) is not None:
                value[i] = copy.deepcopy(_default_value(items))
            _apply_defaults(value[i], items)


def _default_object(obj: JSONDict, node: JSONDict) -> None:
    props = _properties(node)
    for key, prop in props.items():
        default = _default_value(_as_dict(prop))
        if default is None:
            continue
        if key not in obj or _is_non_nullable_null(obj[key], _as_dict(prop)):
            obj[key] = copy.deepcopy(default)
    extra = _additional_schema(node)
    for key in list(obj):
        if key in props:
            _apply_defaults(obj[key], _as_dict(props[key]))
        elif extra is not None:
            if _is_non_nullable_null(obj[key], extra) and _default_value(extra) is not None:
                obj[key] = copy.deepcopy(_default_value(extra))
            _apply_defaults(obj[key], extra)


# ============================================================================ value validation

_SUPPORTED_FORMATS = frozenset(
    [
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
    ]
)

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?")
_UUID = {
    "uuid": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"),
    "uuid3": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}"),
    "uuid4": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}"),
    "uuid5": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}"),
}


def _valid_date(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _parses(parser: Callable[[str], object], value: str) -> bool:
    try:
        parser(value)
    except (ValueError, binascii.Error):
        return False
    return True


def _format_ok(fmt: str, value: str) -> bool:
    """Whether ``value`` satisfies the (normalised) format; unchecked supported formats pass."""
    if fmt == "datetime":
        return _DATE_TIME.fullmatch(value) is not None
    if fmt == "date":
        return _valid_date(value)
    if fmt in _UUID:
        return _UUID[fmt].fullmatch(value) is not None
    if fmt == "ipv4":
        return _parses(ipaddress.IPv4Address, value)
    if fmt == "ipv6":
        return _parses(ipaddress.IPv6Address, value)
    if fmt == "cidr":
        return "/" in value and _parses(lambda v: ipaddress.ip_network(v, strict=False), value)
    if fmt == "byte":
        return _parses(lambda v: base64.b64decode(v, validate=True), value)
    return True


def _normalised_format(node: JSONDict) -> str:
    fmt = _as_str(node.get("format")).replace("-", "")
    return fmt if fmt in _SUPPORTED_FORMATS else ""


def _declared_types(node: JSONDict) -> list[str]:
    if node.get("x-kubernetes-int-or-string") is True:
        return ["integer", "string"]
    declared = node.get("type")
    return [declared] if isinstance(declared, str) and declared else []


class _Validator:
    """kube-openapi's SchemaValidator, reduced to what structural CRD schemas can express."""

    def __init__(self) -> None:
        self.out: list[Cause] = []

    def node(self, node: JSONDict, value: Any, path: str, resource: bool = False) -> None:
        if value is None:
            self.check_type(node, value, path)
            self.check_enum(node, value, path)
            return
        self.check_type(node, value, path)
        self.check_junctors(node, value, path)
        if isinstance(value, str):
            self.check_string(node, value, path)
            self.check_format(node, value, path)
        if _is_number(value):
            self.check_number(node, value, path)
        if isinstance(value, list):
            self.check_array(node, value, path)
        self.check_enum(node, value, path)
        if isinstance(value, dict):
            self.check_object(node, value, path, resource)

    # ------------------------------------------------------------------ type and format

    def check_type(self, node: JSONDict, value: Any, path: str) -> None:
        types = _declared_types(node)
        if not types:
            return
        if value is None:
            if not _nullable(node):
                self._type_error(path, types, "null")
            return
        numeric = "integer" in types or "number" in types
        if _normalised_format(node) and not numeric and isinstance(value, str | list):
            return
        actual = _type_name(value)
        if actual in types or (actual == "integer" and "number" in types):
            return
        if actual == "number" and "integer" in types and float(value).is_integer():
            return
        self._type_error(path, types, actual)

    def _type_error(self, path: str, types: list[str], actual: str) -> None:
        detail = f"{path} in body must be of type {','.join(types)}: {go_quote(actual)}"
        self.out.append(_type_invalid(_error_field(path), actual, detail))

    def check_format(self, node: JSONDict, value: str, path: str) -> None:
        fmt = _normalised_format(node)
        if fmt and not _format_ok(fmt, value):
            detail = f"{path} in body must be of type {node['format']}: {go_quote(value)}"
            self.out.append(_type_invalid(_error_field(path), value, detail))

    # ------------------------------------------------------------------ scalars

    def check_string(self, node: JSONDict, value: str, path: str) -> None:
        field = _error_field(path)
        max_length = node.get("maxLength")
        if isinstance(max_length, int) and len(value) > max_length:
            self.out.append(_too_long(field, max_length))
            return
        min_length = node.get("minLength")
        if isinstance(min_length, int) and len(value) < min_length:
            self.out.append(
                _invalid(field, value, f"{path} in body should be at least {min_length} chars long")
            )
            return
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern and not _matches(pattern, value):
            self.out.append(_invalid(field, value, f"{path} in body should match '{pattern}'"))

    def check_number(self, node: JSONDict, value: float, path: str) -> None:
        multiple = node.get("multipleOf")
        if _is_number(multiple) and multiple > 0 and not _is_multiple(value, multiple):
            shown = str(int(multiple)) if isinstance(value, int) else go_float(float(multiple))
            self.out.append(
                _invalid(_error_field(path), value, f"{path} in body should be a multiple of {shown}")
            )
        self._check_bound(node, value, path, "minimum")
        self._check_bound(node, value, path, "maximum")

    def _check_bound(self, node: JSONDict, value: float, path: str, which: str) -> None:
        bound = node.get(which)
        if not _is_number(bound):
            return
        exclusive = node.get("exclusiveMinimum" if which == "minimum" else "exclusiveMaximum") is True
        limit: float = int(bound) if isinstance(value, int) else float(bound)
        if which == "minimum":
            failed = value <= limit if exclusive else value < limit
            words = "greater than" if exclusive else "greater than or equal to"
        else:
            failed = value >= limit if exclusive else value > limit
            words = "less than" if exclusive else "less than or equal to"
        if failed:
            shown = str(limit) if isinstance(limit, int) else go_float(limit)
            self.out.append(_invalid(_error_field(path), value, f"{path} in body should be {words} {shown}"))

    def check_enum(self, node: JSONDict, value: Any, path: str) -> None:
        enum = node.get("enum")
        if not isinstance(enum, list) or not enum:
            return
        # Like kube-openapi, null never matches an enum (not even a listed null).
        if value is not None and any(_json_equal(value, e) for e in enum if e is not None):
            return
        supported = [e if isinstance(e, str) else go_json(e) for e in enum]
        self.out.append(_not_supported(_error_field(path), value, supported))

    # ------------------------------------------------------------------ compounds

    def check_array(self, node: JSONDict, value: list[Any], path: str) -> None:
        items = _items(node)
        if items is not None:
            for i, item in enumerate(value):
                self.node(items, item, _index(path, i), resource=_embedded(items))
        field = _error_field(path)
        min_items = node.get("minItems")
        if isinstance(min_items, int) and len(value) < min_items:
            self.out.append(
                _invalid(field, len(value), f"{path} in body should have at least {min_items} items")
            )
        max_items = node.get("maxItems")
        if isinstance(max_items, int) and len(value) > max_items:
            self.out.append(_too_many(field, len(value), max_items))
        if node.get("uniqueItems") is True and _has_duplicates(value):
            self.out.append(_invalid(field, "", f"{path} in body shouldn't contain duplicates"))

    def check_object(self, node: JSONDict, value: JSONDict, path: str, resource: bool) -> None:
        field = _error_field(path)
        min_props, max_props = node.get("minProperties"), node.get("maxProperties")
        if isinstance(min_props, int) and len(value) < min_props:
            detail = f"{path} in body should have at least {min_props} properties"
            self.out.append(_invalid(field, len(value), detail))
        if isinstance(max_props, int) and len(value) > max_props:
            self.out.append(_too_many(field, len(value), max_props))
        props = _properties(node)
        extra = _additional_schema(node)
        if extra is not None:
            for key, item in value.items():
                if key not in props:
                    self.node(extra, item, f"{path}.{key}", resource=_embedded(extra))
        for key, prop in props.items():
            if key not in value or not isinstance(prop, dict):
                continue
            if resource and key == "metadata":
                self._check_metadata(value[key], _child(path, key))
                continue
            self.node(prop, value[key], _child(path, key), resource=_embedded(prop))
        if resource and "metadata" in value and "metadata" not in props:
            self._check_metadata(value["metadata"], _child(path, "metadata"))
        for key in _as_list(node.get("required")):
            if isinstance(key, str) and key not in value:
                self.out.append(_required(_error_field(f"{path}.{key}")))

    def _check_metadata(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self._type_error(path, ["object"], _type_name(value))

    # ------------------------------------------------------------------ junctors

    def _branch(self, node: Any, value: Any, path: str) -> list[Cause]:
        sub = _Validator()
        if isinstance(node, dict):
            sub.node(node, value, path)
        return sub.out

    def _composite(self, message: str) -> None:
        self.out.append(_invalid(NIL_FIELD, "", message))

    def check_junctors(self, node: JSONDict, value: Any, path: str) -> None:
        quoted = go_quote(path)
        any_of = _as_list(node.get("anyOf"))
        if any_of:
            results = [self._branch(b, value, path) for b in any_of]
            if all(results):
                self._composite(f"{quoted} must validate at least one schema (anyOf)")
                self.out.extend(_fewest(results))
        one_of = _as_list(node.get("oneOf"))
        if one_of:
            results = [self._branch(b, value, path) for b in one_of]
            passed = sum(1 for r in results if not r)
            if passed == 0:
                self._composite(f"{quoted} must validate one and only one schema (oneOf). Found none valid")
                self.out.extend(_fewest(results))
            elif passed > 1:
                extra = f"Found {passed} valid alternatives"
                self._composite(f"{quoted} must validate one and only one schema (oneOf). {extra}")
        all_of = _as_list(node.get("allOf"))
        if all_of:
            results = [self._branch(b, value, path) for b in all_of]
            for r in results:
                self.out.extend(r)
            passed = sum(1 for r in results if not r)
            if passed != len(results):
                suffix = ". None validated" if passed == 0 else ""
                self._composite(f"{quoted} must validate all the schemas (allOf){suffix}")
        if isinstance(node.get("not"), dict) and not self._branch(node["not"], value, path):
            self._composite(f"{quoted} must not validate the schema (not)")


def _fewest(results: list[list[Cause]]) -> list[Cause]:
    """The failing branch reported for anyOf/oneOf (approximates kube-openapi's best-match choice)."""
    best: list[Cause] = min(results, key=len)
    return best


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def _is_multiple(value: float, factor: float) -> bool:
    if isinstance(value, int) and float(factor).is_integer():
        return value % int(factor) == 0
    ratio = (1 / factor) * value if factor < 1 else value / factor
    return float(ratio).is_integer()


def _has_duplicates(values: list[Any]) -> bool:
    return any(_json_equal(values[i], values[j]) for i in range(len(values)) for j in range(i))


# ============================================================================ list-type uniqueness


def _second_occurrences(values: list[Any]) -> list[int]:
    """Indices where a value is seen for the second time (kube reports only those)."""
    seen: dict[tuple[str, ...], int] = {}
    found: list[int] = []
    for i, value in enumerate(values):
        ident = _identity(value)
        seen[ident] = seen.get(ident, 0) + 1
        if seen[ident] == 2:
            found.append(i)
    return found


class _ListTypes:
    """``x-kubernetes-list-type`` set/map uniqueness (apiextensions' listtype validation)."""

    def __init__(self) -> None:
        self.out: list[Cause] = []

    def object(self, path: str, node: JSONDict | None, obj: JSONDict) -> None:
        if node is None:
            return
        extra = _additional_schema(node)
        if extra is not None:
            for key, value in obj.items():
                self.value(_key(path, key), extra, value)
        props = _properties(node)
        for key, value in obj.items():
            if isinstance(props.get(key), dict):
                self.value(_child(path, key), props[key], value)

    def value(self, path: str, node: JSONDict, value: Any) -> None:
        if isinstance(value, list):
            self.array(path, node, value)
        elif isinstance(value, dict):
            self.object(path, node, value)

    def array(self, path: str, node: JSONDict, values: list[Any]) -> None:
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set":
            for i in _second_occurrences(values):
                self.out.append(_duplicate(_index(path, i), values[i]))
        elif list_type == "map":
            self.list_map(path, [str(k) for k in _as_list(node.get("x-kubernetes-list-map-keys"))], values)
        items = _items(node)
        if items is not None:
            for i, value in enumerate(values):
                self.value(_index(path, i), items, value)

    def list_map(self, path: str, keys: list[str], values: list[Any]) -> None:
        for i, value in enumerate(values):
            if value is not None and not isinstance(value, dict):
                self.out.append(
                    _invalid(_index(path, i), value, "must be an object for an array of list-type map")
                )
                return
        entries = [{k: v[k] for k in keys if k in v} if isinstance(v, dict) else {} for v in values]
        for i in _second_occurrences(entries):
            self.out.append(_duplicate(_index(path, i), entries[i]))


# ============================================================================ Schema


class Schema:
    """One CRD version's ``openAPIV3Schema``: pruning, defaulting, validation and list semantics.

    ``Schema(None)`` (or an empty schema) accepts anything and prunes nothing. Callers run, in order,
    :meth:`unknown_fields` (for ``fieldValidation``), :meth:`prune`, :meth:`apply_defaults` and
    :meth:`validate`, like kube-apiserver's decode, default and validate steps.
    """

    def __init__(self, openapi_v3: JSONDict | None) -> None:
        self._root: JSONDict | None = openapi_v3 if openapi_v3 else None

    @property
    def empty(self) -> bool:
        """True when there is no schema, so every object is accepted untouched."""
        return self._root is None

    def _walk(self, obj: JSONDict, mutate: bool) -> list[str]:
        if self._root is None or not isinstance(obj, dict):
            return []
        pruner = _Pruner(mutate)
        root_meta: list[str] = []
        pruner.coerce_metadata(obj, "", root_meta)
        root = dict(self._root)
        root["x-kubernetes-embedded-resource"] = True
        pruner.prune(obj, root, "")
        if mutate:
            _prune_non_nullable_nulls(obj, self._root)
        return root_meta + sorted(pruner.unknown) + pruner.embedded_meta

    def prune(self, obj: JSONDict) -> list[str]:
        """Drop unknown fields in place; returns their paths as strict decoding renders them."""
        return self._walk(obj, mutate=True)

    def unknown_fields(self, obj: JSONDict) -> list[str]:
        """The paths :meth:`prune` would drop, without touching ``obj``."""
        return self._walk(obj, mutate=False)

    def apply_defaults(self, obj: JSONDict) -> None:
        """Materialise ``default:`` values in place wherever the parent object exists."""
        if self._root is not None:
            _apply_defaults(obj, self._root)

    def validate(self, obj: JSONDict) -> list[Cause]:
        """Value validation (OpenAPI v3 subset) plus list-type uniqueness; CEL rules are skipped."""
        if self._root is None:
            return []
        validator = _Validator()
        validator.node(self._root, obj, "", resource=True)
        list_types = _ListTypes()
        if isinstance(obj, dict):
            list_types.object("", self._root, obj)
        return validator.out + list_types.out

    def list_info(self, path: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
        """``(list-type, map-keys)`` of the list at ``path`` (list items stepped over), None if unknown."""
        node = self._root
        for name in path:
            while node is not None and _items(node) is not None:
                node = _items(node)
            if node is None:
                return None
            node = _field_schema(node, name)
        if node is None:
            return None
        list_type = node.get("x-kubernetes-list-type")
        if list_type not in _LIST_TYPES:
            return None
        keys = _as_list(node.get("x-kubernetes-list-map-keys")) if list_type == "map" else []
        return str(list_type), tuple(str(k) for k in keys)


def openapi_schema_for(crd_version_schema: JSONDict | None) -> JSONDict:
    """A deep copy of a version's schema fit for ``/openapi/v3`` (apiVersion, kind and metadata declared).

    Accepts either the version's ``schema`` block (``{"openAPIV3Schema": ...}``) or the schema itself.
    """
    source = crd_version_schema or {}
    if isinstance(source.get("openAPIV3Schema"), dict):
        source = source["openAPIV3Schema"]
    out: JSONDict = copy.deepcopy(source) if source else {"x-kubernetes-preserve-unknown-fields": True}
    out.setdefault("type", "object")
    if not isinstance(out.get("properties"), dict):
        out["properties"] = {}
    props: JSONDict = out["properties"]
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"type": "object"}
    return out


# ============================================================================ CRD validation

_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _dns1035_label_errors(value: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append(_DNS1035_MESSAGE)
    return errs


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs = ["must be no more than 253 characters"] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(_DNS1123_SUBDOMAIN_MESSAGE)
    return errs


def _versions_value(versions: list[Any]) -> str:
    """A stand-in for Go's ``%#v`` of ``[]CustomResourceDefinitionVersion`` (too long to reproduce)."""
    parts = []
    for v in versions:
        d = _as_dict(v)
        served = "true" if d.get("served") is True else "false"
        storage = "true" if d.get("storage") is True else "false"
        parts.append(
            f"apiextensions.CustomResourceDefinitionVersion{{Name:{go_quote(_as_str(d.get('name')))}, "
            f"Served:{served}, Storage:{storage}, ...}}"
        )
    return "[]apiextensions.CustomResourceDefinitionVersion{" + ", ".join(parts) + "}"


def _invalid_versions(path: str, versions: list[Any], detail: str) -> Cause:
    return Cause(FIELD_VALUE_INVALID, path, f"Invalid value: {_versions_value(versions)}: {detail}")


def _check_metadata_name(crd: JSONDict, spec: JSONDict, out: list[Cause]) -> None:
    meta = _as_dict(crd.get("metadata"))
    name = _as_str(meta.get("name"))
    if not name:
        if not _as_str(meta.get("generateName")):
            out.append(_required("metadata.name", "name or generateName is required"))
        return
    problems = _dns1123_subdomain_errors(name)
    names = _as_dict(spec.get("names"))
    if name != f"{_as_str(names.get('plural'))}.{_as_str(spec.get('group'))}":
        problems.append('must be spec.names.plural+"."+spec.group')
    out.extend(_invalid("metadata.name", name, p) for p in problems)


def _check_group_and_scope(spec: JSONDict, out: list[Cause]) -> None:
    group = _as_str(spec.get("group"))
    if not group:
        out.append(_required("spec.group"))
    elif errs := _dns1123_subdomain_errors(group):
        out.append(_invalid("spec.group", group, ",".join(errs)))
    elif "." not in group:
        out.append(_invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = _as_str(spec.get("scope"))
    if not scope:
        out.append(_required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(_not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))


def _check_versions(spec: JSONDict, out: list[Cause]) -> None:
    versions = _as_list(spec.get("versions"))
    for i, version in enumerate(versions):
        v = _as_dict(version)
        path = f"spec.versions[{i}]"
        schema = _as_dict(v.get("schema")).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            out.append(_required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        name = _as_str(v.get("name"))
        if errs := _dns1035_label_errors(name):
            out.append(_invalid(f"{path}.name", name, ",".join(errs)))
        if isinstance(schema, dict):
            _check_root_schema(schema, f"{path}.schema.openAPIV3Schema", out)
        _check_scale(_as_dict(_as_dict(v.get("subresources")).get("scale")), f"{path}.subresources", out)
    names = [_as_str(_as_dict(v).get("name")) for v in versions]
    if len(set(names)) != len(names):
        out.append(_invalid_versions("spec.versions", versions, "must contain unique version names"))
    if sum(1 for v in versions if _as_dict(v).get("storage") is True) != 1:
        out.append(
            _invalid_versions(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )


def _check_scale(scale: JSONDict, path: str, out: list[Cause]) -> None:
    if not scale:
        return
    rules = (
        ("specReplicasPath", (".spec.",), "should be a json path under .spec", True),
        ("statusReplicasPath", (".status.",), "should be a json path under .status", True),
        (
            "labelSelectorPath",
            (".spec.", ".status."),
            "should be a json path under either .spec or .status",
            False,
        ),
    )
    for key, prefixes, message, required in rules:
        value = _as_str(scale.get(key))
        field = f"{path}.scale.{key}"
        if not value:
            if required:
                out.append(_required(field))
        elif not value.startswith("."):
            out.append(_invalid(field, value, "must be a simple json path starting with ."))
        elif not value.startswith(prefixes):
            out.append(_invalid(field, value, message))


def _check_root_schema(schema: JSONDict, path: str, out: list[Cause]) -> None:
    if schema.get("nullable") is True:
        out.append(_forbidden(f"{path}.nullable", "nullable cannot be true at the root"))
    if "additionalProperties" in schema:
        out.append(_forbidden(f"{path}.additionalProperties", "must not be used at the root"))
    _check_schema_node(schema, path, "root", out)


_EMPTY_TYPE_MESSAGES = {
    "root": "must not be empty at the root",
    "item": "must not be empty for specified array items",
    "field": "must not be empty for specified object fields",
}


def _check_schema_node(node: JSONDict, path: str, level: str, out: list[Cause]) -> None:
    """The structural-schema invariants that matter for serving: types declared, arrays with items."""
    declared = node.get("type")
    kind = declared if isinstance(declared, str) else ""
    if kind and kind not in _SCHEMA_TYPES:
        out.append(_not_supported(f"{path}.type", kind, _SCHEMA_TYPES))
    if kind == "array" and _items(node) is None:
        out.append(_required(f"{path}.items", "must be specified"))
    if _embedded(node) and kind != "object":
        message = "must be object if x-kubernetes-embedded-resource is true"
        out.append(_invalid(f"{path}.type", kind, message) if kind else _required(f"{path}.type", message))
    elif not kind and not _flag(node, "x-kubernetes-int-or-string") and not _preserves_unknown(node):
        out.append(_required(f"{path}.type", _EMPTY_TYPE_MESSAGES[level]))
    if level == "root" and kind and kind != "object":
        out.append(_invalid(f"{path}.type", kind, "must be object at the root"))
    if _properties(node) and "additionalProperties" in node:
        out.append(
            _forbidden(
                f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"
            )
        )
    _check_list_type(node, path, out)
    items = _items(node)
    if items is not None:
        _check_schema_node(items, f"{path}.items", "item", out)
    for key, prop in _properties(node).items():
        if isinstance(prop, dict):
            _check_schema_node(prop, f"{path}.properties[{key}]", "field", out)
    extra = _additional_schema(node)
    if extra is not None:
        _check_schema_node(extra, f"{path}.additionalProperties", "field", out)


def _check_list_type(node: JSONDict, path: str, out: list[Cause]) -> None:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        return
    if list_type not in _LIST_TYPES:
        out.append(_not_supported(f"{path}.x-kubernetes-list-type", list_type, _LIST_TYPES))
    elif list_type == "map" and not _as_list(node.get("x-kubernetes-list-map-keys")):
        message = "must not be empty if x-kubernetes-list-type is map"
        out.append(_required(f"{path}.x-kubernetes-list-map-keys", message))


def _check_names(names: JSONDict, out: list[Cause]) -> None:
    for key in ("plural", "singular", "kind", "listKind"):
        if not _as_str(names.get(key)):
            out.append(_required(f"spec.names.{key}"))
    for key in ("plural", "singular"):
        value = _as_str(names.get(key))
        if value and (errs := _dns1035_label_errors(value)):
            out.append(_invalid(f"spec.names.{key}", value, ",".join(errs)))
    for key in ("kind", "listKind"):
        value = _as_str(names.get(key))
        if value and (errs := _dns1035_label_errors(value.lower())):
            detail = "may have mixed case, but should otherwise match: " + ",".join(errs)
            out.append(_invalid(f"spec.names.{key}", value, detail))
    for key in ("shortNames", "categories"):
        for i, value in enumerate(_as_list(names.get(key))):
            text = _as_str(value)
            if errs := _dns1035_label_errors(text):
                out.append(_invalid(f"spec.names.{key}[{i}]", text, ",".join(errs)))
    kind = _as_str(names.get("kind"))
    if kind and kind == _as_str(names.get("listKind")):
        out.append(_invalid("spec.names.listKind", kind, "kind and listKind may not be the same"))


def _check_misc(crd: JSONDict, spec: JSONDict, out: list[Cause]) -> None:
    strategy = _as_dict(spec.get("conversion")).get("strategy")
    if strategy is not None and strategy not in ("None", "Webhook"):
        out.append(_not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"]))
    if spec.get("preserveUnknownFields") is True:
        detail = (
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
            "spec.versions[*].schema instead"
        )
        out.append(_invalid("spec.preserveUnknownFields", True, detail))
    served = {_as_str(_as_dict(v).get("name")) for v in _as_list(spec.get("versions"))}
    for i, stored in enumerate(_as_list(_as_dict(crd.get("status")).get("storedVersions"))):
        if stored not in served:
            out.append(_invalid(f"status.storedVersions[{i}]", stored, "must appear in spec.versions"))


def validate_crd(crd: JSONDict) -> list[Cause]:
    """Static validation of a CustomResourceDefinition (after name defaulting), worded like upstream."""
    defaulted = crd_defaults(crd, now="")
    spec = _as_dict(defaulted.get("spec"))
    out: list[Cause] = []
    _check_metadata_name(defaulted, spec, out)
    _check_group_and_scope(spec, out)
    _check_versions(spec, out)
    _check_names(_as_dict(spec.get("names")), out)
    _check_misc(crd, spec, out)
    return out


# ============================================================================ CRD defaulting and status


def _storage_version(spec: JSONDict) -> str | None:
    for version in _as_list(spec.get("versions")):
        v = _as_dict(version)
        if v.get("storage") is True:
            return _as_str(v.get("name")) or None
    return None


def _accepted_names(names: JSONDict) -> JSONDict:
    accepted: JSONDict = {}
    for key in ("plural", "singular", "shortNames", "kind", "listKind", "categories"):
        value = names.get(key)
        if value:
            accepted[key] = copy.deepcopy(value)
    return accepted


def _condition(kind: str, reason: str, message: str, now: str, previous: list[Any]) -> JSONDict:
    when = now
    for cond in previous:
        c = _as_dict(cond)
        if c.get("type") == kind and c.get("status") == "True" and c.get("lastTransitionTime"):
            when = c["lastTransitionTime"]
    return {"type": kind, "status": "True", "lastTransitionTime": when, "reason": reason, "message": message}


def crd_defaults(crd: JSONDict, now: str) -> JSONDict:
    """A copy of ``crd`` with v1 defaults and the status an established CRD reports.

    Names get ``singular`` (lowercase kind) and ``listKind`` (kind + "List"); ``conversion`` defaults to
    ``{"strategy": "None"}``. Status carries ``acceptedNames``, ``storedVersions`` (the storage version is
    added to what was stored before) and the ``NamesAccepted``/``Established`` conditions; a condition that
    was already True keeps its ``lastTransitionTime``, otherwise ``now`` is used.
    """
    out: JSONDict = copy.deepcopy(crd)
    spec = out.get("spec")
    if not isinstance(spec, dict):
        return out
    names = spec.get("names")
    if isinstance(names, dict):
        kind = _as_str(names.get("kind"))
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    status: JSONDict = out["status"] if isinstance(out.get("status"), dict) else {}
    stored = [v for v in _as_list(status.get("storedVersions")) if isinstance(v, str)]
    storage = _storage_version(spec)
    if storage and storage not in stored:
        stored.append(storage)
    previous = _as_list(status.get("conditions"))
    others = [c for c in previous if _as_dict(c).get("type") not in ("NamesAccepted", "Established")]
    status["acceptedNames"] = _accepted_names(_as_dict(names))
    status["storedVersions"] = stored
    status["conditions"] = [
        _condition("NamesAccepted", "NoConflicts", "no conflicts found", now, previous),
        _condition(
            "Established", "InitialNamesAccepted", "the initial names have been accepted", now, previous
        ),
        *others,
    ]
    out["status"] = status
    return out
