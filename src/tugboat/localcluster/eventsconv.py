"""``events.k8s.io/v1`` Events as a view of core ``v1`` Events: one storage, two representations.

kube-apiserver stores both versions of Event together, so an event a kubelet writes through ``v1`` is
listed by ``kubectl get events.events.k8s.io`` and vice versa. We do the same: objects are stored in the
core form and converted field by field at the API boundary (research/kubeapi.md §2.8).
"""

from __future__ import annotations

from typing import Any

# (core v1 field, events.k8s.io/v1 field)
_TOP_LEVEL = (
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("action", "action"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
)

_FIELD_SELECTORS = {
    "regarding.kind": "involvedObject.kind",
    "regarding.namespace": "involvedObject.namespace",
    "regarding.name": "involvedObject.name",
    "regarding.uid": "involvedObject.uid",
    "regarding.apiVersion": "involvedObject.apiVersion",
    "regarding.resourceVersion": "involvedObject.resourceVersion",
    "regarding.fieldPath": "involvedObject.fieldPath",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
}


def to_events_v1(core: dict[str, Any]) -> dict[str, Any]:
    """The ``events.k8s.io/v1`` form of a stored core Event."""
    result: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": core.get("metadata", {}),
    }
    for old, new in _TOP_LEVEL:
        if core.get(old) not in (None, "", {}):
            result[new] = core[old]
    source = core.get("source") or {}
    if source:
        result["deprecatedSource"] = source
    if "eventTime" not in result:
        result["eventTime"] = None
    return result


def to_core(event: dict[str, Any]) -> dict[str, Any]:
    """The stored (core ``v1``) form of an ``events.k8s.io/v1`` Event."""
    result: dict[str, Any] = {"kind": "Event", "apiVersion": "v1", "metadata": event.get("metadata", {})}
    for old, new in _TOP_LEVEL:
        if event.get(new) not in (None, "", {}):
            result[old] = event[new]
    if event.get("deprecatedSource"):
        result["source"] = event["deprecatedSource"]
    result.setdefault("involvedObject", {})
    return result


def field_selector_to_core(selector: str) -> str:
    """Rewrite an ``events.k8s.io`` field selector into the stored form's field names."""
    parts = []
    for requirement in selector.split(","):
        for op in ("!=", "==", "="):
            if op in requirement:
                key, value = requirement.split(op, 1)
                parts.append(f"{_FIELD_SELECTORS.get(key.strip(), key.strip())}{op}{value}")
                break
        else:
            parts.append(requirement)
    return ",".join(parts)
