"""Decoding the protobuf bodies kubectl's ``create`` generators send.

The ``CAPTURED_*`` bodies were recorded from kubectl v1.32.4 POSTing to a stub HTTP server on loopback;
the rest are built with the small encoder below, which writes fields the way Go's gogo-protobuf does.
"""

from __future__ import annotations

import base64

import pytest

from tugboat.localcluster.protobuf import (
    MAGIC,
    SUPPORTED_KINDS,
    ProtobufDecodeError,
    ProtobufError,
    UnsupportedProtobufKind,
    decode,
)

# --------------------------------------------------------------------------------------------------------
# Bodies captured from kubectl 1.32.4
# --------------------------------------------------------------------------------------------------------

# kubectl create namespace demo
CAPTURED_NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121c0a140a0464656d6f12001a0022002a0032003800420012001a02"
    "0a001a002200"
)
# kubectl create configmap c --from-literal=a=b
CAPTURED_CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d6170121b0a110a016312001a0022002a0032003800420012060a0161120162"
    "1a002200"
)
# kubectl create configmap c2 --from-literal=x=1 --from-literal=y= --from-file=b=<00 ff 10 'bin'> -n team
CAPTURED_CONFIGMAP_BINARY = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d617012340a160a02633212001a047465616d22002a0032003800420012060a"
    "017812013112050a017912001a0b0a0162120600ff1062696e1a002200"
)
# kubectl create secret generic s --from-literal=p=q
CAPTURED_SECRET = bytes.fromhex(
    "6b3873000a0c0a0276311206536563726574121d0a110a017312001a0022002a0032003800420012060a01701201711a001a"
    "002200"
)
# kubectl create secret generic s2 --type=kubernetes.io/basic-auth --from-literal=username=u
#   --from-literal=password=p@ss
CAPTURED_SECRET_TYPED = bytes.fromhex(
    "6b3873000a0c0a0276311206536563726574124f0a120a02733212001a0022002a0032003800420012100a0870617373776f"
    "7264120470407373120d0a08757365726e616d651201751a186b756265726e657465732e696f2f62617369632d617574681a"
    "002200"
)
# kubectl create serviceaccount sa
CAPTURED_SERVICEACCOUNT = bytes.fromhex(
    "6b3873000a140a027631120e536572766963654163636f756e7412140a120a02736112001a0022002a003200380042001a002200"
)
# kubectl create token sa --audience=api --duration=1h
CAPTURED_TOKEN = bytes.fromhex(
    "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e5265717565737412220a10"
    "0a0012001a0022002a0032003800420012080a0361706920901c1a040a0012001a002200"
)
# kubectl create token sa --audience=a1 --audience=a2 --duration=10m --bound-object-kind=Pod
#   --bound-object-name=p1 --bound-object-uid=1234-abcd
CAPTURED_TOKEN_BOUND = bytes.fromhex(
    "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e52657175657374123f0a10"
    "0a0012001a0022002a0032003800420012250a0261310a0261321a180a03506f64120276311a0270312209313233342d6162"
    "636420d8041a040a0012001a002200"
)
# kubectl auth whoami
CAPTURED_SELF_SUBJECT_REVIEW = bytes.fromhex(
    "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a656374526576696577"
    "121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200"
)
# kubectl auth can-i create pods -n team
CAPTURED_ACCESS_REVIEW = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441636365737352"
    "6576696577123c0a100a0012001a0022002a00320038004200121e0a1c0a047465616d12066372656174651a0022002a04706f"
    "647332003a001a08080012001a0020001a002200"
)
# kubectl auth can-i get /healthz
CAPTURED_ACCESS_REVIEW_NON_RESOURCE = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441636365737352"
    "6576696577122f0a100a0012001a0022002a003200380042001211120f0a082f6865616c74687a12036765741a08080012001a"
    "0020001a002200"
)


def test_captured_namespace() -> None:
    assert decode(CAPTURED_NAMESPACE) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "demo"},
        "spec": {},
        "status": {},
    }


def test_captured_configmaps() -> None:
    assert decode(CAPTURED_CONFIGMAP) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "b"},
    }
    assert decode(CAPTURED_CONFIGMAP_BINARY) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c2", "namespace": "team"},
        "data": {"x": "1", "y": ""},
        "binaryData": {"b": base64.b64encode(b"\x00\xff\x10bin").decode()},
    }


def test_captured_secrets() -> None:
    assert decode(CAPTURED_SECRET) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"p": base64.b64encode(b"q").decode()},
    }
    assert decode(CAPTURED_SECRET_TYPED) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s2"},
        "data": {"username": "dQ==", "password": base64.b64encode(b"p@ss").decode()},
        "type": "kubernetes.io/basic-auth",
    }


def test_captured_serviceaccount() -> None:
    assert decode(CAPTURED_SERVICEACCOUNT) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
    }


def test_captured_token_requests() -> None:
    assert decode(CAPTURED_TOKEN) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {},
        "spec": {"audiences": ["api"], "expirationSeconds": 3600},
        "status": {},
    }
    assert decode(CAPTURED_TOKEN_BOUND)["spec"] == {
        "audiences": ["a1", "a2"],
        "expirationSeconds": 600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "1234-abcd"},
    }


# --------------------------------------------------------------------------------------------------------
# A tiny encoder, for hand-built bodies
# --------------------------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s use ten bytes of two's complement, as in Go
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def vint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    raw = payload.encode() if isinstance(payload, str) else payload
    return tag(number, 2) + varint(len(raw)) + raw


def msg(number: int, *fields: bytes) -> bytes:
    return ld(number, b"".join(fields))


def entries(number: int, mapping: dict[str, str] | dict[str, bytes]) -> bytes:
    return b"".join(msg(number, ld(1, k), ld(2, v)) for k, v in mapping.items())


def envelope(
    api_version: str, kind: str, *fields: bytes, encoding: str = "", content_type: str = ""
) -> bytes:
    type_meta = msg(1, ld(1, api_version), ld(2, kind))
    return MAGIC + type_meta + ld(2, b"".join(fields)) + ld(3, encoding) + ld(4, content_type)


def go_meta(*fields: bytes) -> bytes:
    """ObjectMeta padded as Go pads it (empty strings, generation 0, empty creationTimestamp).

    The padding comes first, so the given ``fields`` override it (the last occurrence of a field wins).
    """
    padding = ld(2, "") + ld(3, "") + ld(4, "") + ld(5, "") + ld(6, "") + vint(7, 0) + ld(8, b"")
    return msg(1, padding, *fields)


def test_encoder_reproduces_a_captured_body() -> None:
    meta = msg(
        1, ld(1, "demo"), ld(2, ""), ld(3, ""), ld(4, ""), ld(5, ""), ld(6, ""), vint(7, 0), ld(8, b"")
    )
    built = envelope("v1", "Namespace", meta, ld(2, b""), msg(3, ld(1, "")))
    assert built == CAPTURED_NAMESPACE


# --------------------------------------------------------------------------------------------------------
# Hand-built bodies
# --------------------------------------------------------------------------------------------------------

TIME_2024 = 1717243200  # 2024-06-01T12:00:00Z


def test_full_object_meta() -> None:
    meta = msg(
        1,
        ld(1, "web"),
        ld(2, "web-"),
        ld(3, "prod"),
        ld(5, "0b6f-uid"),
        ld(6, "42"),
        vint(7, 3),
        msg(8, vint(1, TIME_2024), vint(2, 500)),
        vint(10, 30),
        entries(11, {"app": "web", "tier": ""}),
        entries(12, {"note": "hello, world"}),
        msg(
            13,
            ld(1, "Deployment"),
            ld(3, "web"),
            ld(4, "owner-uid"),
            ld(5, "apps/v1"),
            vint(6, 1),
            vint(7, 0),
        ),
        msg(13, ld(1, "Thing"), ld(3, "t"), ld(4, "u2"), ld(5, "example.com/v1")),
        ld(14, "example.com/cleanup"),
        ld(14, "kubernetes"),
        msg(17, ld(1, "kubectl-create"), ld(2, "Update"), msg(6, ld(1, b"\x01\x02"))),
    )
    obj = decode(envelope("v1", "ConfigMap", meta))
    assert obj["metadata"] == {
        "name": "web",
        "generateName": "web-",
        "namespace": "prod",
        "uid": "0b6f-uid",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2024-06-01T12:00:00Z",
        "deletionGracePeriodSeconds": 30,
        "labels": {"app": "web", "tier": ""},
        "annotations": {"note": "hello, world"},
        "ownerReferences": [
            {
                "kind": "Deployment",
                "name": "web",
                "uid": "owner-uid",
                "apiVersion": "apps/v1",
                "controller": True,
                "blockOwnerDeletion": False,
            },
            {"kind": "Thing", "name": "t", "uid": "u2", "apiVersion": "example.com/v1"},
        ],
        "finalizers": ["example.com/cleanup", "kubernetes"],
    }
    assert "managedFields" not in obj["metadata"]


def test_go_empty_scalars_are_dropped() -> None:
    obj = decode(envelope("v1", "ServiceAccount", go_meta(ld(1, "sa"))))
    assert obj == {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}


def test_zero_go_time_is_dropped() -> None:
    zero = msg(8, vint(1, -62135596800))
    obj = decode(envelope("v1", "ServiceAccount", msg(1, ld(1, "sa"), zero)))
    assert obj["metadata"] == {"name": "sa"}


def test_namespace_finalizers_and_phase() -> None:
    spec = msg(2, ld(1, "kubernetes"), ld(1, "example.com/x"))
    obj = decode(envelope("v1", "Namespace", go_meta(ld(1, "ns")), spec, msg(3, ld(1, "Active"))))
    assert obj["spec"] == {"finalizers": ["kubernetes", "example.com/x"]}
    assert obj["status"] == {"phase": "Active"}


def test_configmap_fields() -> None:
    body = envelope(
        "v1",
        "ConfigMap",
        go_meta(ld(1, "cm"), ld(3, "default")),
        entries(2, {"config.yaml": "a: 1\n", "empty": ""}),
        entries(3, {"blob": b"\x00\x01\xfe"}),
        vint(4, 1),
    )
    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"},
        "data": {"config.yaml": "a: 1\n", "empty": ""},
        "binaryData": {"blob": "AAH+"},
        "immutable": True,
    }


def test_secret_fields() -> None:
    body = envelope(
        "v1",
        "Secret",
        go_meta(ld(1, "s")),
        entries(2, {"token": b"\xffsecret"}),
        ld(3, "Opaque"),
        entries(4, {"plain": "text"}),
        vint(5, 0),
    )
    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"token": base64.b64encode(b"\xffsecret").decode()},
        "type": "Opaque",
        "stringData": {"plain": "text"},
        "immutable": False,
    }


def test_serviceaccount_fields() -> None:
    ref = msg(
        2, ld(1, "Secret"), ld(2, "ns"), ld(3, "sa-token"), ld(4, ""), ld(5, "v1"), ld(6, ""), ld(7, "")
    )
    body = envelope(
        "v1",
        "ServiceAccount",
        go_meta(ld(1, "sa")),
        ref,
        msg(3, ld(1, "regcred")),
        msg(3, ld(1, "other")),
        vint(4, 0),
    )
    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
        "secrets": [{"kind": "Secret", "namespace": "ns", "name": "sa-token", "apiVersion": "v1"}],
        "imagePullSecrets": [{"name": "regcred"}, {"name": "other"}],
        "automountServiceAccountToken": False,
    }


def test_token_request_fields() -> None:
    spec = msg(2, ld(1, "https://kubernetes.default.svc"), vint(4, 7200), msg(3, ld(1, "Secret"), ld(3, "s")))
    obj = decode(envelope("authentication.k8s.io/v1", "TokenRequest", go_meta(), spec))
    assert obj == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {},
        "spec": {
            "audiences": ["https://kubernetes.default.svc"],
            "expirationSeconds": 7200,
            "boundObjectRef": {"kind": "Secret", "name": "s"},
        },
    }


def test_negative_int64() -> None:
    spec = msg(2, vint(4, -1))
    assert varint(-1) == b"\xff" * 9 + b"\x01"
    assert decode(envelope("authentication.k8s.io/v1", "TokenRequest", spec))["spec"] == {
        "expirationSeconds": -1
    }


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    fixed64 = tag(90, 1) + b"\x00" * 8
    fixed32 = tag(91, 5) + b"\x00" * 4
    unknown = vint(92, 300) + ld(93, "ignored") + fixed64 + fixed32
    meta = msg(1, ld(1, "x"), unknown)
    obj = decode(envelope("v1", "ConfigMap", meta, unknown, entries(2, {"k": "v"})))
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v"}}


def test_last_scalar_occurrence_wins() -> None:
    obj = decode(envelope("v1", "Secret", msg(1, ld(1, "a"), ld(1, "b")), ld(3, "Opaque"), ld(3, "")))
    assert obj["metadata"]["name"] == "b"
    assert "type" not in obj


def test_captured_reviews() -> None:
    assert decode(CAPTURED_SELF_SUBJECT_REVIEW) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
        "status": {"userInfo": {}},
    }
    review = decode(CAPTURED_ACCESS_REVIEW)
    assert review["kind"] == "SelfSubjectAccessReview"
    assert review["spec"] == {
        "resourceAttributes": {"namespace": "team", "verb": "create", "resource": "pods"}
    }
    assert decode(CAPTURED_ACCESS_REVIEW_NON_RESOURCE)["spec"] == {
        "nonResourceAttributes": {"path": "/healthz", "verb": "get"}
    }


def test_metadata_is_always_present() -> None:
    assert decode(envelope("v1", "ConfigMap")) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}


def test_supported_kinds() -> None:
    assert {
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("authentication.k8s.io/v1", "SelfSubjectReview"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    } == SUPPORTED_KINDS


# --------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "kind"), [("apps/v1", "Deployment"), ("v1", "Pod"), ("v2", "Secret")]
)
def test_unsupported_kind(api_version: str, kind: str) -> None:
    with pytest.raises(UnsupportedProtobufKind) as info:
        decode(envelope(api_version, kind, go_meta(ld(1, "x"))))
    assert info.value.kind == kind
    assert info.value.api_version == api_version
    assert kind in str(info.value)
    assert isinstance(info.value, ProtobufError)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"k8s",
        b"k8s\x00\x0a",  # truncated key/length
        b"k8s\x00\x0a\x05ab",  # length beyond the end
        b"k8s\x00\x08" + b"\xff" * 11,  # varint longer than ten bytes
        b"k8s\x00\x0b",  # wire type 3 (start group)
        b"k8s\x00\x00\x00",  # field number 0
        MAGIC + ld(2, b""),  # no typeMeta, so no kind
        envelope("v1", "Secret", ld(3, b"\xff\xfe")),  # string field that is not UTF-8
        envelope("v1", "Secret", vint(3, 1)),  # varint where a string is expected
        envelope("v1", "Secret", ld(5, b"x")),  # bytes where a bool is expected
        envelope("v1", "Secret", msg(2, vint(1, 1))),  # map entry key as a varint
        envelope("v1", "Secret", ld(1, b"\x0a\x09abc")),  # truncated nested message
        envelope("v1", "Secret", go_meta(), encoding="gzip"),
        envelope("v1", "Secret", go_meta(), content_type="application/json"),
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(ProtobufDecodeError):
        decode(body)


def test_error_hierarchy() -> None:
    assert issubclass(ProtobufDecodeError, ProtobufError)
    assert issubclass(UnsupportedProtobufKind, ProtobufError)
    assert not issubclass(UnsupportedProtobufKind, ProtobufDecodeError)
