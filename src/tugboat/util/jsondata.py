"""Fast copies of JSON-shaped data (dicts, lists, strings, numbers, booleans, None).

Objects flow through the API server and the controllers as plain dicts that are shared, so writers copy
before they change anything. ``copy.deepcopy`` is general and slow; a round trip through orjson copies
JSON data several times faster, and anything orjson cannot encode falls back to ``deepcopy``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

T = TypeVar("T")


def clone(value: T) -> T:
    """A deep copy of ``value``."""
    try:
        result: T = orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)
    return result


def dig(value: Any, *path: str) -> Any:
    """The value at ``path`` inside nested mappings, or ``None`` when a step is missing or not a mapping
    (objects from the API are read this way: any field may be absent or of the wrong type)."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
