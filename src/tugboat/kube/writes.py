"""Which resourceVersion each object had after our own last write, so a controller never acts on an older
copy from its informer cache.

A controller reconciles from its cache, and its own writes reach the cache a moment later through the
watch. Reconciling in between would act on a status the controller has already replaced (start an
AnalysisRun twice, repeat a measurement). client-go controllers are kept from this by update conflicts;
ours write with merge patches, so they remember the resourceVersion each write returned and wait for the
cache to catch up. resourceVersions are opaque strings in Kubernetes; where they are integers (etcd, the
local cluster) they are compared, otherwise nothing is held back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid"))


class WriteTracker:
    """The resourceVersion of our last write, by object uid."""

    def __init__(self) -> None:
        self._written: dict[str, str] = {}

    def wrote(self, obj: Mapping[str, Any]) -> None:
        """Remember ``obj`` as the API server returned it from our write."""
        self._written[_uid(obj)] = str((obj.get("metadata") or {}).get("resourceVersion") or "")

    def stale(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` (from a cache) is older than our last write to it."""
        written = self._written.get(_uid(obj))
        seen = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if written is None or not written.isdigit() or not seen.isdigit():
            return False
        return int(seen) < int(written)

    def forget(self, obj: Mapping[str, Any]) -> None:
        """The object is gone: nothing to remember."""
        self._written.pop(_uid(obj), None)
