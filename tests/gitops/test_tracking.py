"""Resource tracking: instance names, tracking ids, writing marks on manifests, reading them back."""

from __future__ import annotations

from typing import Any

import pytest

from tugboat.gitops import tracking
from tugboat.gitops.resourcekey import ResourceKey


def service(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "guestbook-ui", **metadata}}


def annotated(obj: dict[str, Any], value: str) -> dict[str, Any]:
    obj.setdefault("metadata", {}).setdefault("annotations", {})[tracking.TRACKING_ANNOTATION] = value
    return obj


def test_constants() -> None:
    assert tracking.TRACKING_ANNOTATION == "argocd.argoproj.io/tracking-id"
    assert tracking.INSTANCE_LABEL == "app.kubernetes.io/instance"
    assert (tracking.METHOD_ANNOTATION, tracking.METHOD_LABEL, tracking.METHOD_ANNOTATION_LABEL) == (
        "annotation",
        "label",
        "annotation+label",
    )


def test_instance_name_in_and_outside_the_control_namespace() -> None:
    assert tracking.instance_name("guestbook", "argocd", control_namespace="argocd") == "guestbook"
    assert tracking.instance_name("guestbook", "team-a", control_namespace="argocd") == "team-a_guestbook"
    assert tracking.instance_name("guestbook", "", control_namespace="argocd") == "guestbook"


def test_split_instance_name_inverts_instance_name() -> None:
    assert tracking.split_instance_name("team-a_guestbook", control_namespace="argocd") == (
        "team-a",
        "guestbook",
    )
    assert tracking.split_instance_name("guestbook", control_namespace="argocd") == ("argocd", "guestbook")


def test_tracking_id_format() -> None:
    assert (
        tracking.tracking_id("guestbook", ResourceKey("", "Service", "guestbook", "guestbook-ui"))
        == "guestbook:/Service:guestbook/guestbook-ui"
    )
    assert tracking.tracking_id("app", ResourceKey("", "Namespace", "", "foo")) == "app:/Namespace:/foo"
    assert (
        tracking.tracking_id("team-a_app", ResourceKey("apps", "Deployment", "web", "api"))
        == "team-a_app:apps/Deployment:web/api"
    )


@pytest.mark.parametrize(
    "key",
    [
        ResourceKey("", "Service", "guestbook", "guestbook-ui"),
        ResourceKey("", "Namespace", "", "foo"),
        ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", "system:controller:foo"),
        ResourceKey("argoproj.io", "Rollout", "demo", "rollouts-demo"),
    ],
)
def test_tracking_id_round_trip(key: ResourceKey) -> None:
    assert tracking.parse_tracking_id(tracking.tracking_id("my-app", key)) == ("my-app", key)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "guestbook",
        "guestbook:/Service",
        "guestbook:Service:guestbook/guestbook-ui",  # no group separator
        "guestbook:a/b/Service:ns/name",  # group with a version
        "guestbook:/Service:guestbook-ui",  # no namespace separator
        "guestbook:/Service:a/b/c",
        ":/Service:ns/name",  # no instance
        "app:/:ns/name",  # no kind
        "app:/Service:ns/",  # no name
    ],
)
def test_parse_tracking_id_rejects_malformed_values(value: str) -> None:
    assert tracking.parse_tracking_id(value) is None


def test_set_tracking_annotation_on_a_manifest_without_metadata_maps() -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    tracking.set_tracking(obj, "app", default_namespace="dest")
    assert obj["metadata"]["annotations"] == {tracking.TRACKING_ANNOTATION: "app:/ConfigMap:dest/cm"}
    assert "labels" not in obj["metadata"]

    bare: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace"}
    tracking.set_tracking(bare, "app")
    assert bare["metadata"]["annotations"][tracking.TRACKING_ANNOTATION] == "app:/Namespace:/"

    nulls: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "foo", "annotations": None},
    }
    tracking.set_tracking(nulls, "app")
    assert nulls["metadata"]["annotations"] == {tracking.TRACKING_ANNOTATION: "app:/Namespace:/foo"}


def test_set_tracking_keeps_the_manifests_own_namespace_and_other_annotations() -> None:
    obj = service(namespace="guestbook", annotations={"keep": "me"}, labels={"app": "x"})
    tracking.set_tracking(obj, "guestbook", default_namespace="elsewhere")
    assert obj["metadata"]["annotations"] == {
        "keep": "me",
        tracking.TRACKING_ANNOTATION: "guestbook:/Service:guestbook/guestbook-ui",
    }
    assert obj["metadata"]["labels"] == {"app": "x"}


def test_set_tracking_uses_the_api_group_without_version() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
    }
    tracking.set_tracking(obj, "app")
    assert obj["metadata"]["annotations"][tracking.TRACKING_ANNOTATION] == "app:apps/Deployment:ns/web"


def test_set_tracking_label_methods_truncate_to_a_valid_label_value() -> None:
    long_name = "a" * 62 + "-" + "b" * 10  # character 63 is '-'
    obj = service(namespace="ns")
    tracking.set_tracking(obj, long_name, method=tracking.METHOD_LABEL)
    assert obj["metadata"]["labels"][tracking.INSTANCE_LABEL] == "a" * 62
    assert "annotations" not in obj["metadata"]

    both = service(namespace="ns")
    tracking.set_tracking(both, long_name, method=tracking.METHOD_ANNOTATION_LABEL)
    assert both["metadata"]["labels"][tracking.INSTANCE_LABEL] == "a" * 62
    # The annotation keeps the full instance name: that is what tracking reads.
    assert tracking.instance_of(both, method=tracking.METHOD_ANNOTATION_LABEL) == long_name


def test_set_tracking_custom_label_key() -> None:
    obj = service(namespace="ns")
    tracking.set_tracking(obj, "app", method=tracking.METHOD_LABEL, label_key="example.com/app")
    assert obj["metadata"]["labels"] == {"example.com/app": "app"}
    assert tracking.instance_of(obj, method=tracking.METHOD_LABEL, label_key="example.com/app") == "app"
    assert tracking.instance_of(obj, method=tracking.METHOD_LABEL) is None


def test_label_value_short_names_unchanged() -> None:
    assert tracking.label_value("guestbook") == "guestbook"
    assert tracking.label_value("x" * 63) == "x" * 63
    assert tracking.label_value("x" * 64) == "x" * 63


def test_unknown_method_is_an_error() -> None:
    with pytest.raises(tracking.InvalidTrackingMethod, match="bogus"):
        tracking.set_tracking(service(), "app", method="bogus")
    with pytest.raises(tracking.InvalidTrackingMethod):
        tracking.instance_of(service(), method="bogus")


def test_tracking_method_setting_defaults_to_annotation() -> None:
    assert tracking.tracking_method(None) == "annotation"
    assert tracking.tracking_method("") == "annotation"
    assert tracking.tracking_method("weird") == "annotation"
    assert tracking.tracking_method("label") == "label"
    assert tracking.tracking_method(" annotation+label ") == "annotation+label"


def test_instance_of_reads_the_objects_own_tracking_id() -> None:
    obj = annotated(service(namespace="guestbook"), "guestbook:/Service:guestbook/guestbook-ui")
    assert tracking.instance_of(obj) == "guestbook"
    assert tracking.instance_of(obj, method=tracking.METHOD_ANNOTATION_LABEL) == "guestbook"


def test_instance_of_rejects_an_annotation_copied_from_a_deployment() -> None:
    # The Deployment controller copies the Deployment's annotations onto its ReplicaSets.
    replica_set = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "guestbook-ui-5d8f7b", "namespace": "guestbook"},
    }
    annotated(replica_set, "guestbook:apps/Deployment:guestbook/guestbook-ui")
    assert tracking.instance_of(replica_set) is None


@pytest.mark.parametrize(
    "value",
    [
        "guestbook:/Service:other/guestbook-ui",  # another namespace
        "guestbook:/Service:/guestbook-ui",  # namespaced object, id without namespace
        "guestbook:/Service:guestbook/other",  # another name
        "guestbook:/ConfigMap:guestbook/guestbook-ui",  # another kind
        "guestbook:example.com/Service:guestbook/guestbook-ui",  # another group
        "not a tracking id",
    ],
)
def test_instance_of_rejects_ids_of_other_objects(value: str) -> None:
    assert tracking.instance_of(annotated(service(namespace="guestbook"), value)) is None


def test_instance_of_group_is_compared_without_version() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
    }
    annotated(deployment, "app:apps/Deployment:ns/web")
    assert tracking.instance_of(deployment) == "app"
    annotated(deployment, "app:extensions/Deployment:ns/web")
    assert tracking.instance_of(deployment) is None


def test_instance_of_cluster_scoped_objects_accept_any_namespace_in_the_id() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}}
    assert tracking.instance_of(annotated(namespace, "app:/Namespace:/foo")) == "app"
    # Argo CD writes the destination namespace into ids of cluster-scoped objects.
    assert tracking.instance_of(annotated(namespace, "app:/Namespace:dest/foo")) == "app"


def test_instance_of_label_method_reads_the_label_only() -> None:
    obj = service(namespace="ns", labels={tracking.INSTANCE_LABEL: "app"})
    annotated(obj, "other:/Service:ns/guestbook-ui")
    assert tracking.instance_of(obj, method=tracking.METHOD_LABEL) == "app"
    assert tracking.instance_of(obj, method=tracking.METHOD_ANNOTATION) == "other"
    assert tracking.instance_of(obj, method=tracking.METHOD_ANNOTATION_LABEL) == "other"


def test_instance_of_annotation_label_ignores_the_label() -> None:
    obj = service(namespace="ns", labels={tracking.INSTANCE_LABEL: "app"})
    assert tracking.instance_of(obj, method=tracking.METHOD_ANNOTATION_LABEL) is None


def test_instance_of_unmarked_and_malformed_objects() -> None:
    assert tracking.instance_of({}) is None
    assert tracking.instance_of({"metadata": None}) is None
    assert tracking.instance_of({"metadata": {"annotations": None, "labels": None}}) is None
    assert (
        tracking.instance_of({"metadata": {"labels": {tracking.INSTANCE_LABEL: ""}}}, method="label") is None
    )
    assert tracking.instance_of(annotated(service(namespace="ns"), "")) is None


@pytest.mark.parametrize("method", tracking.METHODS)
def test_set_then_read_round_trip(method: str) -> None:
    namespaced = service()
    tracking.set_tracking(namespaced, "team-a_app", method=method, default_namespace="dest")
    namespaced["metadata"]["namespace"] = "dest"  # as applied into the destination namespace
    assert tracking.instance_of(namespaced, method=method) == "team-a_app"

    cluster_scoped: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:reader"},
    }
    tracking.set_tracking(cluster_scoped, "app", method=method, default_namespace="dest")
    assert tracking.instance_of(cluster_scoped, method=method) == "app"
