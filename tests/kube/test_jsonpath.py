"""Kubernetes-flavoured JSONPath: the forms CRD printer columns and ``kubectl -o jsonpath`` use."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tugboat.kube import jsonpath
from tugboat.kube.errors import JSONPathError

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-0",
        "labels": {"app.kubernetes.io/name": "web", "tier": "frontend"},
        "annotations": {},
    },
    "spec": {
        "replicas": 3,
        "containers": [
            {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
            {"name": "sidecar", "image": "envoy:1.30", "ports": [{"containerPort": 9901}]},
            {"name": "logger", "image": "fluent-bit:3"},
        ],
    },
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {"name": "app", "ready": True, "restartCount": 0},
            {"name": "sidecar", "ready": False, "restartCount": 4},
            {"name": "logger", "ready": True, "restartCount": 1},
        ],
    },
}


def find(expr: str, obj: Any = POD) -> list[Any]:
    return jsonpath.compile(expr).find(obj)


@pytest.mark.parametrize(
    "expr", [".spec.replicas", "{.spec.replicas}", "{ .spec.replicas }", "$.spec.replicas"]
)
def test_dotted_fields_in_every_accepted_form(expr: str) -> None:
    assert find(expr) == [3]


def test_leading_identifier_without_dot_is_accepted() -> None:
    assert find("metadata.name") == ["web-0"]


@pytest.mark.parametrize("expr", ["{.}", "$", "{$}", "{@}"])
def test_root_alone_selects_the_whole_document(expr: str) -> None:
    assert find(expr) == [POD]


def test_quoted_keys_may_contain_dots_and_slashes() -> None:
    assert find(".metadata.labels['app.kubernetes.io/name']") == ["web"]
    assert find('.metadata.labels["app.kubernetes.io/name"]') == ["web"]


def test_backslash_escapes_a_dot_in_a_field_name() -> None:
    assert find(r"{.metadata.labels.app\.kubernetes\.io/name}") == ["web"]


def test_indexes_count_from_either_end() -> None:
    assert find(".spec.containers[0].name") == ["app"]
    assert find(".spec.containers[-1].name") == ["logger"]
    assert find(".spec.containers[ 1 ].image") == ["envoy:1.30"]


def test_an_index_out_of_range_matches_nothing() -> None:
    assert find(".spec.containers[3].name") == []
    assert find(".spec.containers[-4].name") == []


def test_wildcards_over_arrays_and_maps() -> None:
    assert find(".spec.containers[*].name") == ["app", "sidecar", "logger"]
    assert find(".metadata.labels.*") == ["web", "frontend"]
    assert find(".metadata.labels[*]") == ["web", "frontend"]


def test_wildcard_results_flatten_through_later_steps() -> None:
    assert find(".spec.containers[*].ports[*].containerPort") == [80, 443, 9901]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (".spec.containers[0:2].name", ["app", "sidecar"]),
        (".spec.containers[1:].name", ["sidecar", "logger"]),
        (".spec.containers[:1].name", ["app"]),
        (".spec.containers[-2:].name", ["sidecar", "logger"]),
        (".spec.containers[::2].name", ["app", "logger"]),
        (".spec.containers[::-1].name", ["logger", "sidecar", "app"]),
        (".spec.containers[5:9].name", []),
    ],
)
def test_slices(expr: str, names: list[str]) -> None:
    assert find(expr) == names


def test_unions_of_indexes_and_keys() -> None:
    assert find(".spec.containers[0,2].name") == ["app", "logger"]
    assert find(".metadata['name','missing','labels'].tier") == ["frontend"]
    assert find(".metadata['name', 'labels']") == ["web-0", POD["metadata"]["labels"]]


def test_recursive_descent_finds_every_depth_in_document_order() -> None:
    assert find("..containerPort") == [80, 443, 9901]
    assert find("{..name}") == ["web-0", "app", "sidecar", "logger", "app", "sidecar", "logger"]
    assert find(".status..restartCount") == [0, 4, 1]


def test_recursive_descent_followed_by_a_bracket() -> None:
    assert find(".spec..ports[0].containerPort") == [80, 9901]


def test_missing_keys_match_nothing_rather_than_failing() -> None:
    assert find(".spec.nothing.here") == []
    assert find(".spec.replicas.deeper") == []
    assert find(".metadata.name[0]") == []
    assert find(".spec.containers.name") == []  # a field of an array is not an implicit map


def test_filter_on_condition_type() -> None:
    assert find('.status.conditions[?(@.type=="Ready")].status') == ["False"]
    assert find("{.status.conditions[?(@.type=='Ready')].reason}") == ["ContainersNotReady"]
    assert find('.status.conditions[?(@.type == "Nope")].status') == []


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("[?(@.restartCount==4)]", ["sidecar"]),
        ("[?(@.restartCount!=4)]", ["app", "logger"]),
        ("[?(@.restartCount>0)]", ["sidecar", "logger"]),
        ("[?(@.restartCount>=1)]", ["sidecar", "logger"]),
        ("[?(@.restartCount<1)]", ["app"]),
        ("[?(@.restartCount<=1)]", ["app", "logger"]),
        ("[?(@.restartCount<1.5)]", ["app", "logger"]),
        ("[?(@.ready==true)]", ["app", "logger"]),
        ("[?(@.ready==false)]", ["sidecar"]),
        ('[?(@.name>"b")]', ["sidecar", "logger"]),
        ("[?(@.ready)]", ["app", "sidecar", "logger"]),
        ("[?(@.missing)]", []),
    ],
)
def test_filter_operators(expr: str, names: list[str]) -> None:
    assert find(f".status.containerStatuses{expr}.name") == names


def test_filters_compare_json_types_strictly() -> None:
    items = [{"v": 1}, {"v": "1"}, {"v": True}, {"v": 1.0}, {"v": None}]
    assert jsonpath.compile("[?(@.v==1)]").find(items) == [{"v": 1}, {"v": 1.0}]
    assert jsonpath.compile('[?(@.v=="1")]').find(items) == [{"v": "1"}]
    assert jsonpath.compile("[?(@.v==true)]").find(items) == [{"v": True}]
    assert jsonpath.compile("[?(@.v==null)]").find(items) == [{"v": None}]
    assert jsonpath.compile('[?(@.v<"2")]').find(items) == [{"v": "1"}]  # no ordering across types


def test_filter_with_existence_of_a_nested_path_and_a_nested_filter() -> None:
    items = [
        {"name": "a", "ports": [{"name": "http"}]},
        {"name": "b", "ports": [{"name": "grpc"}]},
        {"name": "c"},
    ]
    assert jsonpath.compile("[?(@.ports)].name").find(items) == ["a", "b"]
    assert jsonpath.compile('[?(@.ports[?(@.name=="grpc")])].name').find(items) == ["b"]


def test_filter_can_compare_against_the_root() -> None:
    doc = {"want": "b", "items": [{"n": "a"}, {"n": "b"}]}
    assert jsonpath.compile(".items[?(@.n==$.want)].n").find(doc) == ["b"]


def test_filter_on_an_array_of_scalars() -> None:
    assert jsonpath.compile("[?(@>2)]").find([1, 2, 3, 4]) == [3, 4]


def test_filter_ignores_maps() -> None:
    assert find(".metadata[?(@.name)]") == []


def test_string_literals_support_escapes_and_operator_characters() -> None:
    items = [{"m": 'say "hi"'}, {"m": "a==b"}, {"m": "x)]"}]
    assert jsonpath.compile(r'[?(@.m=="say \"hi\"")].m').find(items) == ['say "hi"']
    assert jsonpath.compile('[?(@.m=="a==b")].m').find(items) == ["a==b"]
    assert jsonpath.compile("[?(@.m=='x)]')].m").find(items) == ["x)]"]


def test_first_returns_the_first_match_or_the_default() -> None:
    path = jsonpath.compile(".spec.containers[*].image")
    assert path.first(POD) == "nginx:1.27"
    assert jsonpath.compile(".nope").first(POD) is None
    assert jsonpath.compile(".nope").first(POD, "-") == "-"


def test_module_level_find_and_compiled_paths_are_reusable() -> None:
    assert jsonpath.find(".metadata.name", POD) == ["web-0"]
    path = jsonpath.compile(".metadata.name")
    assert path.find({"metadata": {"name": "other"}}) == ["other"]
    assert path.find(POD) == ["web-0"]
    assert str(path) == ".metadata.name"


def test_find_works_on_non_object_documents() -> None:
    assert jsonpath.compile("[1]").find(["a", "b"]) == ["b"]
    assert jsonpath.compile(".a").find(None) == []
    assert jsonpath.compile(".a").find("text") == []


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "empty"),
        ("{}", "empty"),
        ("{.a", "unterminated '{'"),
        ("{.a}{.b}", "single {...}"),
        ("name: {.metadata.name}", "braces"),
        ("{range .items[*]}", "range/end"),
        (".a[", "unterminated '['"),
        (".a[0", "unterminated '['"),
        (".a['x'", "unterminated '['"),
        (".a['x]", "unterminated string"),
        (".a[foo]", "quote keys"),
        (".a[1.5]", "invalid array index"),
        (".a[1:2:0]", "step cannot be zero"),
        (".a..", "after '..'"),
        (".a.=", "after '.'"),
        (".a b", "unexpected ' '"),
        (".a)", "unexpected ')'"),
        ('.a[?(@.x="y")]', "use '=='"),
        (".a[?(@.x=~/y/)]", "unsupported filter operator"),
        (".a[?(@.x==)]", "missing an operand"),
        (".a[?()]", "empty filter"),
        (".a[?(@.x==1]", "unterminated filter"),
        (".a[?(@.x==y)]", "invalid filter operand"),
        (".a[?(.x==1)]", "invalid filter operand"),
        ('.a[?(@.x=="y" && @.z)]', "&& and ||"),
        (".a[?(@.x)", "expected ']'"),
        ("..a\\", "trailing"),
    ],
)
def test_malformed_expressions_raise_a_clear_error(expr: str, fragment: str) -> None:
    with pytest.raises(JSONPathError) as raised:
        jsonpath.compile(expr)
    assert fragment in str(raised.value)


def test_non_string_expression_is_rejected() -> None:
    with pytest.raises(JSONPathError, match="must be a string"):
        jsonpath.compile(cast(str, 3))
