"""JSON Merge Patch (RFC 7386): applying one, and computing the minimal one between two documents.

It is the PATCH type every resource accepts (``application/merge-patch+json``) and the only non-JSON-patch
form custom resources accept, so the local cluster's API server applies it. The GitOps side computes
merge patches too: to show and to apply the difference between a live object and its desired state when
no strategic-merge metadata exists for its kind.

Semantics, in short: an object in the patch merges into the target recursively, ``null`` deletes a
member, and anything else (arrays included) replaces the target value. Inputs are never mutated.
"""

from __future__ import annotations

from typing import Any

from tugboat.kube.errors import PatchError
from tugboat.kube.jsonpatch import deep_copy, json_equal


def apply(doc: Any, patch: Any) -> Any:
    """Apply merge patch ``patch`` to ``doc`` and return the result (RFC 7386 ``MergePatch``).

    A non-object patch replaces the document; an object patch applied to a non-object document is applied
    to ``{}``.
    """
    return _merge(deep_copy(doc), patch)


def create(original: Any, modified: Any) -> dict[str, Any]:
    """The smallest merge patch turning ``original`` into ``modified`` (both JSON objects).

    Members of ``original`` missing from ``modified`` become ``null``; nested objects are diffed
    recursively; other changed values (arrays included) are carried whole. A ``null`` *value* inside
    ``modified`` cannot be expressed by a merge patch (``null`` means delete) and is dropped on apply.
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        raise PatchError("a merge patch can only be computed between two JSON objects")
    return _diff(original, modified)


def _merge(target: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``target``, which the caller owns (it may be modified and returned)."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result: dict[str, Any] = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _diff(original: dict[str, Any], modified: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, new in modified.items():
        if key not in original:
            patch[key] = deep_copy(new)
            continue
        old = original[key]
        if isinstance(old, dict) and isinstance(new, dict):
            nested = _diff(old, new)
            if nested:
                patch[key] = nested
        elif not json_equal(old, new):
            patch[key] = deep_copy(new)
    for key in original:
        if key not in modified:
            patch[key] = None
    return patch
