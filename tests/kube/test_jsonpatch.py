"""JSON Patch (RFC 6902): every operation, pointer escaping, array indexes, errors and immutability."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tugboat.kube import jsonpatch
from tugboat.kube.errors import PatchError

DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}},
}


def patched(ops: list[dict[str, Any]], doc: Any = None) -> Any:
    return jsonpatch.apply(copy.deepcopy(DEPLOYMENT) if doc is None else doc, ops)


def test_add_member_and_replace_existing_member() -> None:
    result = patched([{"op": "add", "path": "/spec/paused", "value": True}])
    assert result["spec"]["paused"] is True
    result = patched([{"op": "add", "path": "/spec/replicas", "value": 5}])
    assert result["spec"]["replicas"] == 5


def test_add_into_arrays_by_index_and_dash() -> None:
    result = patched(
        [
            {"op": "add", "path": "/metadata/finalizers/0", "value": "first"},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "last"},
            {"op": "add", "path": "/metadata/finalizers/3", "value": "at-end"},
        ]
    )
    assert result["metadata"]["finalizers"] == ["first", "a", "b", "at-end", "last"]


def test_add_to_root_replaces_document() -> None:
    assert patched([{"op": "add", "path": "", "value": {"x": 1}}]) == {"x": 1}


def test_remove_member_and_array_item() -> None:
    result = patched(
        [
            {"op": "remove", "path": "/metadata/labels/app"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ]
    )
    assert result["metadata"]["labels"] == {}
    assert result["metadata"]["finalizers"] == ["b"]


def test_replace() -> None:
    result = patched(
        [
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"},
            {"op": "replace", "path": "/metadata/finalizers/1", "value": "c"},
        ]
    )
    assert result["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert result["metadata"]["finalizers"] == ["a", "c"]
    assert patched([{"op": "replace", "path": "", "value": [1]}]) == [1]


def test_move_and_copy() -> None:
    result = patched([{"op": "move", "from": "/metadata/labels", "path": "/spec/selector"}])
    assert "labels" not in result["metadata"]
    assert result["spec"]["selector"] == {"app": "web"}
    result = patched([{"op": "move", "from": "/metadata/finalizers/0", "path": "/metadata/finalizers/-"}])
    assert result["metadata"]["finalizers"] == ["b", "a"]
    result = patched([{"op": "copy", "from": "/metadata/labels", "path": "/spec/selector"}])
    assert result["spec"]["selector"] == result["metadata"]["labels"] == {"app": "web"}
    result["spec"]["selector"]["x"] = "y"
    assert result["metadata"]["labels"] == {"app": "web"}, "copy must be deep"


def test_move_to_itself_is_a_no_op_and_into_a_child_fails() -> None:
    assert patched([{"op": "move", "from": "/spec", "path": "/spec"}]) == DEPLOYMENT
    with pytest.raises(PatchError, match="own children"):
        patched([{"op": "move", "from": "/spec", "path": "/spec/template/x"}])


def test_test_operation() -> None:
    assert patched([{"op": "test", "path": "/spec/replicas", "value": 2}]) == DEPLOYMENT
    assert patched([{"op": "test", "path": "/spec/replicas", "value": 2.0}]) == DEPLOYMENT
    assert patched([{"op": "test", "path": "/metadata/labels", "value": {"app": "web"}}]) == DEPLOYMENT
    with pytest.raises(PatchError, match=r'^the "test" operation failed at /spec/replicas$'):
        patched([{"op": "test", "path": "/spec/replicas", "value": 3}])
    with pytest.raises(PatchError, match="test"):
        patched([{"op": "test", "path": "", "value": {"other": 1}}])


def test_test_distinguishes_booleans_from_numbers() -> None:
    with pytest.raises(PatchError):
        jsonpatch.apply({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    with pytest.raises(PatchError):
        jsonpatch.apply({"a": [1, 2]}, [{"op": "test", "path": "/a", "value": [2, 1]}])


def test_pointer_escaping() -> None:
    doc = {"a/b": {"m~n": 1}, "~1": 2}
    result = jsonpatch.apply(
        doc,
        [
            {"op": "replace", "path": "/a~1b/m~0n", "value": 10},
            {"op": "add", "path": "/~01", "value": 20},
            {"op": "add", "path": "/metadata~1annotations", "value": {}},
        ],
    )
    assert result == {"a/b": {"m~n": 10}, "~1": 20, "metadata/annotations": {}}
    assert jsonpatch.pointer(["a/b", "m~n", 0]) == "/a~1b/m~0n/0"
    assert jsonpatch.parse_pointer("/a~1b/m~0n/") == ["a/b", "m~n", ""]
    with pytest.raises(PatchError, match="~"):
        jsonpatch.parse_pointer("/a~2")
    with pytest.raises(PatchError, match="start with"):
        jsonpatch.parse_pointer("spec")


def test_missing_paths() -> None:
    with pytest.raises(PatchError, match=r"^path /spec/foo/bar does not exist$"):
        patched([{"op": "add", "path": "/spec/foo/bar", "value": 1}])
    with pytest.raises(PatchError, match="does not exist"):
        patched([{"op": "remove", "path": "/spec/nope"}])
    with pytest.raises(PatchError, match="does not exist"):
        patched([{"op": "replace", "path": "/metadata/finalizers/2", "value": "x"}])
    with pytest.raises(PatchError, match="does not exist"):
        patched([{"op": "remove", "path": "/metadata/finalizers/-"}])
    with pytest.raises(PatchError, match="does not exist"):
        patched([{"op": "copy", "from": "/nope", "path": "/x"}])
    with pytest.raises(PatchError, match="does not exist"):
        patched([{"op": "test", "path": "/spec/replicas/x", "value": 1}])


def test_array_index_validation() -> None:
    for bad in ("01", "-1", "1.0", "x", " 1"):
        with pytest.raises(PatchError, match="invalid array index"):
            patched([{"op": "add", "path": f"/metadata/finalizers/{bad}", "value": "z"}])
    with pytest.raises(PatchError, match="out of range"):
        patched([{"op": "add", "path": "/metadata/finalizers/3", "value": "z"}])
    with pytest.raises(PatchError, match="not an object or an array"):
        patched([{"op": "add", "path": "/spec/replicas/x", "value": 1}])


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ({"op": "add"}, "array"),
        (["add"], "not an object"),
        ([{"path": "/a", "value": 1}], "unknown or missing"),
        ([{"op": "frobnicate", "path": "/a"}], "unknown or missing"),
        ([{"op": "add", "value": 1}], '"path"'),
        ([{"op": "add", "path": 3, "value": 1}], '"path"'),
        ([{"op": "add", "path": "/a"}], '"value"'),
        ([{"op": "move", "path": "/a"}], '"from"'),
        ([{"op": "remove", "path": ""}], "whole document"),
    ],
)
def test_malformed_operations(ops: Any, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        jsonpatch.apply({"a": 1}, ops)


def test_failure_leaves_input_untouched_and_success_shares_nothing() -> None:
    doc = copy.deepcopy(DEPLOYMENT)
    value = {"k": ["v"]}
    ops = [
        {"op": "add", "path": "/spec/extra", "value": value},
        {"op": "add", "path": "/spec/extra/k/-", "value": "w"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]
    saved_ops = copy.deepcopy(ops)
    result = jsonpatch.apply(doc, ops)
    assert doc == DEPLOYMENT and ops == saved_ops and value == {"k": ["v"]}
    assert result["spec"]["extra"] == {"k": ["v", "w"]}
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert doc == DEPLOYMENT
    with pytest.raises(PatchError):
        jsonpatch.apply(doc, [*ops, {"op": "test", "path": "/spec/replicas", "value": 9}])
    assert doc == DEPLOYMENT


def test_json_equal() -> None:
    assert jsonpatch.json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not jsonpatch.json_equal(True, 1)
    assert not jsonpatch.json_equal(0, False)
    assert not jsonpatch.json_equal("1", 1)
    assert not jsonpatch.json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not jsonpatch.json_equal([1], [1, 1])


# --- properties --------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-100, 100),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
keys = st.text(alphabet="ab~/0-", max_size=4)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
documents = st.dictionaries(keys, json_values, max_size=4)


def paths_of(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every (path, value) pair inside ``value``, the root included."""
    found = [(prefix, value)]
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    )
    for key, child in children:
        found.extend(paths_of(child, (*prefix, key)))
    return found


@settings(max_examples=150, deadline=None)
@given(doc=documents, data=st.data())
def test_add_then_remove_of_a_new_key_is_identity(doc: dict[str, Any], data: st.DataObject) -> None:
    objects = [path for path, value in paths_of(doc) if isinstance(value, dict)]
    where = data.draw(st.sampled_from(objects))
    target: Any = doc
    for step in where:
        target = target[step]
    key = data.draw(keys.filter(lambda k: k not in target))
    path = jsonpatch.pointer([*where, key])
    value = data.draw(json_values)
    saved = copy.deepcopy(doc)
    result = jsonpatch.apply(
        doc, [{"op": "add", "path": path, "value": value}, {"op": "remove", "path": path}]
    )
    assert result == saved
    assert doc == saved


@settings(max_examples=150, deadline=None)
@given(doc=documents, data=st.data())
def test_replace_ops_equal_setting_by_hand(doc: dict[str, Any], data: st.DataObject) -> None:
    leaves = [path for path, value in paths_of(doc) if path and not isinstance(value, dict | list)]
    if not leaves:
        return
    edits = data.draw(st.lists(st.tuples(st.sampled_from(leaves), json_values), max_size=5))
    expected = copy.deepcopy(doc)
    for path, value in edits:
        parent = expected
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = copy.deepcopy(value)
    saved = copy.deepcopy(doc)
    ops = [{"op": "replace", "path": jsonpatch.pointer(path), "value": value} for path, value in edits]
    assert jsonpatch.apply(doc, ops) == expected
    assert doc == saved
