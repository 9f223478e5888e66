"""Kubernetes strategic merge patch for built-in kinds: applying one, and computing one between two objects.

kubectl's client-side ``apply``, ``kubectl patch`` (its default type), ``kubectl set image`` and many
controllers send ``application/strategic-merge-patch+json`` bodies, so the local cluster's API server must
apply them the way kube-apiserver does. The GitOps diff engine needs the reverse: the patch that turns a
live object into its desired state. Upstream drives both from Go struct tags; we drive them from the list
metadata in :mod:`tugboat.kube.patchmeta`, walking its struct types as we descend into the object.

Merge rules (upstream's):

* maps and structs merge recursively; a ``null`` value deletes the key;
* lists whose field has ``list_type == "map"`` merge item by item on ``Field.merge_key``; lists with
  ``list_type == "set"`` merge as sets of scalars (union, duplicates dropped); every other list is atomic
  and replaced by the patch's list;
* merging into a missing (or differently typed) map or list starts from an empty one, so the result never
  carries patch directives or nulls from the patch.

Directives:

* ``$patch`` in a map: ``replace`` (the map becomes the rest of the patch), ``merge`` (the default) or
  ``delete`` (the key is removed; at the root the result is ``{}``);
* ``$patch`` in a list item of a merge list: ``{"$patch": "delete", <key>: v}`` removes every item with that
  key; an item ``{"$patch": "replace"}`` makes the list the patch's other items (an item that carries more
  than the directive is kept as one of them); ``{"$patch": "merge"}`` alone is a no-op marker;
* ``$retainKeys: [...]`` clears the keys of the map not listed, then merges (every non-null key the patch
  sets must be listed, as upstream requires);
* ``$deleteFromPrimitiveList/<field>: [...]`` removes those values from the list ``<field>`` first;
* ``$setElementOrder/<field>: [...]`` orders the merged list ``<field>``. Items named in the order list come
  in that order; the other ("server-only") items keep their relative order and are interleaved by their
  position in the original list: a server-only item goes before an ordered item only when both were in the
  original list and it came first there. Without a ``$setElementOrder`` the patch list's own order plays the
  same role, which is why upstream (and we) place a newly added item before server-only items. Upstream's
  consistency check between the order list and the patch list is not performed. The directive is ignored
  for atomic lists, whose order is the patch's.

Any other key starting with ``$`` is rejected with :class:`~tugboat.kube.errors.PatchError`, as are
``$patch`` items in atomic lists (they mean the list's merge metadata is missing from ``patchmeta``, and
storing them would corrupt the object). Inputs are never mutated and the result shares no structure with
them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tugboat.kube import patchmeta
from tugboat.kube.errors import PatchError
from tugboat.kube.jsonpatch import deep_copy, json_equal
from tugboat.kube.patchmeta import Field

PATCH = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

JSONMap = dict[str, Any]
_KeyFn = Callable[[Any], Hashable]


def apply(original: JSONMap, patch: JSONMap, *, group: str, kind: str) -> JSONMap:
    """Apply strategic merge patch ``patch`` to ``original``, an object of API ``group`` and ``kind``."""
    if not isinstance(original, dict) or not isinstance(patch, dict):
        raise PatchError("a strategic merge patch and the object it patches must both be JSON objects")
    return _merge_map(deep_copy(original), patch, _root(group, kind))


def create_two_way(original: JSONMap, modified: JSONMap, *, group: str, kind: str) -> JSONMap:
    """A strategic merge patch that turns ``original`` into ``modified`` (like upstream's two-way patch).

    Changed and added keys are carried, removed keys become ``null``; merge lists carry only changed or
    added items (with their merge key), ``{"$patch": "delete", <key>: v}`` for removed items and a
    ``$setElementOrder/<field>``; sets carry added values, a ``$deleteFromPrimitiveList/<field>`` and a
    ``$setElementOrder/<field>``; fields with the retainKeys strategy get ``$retainKeys``. Merge lists whose
    items lack the merge key or repeat it are sent whole with a ``{"$patch": "replace"}`` item. What a
    strategic merge patch cannot express is not reproduced: ``null`` values in ``modified`` and duplicate
    values in sets.
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        raise PatchError("a strategic merge patch can only be computed between two JSON objects")
    return _diff_maps(original, modified, _root(group, kind), retain=False)


# --- type walking ----------------------------------------------------------------------------------------


def _root(group: str, kind: str) -> Field:
    return Field(elem=patchmeta.root_type(group, kind))


def _child(context: Field | None, key: str) -> Field | None:
    """What is known of member ``key`` of a map described by ``context`` (a struct, or a map of structs)."""
    if context is None:
        return None
    if context.is_map:
        return Field(elem=context.elem)
    return patchmeta.field(context.elem, key)


def _merge_key(fld: Field | None) -> str | None:
    return fld.merge_key if fld is not None and fld.list_type == "map" else None


def _is_set(fld: Field | None) -> bool:
    return fld is not None and fld.list_type == "set"


def _items(fld: Field) -> Field:
    return Field(elem=fld.elem)


def _hkey(value: Any) -> Hashable:
    """A hashable identity for a JSON value that keeps JSON's distinctions (``true`` is not ``1``)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    return ("j", json.dumps(value, sort_keys=True))


def _item_key(item: Any, key: str) -> Hashable:
    """The identity of a merge-list item; an item without the merge key matches nothing."""
    if isinstance(item, dict) and key in item:
        return _hkey(item[key])
    return ("absent", id(item))


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: set[Hashable] = set()
    result = []
    for value in values:
        identity = _hkey(value)
        if identity not in seen:
            seen.add(identity)
            result.append(value)
    return result


# --- apply: maps -----------------------------------------------------------------------------------------


@dataclass
class _Directives:
    plain: JSONMap = field(default_factory=dict)
    retain: list[str] | None = None
    orders: dict[str, list[Any]] = field(default_factory=dict)
    deletions: dict[str, list[Any]] = field(default_factory=dict)


def _directive_list(key: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise PatchError(f"the value of {key} must be a list")
    return value


def _directive_target(key: str, prefix: str) -> str:
    target = key[len(prefix) :]
    if not target:
        raise PatchError(f"the directive {key!r} does not name a field")
    return target


def _split(patch: JSONMap) -> _Directives:
    found = _Directives()
    for key, value in patch.items():
        if not isinstance(key, str) or not key.startswith("$"):
            found.plain[key] = value
        elif key == PATCH:
            continue
        elif key == RETAIN_KEYS:
            retain = _directive_list(key, value)
            if not all(isinstance(name, str) for name in retain):
                raise PatchError(f"{RETAIN_KEYS} must list field names")
            found.retain = retain
        elif key.startswith(SET_ELEMENT_ORDER):
            found.orders[_directive_target(key, SET_ELEMENT_ORDER)] = _directive_list(key, value)
        elif key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            found.deletions[_directive_target(key, DELETE_FROM_PRIMITIVE_LIST)] = _directive_list(key, value)
        else:
            raise PatchError(f"unknown strategic merge patch directive {key!r}")
    return found


def _map_directive(patch: JSONMap) -> str:
    directive = patch.get(PATCH, "merge")
    if directive not in ("merge", "replace", "delete"):
        raise PatchError(f"unknown $patch directive {directive!r} (expected replace, merge or delete)")
    return str(directive)


def _merge_map(current: JSONMap, patch: JSONMap, context: Field | None) -> JSONMap:
    """Merge ``patch`` into ``current``, which the caller owns; return the merged map."""
    directive = _map_directive(patch)
    if directive == "delete":
        return {}
    if directive == "replace":
        current = {}
    found = _split(patch)
    if found.retain is not None:
        current = _retain(current, found)
    for name, values in found.deletions.items():
        _delete_from_list(current, name, values)
    for key, value in found.plain.items():
        _merge_member(current, key, value, _child(context, key), found.orders.get(key))
    for name, order in found.orders.items():
        if name not in found.plain:
            _reorder_member(current, name, order, _child(context, name))
    return current


def _retain(current: JSONMap, found: _Directives) -> JSONMap:
    retain = set(found.retain or ())
    for key, value in found.plain.items():
        if value is not None and key not in retain:
            raise PatchError(f"the patch sets {key!r}, which its {RETAIN_KEYS} list does not name")
    return {key: value for key, value in current.items() if key in retain}


def _delete_from_list(current: JSONMap, name: str, values: list[Any]) -> None:
    existing = current.get(name)
    if isinstance(existing, list):
        doomed = {_hkey(value) for value in values}
        current[name] = [item for item in existing if _hkey(item) not in doomed]


def _merge_member(current: JSONMap, key: str, value: Any, fld: Field | None, order: list[Any] | None) -> None:
    existing = current.get(key)
    if value is None or (isinstance(value, dict) and _map_directive(value) == "delete"):
        current.pop(key, None)
    elif isinstance(value, dict):
        current[key] = _merge_map(existing if isinstance(existing, dict) else {}, value, fld)
    elif isinstance(value, list):
        current[key] = _merge_list(existing if isinstance(existing, list) else [], value, fld, order)
    else:
        current[key] = value


def _reorder_member(current: JSONMap, name: str, order: list[Any], fld: Field | None) -> None:
    existing = current.get(name)
    if not isinstance(existing, list):
        return
    key = _merge_key(fld)
    if key is not None:
        current[name] = _arrange(existing, _order_keys(order, key), existing, _keyed_by(key))
    elif _is_set(fld):
        values = _unique(existing)
        current[name] = _arrange(values, [_hkey(value) for value in order], values, _hkey)


# --- apply: lists ----------------------------------------------------------------------------------------


def _merge_list(
    current: list[Any], patch: list[Any], fld: Field | None, order: list[Any] | None
) -> list[Any]:
    key = _merge_key(fld)
    if key is not None and fld is not None:
        return _merge_keyed(current, patch, key, _items(fld), order)
    if _is_set(fld):
        return _merge_set(current, patch, order)
    return _atomic(patch)


def _keyed_by(key: str) -> _KeyFn:
    return lambda item: _item_key(item, key)


def _order_keys(order: list[Any], key: str) -> list[Hashable]:
    keys = []
    for entry in order:
        if not isinstance(entry, dict) or key not in entry:
            raise PatchError(f"{SET_ELEMENT_ORDER}... items must be objects holding the merge key {key!r}")
        keys.append(_hkey(entry[key]))
    return keys


def _scan_keyed(patch: list[Any], key: str) -> tuple[bool, set[Hashable], list[JSONMap]]:
    """Sort a merge-list patch into (replace the list?, keys to delete, items to merge)."""
    replace, deleted, updates = False, set(), []
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"items of a list merged on {key!r} must be objects, not {item!r}")
        directive = _map_directive(item) if PATCH in item else None
        if directive == "delete":
            if key not in item:
                raise PatchError(f"a {PATCH}: delete list item needs the merge key {key!r}")
            deleted.add(_hkey(item[key]))
            continue
        replace = replace or directive == "replace"
        if directive is None or len(item) > 1:
            updates.append(item)
    return replace, deleted, updates


def _merge_keyed(
    current: list[Any], patch: list[Any], key: str, items: Field, order: list[Any] | None
) -> list[Any]:
    replace, deleted, updates = _scan_keyed(patch, key)
    if replace:
        merged = [_merge_map({}, update, items) for update in updates]
        if order is None:
            return merged
    else:
        merged = [item for item in current if _item_key(item, key) not in deleted]
        _upsert(merged, updates, key, items)
    if order is not None:
        wanted = _order_keys(order, key)
    else:
        wanted = [_item_key(update, key) for update in updates]
    return _arrange(merged, wanted, current, _keyed_by(key))


def _upsert(merged: list[Any], updates: list[JSONMap], key: str, items: Field) -> None:
    position = {_item_key(item, key): index for index, item in reversed(list(enumerate(merged)))}
    for update in updates:
        if key not in update:
            raise PatchError(f"list item {update!r} lacks the merge key {key!r}")
        identity = _hkey(update[key])
        if identity in position:
            index = position[identity]
            merged[index] = _merge_map(merged[index], update, items)
        else:
            position[identity] = len(merged)
            merged.append(_merge_map({}, update, items))


def _merge_set(current: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    replace, additions = False, []
    for item in patch:
        if isinstance(item, dict) and PATCH in item:
            if len(item) != 1 or _map_directive(item) == "delete":
                raise PatchError(f"unsupported {PATCH} item {item!r} in a list of scalars")
            replace = replace or item[PATCH] == "replace"
        else:
            additions.append(deep_copy(item))
    merged = _unique([*([] if replace else current), *additions])
    wanted = [_hkey(value) for value in (order if order is not None else additions)]
    return _arrange(merged, wanted, current, _hkey)


def _atomic(patch: list[Any]) -> list[Any]:
    result = []
    for item in patch:
        if isinstance(item, dict) and PATCH in item:
            if len(item) == 1 and _map_directive(item) in ("replace", "merge"):
                continue
            raise PatchError(f"{PATCH} item {item!r} in a list that does not merge")
        result.append(deep_copy(item))
    return result


def _arrange(items: list[Any], wanted: list[Hashable], original: list[Any], key_fn: _KeyFn) -> list[Any]:
    """Order ``items``: those named in ``wanted`` in that order, interleaved with the rest (module doc)."""
    rank: dict[Hashable, int] = {}
    for index, identity in enumerate(wanted):
        rank.setdefault(identity, index)
    origin: dict[Hashable, int] = {}
    for index, item in enumerate(original):
        origin.setdefault(key_fn(item), index)
    ordered = sorted((item for item in items if key_fn(item) in rank), key=lambda item: rank[key_fn(item)])
    server_only = [item for item in items if key_fn(item) not in rank]
    return _interleave(server_only, ordered, origin, key_fn)


def _interleave(
    server_only: list[Any], ordered: list[Any], origin: dict[Hashable, int], key_fn: _KeyFn
) -> list[Any]:
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(ordered):
        left, right = origin.get(key_fn(server_only[i])), origin.get(key_fn(ordered[j]))
        if left is not None and right is not None and left < right:
            result.append(server_only[i])
            i += 1
        else:
            result.append(ordered[j])
            j += 1
    return result + server_only[i:] + ordered[j:]


# --- two-way diff ----------------------------------------------------------------------------------------


def _retains_map(fld: Field | None) -> bool:
    """Whether the map at ``fld`` has the retainKeys strategy (for a merge list it applies to the items)."""
    return fld is not None and fld.retain_keys and fld.list_type is None


def _diff_maps(original: JSONMap, modified: JSONMap, context: Field | None, *, retain: bool) -> JSONMap:
    patch: JSONMap = {}
    for key, new in modified.items():
        fld = _child(context, key)
        if key in original:
            _diff_member(patch, key, original[key], new, fld)
        else:
            patch[key] = _fresh(new, fld)
    for key in original:
        if key not in modified:
            patch[key] = None
    if retain and patch:
        patch[RETAIN_KEYS] = sorted(key for key, value in modified.items() if value is not None)
    return patch


def _diff_member(patch: JSONMap, key: str, old: Any, new: Any, fld: Field | None) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        nested = _diff_maps(old, new, fld, retain=_retains_map(fld))
        if nested:
            patch[key] = nested
    elif isinstance(old, list) and isinstance(new, list):
        _diff_lists(patch, key, old, new, fld)
    elif not json_equal(old, new):
        patch[key] = _fresh(new, fld)


def _fresh(value: Any, fld: Field | None) -> Any:
    """A patch value that recreates ``value`` where nothing (or something of another type) was."""
    if isinstance(value, dict):
        return {key: _fresh(item, _child(fld, key)) for key, item in value.items()}
    if isinstance(value, list):
        return _fresh_list(value, fld)
    return value


def _fresh_list(value: list[Any], fld: Field | None) -> list[Any]:
    key = _merge_key(fld)
    if key is None or fld is None:
        return deep_copy(value)
    items = _fresh_items(value, fld)
    return items if _well_keyed(value, key) else _replacement(items)


def _fresh_items(value: list[Any], fld: Field) -> list[Any]:
    return [_fresh(item, _items(fld)) for item in value]


def _well_keyed(items: list[Any], key: str) -> bool:
    identities = [_hkey(item[key]) for item in items if isinstance(item, dict) and key in item]
    return len(identities) == len(items) and len(set(identities)) == len(identities)


def _replacement(items: list[Any]) -> list[Any]:
    if not all(isinstance(item, dict) for item in items):
        raise PatchError(
            "a merge list holding non-object items cannot be expressed as a strategic merge patch"
        )
    return [*items, {PATCH: "replace"}]


def _diff_lists(patch: JSONMap, name: str, old: list[Any], new: list[Any], fld: Field | None) -> None:
    key = _merge_key(fld)
    if key is not None and fld is not None:
        _diff_keyed(patch, name, old, new, key, fld)
    elif _is_set(fld):
        _diff_set(patch, name, old, new)
    elif not json_equal(old, new):
        patch[name] = deep_copy(new)


def _diff_keyed(patch: JSONMap, name: str, old: list[Any], new: list[Any], key: str, fld: Field) -> None:
    if json_equal(old, new):
        return
    if not old or not _well_keyed(old, key):
        patch[name] = _fresh_list(new, fld) if not old else _replacement(_fresh_items(new, fld))
        return
    if not _well_keyed(new, key):
        patch[name] = _replacement(_fresh_items(new, fld))
        return
    previous = {_hkey(item[key]): item for item in old}
    kept = {_hkey(item[key]) for item in new}
    changes: list[Any] = []
    for item in new:
        before = previous.get(_hkey(item[key]))
        if before is None:
            changes.append(_fresh(item, _items(fld)))
            continue
        nested = _diff_maps(before, item, _items(fld), retain=fld.retain_keys)
        if nested:
            nested[key] = deep_copy(item[key])
            changes.append(nested)
    changes.extend(
        {key: deep_copy(item[key]), PATCH: "delete"} for item in old if _hkey(item[key]) not in kept
    )
    if changes:
        patch[name] = changes
    patch[SET_ELEMENT_ORDER + name] = [{key: deep_copy(item[key])} for item in new]


def _diff_set(patch: JSONMap, name: str, old: list[Any], new: list[Any]) -> None:
    if json_equal(old, new):
        return
    if not old:
        patch[name] = deep_copy(new)
        return
    before, after = {_hkey(value) for value in old}, {_hkey(value) for value in new}
    added = [deep_copy(value) for value in _unique(new) if _hkey(value) not in before]
    removed = [deep_copy(value) for value in _unique(old) if _hkey(value) not in after]
    if added:
        patch[name] = added
    if removed:
        patch[DELETE_FROM_PRIMITIVE_LIST + name] = removed
    patch[SET_ELEMENT_ORDER + name] = deep_copy(new)
