"""Label and field selectors: the upstream grammar, canonical printing, matching and selectable fields."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tugboat.kube.errors import SelectorError
from tugboat.kube.selectors import (
    FieldRequirement,
    LabelSelector,
    Operator,
    Requirement,
    check_fields,
    from_label_selector,
    object_fields,
    parse_fields,
    parse_labels,
    selector_string,
    supported_fields,
)

# --------------------------------------------------------------------------------------------------------
# Label selectors: string form
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app=web", {}, False),
        ("app==web", {"app": "web"}, True),
        ("app!=web", {"app": "db"}, True),
        ("app!=web", {"app": "web"}, False),
        ("app!=web", {}, True),  # != matches objects lacking the key
        ("tier in (a,b)", {"tier": "b"}, True),
        ("tier in (a,b)", {"tier": "c"}, False),
        ("tier in (a,b)", {}, False),
        ("tier notin (a,b)", {"tier": "c"}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("tier notin (a,b)", {}, True),  # notin matches objects lacking the key
        ("canary", {"canary": ""}, True),
        ("canary", {"app": "web"}, False),
        ("!canary", {"app": "web"}, True),
        ("!canary", {"canary": "true"}, False),
        ("app=web,!canary", {"app": "web"}, True),
        ("app=web,!canary", {"app": "web", "canary": "1"}, False),
        ("app=", {"app": ""}, True),
        ("app=", {"app": "x"}, False),
        ("app in (,x)", {"app": ""}, True),
        ("replicas>2", {"replicas": "3"}, True),
        ("replicas>2", {"replicas": "2"}, False),
        ("replicas>2", {"replicas": "many"}, False),
        ("replicas>2", {}, False),
        ("replicas<2", {"replicas": "-1"}, True),
        ("example.com/team=core", {"example.com/team": "core"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_labels(text).matches(labels) is expected


def test_whitespace_is_tolerated() -> None:
    spaced = parse_labels("  app = web ,  tier in ( a , b ),  ! canary ,env notin(prod)  ")
    assert str(spaced) == "app=web,!canary,env notin (prod),tier in (a,b)"


def test_keywords_are_ordinary_values_and_keys() -> None:
    assert parse_labels("in=notin").matches({"in": "notin"})
    assert parse_labels("k in (in,notin)").matches({"k": "notin"})


def test_canonical_string_sorts_keys_and_values() -> None:
    assert str(parse_labels("tier in (b,a,b), app = web")) == "app=web,tier in (a,b)"
    assert str(parse_labels("b==1,a!=2,c,!d")) == "a!=2,b==1,c,!d"
    assert str(parse_labels("n>3")) == "n>3"


def test_string_form_round_trips() -> None:
    text = "app=web,!canary,env notin (prod,qa),example.com/x,tier in (a,b)"
    assert str(parse_labels(text)) == text
    assert parse_labels(str(parse_labels(text))) == parse_labels(text)


def test_empty_selector() -> None:
    sel = parse_labels("")
    assert sel.empty
    assert sel.matches(None)
    assert sel.matches({"a": "b"})
    assert str(sel) == ""
    assert parse_labels("   ") == sel
    assert not parse_labels("a").empty


def test_none_labels_behave_as_no_labels() -> None:
    assert parse_labels("!a").matches(None)
    assert parse_labels("a!=b").matches(None)
    assert not parse_labels("a").matches(None)


def test_requirements_are_exposed() -> None:
    sel = parse_labels("tier in (b,a),app=web")
    assert sel.requirements == (
        Requirement("app", Operator.EQUALS, ("web",)),
        Requirement("tier", Operator.IN, ("a", "b")),
    )


@pytest.mark.parametrize(
    "text",
    [
        "k in a",
        "k in (a",
        "k in (a b)",
        "k notin",
        "=v",
        "k=v=w",
        "a,",
        ",a",
        "a,,b",
        "k!",
        "(a)",
        "k=(v)",
        "k>abc",
        "k>",
        "-bad=1",
        "bad-=1",
        "k=-bad",
        "k=a/b",
        "Example.com/x=1",
        "a/b/c=1",
        "/x=1",
        "example.com/=1",
        f"{'k' * 64}=1",
        f"k={'v' * 64}",
        "k in (a,-b)",
    ],
)
def test_malformed_label_selectors_raise(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_labels(text)


def test_error_messages_are_explanatory() -> None:
    with pytest.raises(SelectorError, match=r"^unable to parse requirement: .*'-bad'"):
        parse_labels("-bad=1")
    with pytest.raises(SelectorError, match=r"unable to parse requirement: .*expected: '\('"):
        parse_labels("k in a")
    with pytest.raises(SelectorError, match=r"found '=', expected: ',' or 'end of string'"):
        parse_labels("k=v=w")


def test_long_but_valid_keys_and_values() -> None:
    prefix = ".".join(["a" * 63] * 3)
    key = f"{prefix}/{'n' * 63}"
    sel = parse_labels(f"{key}={'v' * 63}")
    assert sel.matches({key: "v" * 63})


_alnum = st.sampled_from("abxyz019")
_names = st.one_of(
    _alnum,
    st.builds(lambda a, mid, b: a + mid + b, _alnum, st.text("ab9.-_", max_size=8), _alnum),
)


@st.composite
def _requirements(draw: st.DrawFn) -> Requirement:
    operator = draw(st.sampled_from(list(Operator)))
    key = draw(_names)
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        values: list[str] = []
    elif operator in (Operator.IN, Operator.NOT_IN):
        values = draw(st.lists(_names, min_size=1, max_size=3))
    elif operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
        values = [str(draw(st.integers(0, 1000)))]
    else:
        values = [draw(_names)]
    return Requirement.make(key, operator, values)


@given(st.lists(_requirements(), max_size=4))
def test_printed_selectors_parse_back_to_themselves(reqs: list[Requirement]) -> None:
    sel = LabelSelector.of(reqs)
    assert parse_labels(str(sel)) == sel


# --------------------------------------------------------------------------------------------------------
# Label selectors: structured form
# --------------------------------------------------------------------------------------------------------


def test_nil_structured_selector_matches_nothing() -> None:
    sel = from_label_selector(None)
    assert not sel.matches({})
    assert not sel.matches({"app": "web"})
    assert not sel.empty
    assert str(sel) == ""


def test_empty_structured_selector_matches_everything() -> None:
    sel = from_label_selector({})
    assert sel.empty
    assert sel.matches({"app": "web"})
    assert from_label_selector({"matchLabels": None, "matchExpressions": None}).empty


def test_structured_selector() -> None:
    sel = from_label_selector(
        {
            "matchLabels": {"tier": "front", "app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["qa", "prod"]},
                {"key": "track", "operator": "NotIn", "values": ["canary"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ],
        }
    )
    assert str(sel) == "app=web,env in (prod,qa),!legacy,owner,tier=front,track notin (canary)"
    good = {"app": "web", "tier": "front", "env": "qa", "owner": "me"}
    assert sel.matches(good)
    assert not sel.matches({**good, "track": "canary"})
    assert not sel.matches({**good, "legacy": "1"})
    assert not sel.matches({k: v for k, v in good.items() if k != "owner"})


def test_selector_string_for_scale_status() -> None:
    assert selector_string({"matchLabels": {"app": "web"}}) == "app=web"
    expression = {"key": "tier", "operator": "In", "values": ["b", "a"]}
    assert selector_string({"matchExpressions": [expression]}) == "tier in (a,b)"
    assert selector_string({}) == ""


@pytest.mark.parametrize(
    "sel",
    [
        {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"operator": "Exists"}]},
        {"matchExpressions": ["a"]},
        {"matchExpressions": {"key": "a"}},
        {"matchLabels": {"app": "bad value"}},
        {"matchLabels": {"bad key": "v"}},
        {"matchLabels": ["app"]},
    ],
)
def test_invalid_structured_selectors_raise(sel: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        from_label_selector(sel)


def test_non_object_structured_selector_raises() -> None:
    with pytest.raises(SelectorError):
        from_label_selector("app=web")  # type: ignore[arg-type]


def test_bad_operator_message() -> None:
    with pytest.raises(SelectorError, match="'Equals' is not a valid label selector operator"):
        from_label_selector({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]})


# --------------------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------------------


def test_parse_fields() -> None:
    sel = parse_fields("metadata.name=web,status.phase!=Running,spec.nodeName==n1")
    assert sel.requirements == (
        FieldRequirement("metadata.name", "=", "web"),
        FieldRequirement("status.phase", "!=", "Running"),
        FieldRequirement("spec.nodeName", "=", "n1"),
    )
    field, op, value = sel.requirements[1]
    assert (field, op, value) == ("status.phase", "!=", "Running")
    assert str(sel) == "metadata.name=web,status.phase!=Running,spec.nodeName=n1"
    assert sel.exact("metadata.name") == "web"
    assert sel.exact("status.phase") is None
    assert not sel.empty


def test_field_selector_matching() -> None:
    sel = parse_fields("spec.nodeName=,status.phase!=Failed")
    assert sel.matches({"spec.nodeName": "", "status.phase": "Pending"})
    assert sel.matches({"status.phase": "Pending"})  # a missing field compares as ""
    assert not sel.matches({"spec.nodeName": "n1", "status.phase": "Pending"})
    assert not sel.matches({"spec.nodeName": "", "status.phase": "Failed"})


def test_empty_field_selector() -> None:
    for text in ("", ",", " "):
        sel = parse_fields(text)
        assert sel.empty
        assert sel.matches({"metadata.name": "x"})


def test_field_value_escapes() -> None:
    sel = parse_fields(r"metadata.name=a\,b\=c\\d,type=x")
    assert sel.requirements[0].value == "a,b=c\\d"
    assert sel.requirements[1] == FieldRequirement("type", "=", "x")
    assert sel.matches({"metadata.name": "a,b=c\\d", "type": "x"})
    assert str(sel) == r"metadata.name=a\,b\=c\\d,type=x"
    assert parse_fields(str(sel)) == sel


@pytest.mark.parametrize(
    "text",
    ["metadata.name", "metadata.name=a=b", r"metadata.name=a\x", "metadata.name=a\\", "=x", "a=b,c"],
)
def test_malformed_field_selectors_raise(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_fields(text)


# --------------------------------------------------------------------------------------------------------
# Selectable fields
# --------------------------------------------------------------------------------------------------------


def test_pod_fields() -> None:
    pod = {
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {
            "nodeName": "node-1",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "hostNetwork": True,
        },
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "nominatedNodeName": "node-2"},
    }
    assert object_fields("", "pods", pod) == {
        "metadata.name": "web-1",
        "metadata.namespace": "default",
        "spec.nodeName": "node-1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.0.0.7",
        "status.nominatedNodeName": "node-2",
    }
    bare = object_fields("", "pods", {"metadata": {"name": "p"}})
    assert bare["spec.nodeName"] == ""
    assert bare["spec.hostNetwork"] == "false"
    assert bare["metadata.namespace"] == ""
    assert parse_fields("spec.nodeName=,status.phase!=Running").matches(bare)


def test_core_event_fields() -> None:
    event = {
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "namespace": "default",
            "name": "web",
            "uid": "u1",
            "apiVersion": "v1",
            "resourceVersion": "7",
            "fieldPath": "spec.containers{web}",
        },
        "reason": "Pulled",
        "reportingComponent": "kubelet",
        "source": {"component": "kubelet", "host": "node-1"},
        "type": "Normal",
    }
    fields = object_fields("", "events", event)
    assert fields["involvedObject.name"] == "web"
    assert fields["involvedObject.uid"] == "u1"
    assert fields["involvedObject.fieldPath"] == "spec.containers{web}"
    assert fields["source"] == "kubelet"
    assert fields["reportingComponent"] == "kubelet"
    assert fields["reason"] == "Pulled"
    assert fields["type"] == "Normal"
    describe = parse_fields("involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u1")
    check_fields("", "events", describe)
    assert describe.matches(fields)


def test_events_k8s_io_fields() -> None:
    event = {
        "metadata": {"name": "e", "namespace": "ns"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet",
        "type": "Normal",
        "reportingController": "deployment-controller",
    }
    fields = object_fields("events.k8s.io", "events", event)
    assert fields["regarding.kind"] == "Deployment"
    assert fields["regarding.uid"] == ""
    assert fields["reportingController"] == "deployment-controller"
    assert "involvedObject.name" not in fields
    assert "source" not in fields


def test_other_typed_fields() -> None:
    assert object_fields("", "nodes", {"metadata": {"name": "n"}})["spec.unschedulable"] == "false"
    assert object_fields("", "nodes", {"spec": {"unschedulable": True}})["spec.unschedulable"] == "true"
    assert object_fields("", "secrets", {"type": "Opaque"})["type"] == "Opaque"
    assert object_fields("", "namespaces", {"status": {"phase": "Active"}})["status.phase"] == "Active"
    assert object_fields("apps", "replicasets", {"status": {"replicas": 3}})["status.replicas"] == "3"
    assert object_fields("apps", "replicasets", {})["status.replicas"] == "0"
    assert object_fields("batch", "jobs", {"status": {"succeeded": 2}})["status.successful"] == "2"
    assert object_fields("batch", "jobs", {})["status.successful"] == "0"


def test_custom_resources_expose_only_metadata() -> None:
    obj = {"metadata": {"name": "r", "namespace": "ns"}, "spec": {"x": 1}}
    assert object_fields("argoproj.io", "rollouts", obj) == {"metadata.name": "r", "metadata.namespace": "ns"}
    assert supported_fields("apiextensions.k8s.io", "customresourcedefinitions") == {
        "metadata.name",
        "metadata.namespace",
    }


def test_supported_fields() -> None:
    assert "spec.nodeName" in supported_fields("", "pods")
    assert "spec.nodeName" not in supported_fields("apps", "deployments")
    assert "status.replicas" not in supported_fields("", "pods")
    assert supported_fields("events.k8s.io", "events") >= {"regarding.name", "reportingController"}


def test_check_fields() -> None:
    check_fields("", "pods", parse_fields("metadata.name=a,spec.nodeName=n,status.phase!=Failed"))
    check_fields("apps", "deployments", parse_fields("metadata.namespace=default"))
    check_fields("", "pods", parse_fields(""))
    with pytest.raises(SelectorError) as info:
        check_fields("", "pods", parse_fields("metadata.name=a,spec.foo=b"))
    assert str(info.value) == "field label not supported: spec.foo"
    with pytest.raises(SelectorError, match=r"^field label not supported: spec.nodeName$"):
        check_fields("apps", "deployments", parse_fields("spec.nodeName=n"))
    with pytest.raises(SelectorError, match=r"^field label not supported: spec.replicas$"):
        check_fields("example.com", "widgets", parse_fields("spec.replicas=1"))
