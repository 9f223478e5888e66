"""JSON Patch (RFC 6902) over plain JSON values, plus the JSON equality and copying it rests on.

The local cluster's API server must accept ``application/json-patch+json`` PATCH bodies, and kubectl,
client libraries and our own controllers send them (``kubectl patch --type=json``, finalizer removal,
status fixes). Upstream applies them with evanphx/json-patch; we need the same semantics without a Go
dependency, working directly on the dicts and lists our storage holds.

Documents are never mutated: :func:`apply` works on a deep copy, and every value taken from an operation
is copied too, so the result shares no mutable structure with either input. A malformed operation, a path
that does not resolve or a failed ``test`` raises :class:`~tugboat.kube.errors.PatchError`; the server
turns that into a 422 ``Status``.

:func:`json_equal` and :func:`deep_copy` are shared with the merge-patch modules: RFC 6902 §4.6 defines the
JSON equality they all need (``1 == 1.0`` but ``1 != true``, unlike Python's ``==``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from tugboat.kube.errors import PatchError

_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")


def deep_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists are copied; scalars are immutable and shared)."""
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_copy(item) for item in value]
    return value


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality (RFC 6902 §4.6): numbers compare by value, booleans are not numbers, order of object
    members does not matter, order of array items does."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(json_equal(value, right[key]) for key, value in left.items())
        )
    if isinstance(left, list):
        return (
            isinstance(right, list)
            and len(left) == len(right)
            and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    return type(left) is type(right) and bool(left == right)


def escape(token: str) -> str:
    """Escape one reference token for a JSON pointer (``~`` → ``~0``, ``/`` → ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(tokens: Iterable[str | int]) -> str:
    """The JSON pointer addressing ``tokens`` (object member names or array indexes) from the root."""
    return "".join("/" + escape(str(token)) for token in tokens)


def parse_pointer(path: str) -> list[str]:
    """Split a JSON pointer (RFC 6901) into its unescaped reference tokens; ``""`` is the whole document."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}": it must be empty or start with "/"')
    tokens = path[1:].split("/")
    for token in tokens:
        if _BAD_ESCAPE.search(token):
            raise PatchError(f'invalid JSON pointer "{path}": "~" must be followed by "0" or "1"')
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def apply(doc: Any, ops: Any) -> Any:
    """Apply the RFC 6902 operations ``ops`` (a list of operation objects) to ``doc``; return the result.

    Operations apply in order and all-or-nothing: the first failing one raises :class:`PatchError` and no
    partial result escapes. ``doc`` and ``ops`` are left untouched.
    """
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be an array of operation objects")
    result = deep_copy(doc)
    for index, op in enumerate(ops):
        result = _apply_op(result, op, index)
    return result


# --- operations ------------------------------------------------------------------------------------------


def _apply_op(root: Any, op: Any, index: int) -> Any:
    if not isinstance(op, dict):
        raise PatchError(f"operation {index} is not an object")
    name = op.get("op")
    handler = _HANDLERS.get(name) if isinstance(name, str) else None
    if handler is None:
        raise PatchError(f'operation {index} has an unknown or missing "op": {name!r}')
    path = _string_member(op, "path", index)
    return handler(root, op, path, index)


def _string_member(op: dict[str, Any], member: str, index: int) -> str:
    value = op.get(member)
    if not isinstance(value, str):
        raise PatchError(f'operation {index} ("{op["op"]}") needs a string "{member}"')
    return value


def _value_member(op: dict[str, Any], index: int) -> Any:
    if "value" not in op:
        raise PatchError(f'operation {index} ("{op["op"]}") is missing "value"')
    return deep_copy(op["value"])


def _op_add(root: Any, op: dict[str, Any], path: str, index: int) -> Any:
    return _add(root, parse_pointer(path), _value_member(op, index), path)


def _op_remove(root: Any, op: dict[str, Any], path: str, index: int) -> Any:
    root, _ = _remove(root, parse_pointer(path), path)
    return root


def _op_replace(root: Any, op: dict[str, Any], path: str, index: int) -> Any:
    value = _value_member(op, index)
    tokens = parse_pointer(path)
    if not tokens:
        return value
    parent, key = _locate(root, tokens, path)
    parent[key] = value
    return root


def _op_move(root: Any, op: dict[str, Any], path: str, index: int) -> Any:
    source = _string_member(op, "from", index)
    from_tokens, to_tokens = parse_pointer(source), parse_pointer(path)
    if from_tokens == to_tokens:
        _get(root, from_tokens, source)
        return root
    if to_tokens[: len(from_tokens)] == from_tokens:
        raise PatchError(f"cannot move {source} into one of its own children ({path})")
    root, value = _remove(root, from_tokens, source)
    return _add(root, to_tokens, value, path)


def _op_copy(root: Any, op: dict[str, Any], path: str, index: int) -> Any:
    source = _string_member(op, "from", index)
    value = deep_copy(_get(root, parse_pointer(source), source))
    return _add(root, parse_pointer(path), value, path)


def _op_test(root: Any, op: dict[str, Any], path: str, index: int) -> Any:
    expected = _value_member(op, index)
    if not json_equal(_get(root, parse_pointer(path), path), expected):
        raise PatchError(f'the "test" operation failed at {path}')
    return root


_HANDLERS: dict[str, Callable[[Any, dict[str, Any], str, int], Any]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}


# --- path resolution -------------------------------------------------------------------------------------


def _missing(path: str) -> PatchError:
    return PatchError(f"path {path} does not exist")


def _array_index(token: str, path: str) -> int:
    if not _ARRAY_INDEX.fullmatch(token):
        raise PatchError(f'invalid array index "{token}" in path {path}')
    return int(token)


def _child(container: Any, token: str, path: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise _missing(path)
        return container[token]
    if isinstance(container, list):
        if token == "-":
            raise _missing(path)
        position = _array_index(token, path)
        if position >= len(container):
            raise _missing(path)
        return container[position]
    raise _missing(path)


def _get(root: Any, tokens: list[str], path: str) -> Any:
    current = root
    for token in tokens:
        current = _child(current, token, path)
    return current


def _locate(root: Any, tokens: list[str], path: str) -> tuple[Any, Any]:
    """The container holding the existing value at ``tokens`` and its key or index in it."""
    parent = _get(root, tokens[:-1], path)
    last = tokens[-1]
    _child(parent, last, path)
    return parent, (int(last) if isinstance(parent, list) else last)


def _add(root: Any, tokens: list[str], value: Any, path: str) -> Any:
    if not tokens:
        return value
    parent = _get(root, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
            return root
        position = _array_index(last, path)
        if position > len(parent):
            raise PatchError(
                f"index {position} is out of range in path {path} (the array has {len(parent)} items)"
            )
        parent.insert(position, value)
    else:
        raise PatchError(f"cannot add at {path}: its parent is not an object or an array")
    return root


def _remove(root: Any, tokens: list[str], path: str) -> tuple[Any, Any]:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, key = _locate(root, tokens, path)
    return root, parent.pop(key)
