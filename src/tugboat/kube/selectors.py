"""Label and field selectors, as the Kubernetes API parses, prints and evaluates them.

Selectors reach us from three places: the ``labelSelector``/``fieldSelector`` query parameters that kubectl
and controllers send to the local cluster's API server, the structured ``metav1.LabelSelector`` inside
workload specs (Deployment, ReplicaSet, Job, Service), and the string form that the ``/scale`` subresource
reports in ``status.selector``. All three must behave exactly as upstream does, because kubectl (``get -l``,
``describe``'s event lookup, ``rollout status``) relies on the server filtering for it. The parser therefore
follows the grammar of ``k8s.io/apimachinery/pkg/labels`` and ``.../fields`` (including its error wording
where a client may show it), and :func:`object_fields` reproduces the per-type selectable fields of the
upstream registry, because asking for any other field is an error upstream (``field label not supported``).

Everything here is pure: no I/O, no clock. Malformed input raises :class:`~tugboat.kube.errors.SelectorError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from tugboat.kube.errors import SelectorError

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "check_fields",
    "from_label_selector",
    "object_fields",
    "parse_fields",
    "parse_labels",
    "selector_string",
    "supported_fields",
]

# ---------------------------------------------------------------------------------------------------------
# Label keys and values
# ---------------------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_MAX = 63
_PREFIX_MAX = 253
_NAME_HINT = (
    "must be 63 characters or less and consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def _key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (a "qualified name"), or ``None`` if it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "prefix part must be non-empty"
    if prefix and (len(prefix) > _PREFIX_MAX or not _DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters"
    if not name:
        return "name part must be non-empty"
    if len(name) > _NAME_MAX or not _NAME_RE.fullmatch(name):
        return f"name part {_NAME_HINT}"
    return None


def _value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or ``None`` if it is (the empty string is valid)."""
    if value == "" or (len(value) <= _NAME_MAX and _NAME_RE.fullmatch(value)):
        return None
    return f"a valid label value {_NAME_HINT} (or be empty)"


def _check_key(key: str) -> None:
    problem = _key_problem(key)
    if problem is not None:
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r}: {problem}")


def _check_value(value: str) -> None:
    problem = _value_problem(value)
    if problem is not None:
        raise SelectorError(f"unable to parse requirement: invalid label value {value!r}: {problem}")


# ---------------------------------------------------------------------------------------------------------
# Label selector model
# ---------------------------------------------------------------------------------------------------------


class Operator(StrEnum):
    """A label requirement's operator; the value is how it is spelled in the string form."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


_SET_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})
_EXISTENCE_OPERATORS = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_NUMERIC_OPERATORS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_INT_RE = re.compile(r"[-+]?[0-9]+")


@dataclass(frozen=True)
class Requirement:
    """One ANDed term of a label selector. ``values`` is sorted and de-duplicated."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    @classmethod
    def make(cls, key: str, operator: Operator, values: Iterable[str] = ()) -> Requirement:
        """Build a validated requirement, raising :class:`SelectorError` as upstream ``NewRequirement``."""
        vals = tuple(sorted(set(values)))
        _check_key(key)
        problem = _operator_problem(operator, vals)
        if problem is not None:
            raise SelectorError(f"unable to parse requirement: {problem}")
        if operator not in _NUMERIC_OPERATORS:
            for value in vals:
                _check_value(value)
        return cls(key, operator, vals)

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        op = self.operator
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        if op in _NUMERIC_OPERATORS:
            return _compare_int(labels[self.key], int(self.values[0]), op)
        return labels[self.key] in self.values

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in _SET_OPERATORS:
            return f"{self.key} {op.value} ({','.join(self.values)})"
        return f"{self.key}{op.value}{self.values[0]}"


def _operator_problem(operator: Operator, values: tuple[str, ...]) -> str | None:
    """Why ``values`` do not suit ``operator`` (wording after upstream ``NewRequirement``), or ``None``."""
    if operator in _SET_OPERATORS:
        return None if values else "for 'in', 'notin' operators, values set can't be empty"
    if operator in _EXISTENCE_OPERATORS:
        return "values set must be empty for exists and does not exist" if values else None
    if len(values) != 1:
        return "exact-match compatibility requires one single value"
    if operator in _NUMERIC_OPERATORS and not _INT_RE.fullmatch(values[0]):
        return f"for 'Gt', 'Lt' operators, the value must be an integer: {values[0]!r}"
    return None


def _compare_int(label_value: str, bound: int, op: Operator) -> bool:
    if not _INT_RE.fullmatch(label_value):
        return False
    number = int(label_value)
    return number > bound if op is Operator.GREATER_THAN else number < bound


@dataclass(frozen=True)
class LabelSelector:
    """An AND of :class:`Requirement`, kept sorted by key (as upstream does).

    ``nothing`` marks the selector that matches no object at all: what a *nil* structured selector means
    (see :func:`from_label_selector`). It prints as the empty string, like upstream's ``labels.Nothing()``,
    so never round-trip it through the string form.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def match_nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @classmethod
    def of(cls, requirements: Iterable[Requirement]) -> LabelSelector:
        """A selector from requirements in any order (stable-sorted by key here)."""
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        """True for the selector that matches everything (no requirements)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        present = labels if labels is not None else {}
        return all(r.matches(present) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# ---------------------------------------------------------------------------------------------------------
# Label selector string form: lexer and parser
# ---------------------------------------------------------------------------------------------------------

_SPECIAL = "!=<>(),"
_SYMBOLS = ("!=", "==", "!", "=", ">", "<", "(", ")", ",")
_END = ""


class _Token(NamedTuple):
    kind: str  # "ident", one of _SYMBOLS, or _END
    text: str


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if symbol is not None:
            tokens.append(_Token(symbol, symbol))
            i += len(symbol)
            continue
        start = i
        while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
            i += 1
        tokens.append(_Token("ident", text[start:i]))
    tokens.append(_Token(_END, _END))
    return tokens


def _shown(token: _Token) -> str:
    return token.text if token.kind != _END else "end of string"


class _LabelParser:
    """Recursive descent over the label-selector grammar (``key op values``, comma-separated)."""

    def __init__(self, text: str) -> None:
        self._tokens = _lex(text)
        self._pos = 0

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _next(self) -> _Token:
        token = self._tokens[self._pos]
        if token.kind != _END:
            self._pos += 1
        return token

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        if self._peek().kind == _END:
            return LabelSelector.everything()
        while True:
            token = self._peek()
            if token.kind not in ("ident", "!"):
                raise SelectorError(f"found '{_shown(token)}', expected: !, identifier, or 'end of string'")
            requirements.append(self._requirement())
            after = self._next()
            if after.kind == _END:
                return LabelSelector.of(requirements)
            if after.kind != ",":
                raise SelectorError(f"found '{_shown(after)}', expected: ',' or 'end of string'")
            if self._peek().kind not in ("ident", "!"):
                raise SelectorError(f"found '{_shown(self._peek())}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        if self._peek().kind == "!":
            self._next()
            key = self._key()
            return Requirement.make(key, Operator.DOES_NOT_EXIST)
        key = self._key()
        token = self._peek()
        if token.kind in (",", _END):
            return Requirement.make(key, Operator.EXISTS)
        operator = self._operator()
        if operator in _SET_OPERATORS:
            return Requirement.make(key, operator, self._value_set())
        return Requirement.make(key, operator, [self._single_value()])

    def _key(self) -> str:
        token = self._next()
        if token.kind != "ident":
            raise SelectorError(f"unable to parse requirement: found '{_shown(token)}', expected: identifier")
        return token.text

    def _operator(self) -> Operator:
        token = self._next()
        spelled = {"=": Operator.EQUALS, "==": Operator.DOUBLE_EQUALS, "!=": Operator.NOT_EQUALS}
        spelled |= {">": Operator.GREATER_THAN, "<": Operator.LESS_THAN}
        if token.kind in spelled:
            return spelled[token.kind]
        if token.kind == "ident" and token.text in ("in", "notin"):
            return Operator(token.text)
        raise SelectorError(
            f"unable to parse requirement: found '{_shown(token)}', expected: in, notin, =, ==, !=, gt, lt"
        )

    def _single_value(self) -> str:
        token = self._peek()
        if token.kind in (",", _END):
            return ""
        self._next()
        if token.kind != "ident":
            raise SelectorError(f"unable to parse requirement: found '{_shown(token)}', expected: identifier")
        return token.text

    def _value_set(self) -> list[str]:
        opening = self._next()
        if opening.kind != "(":
            raise SelectorError(f"unable to parse requirement: found '{_shown(opening)}', expected: '('")
        values: list[str] = []
        expect_value = True
        while True:
            token = self._next()
            if token.kind == ")":
                if expect_value:
                    values.append("")
                return values
            if token.kind == "ident" and expect_value:
                values.append(token.text)
                expect_value = False
            elif token.kind == ",":
                if expect_value:
                    values.append("")
                expect_value = True
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{_shown(token)}', expected: ',', ')' or identifier"
                )


def parse_labels(text: str) -> LabelSelector:
    """Parse the string form (``app=web,tier in (a,b),!canary``). The empty string selects everything."""
    return _LabelParser(text).parse()


# ---------------------------------------------------------------------------------------------------------
# Structured (metav1.LabelSelector) form
# ---------------------------------------------------------------------------------------------------------

_STRUCTURED_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def from_label_selector(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Convert an API ``LabelSelector`` object (``matchLabels`` + ``matchExpressions``).

    As upstream's ``LabelSelectorAsSelector``: ``None`` (a nil selector) matches *nothing*, while ``{}``
    (present but empty) matches *everything*. Invalid keys, values or operators raise ``SelectorError``.
    """
    if sel is None:
        return LabelSelector.match_nothing()
    if not isinstance(sel, Mapping):
        raise SelectorError(f"invalid label selector: expected an object, got {type(sel).__name__}")
    match_labels = sel.get("matchLabels") or {}
    expressions = sel.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        raise SelectorError("invalid label selector: matchLabels must be an object, matchExpressions a list")
    requirements = [Requirement.make(str(k), Operator.EQUALS, [str(v)]) for k, v in match_labels.items()]
    requirements.extend(_expression(expr) for expr in expressions)
    return LabelSelector.of(requirements)


def _expression(expr: Any) -> Requirement:
    if not isinstance(expr, Mapping):
        raise SelectorError("invalid label selector: each matchExpressions item must be an object")
    name = expr.get("operator")
    operator = _STRUCTURED_OPERATORS.get(str(name))
    if operator is None:
        raise SelectorError(f"{name!r} is not a valid label selector operator")
    values = [str(v) for v in expr.get("values") or []]
    return Requirement.make(str(expr.get("key", "")), operator, values)


def selector_string(sel: Mapping[str, Any] | None) -> str:
    """The canonical string form of a structured selector, e.g. for ``Scale.status.selector``."""
    return str(from_label_selector(sel))


# ---------------------------------------------------------------------------------------------------------
# Field selectors
# ---------------------------------------------------------------------------------------------------------


class FieldRequirement(NamedTuple):
    """``field op value`` with ``op`` normalised to ``"="`` (also for ``==``) or ``"!="``."""

    field: str
    op: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.op == "=" else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.op}{_escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """An AND of :class:`FieldRequirement`, in the order given."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether an object's selectable ``fields`` (see :func:`object_fields`) satisfy every requirement.

        A field missing from ``fields`` compares as the empty string.
        """
        return all(r.matches(fields) for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value ``field`` must equal, if some requirement pins it (lets a server index by name)."""
        return next((r.value for r in self.requirements if r.field == field and r.op == "="), None)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not preceded by an escaping backslash."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Split at the first unescaped operator (``!=``, ``==`` or ``=``); ``None`` if there is none."""
    escaped = False
    for i, ch in enumerate(term):
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape_field_value(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(
                f"invalid field selector: invalid selector: unescaped {ch!r} in value {value!r}"
            )
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: trailing \\")
    return "".join(out)


def _escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def parse_fields(text: str) -> FieldSelector:
    """Parse ``metadata.name=web,status.phase!=Running``; values may be empty and use ``\\`` escapes.

    Backslash escapes ``\\\\``, ``\\,`` and ``\\=`` in values, as upstream's ``fields.UnescapeValue``. The
    empty string selects everything.
    """
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        if not term.strip():
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = split
        field = field.strip()
        if not field:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        requirements.append(
            FieldRequirement(field, "!=" if op == "!=" else "=", _unescape_field_value(value))
        )
    return FieldSelector(tuple(requirements))


# ---------------------------------------------------------------------------------------------------------
# Selectable fields per resource
# ---------------------------------------------------------------------------------------------------------

_Extractor = Callable[[Mapping[str, Any]], dict[str, str]]


def _get(obj: Mapping[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _text(obj: Mapping[str, Any], path: str) -> str:
    value = _get(obj, path)
    return "" if value is None else str(value)


def _flag(obj: Mapping[str, Any], path: str) -> str:
    """A Go ``bool`` field formatted as upstream does (``strconv.FormatBool``): absent means ``false``."""
    return "true" if _get(obj, path) is True else "false"


def _count(obj: Mapping[str, Any], path: str) -> str:
    """A Go integer field formatted as upstream does: absent means ``0``."""
    value = _get(obj, path)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _pod_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    pod_ip = _text(obj, "status.podIP")
    pod_ips = _get(obj, "status.podIPs")
    if not pod_ip and isinstance(pod_ips, list) and pod_ips and isinstance(pod_ips[0], Mapping):
        pod_ip = str(pod_ips[0].get("ip") or "")
    return {
        "spec.nodeName": _text(obj, "spec.nodeName"),
        "spec.restartPolicy": _text(obj, "spec.restartPolicy"),
        "spec.schedulerName": _text(obj, "spec.schedulerName"),
        "spec.serviceAccountName": _text(obj, "spec.serviceAccountName"),
        "spec.hostNetwork": _flag(obj, "spec.hostNetwork"),
        "status.phase": _text(obj, "status.phase"),
        "status.podIP": pod_ip,
        "status.nominatedNodeName": _text(obj, "status.nominatedNodeName"),
    }


_REFERENCE_PARTS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")


def _reference_fields(obj: Mapping[str, Any], prefix: str) -> dict[str, str]:
    return {f"{prefix}.{part}": _text(obj, f"{prefix}.{part}") for part in _REFERENCE_PARTS}


def _core_event_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    fields = _reference_fields(obj, "involvedObject")
    fields["reason"] = _text(obj, "reason")
    fields["reportingComponent"] = _text(obj, "reportingComponent")
    fields["source"] = _text(obj, "source.component")
    fields["type"] = _text(obj, "type")
    return fields


def _events_k8s_io_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    fields = _reference_fields(obj, "regarding")
    fields["reason"] = _text(obj, "reason")
    fields["type"] = _text(obj, "type")
    fields["reportingController"] = _text(obj, "reportingController")
    return fields


def _only(path: str, read: Callable[[Mapping[str, Any], str], str]) -> _Extractor:
    return lambda obj: {path: read(obj, path)}


# (group, resource) -> the type-specific selectable fields, beyond metadata.name and metadata.namespace.
_EXTRACTORS: dict[tuple[str, str], _Extractor] = {
    ("", "pods"): _pod_fields,
    ("", "events"): _core_event_fields,
    ("events.k8s.io", "events"): _events_k8s_io_fields,
    ("", "nodes"): _only("spec.unschedulable", _flag),
    ("", "secrets"): _only("type", _text),
    ("", "namespaces"): _only("status.phase", _text),
    ("apps", "replicasets"): _only("status.replicas", _count),
    ("batch", "jobs"): lambda obj: {"status.successful": _count(obj, "status.succeeded")},
}

_EMPTY: dict[str, Any] = {}
_META_FIELDS = ("metadata.name", "metadata.namespace")


def object_fields(group: str, resource: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The field-selector view of ``obj``: every selectable field of its type, as strings.

    Absent strings are ``""``; Go ``bool`` and integer fields are ``"false"``/``"0"`` when absent, because
    upstream formats the Go zero value (so ``spec.unschedulable=false`` selects a node without the field).
    """
    fields = {path: _text(obj, path) for path in _META_FIELDS}
    extractor = _EXTRACTORS.get((group, resource))
    if extractor is not None:
        fields.update(extractor(obj))
    return fields


def supported_fields(group: str, resource: str) -> frozenset[str]:
    """The field names a field selector may use for ``resource`` in API ``group``."""
    return frozenset(object_fields(group, resource, _EMPTY))


def check_fields(group: str, resource: str, selector: FieldSelector) -> None:
    """Raise ``SelectorError('field label not supported: <field>')`` for the first unselectable field."""
    allowed = supported_fields(group, resource)
    for requirement in selector.requirements:
        if requirement.field not in allowed:
            raise SelectorError(f"field label not supported: {requirement.field}")
