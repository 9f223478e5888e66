"""Field ownership and server-side apply: the behaviours kubectl relies on, with Kubernetes' exact wording."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tugboat.localcluster import fieldmanager as fm
from tugboat.localcluster.fieldmanager import ApplyConflict, FieldManagerError

DEPLOY_INFO = fm.builtin_list_info("apps", "Deployment")
T0, T1, T2 = "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z", "2025-01-01T00:02:00Z"


def deployment(
    replicas: int = 3, containers: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    if containers is None:
        containers = [
            {"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": labels or {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": containers}},
        },
    }


def do_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str = "kubectl",
    *,
    force: bool = False,
    now: str = T0,
    ignore_status: bool = True,
) -> dict[str, Any]:
    return fm.apply(
        live,
        applied,
        manager=manager,
        force=force,
        api_version="apps/v1",
        list_info=DEPLOY_INFO,
        now=now,
        ignore_status=ignore_status,
    )


def do_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, now: str = T0) -> dict[str, Any]:
    return fm.update(
        old, new, manager=manager, api_version="apps/v1", list_info=DEPLOY_INFO, now=now, ignore_status=True
    )


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> fm.FieldSet:
    return fm.from_fields_v1(entries(obj)[(manager, operation)]["fieldsV1"])


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


# What kube-apiserver 1.32 records for `kubectl apply --server-side` of the manifest above.
KUBECTL_APPLY_FIELDS = {
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"nginx"}': {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {
                            'k:{"containerPort":80,"protocol":"TCP"}': {
                                ".": {},
                                "f:containerPort": {},
                                "f:protocol": {},
                            }
                        },
                    }
                }
            },
        },
    },
}


def test_create_via_apply_records_kubernetes_shaped_entry() -> None:
    applied = deployment()
    saved = copy.deepcopy(applied)
    created = do_apply(None, applied)
    assert applied == saved
    assert {k: v for k, v in created.items() if k != "metadata"} == {
        k: v for k, v in applied.items() if k != "metadata"
    }
    assert created["metadata"]["labels"] == {"app": "nginx"}
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": KUBECTL_APPLY_FIELDS,
        }
    ]
    # The serialized form matches the way Kubernetes writes keys.
    assert '"k:{\\"name\\":\\"nginx\\"}"' in json.dumps(created["metadata"]["managedFields"])


def test_reapply_identical_is_a_noop() -> None:
    created = do_apply(None, deployment())
    created["metadata"]["uid"] = "u-1"
    created["metadata"]["resourceVersion"] = "7"
    again = do_apply(created, deployment(), now=T1)
    assert again == created
    assert again is not created


def test_apply_never_copies_server_set_metadata_or_status() -> None:
    live = do_apply(None, deployment())
    live["metadata"]["uid"] = "u-1"
    live["status"] = {"replicas": 3}
    applied = deployment()
    applied["metadata"]["uid"] = "other"
    applied["status"] = {"replicas": 99}
    out = do_apply(live, applied, now=T1)
    assert out["metadata"]["uid"] == "u-1"
    assert out["status"] == {"replicas": 3}
    assert not any(path[0] == "f:status" for path in owned(out, "kubectl"))


def test_apply_dropping_fields_removes_them() -> None:
    first = deployment(labels={"app": "nginx", "tier": "web"})
    live = do_apply(None, first)
    second = deployment(containers=[{"name": "nginx", "image": "nginx:1.27"}])
    out = do_apply(live, second, now=T1)
    assert out["metadata"]["labels"] == {"app": "nginx"}
    assert containers(out) == [{"name": "nginx", "image": "nginx:1.27"}]
    assert entries(out)[("kubectl", "Apply")]["time"] == T1
    assert ("f:metadata", "f:labels", "f:tier") not in owned(out, "kubectl")


def test_dropping_a_whole_list_item_and_emptied_parents() -> None:
    live = do_apply(None, deployment())
    applied = deployment()
    del applied["spec"]["template"]
    out = do_apply(live, applied, now=T1)
    assert "template" not in out["spec"]


def test_field_co_owned_by_another_manager_is_kept() -> None:
    live = do_apply(None, deployment(labels={"app": "nginx", "team": "a"}))
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"team": "a"}},
    }
    live = do_apply(live, other, "labeller", now=T1)  # same value: shared, not a conflict
    assert ("f:metadata", "f:labels", "f:team") in owned(live, "labeller")
    out = do_apply(live, deployment(), now=T2)
    assert out["metadata"]["labels"] == {"app": "nginx", "team": "a"}
    assert owned(out, "labeller") == {("f:metadata", "f:labels", "f:team")}
    assert ("f:metadata", "f:labels", "f:team") not in owned(out, "kubectl")


def test_conflict_with_update_manager_and_force() -> None:
    live = do_update(None, deployment(replicas=3), "kubectl-client-side-apply")
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, deployment(replicas=5), now=T1)
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
        ".spec.replicas"
    )
    assert str(caught.value) == caught.value.message
    [conflict] = caught.value.conflicts
    assert (conflict.manager, conflict.api_version, conflict.field) == (
        "kubectl-client-side-apply",
        "apps/v1",
        ".spec.replicas",
    )
    assert conflict.message == 'conflict with "kubectl-client-side-apply" using apps/v1'

    forced = do_apply(live, deployment(replicas=5), force=True, now=T1)
    assert forced["spec"]["replicas"] == 5
    assert ("f:spec", "f:replicas") in owned(forced, "kubectl")
    assert ("f:spec", "f:replicas") not in owned(forced, "kubectl-client-side-apply", "Update")
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == [
        "kubectl-client-side-apply",
        "kubectl",
    ]


def test_same_value_is_not_a_conflict() -> None:
    live = do_update(None, deployment(replicas=3), "kubectl-client-side-apply")
    out = do_apply(live, deployment(replicas=3), now=T1)
    assert ("f:spec", "f:replicas") in owned(out, "kubectl")
    assert ("f:spec", "f:replicas") in owned(out, "kubectl-client-side-apply", "Update")


def test_plural_conflict_message_groups_by_manager() -> None:
    live = do_update(None, deployment(replicas=3), "m")
    changed = deployment(replicas=5, labels={"app": "web"})
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, changed, now=T1)
    assert caught.value.message == (
        'Apply failed with 2 conflicts: conflicts with "m" using apps/v1:\n'
        "- .metadata.labels.app\n"
        "- .spec.replicas"
    )


def test_conflict_with_apply_manager_on_list_map_item() -> None:
    live = do_apply(None, deployment(), "a")
    changed = deployment(containers=[{"name": "nginx", "image": "nginx:2"}])
    with pytest.raises(ApplyConflict) as caught:
        do_apply(live, changed, "b", now=T1)
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "a": .spec.template.spec.containers[name="nginx"].image'
    )


def test_list_map_merge_by_name_with_two_managers() -> None:
    a_cfg = deployment(containers=[{"name": "a", "image": "img-a:1"}])
    b_cfg: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx"},
        "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "img-b:1"}]}}},
    }
    live = do_apply(None, a_cfg, "a")
    live = do_apply(live, b_cfg, "b", now=T1)
    assert containers(live) == [{"name": "a", "image": "img-a:1"}, {"name": "b", "image": "img-b:1"}]
    item_b = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"b"}')
    assert owned(live, "b") == {item_b, (*item_b, "f:name"), (*item_b, "f:image")}

    live = do_apply(live, deployment(containers=[{"name": "a", "image": "img-a:2"}]), "a", now=T2)
    assert containers(live) == [{"name": "a", "image": "img-a:2"}, {"name": "b", "image": "img-b:1"}]

    live = do_apply(live, deployment(containers=[{"name": "c", "image": "img-c:1"}]), "a", now=T2)
    # Live-only items keep their place ahead of the new ones; the dropped one is pruned.
    assert containers(live) == [{"name": "b", "image": "img-b:1"}, {"name": "c", "image": "img-c:1"}]
    assert not any('k:{"name":"a"}' in path for path in owned(live, "a"))


def test_list_item_kept_when_another_manager_owns_a_field_in_it() -> None:
    live = do_apply(None, deployment(containers=[{"name": "a", "image": "i"}]), "a")
    sidecar_env: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}}},
    }
    live = do_apply(live, sidecar_env, "b", now=T1)
    out = do_apply(live, deployment(containers=[{"name": "z", "image": "z"}]), "a", now=T2)
    # "a" survives (b owns a field in it) but loses the image only manager "a" owned.
    assert containers(out) == [
        {"name": "a", "env": [{"name": "X", "value": "1"}]},
        {"name": "z", "image": "z"},
    ]


def test_set_lists_union_and_prune() -> None:
    info = fm.builtin_list_info("", "ConfigMap")
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}

    def cm(*finalizers: str) -> dict[str, Any]:
        return {**base, "metadata": {"name": "c", "finalizers": list(finalizers)}}

    live = fm.apply(None, cm("x/a"), manager="m1", force=False, api_version="v1", list_info=info, now=T0)
    live = fm.apply(live, cm("x/b"), manager="m2", force=False, api_version="v1", list_info=info, now=T0)
    assert live["metadata"]["finalizers"] == ["x/a", "x/b"]
    assert fm.from_fields_v1(entries(live)[("m2", "Apply")]["fieldsV1"]) == {
        ("f:metadata", "f:finalizers", 'v:"x/b"')
    }
    live = fm.apply(live, base, manager="m1", force=False, api_version="v1", list_info=info, now=T1)
    assert live["metadata"]["finalizers"] == ["x/b"]
    assert [e["manager"] for e in live["metadata"]["managedFields"]] == ["m2"]


def test_update_steals_ownership_and_forgets_removed_fields() -> None:
    live = do_apply(None, deployment(labels={"app": "nginx", "tier": "web"}))
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 7
    del edited["metadata"]["labels"]["tier"]
    out = do_update(live, edited, "kubectl-edit", now=T1)
    assert out["spec"]["replicas"] == 7
    assert owned(out, "kubectl-edit", "Update") == {("f:spec", "f:replicas")}
    mine = owned(out, "kubectl")
    assert ("f:spec", "f:replicas") not in mine
    assert ("f:metadata", "f:labels", "f:tier") not in mine
    assert entries(out)[("kubectl", "Apply")]["time"] == T0
    # A no-op update changes nothing, adds no entry, bumps no time.
    assert do_update(out, copy.deepcopy(out), "other", now=T2) == out


def test_update_on_create_owns_everything_and_merges_later_changes() -> None:
    created = do_update(None, deployment(), "kubectl-create")
    assert owned(created, "kubectl-create", "Update") == fm.fields_of(deployment(), DEPLOY_INFO)
    changed = copy.deepcopy(created)
    changed["metadata"]["annotations"] = {"note": "x"}
    out = do_update(created, changed, "kubectl-create", now=T1)
    entry = entries(out)[("kubectl-create", "Update")]
    assert entry["time"] == T1
    assert ("f:metadata", "f:annotations", "f:note") in fm.from_fields_v1(entry["fieldsV1"])
    assert len(out["metadata"]["managedFields"]) == 1


def test_update_reset_and_untracked_objects() -> None:
    created = do_update(None, deployment(), "kubectl-create")
    reset = copy.deepcopy(created)
    reset["metadata"]["managedFields"] = [{}]
    cleared = do_update(created, reset, "kubectl-edit", now=T1)
    assert "managedFields" not in cleared["metadata"]
    changed = copy.deepcopy(cleared)
    changed["spec"]["replicas"] = 1
    assert "managedFields" not in do_update(cleared, changed, "kubectl-edit", now=T2)["metadata"]


def test_first_apply_to_untracked_object_conflicts_with_before_first_apply() -> None:
    untracked = deployment(replicas=2)
    with pytest.raises(ApplyConflict) as caught:
        do_apply(untracked, deployment(replicas=4), now=T1)
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )
    out = do_apply(untracked, deployment(replicas=2), now=T1)
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["before-first-apply", "kubectl"]


def test_apply_rejects_managed_fields_and_duplicate_keys() -> None:
    with_mf = deployment()
    with_mf["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(FieldManagerError, match="managedFields must be nil"):
        do_apply(None, with_mf)
    duplicated = deployment(containers=[{"name": "a", "image": "1"}, {"name": "a", "image": "2"}])
    with pytest.raises(FieldManagerError, match=r'duplicate entries for key \[name="a"\]'):
        do_apply(None, duplicated)


def test_status_subresource_apply_only_touches_status() -> None:
    live = do_apply(None, deployment())
    body = {**deployment(replicas=9), "status": {"readyReplicas": 1}}
    out = fm.apply(
        live,
        body,
        manager="ctrl",
        force=False,
        api_version="apps/v1",
        list_info=DEPLOY_INFO,
        now=T1,
        subresource="status",
    )
    assert out["spec"]["replicas"] == 3
    assert out["status"] == {"readyReplicas": 1}
    entry = entries(out)[("ctrl", "Apply")]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:readyReplicas": {}}}


def test_managed_fields_order_is_stable() -> None:
    live = do_update(None, deployment(), "first")
    live = do_apply(live, {**deployment(), "metadata": {"name": "nginx", "labels": {"x": "1"}}}, "second")
    live = do_apply(live, {**deployment(), "metadata": {"name": "nginx", "labels": {"y": "1"}}}, "third")
    live = do_apply(
        live, {**deployment(), "metadata": {"name": "nginx", "labels": {"x": "2"}}}, "second", now=T1
    )
    assert [e["manager"] for e in live["metadata"]["managedFields"]] == ["first", "second", "third"]


def test_builtin_list_info() -> None:
    assert DEPLOY_INFO(("spec", "template", "spec", "containers")) == ("map", ("name",))
    assert DEPLOY_INFO(("spec", "template", "spec", "containers", "ports")) == (
        "map",
        ("containerPort", "protocol"),
        {"protocol": "TCP"},
    )
    assert DEPLOY_INFO(("metadata", "finalizers")) == ("set", ())
    assert DEPLOY_INFO(("spec", "selector")) == ("atomic", ())
    assert DEPLOY_INFO(("spec", "template", "spec", "containers", "args")) is None


def test_apply_keys_items_with_key_defaults() -> None:
    # The live port was defaulted to TCP; an apply that omits the protocol means that same port.
    live = do_apply(None, deployment())
    no_protocol = deployment(
        containers=[{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]
    )
    out = do_apply(live, no_protocol)
    assert out["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    fields = out["metadata"]["managedFields"][0]["fieldsV1"]
    ports = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']["f:ports"]
    assert ports == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}


def test_fields_of_ignores_server_fields_and_optionally_status() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "d", "uid": "u", "resourceVersion": "1", "labels": {"a": "b"}},
        "data": {"k": "v", "empty": {}},
        "status": {"phase": "x"},
    }
    info = fm.builtin_list_info("", "ConfigMap")
    expected = {("f:metadata", "f:labels", "f:a"), ("f:data", "f:k"), ("f:data", "f:empty")}
    assert fm.fields_of(obj, info, ignore_status=True) == expected
    assert fm.fields_of(obj, info) == {*expected, ("f:status", "f:phase")}


def test_path_string() -> None:
    path = ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:targetPort")
    assert fm.path_string(path) == '.spec.ports[port=80,protocol="TCP"].targetPort'
    assert fm.path_string(("f:metadata", "f:finalizers", 'v:"a/b"')) == '.metadata.finalizers[="a/b"]'


def test_fields_v1_roundtrip_of_kubernetes_document() -> None:
    fields = fm.from_fields_v1(KUBECTL_APPLY_FIELDS)
    assert ("f:spec", "f:selector") in fields
    assert ("f:spec", "f:template") not in fields
    assert fm.to_fields_v1(fields) == KUBECTL_APPLY_FIELDS
    assert json.dumps(fm.to_fields_v1(fields)) == json.dumps(KUBECTL_APPLY_FIELDS)


def test_fields_v1_orders_like_kubernetes() -> None:
    fields = {
        ("f:b",),
        ("f:a",),
        ("f:p", 'k:{"port":443}'),
        ("f:p", 'k:{"port":80}'),
        ("f:p", "f:x"),
        ("f:s", 'v:"b"'),
        ("f:s", 'v:"a"'),
    }
    rendered = fm.to_fields_v1(fields)
    assert list(rendered) == ["f:a", "f:b", "f:p", "f:s"]
    assert list(rendered["f:p"]) == ["f:x", 'k:{"port":80}', 'k:{"port":443}']
    assert list(rendered["f:s"]) == ['v:"a"', 'v:"b"']


def test_malformed_fields_v1() -> None:
    with pytest.raises(FieldManagerError):
        fm.from_fields_v1({"f:a": 1})
    with pytest.raises(FieldManagerError):
        fm.from_fields_v1([])


ELEMENTS = st.sampled_from(["f:a", "f:b", "f:spec", 'k:{"name":"x"}', 'k:{"port":80}', 'v:"s"', "v:1", "i:0"])
PATHS = st.lists(ELEMENTS, min_size=1, max_size=4).map(tuple)


@settings(max_examples=200)
@given(st.frozensets(PATHS, max_size=12))
def test_fields_v1_roundtrip_property(fields: frozenset[tuple[str, ...]]) -> None:
    encoded = fm.to_fields_v1(fields)
    assert fm.from_fields_v1(encoded) == fields
    assert fm.from_fields_v1(json.loads(json.dumps(encoded))) == fields
    assert fm.to_fields_v1(fm.from_fields_v1(encoded)) == encoded
