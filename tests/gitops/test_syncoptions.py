"""Sync options: app-level list, per-resource annotation override, compare options."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tugboat.gitops import errors, syncoptions


def with_annotations(**annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "annotations": annotations}}


def sync_options(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "annotations": {syncoptions.SYNC_OPTIONS_ANNOTATION: value}},
    }


def test_option_names() -> None:
    assert syncoptions.SYNC_OPTIONS_ANNOTATION == "argocd.argoproj.io/sync-options"
    assert syncoptions.COMPARE_OPTIONS_ANNOTATION == "argocd.argoproj.io/compare-options"
    assert [
        syncoptions.CREATE_NAMESPACE,
        syncoptions.PRUNE,
        syncoptions.DELETE,
        syncoptions.PRUNE_LAST,
        syncoptions.PRUNE_PROPAGATION_POLICY,
        syncoptions.APPLY_OUT_OF_SYNC_ONLY,
        syncoptions.VALIDATE,
        syncoptions.REPLACE,
        syncoptions.FORCE,
        syncoptions.SERVER_SIDE_APPLY,
        syncoptions.RESPECT_IGNORE_DIFFERENCES,
        syncoptions.SKIP_DRY_RUN_ON_MISSING_RESOURCE,
        syncoptions.FAIL_ON_SHARED_RESOURCE,
    ] == [
        "CreateNamespace",
        "Prune",
        "Delete",
        "PruneLast",
        "PrunePropagationPolicy",
        "ApplyOutOfSyncOnly",
        "Validate",
        "Replace",
        "Force",
        "ServerSideApply",
        "RespectIgnoreDifferences",
        "SkipDryRunOnMissingResource",
        "FailOnSharedResource",
    ]


def test_parse_and_get() -> None:
    options = syncoptions.SyncOptions.parse(
        ["CreateNamespace=true", "PrunePropagationPolicy=background", " Validate = false ", ""]
    )
    assert options.items == ("CreateNamespace=true", "PrunePropagationPolicy=background", "Validate = false")
    assert options.get("CreateNamespace") == "true"
    assert options.get("PrunePropagationPolicy") == "background"
    assert options.get("Validate") == "false"
    assert options.get("Replace") is None
    assert options.enabled("CreateNamespace")
    assert not options.enabled("Validate")
    assert not options.enabled("Replace")


def test_last_entry_wins_and_enabled_is_case_insensitive() -> None:
    options = syncoptions.SyncOptions.parse(["Prune=false", "Prune=TRUE"])
    assert options.get("Prune") == "TRUE"
    assert options.enabled("Prune")


def test_keys_are_case_sensitive() -> None:
    assert syncoptions.SyncOptions.parse(["createnamespace=true"]).get("CreateNamespace") is None


def test_value_may_contain_equals_sign() -> None:
    assert syncoptions.SyncOptions.parse(["A=b=c"]).get("A") == "b=c"


def test_parse_none_and_empty() -> None:
    assert syncoptions.SyncOptions.parse(None) == syncoptions.SyncOptions()
    assert syncoptions.SyncOptions.parse([]).items == ()
    assert syncoptions.SyncOptions().get("Prune") is None


@pytest.mark.parametrize("bad", ["CreateNamespace", "=true", "  Prune  "])
def test_parse_rejects_entries_without_key_and_value(bad: str) -> None:
    with pytest.raises(syncoptions.InvalidSyncOption, match=bad.strip() or "="):
        syncoptions.SyncOptions.parse(["Validate=false", bad])


def test_invalid_sync_option_is_a_gitops_error() -> None:
    assert issubclass(syncoptions.InvalidSyncOption, errors.GitOpsError)
    with pytest.raises(syncoptions.InvalidSyncOption):
        syncoptions.SyncOptions.parse([3])  # type: ignore[list-item]


def test_sync_options_are_frozen_and_hashable() -> None:
    options = syncoptions.SyncOptions.parse(["Prune=false"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.items = ()  # type: ignore[misc]
    assert hash(options) == hash(syncoptions.SyncOptions.parse(["Prune=false"]))


def test_annotation_csv() -> None:
    obj = with_annotations(a=" X=1 ,, Y=2,  ")
    assert syncoptions.annotation_csv(obj, "a") == ["X=1", "Y=2"]
    assert syncoptions.annotation_csv(obj, "missing") == []
    assert syncoptions.annotation_csv(None, "a") == []
    assert syncoptions.annotation_csv({"metadata": {"annotations": None}}, "a") == []
    assert syncoptions.annotation_csv({}, "a") == []


def test_resource_annotation_overrides_app_value() -> None:
    app = syncoptions.SyncOptions.parse(["Prune=true", "ServerSideApply=true", "Validate=false"])
    obj = sync_options("Prune=false, ServerSideApply=false")
    assert syncoptions.resource_option(obj, syncoptions.PRUNE, app) == "false"
    assert not syncoptions.resource_enabled(obj, syncoptions.SERVER_SIDE_APPLY, app)
    # Not in the annotation: the app value applies.
    assert syncoptions.resource_option(obj, syncoptions.VALIDATE, app) == "false"
    assert syncoptions.resource_option(obj, syncoptions.REPLACE, app) is None


def test_resource_annotation_alone_enables_an_option() -> None:
    app = syncoptions.SyncOptions()
    obj = sync_options("Replace=true,PruneLast=True")
    assert syncoptions.resource_enabled(obj, syncoptions.REPLACE, app)
    assert syncoptions.resource_enabled(obj, syncoptions.PRUNE_LAST, app)
    assert not syncoptions.resource_enabled(obj, syncoptions.FORCE, app)


def test_resource_option_without_annotations_or_object() -> None:
    app = syncoptions.SyncOptions.parse(["ApplyOutOfSyncOnly=true"])
    bare = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    assert syncoptions.resource_enabled(bare, syncoptions.APPLY_OUT_OF_SYNC_ONLY, app)
    assert syncoptions.resource_enabled(None, syncoptions.APPLY_OUT_OF_SYNC_ONLY, app)


def test_resource_annotation_ignores_bare_words_and_last_wins() -> None:
    obj = sync_options("Prune, Prune=false, Prune=confirm")
    assert syncoptions.annotation_option(obj, syncoptions.PRUNE) == "confirm"


def test_compare_options() -> None:
    obj = with_annotations(
        **{
            syncoptions.COMPARE_OPTIONS_ANNOTATION: (
                "IgnoreExtraneous, ServerSideDiff=false,IncludeMutationWebhook=true"
            )
        }
    )
    assert syncoptions.has_compare_option(obj, syncoptions.IGNORE_EXTRANEOUS)
    assert syncoptions.has_compare_option(obj, "IncludeMutationWebhook")
    assert not syncoptions.has_compare_option(obj, "ServerSideDiff")
    assert syncoptions.compare_option(obj, "ServerSideDiff") == "false"
    assert syncoptions.compare_option(obj, "IgnoreExtraneous") == "true"
    assert not syncoptions.has_compare_option(with_annotations(), "IgnoreExtraneous")
    # The sync-options annotation is a different annotation.
    assert not syncoptions.has_compare_option(sync_options("IgnoreExtraneous"), "IgnoreExtraneous")
