"""``RespectIgnoreDifferences=true``: never apply what ``ignoreDifferences`` says to ignore.

Without this sync option, a sync applies the whole desired object, so fields that the app ignores in
its diff (a replica count an autoscaler owns, a field a webhook fills in) are reset on every sync. With
it, Argo CD first copies the live object's values at the ignored paths into the desired object - only
for objects that already exist - so the apply leaves them alone. The JSON pointers and jq path
expressions of the matching rules are honoured; fields the live object lacks at those paths are removed
from the desired one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from tugboat.gitops import diff, jqpath, resourcekey
from tugboat.kube import jsonpatch
from tugboat.util import jsondata

log = logging.getLogger(__name__)

Path = list[str | int]


def _has(obj: Any, token: str | int) -> bool:
    if isinstance(obj, dict):
        return isinstance(token, str) and token in obj
    return isinstance(obj, list) and isinstance(token, int) and 0 <= token < len(obj)


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    for token in path:
        if not _has(obj, token):
            return False, None
        obj = obj[token]
    return True, obj


def _set(obj: Any, path: Path, value: Any) -> None:
    for index, token in enumerate(path[:-1]):
        nxt = path[index + 1]
        if isinstance(obj, dict) and isinstance(token, str):
            if not isinstance(obj.get(token), dict | list):
                obj[token] = [] if isinstance(nxt, int) else {}
            obj = obj[token]
        elif isinstance(obj, list) and isinstance(token, int) and 0 <= token < len(obj):
            obj = obj[token]
        else:
            return
    last = path[-1]
    if (isinstance(obj, dict) and isinstance(last, str)) or _has(obj, last):
        obj[last] = jsondata.clone(value)


def _remove(obj: Any, path: Path) -> None:
    present, parent = _get(obj, path[:-1])
    if not present:
        return
    last = path[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]


def _pointer_path(pointer: str) -> Path:
    return [int(t) if t.isdigit() else t for t in jsonpatch.parse_pointer(pointer)]


def respect(
    target: Mapping[str, Any], live: Mapping[str, Any], rules: Iterable[diff.IgnoreRule]
) -> dict[str, Any]:
    """``target`` with the live values at every path the matching ``rules`` ignore."""
    out = jsondata.clone(dict(target))
    key = resourcekey.ResourceKey.of(live)
    for rule in rules:
        if not rule.matches(key):
            continue
        found: list[Path] = [_pointer_path(p) for p in rule.json_pointers]
        for expression in rule.jq_path_expressions:
            for source in (live, out):
                try:
                    found.extend(jqpath.paths(source, expression))
                except jqpath.JqEvaluationError as exc:
                    log.warning("RespectIgnoreDifferences: %s on %s: %s", expression, key, exc)
        for path in found:
            if not path:
                continue
            present, value = _get(live, path)
            if present:
                _set(out, path, value)
            else:
                _remove(out, path)
    return out
