"""Strategic merge patch: kubectl's observed apply bodies, every directive, two-way diffs and round trips."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tugboat.kube import strategicmerge
from tugboat.kube.errors import PatchError


def smp(original: dict[str, Any], patch: dict[str, Any], kind: str = "Deployment") -> dict[str, Any]:
    """Apply ``patch`` and check that neither input was touched."""
    group = "" if kind in ("Pod", "Service", "Node") else "apps"
    saved_original, saved_patch = copy.deepcopy(original), copy.deepcopy(patch)
    result = strategicmerge.apply(original, patch, group=group, kind=kind)
    assert original == saved_original and patch == saved_patch
    return result


def two_way(original: dict[str, Any], modified: dict[str, Any]) -> dict[str, Any]:
    return strategicmerge.create_two_way(original, modified, group="apps", kind="Deployment")


def has_directive(value: Any) -> bool:
    if isinstance(value, dict):
        return any(str(k).startswith("$") or has_directive(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_directive(v) for v in value)
    return False


# --- kubectl apply of d_a.yaml then d_b.yaml (research/kubeapi.md §2.5) -------------------------------------

D_A: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "default", "finalizers": ["example.com/a", "example.com/b"]},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "d"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "image": "nginx:1.27",
                        "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                        "volumeMounts": [{"name": "v1", "mountPath": "/data"}],
                    },
                    {"name": "b", "image": "busybox", "command": ["sleep", "inf"]},
                ],
                "volumes": [{"name": "v1", "emptyDir": {}}],
            },
        },
    },
}

D_B: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "default", "finalizers": ["example.com/a"]},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "d"}},
        "strategy": {"type": "Recreate"},
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {
                "containers": [{"name": "a", "image": "nginx:1.27", "env": [{"name": "Y", "value": "2"}]}],
                "volumes": [{"name": "v1", "configMap": {"name": "cm"}}],
            },
        },
    },
}

# The body kubectl 1.32 sent for that apply (the fragments of §2.5 assembled; the last-applied annotation
# left out). The env name was "Y" (kubectl's YAML 1.1 turned it into true; see the research note).
KUBECTL_PATCH: dict[str, Any] = {
    "metadata": {
        "$deleteFromPrimitiveList/finalizers": ["example.com/b"],
        "$setElementOrder/finalizers": ["example.com/a"],
    },
    "spec": {
        "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "a"}],
                "containers": [
                    {
                        "$setElementOrder/env": [{"name": "Y"}],
                        "env": [{"$patch": "delete", "name": "X"}],
                        "name": "a",
                        "volumeMounts": None,
                    },
                    {"$patch": "delete", "name": "b"},
                ],
                "$setElementOrder/volumes": [{"name": "v1"}],
                "volumes": [
                    {
                        "$retainKeys": ["configMap", "name"],
                        "configMap": {"name": "cm"},
                        "emptyDir": None,
                        "name": "v1",
                    }
                ],
            }
        },
    },
}


def test_kubectl_apply_body_turns_d_a_into_d_b() -> None:
    result = smp(D_A, KUBECTL_PATCH)
    assert result == D_B
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a"]
    assert containers[0]["env"] == [{"name": "Y", "value": "2"}]
    assert "volumeMounts" not in containers[0]
    assert result["metadata"]["finalizers"] == ["example.com/a"]
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert result["spec"]["template"]["spec"]["volumes"] == [{"name": "v1", "configMap": {"name": "cm"}}]


def test_two_way_patch_matches_what_kubectl_sent() -> None:
    assert two_way(D_A, D_B) == KUBECTL_PATCH


@pytest.mark.parametrize(
    "fragment",
    [
        {"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "b"}]}}}},
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}]}}}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/b"]}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}},
    ],
)
def test_each_kubectl_fragment_alone(fragment: dict[str, Any]) -> None:
    result = smp(D_A, fragment)
    assert not has_directive(result)


def test_fragment_effects() -> None:
    spec = smp(D_A, {"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "b"}]}}}})
    assert [c["name"] for c in spec["spec"]["template"]["spec"]["containers"]] == ["a"]
    meta = smp(D_A, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/b"]}})
    assert meta["metadata"]["finalizers"] == ["example.com/a"]
    volumes = {
        "$retainKeys": ["configMap", "name"],
        "configMap": {"name": "cm"},
        "emptyDir": None,
        "name": "v1",
    }
    vol = smp(D_A, {"spec": {"template": {"spec": {"volumes": [volumes]}}}})
    assert vol["spec"]["template"]["spec"]["volumes"] == [{"name": "v1", "configMap": {"name": "cm"}}]


# --- merging ------------------------------------------------------------------------------------------------


def container_patch(container: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [container]}}}}


def containers_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def test_adding_an_env_var_merges_into_the_existing_env_list() -> None:
    result = smp(D_A, container_patch({"name": "a", "env": [{"name": "Z", "value": "3"}]}))
    first = containers_of(result)[0]
    # Without $setElementOrder the new item goes before the server-only ones, as upstream does.
    assert first["env"] == [
        {"name": "Z", "value": "3"},
        {"name": "X", "value": "1"},
        {"name": "Y", "value": "2"},
    ]
    assert first["image"] == "nginx:1.27"
    assert first["volumeMounts"] == containers_of(D_A)[0]["volumeMounts"]
    assert [c["name"] for c in containers_of(result)] == ["a", "b"]
    order = [{"name": "X"}, {"name": "Y"}, {"name": "Z"}]
    patch = container_patch(
        {"name": "a", "env": [{"name": "Z", "value": "3"}], "$setElementOrder/env": order}
    )
    assert [e["name"] for e in containers_of(smp(D_A, patch))[0]["env"]] == ["X", "Y", "Z"]


def test_changing_an_env_var_keeps_the_others_and_their_order() -> None:
    result = smp(D_A, container_patch({"name": "a", "env": [{"name": "Y", "value": "changed"}]}))
    assert containers_of(result)[0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "changed"}]


def test_new_merge_list_item_goes_before_server_only_items_like_upstream() -> None:
    result = smp(D_A, container_patch({"name": "c", "image": "redis"}))
    assert [c["name"] for c in containers_of(result)] == ["c", "a", "b"]


def test_atomic_lists_are_replaced() -> None:
    result = smp(D_A, container_patch({"name": "b", "command": ["true"]}))
    assert containers_of(result)[1]["command"] == ["true"]


def test_set_lists_merge_as_sets() -> None:
    result = smp(D_A, {"metadata": {"finalizers": ["example.com/c", "example.com/a"]}})
    assert result["metadata"]["finalizers"] == ["example.com/c", "example.com/a", "example.com/b"]
    result = smp(D_A, {"metadata": {"finalizers": ["example.com/a", "example.com/c"]}})
    assert sorted(result["metadata"]["finalizers"]) == ["example.com/a", "example.com/b", "example.com/c"]


def test_null_deletes_and_maps_merge() -> None:
    result = smp(D_A, {"spec": {"selector": None, "strategy": {"rollingUpdate": {"maxSurge": 2}}}})
    assert "selector" not in result["spec"]
    assert result["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 2, "maxUnavailable": 0}


def test_merging_into_missing_lists_and_maps_creates_them_without_directives() -> None:
    patch = {
        "metadata": {"labels": {"x": "y", "gone": None}, "finalizers": ["f"]},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "a", "ports": [{"containerPort": 80, "$patch": "merge"}]}],
                    "initContainers": [{"name": "init", "env": [{"name": "A", "value": "1", "x": None}]}],
                }
            }
        },
    }
    result = smp({"metadata": {"name": "n"}}, patch)
    assert result == {
        "metadata": {"name": "n", "labels": {"x": "y"}, "finalizers": ["f"]},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "a", "ports": [{"containerPort": 80}]}],
                    "initContainers": [{"name": "init", "env": [{"name": "A", "value": "1"}]}],
                }
            }
        },
    }


# --- directives ---------------------------------------------------------------------------------------------


def test_patch_replace_on_a_map() -> None:
    result = smp(D_A, {"spec": {"strategy": {"$patch": "replace", "type": "Recreate", "x": None}}})
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    result = smp({"a": 1, "b": {"c": 1}}, {"$patch": "replace", "d": 2}, kind="Pod")
    assert result == {"d": 2}


def test_patch_merge_on_a_map_is_the_default() -> None:
    result = smp(D_A, {"spec": {"strategy": {"$patch": "merge", "type": "Recreate"}}})
    assert result["spec"]["strategy"] == {
        "type": "Recreate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_patch_delete_on_a_map_removes_it() -> None:
    result = smp(D_A, {"spec": {"strategy": {"$patch": "delete"}}})
    assert "strategy" not in result["spec"]
    assert smp(D_A, {"$patch": "delete"}) == {}


def test_patch_replace_item_replaces_the_whole_list() -> None:
    patch = container_patch({"name": "z", "image": "z"})
    patch["spec"]["template"]["spec"]["containers"].append({"$patch": "replace"})
    assert containers_of(smp(D_A, patch)) == [{"name": "z", "image": "z"}]
    env = {"name": "a", "env": [{"$patch": "replace"}]}
    assert containers_of(smp(D_A, container_patch(env)))[0]["env"] == []


def test_patch_replace_in_a_set_and_in_an_atomic_list() -> None:
    result = smp(D_A, {"metadata": {"finalizers": ["x", {"$patch": "replace"}]}})
    assert result["metadata"]["finalizers"] == ["x"]
    result = smp(D_A, container_patch({"name": "b", "command": [{"$patch": "replace"}, "true"]}))
    assert containers_of(result)[1]["command"] == ["true"]


def test_delete_item_removes_every_match_and_ignores_absent_ones() -> None:
    patch = container_patch({"$patch": "delete", "name": "a"})
    patch["spec"]["template"]["spec"]["containers"].append({"$patch": "delete", "name": "nope"})
    assert [c["name"] for c in containers_of(smp(D_A, patch))] == ["b"]


def test_set_element_order_reorders_merge_lists_and_sets() -> None:
    result = smp(
        D_A,
        {
            "metadata": {"$setElementOrder/finalizers": ["example.com/b", "example.com/a"]},
            "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}},
        },
    )
    assert result["metadata"]["finalizers"] == ["example.com/b", "example.com/a"]
    assert [c["name"] for c in containers_of(result)] == ["b", "a"]


def test_set_element_order_with_additions_and_server_only_items() -> None:
    live = {"metadata": {"finalizers": ["s1", "p1", "s2", "p2"]}}
    patch = {"metadata": {"finalizers": ["n1"], "$setElementOrder/finalizers": ["p2", "n1", "p1"]}}
    # p2, n1, p1 keep the order list's order; a server-only item goes first only when the live list had it
    # before the ordered item it meets (s1 and s2 were both before p2).
    assert smp(live, patch)["metadata"]["finalizers"] == ["s1", "s2", "p2", "n1", "p1"]
    live = {"metadata": {"finalizers": ["p1", "s1", "p2", "s2"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["p1", "p2"]}}
    assert smp(live, patch)["metadata"]["finalizers"] == ["p1", "s1", "p2", "s2"]


def test_set_element_order_on_an_atomic_list_is_ignored() -> None:
    result = smp(D_A, container_patch({"name": "b", "$setElementOrder/command": ["inf", "sleep"]}))
    assert containers_of(result)[1]["command"] == ["sleep", "inf"]


def test_retain_keys_clears_unlisted_keys() -> None:
    result = smp(D_A, {"spec": {"strategy": {"$retainKeys": ["type"]}}})
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_delete_from_primitive_list_then_add() -> None:
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"], "finalizers": ["n"]}}
    assert smp(D_A, patch)["metadata"]["finalizers"] == ["n", "example.com/b"]


def test_service_ports_merge_on_port_and_pod_containers_on_name() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    result = smp(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, kind="Service")
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
    pod = {"spec": {"containers": [{"name": "a", "image": "x"}]}}
    result = smp(pod, {"spec": {"containers": [{"name": "a", "image": "y"}]}}, kind="Pod")
    assert result["spec"]["containers"] == [{"name": "a", "image": "y"}]


def test_unknown_kinds_know_only_metadata() -> None:
    obj = {"metadata": {"finalizers": ["a"]}, "spec": {"items": [{"name": "a", "v": 1}]}}
    result = strategicmerge.apply(
        obj,
        {"metadata": {"finalizers": ["b"]}, "spec": {"items": [{"name": "b"}]}},
        group="x.io",
        kind="Thing",
    )
    # Like upstream, a value the live set lacks lands before the server-only values.
    assert result == {"metadata": {"finalizers": ["b", "a"]}, "spec": {"items": [{"name": "b"}]}}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"$frobnicate": 1}, "unknown strategic merge patch directive"),
        ({"spec": {"$patch": "explode"}}, "unknown \\$patch directive"),
        ({"$setElementOrder/": []}, "does not name a field"),
        ({"$retainKeys": "type"}, "must be a list"),
        ({"$retainKeys": [1]}, "field names"),
        ({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, "does not name"),
        (container_patch({"image": "no-name"}), "lacks the merge key"),
        (container_patch({"$patch": "delete"}), "needs the merge key"),
        ({"spec": {"template": {"spec": {"containers": ["a"]}}}}, "must be objects"),
        ({"spec": {"template": {"spec": {"$setElementOrder/containers": ["a"]}}}}, "merge key"),
        ({"metadata": {"finalizers": [{"$patch": "delete"}]}}, "list of scalars"),
        (container_patch({"name": "b", "command": [{"$patch": "delete", "name": "x"}]}), "does not merge"),
    ],
)
def test_bad_patches(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchError, match=message):
        smp(D_A, patch)


def test_non_object_arguments_are_rejected() -> None:
    not_a_map: Any = []
    with pytest.raises(PatchError):
        strategicmerge.apply(not_a_map, {}, group="", kind="Pod")
    with pytest.raises(PatchError):
        strategicmerge.create_two_way({}, not_a_map, group="", kind="Pod")


# --- two-way patches ----------------------------------------------------------------------------------------


def test_two_way_for_added_env_var() -> None:
    modified = copy.deepcopy(D_A)
    containers_of(modified)[0]["env"].append({"name": "Z", "value": "3"})
    patch = two_way(D_A, modified)
    assert patch == {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                    "containers": [
                        {
                            "name": "a",
                            "env": [{"name": "Z", "value": "3"}],
                            "$setElementOrder/env": [{"name": "X"}, {"name": "Y"}, {"name": "Z"}],
                        }
                    ],
                }
            }
        }
    }
    assert smp(D_A, patch) == modified


def test_two_way_of_identical_objects_is_empty() -> None:
    assert two_way(D_A, copy.deepcopy(D_A)) == {}


def test_two_way_falls_back_to_replace_for_unkeyed_lists() -> None:
    original = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    modified = {"spec": {"template": {"spec": {"containers": [{"image": "y"}, {"image": "y"}]}}}}
    patch = two_way(original, modified)
    assert patch["spec"]["template"]["spec"]["containers"][-1] == {"$patch": "replace"}
    assert smp(original, patch) == modified


# --- properties ---------------------------------------------------------------------------------------------


def keyed(
    key: str, names: list[Any], item: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[list[Any]]:
    """Lists of ``item`` with unique ``key`` values drawn from ``names``."""
    pairs = st.lists(st.tuples(st.sampled_from(names), item), max_size=3, unique_by=lambda pair: pair[0])
    return pairs.map(lambda found: [{key: name, **body} for name, body in found])


def optional(required: dict[str, Any], **extra: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=extra)


small_text = st.sampled_from(["", "1", "2", "x"])
env = keyed("name", ["X", "Y", "Z", "W"], optional({}, value=small_text))
ports = keyed("containerPort", [80, 443, 8080], optional({}, protocol=st.sampled_from(["TCP", "UDP"])))
mounts = keyed(
    "mountPath", ["/a", "/b"], optional({"name": st.sampled_from(["v1", "v2"])}, readOnly=st.booleans())
)
resources = optional({}, limits=st.dictionaries(st.sampled_from(["cpu", "memory"]), small_text, max_size=2))
container = optional(
    {"image": st.sampled_from(["nginx:1", "nginx:2", "redis"])},
    env=env,
    ports=ports,
    volumeMounts=mounts,
    args=st.lists(small_text, max_size=2),
    resources=resources,
)
containers = keyed("name", ["a", "b", "c", "d"], container)
volume_source = st.one_of(
    st.just({"emptyDir": {}}),
    st.builds(lambda name: {"configMap": {"name": name}}, st.sampled_from(["cm1", "cm2"])),
    st.builds(lambda name: {"secret": {"secretName": name}}, st.sampled_from(["s1", "s2"])),
)
volumes = keyed("name", ["v1", "v2", "v3"], volume_source)
strategy = st.one_of(
    st.just({"type": "Recreate"}),
    optional(
        {"type": st.just("RollingUpdate")},
        rollingUpdate=optional({}, maxSurge=st.integers(0, 2), maxUnavailable=st.sampled_from([0, "25%"])),
    ),
)
labels = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["x", "y"]), max_size=2)
finalizers = st.lists(
    st.sampled_from(["example.com/a", "example.com/b", "example.com/c"]), unique=True, max_size=3
)
conditions = keyed(
    "type", ["Available", "Progressing"], optional({"status": st.sampled_from(["True", "False"])})
)
pod_spec = optional({"containers": containers}, initContainers=containers, volumes=volumes)
deployments = optional(
    {"apiVersion": st.just("apps/v1"), "kind": st.just("Deployment")},
    metadata=optional({"name": st.just("web")}, labels=labels, finalizers=finalizers),
    spec=optional(
        {},
        replicas=st.integers(0, 3),
        strategy=strategy,
        template=optional({"spec": pod_spec}, metadata=optional({}, labels=labels)),
    ),
    status=optional({}, conditions=conditions, replicas=st.integers(0, 3)),
)


@settings(max_examples=200, deadline=None)
@given(original=deployments, modified=deployments)
def test_apply_of_two_way_round_trips(original: dict[str, Any], modified: dict[str, Any]) -> None:
    saved_original, saved_modified = copy.deepcopy(original), copy.deepcopy(modified)
    patch = two_way(original, modified)
    assert original == saved_original and modified == saved_modified
    assert smp(original, patch) == modified


@settings(max_examples=100, deadline=None)
@given(original=deployments)
def test_empty_patch_is_identity(original: dict[str, Any]) -> None:
    assert smp(original, {}) == original
    assert two_way(original, original) == {}
