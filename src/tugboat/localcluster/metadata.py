"""Small, shared helpers for object metadata: timestamps, names, owner references, finalizers.

Kept apart from the write pipeline so that the garbage collector, the namespace controller and the
HTTP layer speak about metadata in exactly the same way.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

# kube's rand.String alphabet: no vowels (no words), no look-alike characters.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def now() -> datetime:
    return datetime.now(UTC)


_last_second: list[Any] = [-1, ""]


def rfc3339(moment: datetime | None = None) -> str:
    """A Kubernetes ``Time``: RFC 3339 in UTC with whole seconds."""
    if moment is not None:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Every write stamps the current time, often several times: format each second once.
    second = int(time.time())
    if _last_second[0] != second:
        _last_second[0] = second
        _last_second[1] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(_last_second[1])


def micro_time(moment: datetime | None = None) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 in UTC with microseconds."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def epoch_seconds(text: Any) -> float | None:
    """The POSIX time of a Kubernetes time string (None when it is empty or not a time)."""
    if not text:
        return None
    try:
        return parse_time(str(text)).timestamp()
    except ValueError:
        return None


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(length))


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata dict, created when missing."""
    value = obj.get("metadata")
    if not isinstance(value, dict):
        value = {}
        obj["metadata"] = value
    return value


def name_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def uid_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def revision_of(obj: dict[str, Any]) -> int:
    """The object's ``resourceVersion`` as a number (0 when it has none, or not a number)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def finalizers(obj: dict[str, Any]) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def deleting(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def owner_refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])
