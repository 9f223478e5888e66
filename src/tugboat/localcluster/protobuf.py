"""Decode the few Kubernetes protobuf request bodies that kubectl sends, into the JSON the API would get.

kubectl's typed ``create`` generators (``create namespace``, ``create configmap``, ``create secret
generic``, ``create serviceaccount``, ``create token``) and ``auth whoami`` / ``auth can-i`` POST their
object as ``application/vnd.kubernetes.protobuf`` with no JSON fallback, so a compatible server has to
read it. We do not want a protobuf runtime or generated code for the whole API for a few small kinds: this
module is a minimal wire decoder plus hand-written field tables for exactly those kinds (field numbers
taken from the ``protobuf:"..."`` struct tags of ``k8s.io/api`` and ``k8s.io/apimachinery``).
The server always *responds* in JSON, and answers 415 for any other kind
(:class:`UnsupportedProtobufKind`), pointing users at ``kubectl create -f``/``apply``, which send JSON.

The output mirrors what the same object looks like as JSON: byte fields become base64 strings, times become
RFC 3339 strings, and the empty strings and zero generations that Go always writes for unset scalars are
dropped (JSON would omit them).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "MAGIC",
    "SUPPORTED_KINDS",
    "ProtobufDecodeError",
    "ProtobufError",
    "UnsupportedProtobufKind",
    "decode",
]

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class ProtobufError(Exception):
    """Base of the errors raised while decoding a protobuf request body."""


class ProtobufDecodeError(ProtobufError):
    """The body is not a well-formed Kubernetes protobuf envelope or message."""


class UnsupportedProtobufKind(ProtobufError):
    """The envelope is well formed but carries a kind this module has no field table for."""

    def __init__(self, kind: str, api_version: str = "") -> None:
        self.kind = kind
        self.api_version = api_version
        shown = f"{api_version}, Kind={kind}" if api_version else kind
        super().__init__(f"protobuf encoding is not supported for {shown}; send JSON or YAML instead")


# ---------------------------------------------------------------------------------------------------------
# Wire format
# ---------------------------------------------------------------------------------------------------------

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = range(6)
_MAX_VARINT_BYTES = 10


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Return the unsigned varint starting at ``pos`` and the position just after it."""
    result = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise ProtobufDecodeError("truncated varint")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return result, pos + i + 1
    raise ProtobufDecodeError("varint longer than 10 bytes")


def _skip(buf: bytes, pos: int, size: int) -> int:
    end = pos + size
    if end > len(buf):
        raise ProtobufDecodeError("truncated field")
    return end


def _iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field number, wire type, value)``: ints for varints, bytes for length-delimited fields.

    Fixed-width fields are skipped (none of the decoded kinds uses them); groups are rejected.
    """
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufDecodeError("field number 0")
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield number, wire_type, value
        elif wire_type == _LENGTH:
            size, pos = _read_varint(buf, pos)
            end = _skip(buf, pos, size)
            yield number, wire_type, buf[pos:end]
            pos = end
        elif wire_type == _FIXED64:
            pos = _skip(buf, pos, 8)
        elif wire_type == _FIXED32:
            pos = _skip(buf, pos, 4)
        else:
            raise ProtobufDecodeError(f"unsupported wire type {wire_type} for field {number}")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufDecodeError(f"string field is not valid UTF-8: {exc}") from exc


# ---------------------------------------------------------------------------------------------------------
# Message tables
# ---------------------------------------------------------------------------------------------------------

# Scalar kinds: "string" (dropped when empty), "bytes" (base64 text), "bool", "int" (int64),
# "int_omitzero" (a non-pointer Go integer: dropped when 0), "time" (metav1.Time, dropped when zero).
# A Map holds a string->scalar map (repeated {1: key, 2: value} entries); a Message a nested message.


@dataclass(frozen=True)
class _Map:
    value_kind: str


@dataclass(frozen=True)
class _F:
    name: str
    kind: str | _Map | Mapping[int, _F]
    repeated: bool = False


_Table = Mapping[int, _F]

_TIME_SECONDS, _TIME_NANOS = 1, 2
# Go's zero time.Time, in Unix seconds (what a zero metav1.Time would carry if it were written).
_GO_ZERO_TIME_SECONDS = -62135596800

_OWNER_REFERENCE: _Table = {
    1: _F("kind", "string"),
    3: _F("name", "string"),
    4: _F("uid", "string"),
    5: _F("apiVersion", "string"),
    6: _F("controller", "bool"),
    7: _F("blockOwnerDeletion", "bool"),
}

_OBJECT_META: _Table = {
    1: _F("name", "string"),
    2: _F("generateName", "string"),
    3: _F("namespace", "string"),
    4: _F("selfLink", "string"),
    5: _F("uid", "string"),
    6: _F("resourceVersion", "string"),
    7: _F("generation", "int_omitzero"),
    8: _F("creationTimestamp", "time"),
    9: _F("deletionTimestamp", "time"),
    10: _F("deletionGracePeriodSeconds", "int"),
    11: _F("labels", _Map("string")),
    12: _F("annotations", _Map("string")),
    13: _F("ownerReferences", _OWNER_REFERENCE, repeated=True),
    14: _F("finalizers", "string", repeated=True),
    # 17 managedFields is deliberately absent (skipped): clients do not send it and we do not keep it.
}

_OBJECT_REFERENCE: _Table = {
    1: _F("kind", "string"),
    2: _F("namespace", "string"),
    3: _F("name", "string"),
    4: _F("uid", "string"),
    5: _F("apiVersion", "string"),
    6: _F("resourceVersion", "string"),
    7: _F("fieldPath", "string"),
}

_LOCAL_OBJECT_REFERENCE: _Table = {1: _F("name", "string")}

_METADATA = _F("metadata", _OBJECT_META)

_NAMESPACE: _Table = {
    1: _METADATA,
    2: _F("spec", {1: _F("finalizers", "string", repeated=True)}),
    3: _F("status", {1: _F("phase", "string")}),
}

_CONFIG_MAP: _Table = {
    1: _METADATA,
    2: _F("data", _Map("string")),
    3: _F("binaryData", _Map("bytes")),
    4: _F("immutable", "bool"),
}

_SECRET: _Table = {
    1: _METADATA,
    2: _F("data", _Map("bytes")),
    3: _F("type", "string"),
    4: _F("stringData", _Map("string")),
    5: _F("immutable", "bool"),
}

_SERVICE_ACCOUNT: _Table = {
    1: _METADATA,
    2: _F("secrets", _OBJECT_REFERENCE, repeated=True),
    3: _F("imagePullSecrets", _LOCAL_OBJECT_REFERENCE, repeated=True),
    4: _F("automountServiceAccountToken", "bool"),
}

_BOUND_OBJECT_REFERENCE: _Table = {
    1: _F("kind", "string"),
    2: _F("apiVersion", "string"),
    3: _F("name", "string"),
    4: _F("uid", "string"),
}

_TOKEN_REQUEST: _Table = {
    1: _METADATA,
    2: _F(
        "spec",
        {
            1: _F("audiences", "string", repeated=True),
            3: _F("boundObjectRef", _BOUND_OBJECT_REFERENCE),
            4: _F("expirationSeconds", "int"),
        },
    ),
    3: _F("status", {1: _F("token", "string"), 2: _F("expirationTimestamp", "time")}),
}

_USER_INFO: _Table = {
    1: _F("username", "string"),
    2: _F("uid", "string"),
    3: _F("groups", "string", repeated=True),
}

# ``kubectl auth whoami``: the server fills in the status; clients send only metadata.
_SELF_SUBJECT_REVIEW: _Table = {
    1: _METADATA,
    2: _F("status", {1: _F("userInfo", _USER_INFO)}),
}

_RESOURCE_ATTRIBUTES: _Table = {
    1: _F("namespace", "string"),
    2: _F("verb", "string"),
    3: _F("group", "string"),
    4: _F("version", "string"),
    5: _F("resource", "string"),
    6: _F("subresource", "string"),
    7: _F("name", "string"),
}

# ``kubectl auth can-i``.
_SELF_SUBJECT_ACCESS_REVIEW: _Table = {
    1: _METADATA,
    2: _F(
        "spec",
        {
            1: _F("resourceAttributes", _RESOURCE_ATTRIBUTES),
            2: _F("nonResourceAttributes", {1: _F("path", "string"), 2: _F("verb", "string")}),
        },
    ),
    3: _F("status", {1: _F("allowed", "bool"), 2: _F("reason", "string"), 4: _F("denied", "bool")}),
}

_KINDS: dict[tuple[str, str], _Table] = {
    ("v1", "Namespace"): _NAMESPACE,
    ("v1", "ConfigMap"): _CONFIG_MAP,
    ("v1", "Secret"): _SECRET,
    ("v1", "ServiceAccount"): _SERVICE_ACCOUNT,
    ("authentication.k8s.io/v1", "TokenRequest"): _TOKEN_REQUEST,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _SELF_SUBJECT_REVIEW,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _SELF_SUBJECT_ACCESS_REVIEW,
}

#: The ``(apiVersion, kind)`` pairs :func:`decode` understands.
SUPPORTED_KINDS: frozenset[tuple[str, str]] = frozenset(_KINDS)

_ABSENT = object()  # a decoded value that JSON would omit


# ---------------------------------------------------------------------------------------------------------
# Message decoding
# ---------------------------------------------------------------------------------------------------------


def _decode_message(buf: bytes, table: _Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, wire_type, raw in _iter_fields(buf):
        spec = table.get(number)
        if spec is None:
            continue  # a field we do not model: skip it, as protobuf readers do
        value = _decode_value(spec, wire_type, raw)
        if spec.repeated:
            out.setdefault(spec.name, []).append(value)
        elif isinstance(spec.kind, _Map):
            key, item = value
            out.setdefault(spec.name, {})[key] = item
        elif value is _ABSENT:
            out.pop(spec.name, None)  # the last occurrence of a field wins
        else:
            out[spec.name] = value
    return out


def _decode_value(spec: _F, wire_type: int, raw: int | bytes) -> Any:
    kind = spec.kind
    if kind in ("bool", "int", "int_omitzero"):
        if not isinstance(raw, int) or wire_type != _VARINT:
            raise ProtobufDecodeError(f"field {spec.name!r}: expected a varint")
        return _decode_number(kind, raw)
    if not isinstance(raw, bytes) or wire_type != _LENGTH:
        raise ProtobufDecodeError(f"field {spec.name!r}: expected a length-delimited value")
    if isinstance(kind, _Map):
        return _decode_map_entry(raw, kind.value_kind, spec.name)
    if isinstance(kind, Mapping):
        return _decode_message(raw, kind)
    return _decode_bytes_scalar(kind, raw, repeated=spec.repeated)


def _decode_number(kind: str, raw: int) -> Any:
    if kind == "bool":
        return raw != 0
    number = _signed64(raw)
    if kind == "int_omitzero" and number == 0:
        return _ABSENT
    return number


def _decode_bytes_scalar(kind: str, raw: bytes, *, repeated: bool) -> Any:
    if kind == "bytes":
        return base64.b64encode(raw).decode("ascii")
    if kind == "time":
        return _decode_time(raw)
    text = _utf8(raw)
    return _ABSENT if text == "" and not repeated else text


def _decode_map_entry(raw: bytes, value_kind: str, name: str) -> tuple[str, Any]:
    key, value = "", b""
    for number, wire_type, field in _iter_fields(raw):
        if number not in (1, 2):
            continue
        if wire_type != _LENGTH or not isinstance(field, bytes):
            raise ProtobufDecodeError(f"map {name!r}: entries must hold length-delimited keys and values")
        if number == 1:
            key = _utf8(field)
        else:
            value = field
    if value_kind == "bytes":
        return key, base64.b64encode(value).decode("ascii")
    return key, _utf8(value)


def _decode_time(raw: bytes) -> Any:
    """A ``metav1.Time`` ``{1: seconds, 2: nanos}`` as RFC 3339 at second precision (as its JSON form)."""
    seconds = 0
    for number, wire_type, value in _iter_fields(raw):
        if number == _TIME_SECONDS and isinstance(value, int) and wire_type == _VARINT:
            seconds = _signed64(value)
    if not raw or seconds == _GO_ZERO_TIME_SECONDS:
        return _ABSENT
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    except OverflowError as exc:
        raise ProtobufDecodeError(f"timestamp out of range: {seconds}") from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unknown:
    """The ``runtime.Unknown`` wrapper that follows the magic prefix."""

    api_version: str
    kind: str
    raw: bytes
    content_encoding: str
    content_type: str


def _read_envelope(body: bytes) -> _Unknown:
    if not body.startswith(MAGIC):
        raise ProtobufDecodeError("missing the Kubernetes protobuf prefix 'k8s\\x00'")
    api_version = kind = encoding = content_type = ""
    raw = b""
    for number, wire_type, value in _iter_fields(body[len(MAGIC) :]):
        if wire_type != _LENGTH or not isinstance(value, bytes):
            continue
        if number == 1:
            type_meta = _decode_message(value, {1: _F("apiVersion", "string"), 2: _F("kind", "string")})
            api_version = type_meta.get("apiVersion", "")
            kind = type_meta.get("kind", "")
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _utf8(value)
        elif number == 4:
            content_type = _utf8(value)
    return _Unknown(api_version, kind, raw, encoding, content_type)


def decode(body: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\0``-prefixed protobuf request body into the object's JSON form (as a dict).

    Raises :class:`UnsupportedProtobufKind` for kinds outside :data:`SUPPORTED_KINDS` and
    :class:`ProtobufDecodeError` for anything malformed.
    """
    envelope = _read_envelope(body)
    if not envelope.kind:
        raise ProtobufDecodeError("the protobuf envelope names no kind")
    if envelope.content_encoding:
        raise ProtobufDecodeError(f"unsupported content encoding {envelope.content_encoding!r}")
    if envelope.content_type and envelope.content_type != CONTENT_TYPE:
        raise ProtobufDecodeError(f"unsupported embedded content type {envelope.content_type!r}")
    table = _KINDS.get((envelope.api_version, envelope.kind))
    if table is None:
        raise UnsupportedProtobufKind(envelope.kind, envelope.api_version)
    obj: dict[str, Any] = {"apiVersion": envelope.api_version, "kind": envelope.kind}
    obj.update(_decode_message(envelope.raw, table))
    obj.setdefault("metadata", {})
    return obj
