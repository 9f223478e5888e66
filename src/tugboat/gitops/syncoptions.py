"""Argo CD sync options: app-wide ``Key=Value`` switches, overridable per resource by annotation.

An Application lists options in ``spec.syncPolicy.syncOptions`` (or a sync operation in
``operation.sync.syncOptions``), e.g. ``CreateNamespace=true``; a resource may carry
``argocd.argoproj.io/sync-options: Prune=false,Replace=true`` and that value wins for that resource
(``docs/user-guide/sync-options.md``). Comparison switches such as ``IgnoreExtraneous`` live in
``argocd.argoproj.io/compare-options``. This module parses both, so the sync state machine only asks
"is option X on for this resource?".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tugboat.gitops import errors

SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"
COMPARE_OPTIONS_ANNOTATION = "argocd.argoproj.io/compare-options"

CREATE_NAMESPACE = "CreateNamespace"
PRUNE = "Prune"
DELETE = "Delete"
PRUNE_LAST = "PruneLast"
PRUNE_PROPAGATION_POLICY = "PrunePropagationPolicy"
APPLY_OUT_OF_SYNC_ONLY = "ApplyOutOfSyncOnly"
VALIDATE = "Validate"
REPLACE = "Replace"
FORCE = "Force"
SERVER_SIDE_APPLY = "ServerSideApply"
RESPECT_IGNORE_DIFFERENCES = "RespectIgnoreDifferences"
SKIP_DRY_RUN_ON_MISSING_RESOURCE = "SkipDryRunOnMissingResource"
FAIL_ON_SHARED_RESOURCE = "FailOnSharedResource"

IGNORE_EXTRANEOUS = "IgnoreExtraneous"


class InvalidSyncOption(errors.GitOpsError):
    """A sync option is not of the form ``Key=Value``."""


def annotation_csv(obj: Mapping[str, Any] | None, key: str) -> list[str]:
    """The comma-separated items of an annotation, trimmed, empty items dropped (order kept)."""
    if obj is None:
        return []
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(key) if isinstance(annotations, Mapping) else None
    if not isinstance(value, str):
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def _split(item: str) -> tuple[str, str] | None:
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep or not name:
        return None
    return name, value.strip()


@dataclass(frozen=True)
class SyncOptions:
    """App-level sync options; the last entry for a key wins."""

    items: tuple[str, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str] | None) -> SyncOptions:
        """Check and keep a ``syncOptions`` list; blank entries are dropped.

        Raises :class:`InvalidSyncOption` naming the first entry that has no ``=`` or no key.
        """
        kept: list[str] = []
        for raw in items or ():
            if not isinstance(raw, str):
                raise InvalidSyncOption(f"sync option {raw!r} is not a string of the form Key=Value")
            item = raw.strip()
            if not item:
                continue
            if _split(item) is None:
                raise InvalidSyncOption(f"sync option {raw!r} is not of the form Key=Value")
            kept.append(item)
        return cls(tuple(kept))

    def get(self, name: str) -> str | None:
        """The value of option ``name`` (``"true"`` for ``CreateNamespace=true``), or None if unset."""
        for item in reversed(self.items):
            parsed = _split(item)
            if parsed is not None and parsed[0] == name:
                return parsed[1]
        return None

    def enabled(self, name: str) -> bool:
        """Whether option ``name`` is set to ``true`` (any case)."""
        value = self.get(name)
        return value is not None and value.lower() == "true"


def annotation_option(obj: Mapping[str, Any] | None, name: str) -> str | None:
    """The value the resource's own sync-options annotation gives ``name`` (last entry wins), or None."""
    found: str | None = None
    for item in annotation_csv(obj, SYNC_OPTIONS_ANNOTATION):
        parsed = _split(item)
        if parsed is not None and parsed[0] == name:
            found = parsed[1]
    return found


def resource_option(obj: Mapping[str, Any] | None, name: str, app: SyncOptions) -> str | None:
    """The effective value of option ``name`` for one resource: its annotation, else the app's."""
    value = annotation_option(obj, name)
    return value if value is not None else app.get(name)


def resource_enabled(obj: Mapping[str, Any] | None, name: str, app: SyncOptions) -> bool:
    """Whether option ``name`` is ``true`` (any case) for this resource."""
    value = resource_option(obj, name, app)
    return value is not None and value.lower() == "true"


def compare_option(obj: Mapping[str, Any] | None, name: str) -> str | None:
    """The value of a compare option: ``"true"`` for a bare word (``IgnoreExtraneous``), the value of
    ``Name=value`` (``ServerSideDiff=false``), None when absent. The last entry wins."""
    found: str | None = None
    for item in annotation_csv(obj, COMPARE_OPTIONS_ANNOTATION):
        parsed = _split(item)
        if parsed is None:
            if item == name:
                found = "true"
        elif parsed[0] == name:
            found = parsed[1]
    return found


def has_compare_option(obj: Mapping[str, Any] | None, name: str) -> bool:
    """Whether a compare option is on for the resource (bare word, or ``Name=true`` in any case)."""
    value = compare_option(obj, name)
    return value is not None and value.lower() == "true"
