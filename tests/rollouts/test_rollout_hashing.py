"""Pod-template and step hashes: FNV-1a, safe encoding, stability, and the collision count."""

from __future__ import annotations

import copy
import re

from hypothesis import given
from hypothesis import strategies as st

from tugboat.rollouts import hashing

HASH_RE = re.compile(r"[4-9bcdf]{1,10}")

TEMPLATE = {
    "metadata": {"labels": {"app": "guestbook"}},
    "spec": {"containers": [{"name": "guestbook", "image": "argoproj/rollouts-demo:blue"}]},
}


def test_fnv1a_32_known_vectors() -> None:
    assert hashing.fnv1a_32(b"") == 0x811C9DC5
    assert hashing.fnv1a_32(b"a") == 0xE40C292C
    assert hashing.fnv1a_32(b"foobar") == 0xBF9CF968
    # continuing a digest equals hashing the concatenation
    assert hashing.fnv1a_32(b"bar", seed=hashing.fnv1a_32(b"foo")) == hashing.fnv1a_32(b"foobar")


def test_safe_encode_maps_digits_like_upstream() -> None:
    assert hashing.safe_encode("0123456789") == "456789bcdf"
    assert hashing.safe_encode("") == ""
    assert all(c in hashing.SAFE_ALPHABET for c in hashing.safe_encode("any text, even ÿ"))


def test_pod_template_hash_is_pinned() -> None:
    # Changing the serialisation renames every ReplicaSet on upgrade: this must only change on purpose.
    assert hashing.pod_template_hash(TEMPLATE) == "7f899f9d76"
    assert hashing.pod_template_hash(TEMPLATE, 0) == "55c6c95476"
    assert hashing.pod_template_hash(TEMPLATE, 1) == "6c7f8578b9"


def test_pod_template_hash_ignores_key_order_and_does_not_mutate() -> None:
    reordered = {
        "spec": {"containers": [{"image": "argoproj/rollouts-demo:blue", "name": "guestbook"}]},
        "metadata": {"labels": {"app": "guestbook"}},
    }
    before = copy.deepcopy(TEMPLATE)
    assert hashing.pod_template_hash(reordered) == hashing.pod_template_hash(TEMPLATE)
    assert before == TEMPLATE


def test_pod_template_hash_changes_with_the_template() -> None:
    changed = copy.deepcopy(TEMPLATE)
    changed["spec"]["containers"][0]["image"] = "argoproj/rollouts-demo:green"
    assert hashing.pod_template_hash(changed) != hashing.pod_template_hash(TEMPLATE)
    # list order is meaningful (containers are ordered)
    two = copy.deepcopy(TEMPLATE)
    two["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    swapped = copy.deepcopy(two)
    swapped["spec"]["containers"].reverse()
    assert hashing.pod_template_hash(two) != hashing.pod_template_hash(swapped)


def test_collision_count_gives_new_names() -> None:
    names = {hashing.pod_template_hash(TEMPLATE, n) for n in (None, 0, 1, 2, 3)}
    assert len(names) == 5
    # the count is mixed in as 8 little-endian bytes after the template's JSON
    expected = hashing.fnv1a_32(hashing.canonical_json(TEMPLATE) + b"\x02\0\0\0\0\0\0\0")
    assert hashing.pod_template_hash(TEMPLATE, 2) == hashing.safe_encode(str(expected))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=10,
    ),
    st.none() | st.integers(0, 2**31 - 1),
)
def test_hash_format(template: object, collisions: int | None) -> None:
    value = hashing.pod_template_hash({"spec": template}, collisions)
    assert HASH_RE.fullmatch(value), value
    assert hashing.pod_template_hash({"spec": template}, collisions) == value


def test_steps_hash() -> None:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": "10s"}}]
    assert HASH_RE.fullmatch(hashing.steps_hash(steps))
    assert hashing.steps_hash(copy.deepcopy(steps)) == hashing.steps_hash(steps)
    assert hashing.steps_hash([*steps, {"setWeight": 60}]) != hashing.steps_hash(steps)
    assert hashing.steps_hash(steps[::-1]) != hashing.steps_hash(steps)
    assert hashing.steps_hash(None) != hashing.steps_hash([])
    assert hashing.steps_hash([{"setWeight": 20}]) == "656598f7c"
