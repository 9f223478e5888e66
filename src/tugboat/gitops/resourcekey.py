"""Resource identity as gitops-engine sees it: ``(group, kind, namespace, name)``, no version.

Desired and live objects are paired, health checks and diff customizations are looked up, and results
are reported by this key (``ge:pkg/utils/kube.ResourceKey``). The API version is deliberately not part of
it: a Deployment rendered as ``apps/v1`` is the same resource as the live one, whatever version it was
read at.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def group_of(api_version: str) -> str:
    """The API group of an ``apiVersion`` (``"apps/v1"`` → ``"apps"``, ``"v1"`` → ``""``)."""
    group, slash, _ = api_version.rpartition("/")
    return group if slash else ""


def group_kind_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(group, kind)`` of an object (empty strings when the fields are missing or not strings)."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    return (
        group_of(api_version) if isinstance(api_version, str) else "",
        kind if isinstance(kind, str) else "",
    )


def glob_match(pattern: str, value: str) -> bool:
    """Argo CD's ``glob.Match`` for group and kind patterns: ``*`` and ``?`` wildcards, case-sensitive."""
    if pattern == value:
        return True
    if not any(ch in pattern for ch in "*?["):
        return False
    return fnmatch.fnmatchcase(value, pattern)


@dataclass(frozen=True, order=True)
class ResourceKey:
    """One resource: API group (``""`` for the core group), kind, namespace (``""`` when cluster-scoped)
    and name."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ResourceKey:
        """The key of an object (missing fields become empty strings)."""
        group, kind = group_kind_of(obj)
        metadata = obj.get("metadata")
        if not isinstance(metadata, Mapping):
            metadata = {}
        namespace = metadata.get("namespace")
        name = metadata.get("name")
        return cls(
            group,
            kind,
            namespace if isinstance(namespace, str) else "",
            name if isinstance(name, str) else "",
        )

    @property
    def group_kind(self) -> str:
        """``"apps/Deployment"``, or just ``"Service"`` for the core group (Argo CD's override-key form)."""
        return f"{self.group}/{self.kind}" if self.group else self.kind

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.group_kind} {where}"

    def diff_header(self) -> str:
        """The banner ``argocd app diff`` prints above each resource's diff."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"===== {self.group}/{self.kind} {where} ======"
