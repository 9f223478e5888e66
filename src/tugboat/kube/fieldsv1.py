"""Reading ``metadata.managedFields``: which fields of an object each field manager owns.

Clients that compare or prune objects need to know who set a field: Argo CD's ``managedFieldsManagers``
ignores the fields other controllers own (an HPA's ``spec.replicas``), and a server-side applier knows
that a field it owned and no longer sends will be removed. Kubernetes records ownership as FieldsV1
trees; this module decodes them into paths and resolves those paths inside plain JSON objects. It only
reads; computing ownership on writes is the API server's job.

A path is a tuple of FieldsV1 elements from the object root: ``f:<name>`` (a field of a struct or a map
key), ``k:<json>`` (the list item whose key fields have these values), ``v:<json>`` (the set item equal to
this value) and ``i:<n>`` (the list item at this index). An owned path is a leaf of the tree, or a node
carrying ``"."`` (a list item owned as a whole).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tugboat.kube import jsonpatch

Path = tuple[str, ...]

KEY_DEFAULTS: Mapping[str, Any] = {"protocol": "TCP"}
"""Schema defaults of list-map key fields: an item that omits such a key is keyed with its default (a
container port written without ``protocol`` is the ``TCP`` port)."""


class FieldsV1Error(ValueError):
    """A FieldsV1 tree or a path element is malformed."""


def decode(fields_v1: Any) -> frozenset[Path]:
    """The owned paths of a FieldsV1 JSON tree."""
    if not isinstance(fields_v1, Mapping):
        raise FieldsV1Error("fieldsV1 must be a JSON object")
    out: set[Path] = set()
    _walk(fields_v1, (), out)
    return frozenset(out)


def _walk(node: Mapping[str, Any], prefix: Path, out: set[Path]) -> None:
    for element, child in node.items():
        if not isinstance(child, Mapping):
            raise FieldsV1Error(f"fieldsV1: the value of {element!r} must be a JSON object")
        if element == ".":
            if prefix:
                out.add(prefix)
        elif not child:
            out.add((*prefix, element))
        else:
            _walk(child, (*prefix, element), out)


def entries(obj: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The well-formed ``metadata.managedFields`` entries of an object."""
    metadata = obj.get("metadata")
    managed = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    if isinstance(managed, list):
        for entry in managed:
            if isinstance(entry, Mapping) and isinstance(entry.get("fieldsV1"), Mapping):
                yield entry


def owned_by(
    obj: Mapping[str, Any], managers: Iterable[str], *, operation: str | None = None
) -> frozenset[Path]:
    """Every path owned by any of ``managers`` (optionally only through ``operation``: Apply or Update).

    Malformed entries are skipped: ownership is advisory, and a foreign tree we cannot read must not
    make the object unusable.
    """
    wanted = set(managers)
    out: set[Path] = set()
    for entry in entries(obj):
        if entry.get("manager") not in wanted:
            continue
        if operation is not None and entry.get("operation") != operation:
            continue
        try:
            out |= decode(entry["fieldsV1"])
        except FieldsV1Error:
            continue
    return frozenset(out)


def owned_by_others(obj: Mapping[str, Any], manager: str, operation: str | None = None) -> frozenset[Path]:
    """Every path owned by some entry other than ``manager``'s (``operation``-specific if given)."""
    out: set[Path] = set()
    for entry in entries(obj):
        if entry.get("manager") == manager and (operation is None or entry.get("operation") == operation):
            continue
        try:
            out |= decode(entry["fieldsV1"])
        except FieldsV1Error:
            continue
    return frozenset(out)


def _element_value(element: str) -> Any:
    try:
        return json.loads(element[2:])
    except ValueError as exc:
        raise FieldsV1Error(f"fieldsV1: malformed path element {element!r}") from exc


def _matches_key(item: Any, keys: Mapping[str, Any]) -> bool:
    if not isinstance(item, Mapping):
        return False
    for name, value in keys.items():
        if name in item:
            if not jsonpatch.json_equal(item[name], value):
                return False
        elif name not in KEY_DEFAULTS or not jsonpatch.json_equal(KEY_DEFAULTS[name], value):
            return False
    return True


def step(container: Any, element: str) -> tuple[bool, Any]:
    """Follow one path element: ``(True, key or index)`` into ``container``, or ``(False, None)``."""
    kind = element[:2]
    if kind == "f:":
        name = element[2:]
        return (True, name) if isinstance(container, Mapping) and name in container else (False, None)
    if not isinstance(container, list):
        return False, None
    if kind == "k:":
        keys = _element_value(element)
        if not isinstance(keys, Mapping):
            raise FieldsV1Error(f"fieldsV1: a key element must hold a JSON object: {element!r}")
        for index, item in enumerate(container):
            if _matches_key(item, keys):
                return True, index
        return False, None
    if kind == "v:":
        value = _element_value(element)
        for index, item in enumerate(container):
            if jsonpatch.json_equal(item, value):
                return True, index
        return False, None
    if kind == "i:" and element[2:].isdigit():
        index = int(element[2:])
        return (True, index) if index < len(container) else (False, None)
    raise FieldsV1Error(f"fieldsV1: unknown path element {element!r}")


def locate(obj: Any, path: Path) -> tuple[Any, Any] | None:
    """``(parent, key-or-index)`` of the node at ``path`` inside ``obj``, or ``None`` when it is absent."""
    if not path:
        return None
    current = obj
    for element in path[:-1]:
        found, where = step(current, element)
        if not found:
            return None
        current = current[where]
    found, where = step(current, path[-1])
    return (current, where) if found else None


def get(obj: Any, path: Path) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` inside ``obj``, or ``(False, None)``."""
    place = locate(obj, path)
    if place is None:
        return False, None
    parent, where = place
    return True, parent[where]


def remove(obj: Any, path: Path) -> bool:
    """Delete the node at ``path`` from ``obj`` in place; whether it was there."""
    place = locate(obj, path)
    if place is None:
        return False
    parent, where = place
    del parent[where]
    return True


def to_string(path: Path) -> str:
    """A path the way Kubernetes prints it: ``.spec.containers[name="nginx"].image``."""
    parts: list[str] = []
    for element in path:
        kind, rest = element[:2], element[2:]
        if kind == "f:":
            parts.append("." + rest)
        elif kind == "k:":
            try:
                keys = json.loads(rest)
                parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(keys.items())) + "]")
            except (ValueError, AttributeError):
                parts.append(f"[{rest}]")
        elif kind == "v:":
            parts.append(f"[={rest}]")
        elif kind == "i:":
            parts.append(f"[{rest}]")
        else:
            parts.append(element)
    return "".join(parts)
