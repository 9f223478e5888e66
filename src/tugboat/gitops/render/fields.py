"""Typed reads of an Application source's fields.

``spec.source`` arrives as plain JSON from the cluster, and our CRD schema does not guarantee every type,
so each tool module reads its options through these helpers: a wrong type becomes a ``RenderError`` that
names the field (``spec.source.helm.parameters[2].name must be a string``) instead of a crash deep inside
a tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tugboat.gitops.errors import RenderError


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` as an object; ``None`` counts as an empty one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RenderError(f"{where} must be an object")
    return value


def string(obj: Mapping[str, Any], key: str, where: str, *, default: str = "") -> str:
    """The string at ``obj[key]``; absent or ``null`` gives ``default``."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RenderError(f"{where}.{key} must be a string")
    return value


def boolean(obj: Mapping[str, Any], key: str, where: str) -> bool:
    """The boolean at ``obj[key]``; absent or ``null`` is false."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RenderError(f"{where}.{key} must be true or false")
    return value


def string_list(obj: Mapping[str, Any], key: str, where: str) -> list[str]:
    """The list of strings at ``obj[key]``; absent or ``null`` gives an empty list."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RenderError(f"{where}.{key} must be a list of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise RenderError(f"{where}.{key}[{index}] must be a string")
    return list(value)


def object_list(obj: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    """The list of objects at ``obj[key]``; absent or ``null`` gives an empty list."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RenderError(f"{where}.{key} must be a list of objects")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise RenderError(f"{where}.{key}[{index}] must be an object")
    return list(value)


def string_map(obj: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    """The string-to-string map at ``obj[key]``; absent or ``null`` gives an empty map."""
    value = mapping(obj.get(key), f"{where}.{key}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise RenderError(f"{where}.{key}[{name!r}] must be a string")
    return dict(value)


def is_set(value: Any) -> bool:
    """Whether an option value counts as given: not absent, ``null``, false, or empty."""
    if isinstance(value, Mapping):
        return any(is_set(item) for item in value.values())
    if isinstance(value, (list, str)):
        return len(value) > 0
    return value is not None and value is not False
