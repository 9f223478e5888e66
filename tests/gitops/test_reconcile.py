"""Pairing desired manifests with live objects."""

from __future__ import annotations

import copy
from typing import Any

from tugboat.gitops import hooks, reconcile
from tugboat.gitops.resourcekey import ResourceKey

SCOPES: dict[tuple[str, str], bool] = {
    ("", "ConfigMap"): True,
    ("", "Service"): True,
    ("apps", "Deployment"): True,
    ("extensions", "Deployment"): True,
    ("batch", "Job"): True,
    ("", "Namespace"): False,
    ("rbac.authorization.k8s.io", "ClusterRole"): False,
}


def is_namespaced(group: str, kind: str) -> bool | None:
    return SCOPES.get((group, kind))


def obj(api_version: str, kind: str, name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **extra}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def live_of(*objs: dict[str, Any]) -> dict[ResourceKey, dict[str, Any]]:
    return {ResourceKey.of(o): o for o in objs}


def run(targets: list[dict[str, Any]], live: dict[ResourceKey, dict[str, Any]]) -> reconcile.Reconciliation:
    return reconcile.reconcile(targets, live, namespace="dest", is_namespaced=is_namespaced)


def test_namespace_is_defaulted_on_a_copy() -> None:
    target = obj("apps/v1", "Deployment", "web")
    original = copy.deepcopy(target)
    live = obj("apps/v1", "Deployment", "web", "dest", uid="u1")
    result = run([target], live_of(live))
    assert target == original
    [pair] = result.pairs
    assert pair.key == ResourceKey("apps", "Deployment", "dest", "web")
    assert pair.target is not None and pair.target is not target
    assert pair.target["metadata"]["namespace"] == "dest"
    assert pair.live is live
    assert result.hooks == [] and result.duplicates == []


def test_explicit_namespace_is_kept_and_object_not_copied() -> None:
    target = obj("v1", "ConfigMap", "cm", "other")
    result = run([target], {})
    [pair] = result.pairs
    assert pair.key == ResourceKey("", "ConfigMap", "other", "cm")
    assert pair.target is target
    assert pair.live is None


def test_cluster_scoped_kinds_drop_the_namespace() -> None:
    role = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", "oops")
    namespace = obj("v1", "Namespace", "team")
    live_role = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader")
    result = run([role, namespace], live_of(live_role))
    assert [p.key for p in result.pairs] == [
        ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", "reader"),
        ResourceKey("", "Namespace", "", "team"),
    ]
    assert result.pairs[0].target is not None and "namespace" not in result.pairs[0].target["metadata"]
    assert result.pairs[0].live is live_role
    assert role["metadata"]["namespace"] == "oops"  # input untouched
    assert result.pairs[1].target is namespace  # nothing to change: same object


def test_unknown_scope_matches_a_cluster_scoped_live_object() -> None:
    target = obj("example.com/v1", "Widget", "w")
    live = obj("example.com/v1", "Widget", "w", uid="u")
    result = run([target], live_of(live))
    [pair] = result.pairs
    assert pair.key == ResourceKey("example.com", "Widget", "", "w")
    assert pair.live is live
    assert pair.target is not None and pair.target["metadata"]["namespace"] == "dest"


def test_unknown_scope_prefers_the_namespaced_live_object() -> None:
    target = obj("example.com/v1", "Widget", "w")
    namespaced = obj("example.com/v1", "Widget", "w", "dest", uid="a")
    clustered = obj("example.com/v1", "Widget", "w", uid="b")
    result = run([target], live_of(clustered, namespaced))
    assert [(p.key.namespace, p.target is not None, p.live) for p in result.pairs] == [
        ("dest", True, namespaced),
        ("", False, clustered),
    ]


def test_unknown_scope_without_live_object_uses_the_namespaced_key() -> None:
    result = run([obj("example.com/v1", "Widget", "w")], {})
    assert result.pairs[0].key == ResourceKey("example.com", "Widget", "dest", "w")
    explicit = run([obj("example.com/v1", "Widget", "w", "ns")], {})
    assert explicit.pairs[0].key == ResourceKey("example.com", "Widget", "ns", "w")


def test_extra_live_objects_become_prune_candidates_sorted_by_key() -> None:
    targets = [obj("v1", "Service", "web", "dest"), obj("v1", "ConfigMap", "b", "dest")]
    extra_z = obj("v1", "ConfigMap", "z", "dest", uid="1")
    extra_a = obj("apps/v1", "Deployment", "old", "dest", uid="2")
    extra_ns = obj("v1", "Namespace", "gone", uid="3")
    live = live_of(extra_z, targets[0] | {"status": {}}, extra_ns, extra_a)
    before = dict(live)
    result = run(targets, live)
    assert [(p.key.kind, p.key.name, p.target is not None, p.live is not None) for p in result.pairs] == [
        ("Service", "web", True, True),
        ("ConfigMap", "b", True, False),
        ("ConfigMap", "z", False, True),
        ("Namespace", "gone", False, True),
        ("Deployment", "old", False, True),
    ]
    assert live == before  # the caller's mapping is left alone
    assert result.pairs[3].obj is extra_ns
    assert result.pairs[0].obj is targets[0]


def test_same_uid_through_two_groups_is_kept_once_preferring_the_target() -> None:
    apps = obj("apps/v1", "Deployment", "web", "dest", uid="same")
    ext = obj("extensions/v1beta1", "Deployment", "web", "dest", uid="same")
    result = run([obj("apps/v1", "Deployment", "web")], live_of(ext, apps))
    assert [(p.key.group, p.live is apps) for p in result.pairs] == [("apps", True)]

    result = run([obj("extensions/v1beta1", "Deployment", "web")], live_of(apps, ext))
    assert [(p.key.group, p.live is ext) for p in result.pairs] == [("extensions", True)]


def test_same_uid_without_target_keeps_one() -> None:
    apps = obj("apps/v1", "Deployment", "web", "dest", uid="same")
    ext = obj("extensions/v1beta1", "Deployment", "web", "dest", uid="same")
    other = obj("apps/v1", "Deployment", "other", "dest", uid="different")
    no_uid_1 = obj("v1", "ConfigMap", "a", "dest")
    no_uid_2 = obj("v1", "ConfigMap", "b", "dest")
    result = run([], live_of(ext, other, apps, no_uid_1, no_uid_2))
    assert [p.live for p in result.pairs] == [no_uid_1, no_uid_2, other, apps]


def test_hooks_are_set_aside_and_skip_and_ignored_manifests_dropped() -> None:
    pre = obj("batch/v1", "Job", "", annotations={hooks.HOOK_ANNOTATION: "PreSync"})
    pre["metadata"]["generateName"] = "migrate-"
    helm_post = obj("batch/v1", "Job", "done", annotations={hooks.HELM_HOOK_ANNOTATION: "post-install"})
    skipped = obj("v1", "ConfigMap", "skipped", annotations={hooks.HOOK_ANNOTATION: "Skip"})
    helm_test = obj("v1", "Pod", "test", annotations={hooks.HELM_HOOK_ANNOTATION: "test"})
    typo = obj("v1", "ConfigMap", "typo", annotations={hooks.HOOK_ANNOTATION: "PreSnyc"})
    plain = obj("v1", "ConfigMap", "plain")
    # A finished hook still in the cluster stays a live-only pair; the sync skips hooks itself.
    live_hook = obj(
        "batch/v1", "Job", "done", "dest", annotations={hooks.HELM_HOOK_ANNOTATION: "post-install"}
    )
    result = run([pre, helm_post, skipped, helm_test, typo, plain], live_of(live_hook))
    assert result.hooks == [pre, helm_post]
    assert result.hooks[0] is pre and "namespace" not in pre["metadata"]
    assert [(p.key.name, p.target is not None) for p in result.pairs] == [("plain", True), ("done", False)]


def test_duplicate_targets_last_one_wins() -> None:
    first = obj("v1", "ConfigMap", "cm") | {"data": {"v": "1"}}
    svc = obj("v1", "Service", "svc")
    second = obj("v1", "ConfigMap", "cm", "dest") | {"data": {"v": "2"}}
    third = obj("v1", "ConfigMap", "cm") | {"data": {"v": "3"}}
    svc_again = obj("v1", "Service", "svc", "dest")
    result = run([first, svc, second, third, svc_again], {})
    cm_key = ResourceKey("", "ConfigMap", "dest", "cm")
    svc_key = ResourceKey("", "Service", "dest", "svc")
    # The winner keeps its own position in the input.
    assert [p.key for p in result.pairs] == [cm_key, svc_key]
    assert result.pairs[0].target is not None and result.pairs[0].target["data"] == {"v": "3"}
    assert result.pairs[1].target is svc_again
    assert result.duplicates == [cm_key, svc_key]


def test_targets_keep_input_order_and_none_entries_are_skipped() -> None:
    targets: list[Any] = [
        obj("apps/v1", "Deployment", "z"),
        None,
        obj("v1", "Namespace", "a"),
        obj("v1", "ConfigMap", "m"),
    ]
    result = run(targets, {})
    assert [p.key.name for p in result.pairs] == ["z", "a", "m"]


def test_no_default_namespace() -> None:
    result = reconcile.reconcile(
        [obj("v1", "ConfigMap", "cm")], {}, namespace="", is_namespaced=is_namespaced
    )
    [pair] = result.pairs
    assert pair.key == ResourceKey("", "ConfigMap", "", "cm")
    assert pair.target is not None and "namespace" not in pair.target["metadata"]
