"""RespectIgnoreDifferences: the live values at ignored paths replace the desired ones before a sync."""

from __future__ import annotations

from typing import Any

from tugboat.gitops import diff, respectignore


def deployment(replicas: int | None, image: str, **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    meta: dict[str, Any] = {"name": "web", "namespace": "ns"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def test_json_pointer_takes_the_live_value() -> None:
    rule = diff.IgnoreRule("apps", "Deployment", json_pointers=["/spec/replicas"])
    out = respectignore.respect(deployment(1, "v2"), deployment(5, "v1"), [rule])
    assert out["spec"]["replicas"] == 5
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "v2"


def test_a_path_live_lacks_is_removed_from_desired() -> None:
    rule = diff.IgnoreRule("apps", "Deployment", json_pointers=["/spec/replicas"])
    out = respectignore.respect(deployment(3, "v2"), deployment(None, "v1"), [rule])
    assert "replicas" not in out["spec"]


def test_jq_path_expression() -> None:
    rule = diff.IgnoreRule(
        "apps",
        "Deployment",
        jq_path_expressions=['.spec.template.spec.containers[] | select(.name == "main").image'],
    )
    out = respectignore.respect(deployment(1, "v2"), deployment(1, "v1"), [rule])
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "v1"


def test_rules_for_other_kinds_and_the_input_are_left_alone() -> None:
    desired = deployment(1, "v2", team="a")
    rule = diff.IgnoreRule("", "ConfigMap", json_pointers=["/spec/replicas"])
    out = respectignore.respect(desired, deployment(5, "v1"), [rule])
    assert out == desired and out is not desired
