"""JSON Merge Patch (RFC 7386): the RFC's examples, minimal patch creation and the round-trip property."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tugboat.kube import mergepatch
from tugboat.kube.errors import PatchError

# RFC 7386 Appendix A: (target, patch, result)
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_rfc_examples(target: Any, patch: Any, result: Any) -> None:
    saved_target, saved_patch = copy.deepcopy(target), copy.deepcopy(patch)
    assert mergepatch.apply(target, patch) == result
    assert target == saved_target and patch == saved_patch


def test_lists_are_replaced_not_merged() -> None:
    live = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}
    patch = {"spec": {"containers": [{"name": "a", "image": "y"}]}}
    assert mergepatch.apply(live, patch) == patch


def test_result_shares_nothing_with_inputs() -> None:
    live = {"metadata": {"labels": {"a": "1"}}}
    patch = {"spec": {"ports": [{"port": 80}]}}
    result = mergepatch.apply(live, patch)
    result["metadata"]["labels"]["b"] = "2"
    result["spec"]["ports"][0]["port"] = 81
    assert live == {"metadata": {"labels": {"a": "1"}}}
    assert patch == {"spec": {"ports": [{"port": 80}]}}


def test_create_is_minimal() -> None:
    original = {
        "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
        "spec": {"replicas": 1, "x": [1]},
    }
    modified = {
        "metadata": {"name": "web", "labels": {"a": "1", "c": "3"}},
        "spec": {"replicas": 1, "x": [1, 2]},
    }
    assert mergepatch.create(original, modified) == {
        "metadata": {"labels": {"b": None, "c": "3"}},
        "spec": {"x": [1, 2]},
    }
    assert mergepatch.create(original, original) == {}
    assert mergepatch.create({"a": 1}, {"a": True}) == {"a": True}
    assert mergepatch.create({"a": 1}, {"a": 1.0}) == {}


def test_create_rejects_non_objects() -> None:
    with pytest.raises(PatchError):
        mergepatch.create([1], {"a": 1})


# --- properties --------------------------------------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "metadata", "spec"])


def json_objects(allow_null: bool) -> st.SearchStrategy[dict[str, Any]]:
    leaf: st.SearchStrategy[Any] = st.one_of(
        st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=3)
    )
    if allow_null:
        leaf = leaf | st.none()
    values = st.recursive(
        leaf,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
        max_leaves=10,
    )
    return st.dictionaries(keys, values, max_size=4)


@settings(max_examples=200, deadline=None)
@given(original=json_objects(allow_null=True), modified=json_objects(allow_null=False))
def test_apply_of_create_round_trips(original: dict[str, Any], modified: dict[str, Any]) -> None:
    saved_original, saved_modified = copy.deepcopy(original), copy.deepcopy(modified)
    patch = mergepatch.create(original, modified)
    assert mergepatch.apply(original, patch) == modified
    assert original == saved_original and modified == saved_modified


@settings(max_examples=100, deadline=None)
@given(doc=json_objects(allow_null=True))
def test_empty_patch_is_identity(doc: dict[str, Any]) -> None:
    assert mergepatch.apply(doc, {}) == doc
