"""Hook and wave annotations: Argo CD's own, and Helm's mapped onto them."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import examples_support
from tugboat.gitops import hooks


def job(name: str | None = "job", **annotations: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"annotations": dict(annotations)}
    if name is not None:
        metadata["name"] = name
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata}


def argo(value: str, **more: str) -> dict[str, Any]:
    return job(**{hooks.HOOK_ANNOTATION: value}, **more)


def helm(value: str, **more: str) -> dict[str, Any]:
    return job(**{hooks.HELM_HOOK_ANNOTATION: value}, **more)


def test_constants() -> None:
    assert hooks.HOOK_ANNOTATION == "argocd.argoproj.io/hook"
    assert hooks.HELM_HOOK_ANNOTATION == "helm.sh/hook"
    assert hooks.HOOK_DELETE_POLICY_ANNOTATION == "argocd.argoproj.io/hook-delete-policy"
    assert hooks.HELM_HOOK_DELETE_POLICY_ANNOTATION == "helm.sh/hook-delete-policy"
    assert hooks.SYNC_WAVE_ANNOTATION == "argocd.argoproj.io/sync-wave"
    assert hooks.HELM_HOOK_WEIGHT_ANNOTATION == "helm.sh/hook-weight"
    assert hooks.HOOK_FINALIZER == "argocd.argoproj.io/hook-finalizer"
    assert hooks.HOOK_TYPES == ("PreSync", "Sync", "PostSync", "SyncFail", "Skip", "PreDelete", "PostDelete")
    assert (hooks.HOOK_SUCCEEDED, hooks.HOOK_FAILED, hooks.BEFORE_HOOK_CREATION) == (
        "HookSucceeded",
        "HookFailed",
        "BeforeHookCreation",
    )


def test_argo_hook_types_are_trimmed_filtered_and_deduplicated() -> None:
    assert hooks.hook_types(argo("PreSync")) == ["PreSync"]
    assert hooks.hook_types(argo(" PostSync , Bogus,PreSync,PostSync")) == ["PostSync", "PreSync"]
    assert hooks.hook_types(argo("SyncFail,PreDelete,PostDelete")) == ["SyncFail", "PreDelete", "PostDelete"]
    assert hooks.hook_types(argo("presync")) == []  # case-sensitive, like Argo CD


def test_plain_resources_have_no_hook_types() -> None:
    plain = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    assert hooks.hook_types(plain) == []
    assert not hooks.is_hook(plain)
    assert not hooks.is_skip(plain)
    assert not hooks.is_ignored(plain)
    assert hooks.sync_phases(plain) == ["Sync"]
    assert hooks.hook_types({}) == []
    assert not hooks.is_hook({"metadata": None})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pre-install", ["PreSync"]),
        ("pre-upgrade", ["PreSync"]),
        ("pre-install,pre-upgrade", ["PreSync"]),
        ("post-install", ["PostSync"]),
        ("post-upgrade", ["PostSync"]),
        ("post-install, post-upgrade", ["PostSync"]),
        ("pre-install,post-install", ["PreSync", "PostSync"]),
        ("pre-delete", ["PreDelete"]),
        ("post-delete", ["PostDelete"]),
        ("test", []),
        ("test-success", []),
        ("pre-rollback,post-rollback", []),
        ("crd-install", []),
    ],
)
def test_helm_hook_mapping(value: str, expected: list[str]) -> None:
    assert hooks.hook_types(helm(value)) == expected


def test_argo_annotation_wins_over_helm() -> None:
    both = job(**{hooks.HOOK_ANNOTATION: "Sync", hooks.HELM_HOOK_ANNOTATION: "pre-install"})
    assert hooks.hook_types(both) == ["Sync"]


def test_helm_is_read_when_the_argo_annotation_names_no_known_type() -> None:
    # gitops-engine falls back to Helm whenever the Argo annotation yields no recognised type.
    both = job(**{hooks.HOOK_ANNOTATION: "Bogus", hooks.HELM_HOOK_ANNOTATION: "post-upgrade"})
    assert hooks.hook_types(both) == ["PostSync"]
    assert hooks.is_hook(both)
    assert not hooks.is_ignored(both)


def test_skip() -> None:
    skip = argo("Skip")
    assert hooks.is_skip(skip)
    assert not hooks.is_hook(skip)
    assert not hooks.is_ignored(skip)
    assert hooks.sync_phases(skip) == []

    # Skip next to a real hook type: still a hook (of that type).
    mixed = argo("PreSync,Skip")
    assert hooks.is_skip(mixed)
    assert hooks.is_hook(mixed)
    assert hooks.sync_phases(mixed) == ["PreSync"]


@pytest.mark.parametrize(
    "obj",
    [argo("Bogus"), argo(""), argo(" , "), helm("test"), helm("pre-rollback"), helm("")],
)
def test_hook_annotations_without_known_types_are_ignored(obj: dict[str, Any]) -> None:
    assert hooks.is_ignored(obj)
    assert not hooks.is_hook(obj)
    assert not hooks.is_skip(obj)
    assert hooks.sync_phases(obj) == []


def test_helm_crd_install_is_an_ordinary_resource() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "foos.example.com", "annotations": {hooks.HELM_HOOK_ANNOTATION: "crd-install"}},
    }
    assert not hooks.has_hook_annotation(crd)
    assert not hooks.is_hook(crd)
    assert not hooks.is_ignored(crd)
    assert hooks.sync_phases(crd) == ["Sync"]


def test_sync_phases_of_hooks_in_phase_order() -> None:
    assert hooks.sync_phases(argo("PostSync,PreSync,SyncFail,Sync")) == [
        "PreSync",
        "Sync",
        "PostSync",
        "SyncFail",
    ]
    # Deletion hooks take part in no sync.
    assert hooks.is_hook(argo("PreDelete"))
    assert hooks.sync_phases(argo("PreDelete")) == []
    assert hooks.sync_phases(argo("PostDelete,PostSync")) == ["PostSync"]


def test_delete_policies() -> None:
    assert hooks.delete_policies(argo("PreSync")) == ["BeforeHookCreation"]
    assert hooks.delete_policies(
        argo("PreSync", **{hooks.HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded, HookFailed"})
    ) == ["HookSucceeded", "HookFailed"]
    assert hooks.delete_policies(
        helm(
            "pre-install", **{hooks.HELM_HOOK_DELETE_POLICY_ANNOTATION: "before-hook-creation,hook-succeeded"}
        )
    ) == ["BeforeHookCreation", "HookSucceeded"]
    assert hooks.delete_policies(
        helm("pre-install", **{hooks.HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-failed"})
    ) == ["HookFailed"]
    # Unknown values are dropped; nothing left means the default.
    assert hooks.delete_policies(argo("Sync", **{hooks.HOOK_DELETE_POLICY_ANNOTATION: "Never"})) == [
        "BeforeHookCreation"
    ]
    # Both annotations count (gitops-engine merges them), without repeats.
    both = argo(
        "Sync",
        **{
            hooks.HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded",
            hooks.HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-succeeded,hook-failed",
        },
    )
    assert hooks.delete_policies(both) == ["HookSucceeded", "HookFailed"]
    assert hooks.has_delete_policy(both, hooks.HOOK_FAILED)
    assert not hooks.has_delete_policy(both, hooks.BEFORE_HOOK_CREATION)


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, 0),
        ({hooks.SYNC_WAVE_ANNOTATION: "5"}, 5),
        ({hooks.SYNC_WAVE_ANNOTATION: "-3"}, -3),
        ({hooks.SYNC_WAVE_ANNOTATION: "+2"}, 2),
        ({hooks.SYNC_WAVE_ANNOTATION: "0"}, 0),
        ({hooks.HELM_HOOK_WEIGHT_ANNOTATION: "-2"}, -2),
        ({hooks.SYNC_WAVE_ANNOTATION: "1", hooks.HELM_HOOK_WEIGHT_ANNOTATION: "7"}, 1),
        ({hooks.SYNC_WAVE_ANNOTATION: "one"}, 0),
        ({hooks.SYNC_WAVE_ANNOTATION: "1.5"}, 0),
        ({hooks.SYNC_WAVE_ANNOTATION: " 3"}, 0),
        ({hooks.SYNC_WAVE_ANNOTATION: ""}, 0),
        ({hooks.SYNC_WAVE_ANNOTATION: "1_0"}, 0),
        # An unparsable sync-wave falls back to the Helm weight, as in gitops-engine.
        ({hooks.SYNC_WAVE_ANNOTATION: "x", hooks.HELM_HOOK_WEIGHT_ANNOTATION: "4"}, 4),
        ({hooks.HELM_HOOK_WEIGHT_ANNOTATION: "heavy"}, 0),
    ],
)
def test_wave(annotations: dict[str, str], expected: int) -> None:
    assert hooks.wave(job(**annotations)) == expected


def test_wave_without_metadata() -> None:
    assert hooks.wave({}) == 0
    assert hooks.wave({"metadata": {"annotations": {hooks.SYNC_WAVE_ANNOTATION: 3}}}) == 0


STARTED = datetime.datetime.fromtimestamp(1722506405, tz=datetime.UTC)


def test_generated_hook_name_format() -> None:
    name = hooks.generated_hook_name(
        "upgrade-sql-schema", revision="0d521c6e8a1b2c3d4e5f", phase="PreSync", started_at=STARTED
    )
    assert name == "upgrade-sql-schema0d521c6-presync-1722506405"


def test_generated_hook_name_details() -> None:
    # Short revisions are used whole; the suffix is lowercased; generateName is kept as written.
    assert (
        hooks.generated_hook_name("before-", revision="ABC", phase="PostSync", started_at=STARTED)
        == "before-abc-postsync-1722506405"
    )
    # A naive datetime is UTC.
    naive = datetime.datetime(2024, 8, 1, 10, 0, 5)
    assert hooks.generated_hook_name("h-", revision="1234567890", phase="Sync", started_at=naive) == (
        "h-1234567-sync-" + str(int(naive.replace(tzinfo=datetime.UTC).timestamp()))
    )
    # Another time zone, same instant, same name.
    cest = STARTED.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert hooks.generated_hook_name("x-", revision="a" * 40, phase="Sync", started_at=cest) == (
        "x-aaaaaaa-sync-1722506405"
    )


def test_generated_hook_name_is_at_most_253_characters() -> None:
    name = hooks.generated_hook_name("g" * 300, revision="0d521c6e", phase="SyncFail", started_at=STARTED)
    assert len(name) == 253
    assert name.endswith("g0d521c6-syncfail-1722506405")


def test_hook_finalizer_helpers() -> None:
    obj = argo("PreSync")
    assert not hooks.has_hook_finalizer(obj)
    hooks.add_hook_finalizer(obj)
    hooks.add_hook_finalizer(obj)
    assert obj["metadata"]["finalizers"] == [hooks.HOOK_FINALIZER]
    assert hooks.has_hook_finalizer(obj)

    other: dict[str, Any] = {"kind": "Job", "metadata": {"finalizers": ["example.com/keep"]}}
    hooks.add_hook_finalizer(other)
    assert other["metadata"]["finalizers"] == ["example.com/keep", hooks.HOOK_FINALIZER]
    assert hooks.without_hook_finalizer(other["metadata"]["finalizers"]) == ["example.com/keep"]
    assert hooks.without_hook_finalizer(None) == []

    bare: dict[str, Any] = {"kind": "Pod"}
    hooks.add_hook_finalizer(bare)
    assert bare["metadata"] == {"finalizers": [hooks.HOOK_FINALIZER]}


def helm_hooks_example() -> list[dict[str, Any]]:
    """The shape of argocd-example-apps' helm-hooks folder (written out here, abridged)."""
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "generateName": "upgrade-sql-schema",
                "annotations": {"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-2"},
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "maint-page-up",
                "annotations": {
                    "helm.sh/hook": "pre-install",
                    "helm.sh/hook-delete-policy": "before-hook-creation",
                    "helm.sh/hook-weight": "-1",
                },
            },
        },
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "frontend"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "frontend", "annotations": {"helm.sh/hook-weight": "2"}},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "maint-page-down",
                "annotations": {
                    "helm.sh/hook": "post-install",
                    "helm.sh/hook-delete-policy": "before-hook-creation",
                },
            },
        },
    ]


def summarize(objs: list[dict[str, Any]]) -> list[tuple[str, bool, list[str], int, list[str]]]:
    return [
        (
            obj["metadata"].get("name") or obj["metadata"]["generateName"],
            hooks.is_hook(obj),
            hooks.sync_phases(obj),
            hooks.wave(obj),
            hooks.delete_policies(obj) if hooks.is_hook(obj) else [],
        )
        for obj in objs
    ]


EXPECTED_HELM_HOOKS = [
    ("upgrade-sql-schema", True, ["PreSync"], -2, ["BeforeHookCreation"]),
    ("maint-page-up", True, ["PreSync"], -1, ["BeforeHookCreation"]),
    ("frontend", False, ["Sync"], 0, []),
    ("frontend", False, ["Sync"], 2, []),  # a hook weight on a non-hook still sets its wave
    ("maint-page-down", True, ["PostSync"], 0, ["BeforeHookCreation"]),
]


def test_helm_hooks_example_shape() -> None:
    assert summarize(helm_hooks_example()) == EXPECTED_HELM_HOOKS


def test_helm_hooks_upstream_example() -> None:
    base = examples_support.example_dir("argocd-example-apps")
    if base is None:
        pytest.skip("TUGBOAT_EXAMPLES is not set")
    text = (Path(base) / "helm-hooks" / "manifests.yaml").read_text()
    objs = [doc for doc in yaml.safe_load_all(text) if doc]
    assert summarize(objs) == EXPECTED_HELM_HOOKS
