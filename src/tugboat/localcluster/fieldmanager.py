"""Field ownership (``metadata.managedFields``) and server-side apply for the local cluster.

Why this exists: ``kubectl apply --server-side`` sends a manager's *complete intent* and expects the
server to remember which manager set which field. That memory is what lets a later apply remove the
fields a manager dropped from its manifest, keep the ones another manager still wants, and refuse (409)
to silently overwrite a field someone else set unless ``--force-conflicts`` is given. Kubernetes keeps
that memory in ``metadata.managedFields`` as FieldsV1 trees; this module reproduces those semantics
(after kube-apiserver's field manager, ``structured-merge-diff``) on plain JSON objects, with no schema
beyond a caller-supplied callback telling how each list merges.

Model. A *path* is a tuple of FieldsV1 path elements from the object root: ``f:<name>`` (a field of a
struct or map), ``k:<json>`` (a list-map item, by its key fields), ``v:<json>`` (a set item) and, when
decoding foreign data, ``i:<n>``. A :data:`FieldSet` is a frozenset of paths; a path is in the set when
the manager owns that node: a leaf (scalar, null, atomic list or map, empty list or map) or a list item
as a whole (rendered ``".": {}`` when the item also has owned children).

Everything here is pure: functions take and return JSON-like dicts and never mutate their arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tugboat.kube import fieldsv1, patchmeta
from tugboat.util import jsondata

Path = tuple[str, ...]
FieldSet = frozenset[Path]
ListSemantics = tuple[str, tuple[str, ...]] | tuple[str, tuple[str, ...], Mapping[str, Any]]
ListInfo = Callable[[tuple[str, ...]], ListSemantics | None]
"""Given the field names from the object root (list items and map values stepped over, every object key
included), return ``("map", keys)``, ``("set", ())``, ``("atomic", ())`` or ``None``. ``None`` means an
atomic list; for an object (dict) only an explicit ``"atomic"`` makes it a single leaf. A list-map may add
the schema defaults of its key fields, ``("map", keys, {key: default})``: as in structured-merge-diff, an
item that omits a defaulted key is keyed with the default (a container port applied without ``protocol``
is the live ``TCP`` port, not a second one)."""

APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"
"""The manager that owns everything on an object that has no managedFields when it is first applied to."""

EMPTY: FieldSet = frozenset()

# Never owned, never merged from an apply body: the server sets these.
_SERVER_SET: frozenset[Path] = frozenset(
    ("metadata", name)
    for name in (
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "deletionTimestamp",
        "selfLink",
    )
)
# Never owned, but merged (an apply body names its object with them).
_IDENTITY: frozenset[Path] = frozenset(
    {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
)


class FieldManagerError(Exception):
    """Base of the errors of this module (malformed managedFields or apply configurations)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Conflict:
    """One field an apply would change that another manager owns."""

    manager: str
    api_version: str
    field: str
    operation: str = UPDATE
    subresource: str | None = None

    @property
    def manager_label(self) -> str:
        """How Kubernetes names the manager: ``"m"``, plus subresource and, for Update, the version."""
        label = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            label += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == UPDATE:
            label += f" using {self.api_version}"
        return label

    @property
    def message(self) -> str:
        """The ``details.causes[].message`` of the 409 (its ``field`` is :attr:`field`)."""
        return f"conflict with {self.manager_label}"


class ApplyConflict(FieldManagerError):
    """An apply would change fields owned by other managers; ``force`` was not given."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__(_conflict_message(self.conflicts))


def _conflict_message(conflicts: list[Conflict]) -> str:
    if len(conflicts) == 1:
        only = conflicts[0]
        return f"Apply failed with 1 conflict: {only.message}: {only.field}"
    lines: list[str] = []
    label = None
    for conflict in conflicts:
        if conflict.manager_label != label:
            label = conflict.manager_label
            lines.append(f"conflicts with {label}:")
        lines.append(f"- {conflict.field}")
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Path elements: encoding, ordering, rendering


def _canonical(value: Any) -> str:
    """JSON the way Kubernetes writes key and set values: sorted keys, compact separators."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _value_order(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, _canonical(value))


def _element_order(element: str) -> tuple[int, Any, str]:
    """Sort key giving FieldsV1's order: fields, then keys, then values, then indexes."""
    kind, rest = element[:2], element[2:]
    if kind == "f:":
        return (0, rest, element)
    if kind in ("k:", "v:"):
        try:
            decoded = json.loads(rest)
        except ValueError:
            return (4, "", element)
        if kind == "v:":
            return (2, _value_order(decoded), element)
        if isinstance(decoded, dict):
            return (1, tuple((name, _value_order(v)) for name, v in sorted(decoded.items())), element)
        return (4, "", element)
    if kind == "i:" and rest.isdigit():
        return (3, int(rest), element)
    return (4, "", element)


def path_string(path: Path) -> str:
    """Render a path as Kubernetes does in errors: ``.spec.containers[name="nginx"].image``."""
    parts: list[str] = []
    for element in path:
        kind, rest = element[:2], element[2:]
        if kind == "f:":
            parts.append("." + rest)
        elif kind == "k:":
            keys = json.loads(rest)
            parts.append("[" + ",".join(f"{k}={_canonical(v)}" for k, v in sorted(keys.items())) + "]")
        elif kind == "v:":
            parts.append(f"[={rest}]")
        elif kind == "i:":
            parts.append(f"[{rest}]")
        else:
            parts.append(element)
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------
# FieldsV1 <-> FieldSet


def to_fields_v1(fields: Iterable[Path]) -> dict[str, Any]:
    """The nested FieldsV1 JSON of a field set (children in Kubernetes' order, ``"."`` first)."""
    tree: dict[str, Any] = {}
    members = set()
    for path in fields:
        if not path:
            raise FieldManagerError("a field set cannot own the object root")
        members.add(path)
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return _render_tree(tree, (), members)


def _render_tree(node: dict[str, Any], prefix: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if node and prefix in members:
        out["."] = {}
    for element in sorted(node, key=_element_order):
        out[element] = _render_tree(node[element], (*prefix, element), members)
    return out


def from_fields_v1(fields_v1: Any) -> FieldSet:
    """Decode a FieldsV1 JSON tree into a field set."""
    try:
        return fieldsv1.decode(fields_v1)
    except fieldsv1.FieldsV1Error as exc:
        raise FieldManagerError(str(exc)) from exc


# ---------------------------------------------------------------------------------------------------
# Walking objects


@dataclass(frozen=True)
class _Node:
    """One node of an object: its value, whether it is compared as a whole, whether it can be owned."""

    value: Any
    leaf: bool
    owned: bool


@dataclass(frozen=True)
class _Scope:
    """Which parts of an object a write may touch: status is ignored on the main resource of a type with a
    status subresource, and only status counts on the status subresource."""

    ignore_status: bool
    status_only: bool

    @classmethod
    def of(cls, subresource: str | None, ignore_status: bool) -> _Scope:
        status_only = subresource == "status"
        return cls(ignore_status=ignore_status and not status_only, status_only=status_only)

    def merged(self, names: Path) -> bool:
        """Whether an apply body's value at these field names is merged into the object."""
        if len(names) == 1:
            if self.status_only:
                return names[0] == "status"
            if self.ignore_status and names[0] == "status":
                return False
        return names not in _SERVER_SET

    def tracked(self, names: Path) -> bool:
        """Whether the node at these field names can be owned."""
        return self.merged(names) and names not in _IDENTITY


class _Walker:
    """Walks objects under one ListInfo and scope; caches the list semantics of each field path."""

    def __init__(self, list_info: ListInfo, scope: _Scope) -> None:
        self._list_info = list_info
        self._scope = scope
        self._cache: dict[Path, ListSemantics | None] = {}

    def _info(self, names: Path) -> ListSemantics | None:
        if names not in self._cache:
            self._cache[names] = self._list_info(names)
        return self._cache[names]

    def _atomic_map(self, names: Path) -> bool:
        info = self._info(names) if names else None
        return info is not None and info[0] == "atomic"

    def elements(
        self, items: list[Any], names: Path, *, strict: bool = False
    ) -> tuple[list[str], bool] | None:
        """The path elements of a list's items and whether it is a set; ``None`` when it is atomic.

        A list-map whose items cannot be keyed (not objects, no key field) is atomic. Duplicate items make
        a stored list atomic; in an apply body (``strict``) they are an error, as in Kubernetes.
        """
        info = self._info(names)
        if info is None or info[0] not in ("map", "set"):
            return None
        is_set = info[0] == "set"
        key_defaults = info[2] if len(info) == 3 else {}
        found: list[str] = []
        for item in items:
            element = _set_element(item) if is_set else _map_element(item, info[1], key_defaults)
            if element is None:
                return None
            found.append(element)
        if len(set(found)) != len(found):
            if strict:
                duplicate = next(e for e in found if found.count(e) > 1)
                raise FieldManagerError(
                    f"{'.'.join(names)}: duplicate entries for key {path_string((duplicate,))}"
                )
            return None
        return found, is_set

    # -- indexing

    def index(self, obj: dict[str, Any], *, strict: bool = False) -> dict[Path, _Node]:
        """Every node of ``obj`` that the scope tracks, by path (the root is ``()``)."""
        out: dict[Path, _Node] = {}
        self._visit(obj, (), (), False, out, strict)
        return out

    def _visit(
        self, value: Any, path: Path, names: Path, item: bool, out: dict[Path, _Node], strict: bool
    ) -> None:
        if isinstance(value, dict) and value and not self._atomic_map(names):
            out[path] = _Node(value, leaf=False, owned=item)
            for key, child in value.items():
                child_names = (*names, key)
                if self._scope.tracked(child_names):
                    self._visit(child, (*path, "f:" + key), child_names, False, out, strict)
            return
        keyed = self.elements(value, names, strict=strict) if isinstance(value, list) and value else None
        if keyed is None:
            out[path] = _Node(value, leaf=True, owned=True)
            return
        out[path] = _Node(value, leaf=False, owned=item)
        elements, is_set = keyed
        for element, child in zip(elements, value, strict=True):
            if is_set:
                out[(*path, element)] = _Node(child, leaf=True, owned=True)
            else:
                self._visit(child, (*path, element), names, True, out, strict)

    # -- merging (apply)

    def merge(self, live: Any, applied: Any, names: Path) -> Any:
        """``applied`` over ``live``: objects recursively, list-maps by key, sets unioned, the rest replaced.

        Both arguments must be private copies: the result shares structure with them.
        """
        if isinstance(live, dict) and isinstance(applied, dict) and not self._atomic_map(names):
            out = dict(live)
            for key, value in applied.items():
                child_names = (*names, key)
                if self._scope.merged(child_names):
                    out[key] = self.merge(live.get(key, {}), value, child_names)
            return out
        if isinstance(live, list) and isinstance(applied, list):
            return self._merge_lists(live, applied, names)
        return applied

    def _merge_lists(self, live: list[Any], applied: list[Any], names: Path) -> list[Any]:
        live_keyed = self.elements(live, names)
        applied_keyed = self.elements(applied, names, strict=True)
        if live_keyed is None or applied_keyed is None:
            return applied
        is_set = applied_keyed[1]
        live_pairs = list(zip(live_keyed[0], live, strict=True))
        applied_pairs = list(zip(applied_keyed[0], applied, strict=True))

        def combine(old: Any, new: Any) -> Any:
            return old if is_set else self.merge(old, new, names)

        return _interleave(live_pairs, applied_pairs, combine)

    # -- pruning (apply)

    def locate(self, obj: dict[str, Any], path: Path) -> list[tuple[Any, Any]] | None:
        """The ``(container, key-or-index)`` steps leading to ``path`` in ``obj``, or None if absent."""
        steps: list[tuple[Any, Any]] = []
        current: Any = obj
        names: Path = ()
        for element in path:
            step = self._step(current, element, names)
            if step is None:
                return None
            steps.append((current, step))
            current = current[step]
            if element.startswith("f:"):
                names = (*names, element[2:])
        return steps

    def _step(self, current: Any, element: str, names: Path) -> Any:
        if element.startswith("f:"):
            key = element[2:]
            return key if isinstance(current, dict) and key in current else None
        if not isinstance(current, list):
            return None
        if element.startswith("i:"):
            index = int(element[2:]) if element[2:].isdigit() else -1
            return index if 0 <= index < len(current) else None
        keyed = self.elements(current, names)
        if keyed is None or element not in keyed[0]:
            return None
        return keyed[0].index(element)

    def prune(self, obj: dict[str, Any], doomed: Iterable[Path], owned: FieldSet) -> None:
        """Remove ``doomed`` paths from ``obj`` in place, sparing whatever leads to an owned path, and drop
        the containers the removal leaves empty (as Kubernetes does for fields nobody owns any more)."""
        protected = {path[:i] for path in owned for i in range(1, len(path) + 1)}
        for path in sorted(doomed, key=len):
            if path in protected or _is_key_field(path):
                continue
            steps = self.locate(obj, path)
            if steps is None:
                continue
            _delete(steps[-1])
            for depth in range(len(steps) - 1, 0, -1):
                container, _ = steps[depth]
                if container or path[:depth] in protected:
                    break
                _delete(steps[depth - 1])


def _map_element(item: Any, keys: tuple[str, ...], key_defaults: Mapping[str, Any]) -> str | None:
    if not isinstance(item, dict):
        return None
    key = {
        name: item.get(name, key_defaults.get(name)) for name in keys if name in item or name in key_defaults
    }
    return "k:" + _canonical(key) if key else None


def _set_element(item: Any) -> str:
    return "v:" + _canonical(item)


def _is_key_field(path: Path) -> bool:
    """Whether ``path`` is a key field of a list-map item (removed only with the whole item)."""
    if len(path) < 2 or not path[-1].startswith("f:") or not path[-2].startswith("k:"):
        return False
    return path[-1][2:] in json.loads(path[-2][2:])


def _delete(step: tuple[Any, Any]) -> None:
    container, key = step
    del container[key]


def _interleave(
    live: list[tuple[str, Any]], applied: list[tuple[str, Any]], combine: Callable[[Any, Any], Any]
) -> list[Any]:
    """Merge two keyed lists: applied items in applied order (combined with their live counterpart), and
    each live-only item kept right after the shared item that preceded it in the live list."""
    applied_keys = {element for element, _ in applied}
    live_items = dict(live)
    head: list[Any] = []
    followers: dict[str, list[Any]] = {}
    anchor: str | None = None
    for element, item in live:
        if element in applied_keys:
            anchor = element
            followers[element] = []
        elif anchor is None:
            head.append(item)
        else:
            followers[anchor].append(item)
    out = head
    for element, item in applied:
        out.append(combine(live_items[element], item) if element in live_items else item)
        out.extend(followers.get(element, ()))
    return out


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, ``1 == 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _changed(before: dict[Path, _Node], after: dict[Path, _Node], path: Path) -> bool:
    """Whether a write added, removed or modified the node at ``path`` (containers: only added/removed)."""
    old, new = before.get(path), after.get(path)
    if old is None or new is None:
        return (old is None) != (new is None)
    if old.leaf or new.leaf:
        return not _equal(old.value, new.value)
    return False


def _owned(index: dict[Path, _Node]) -> FieldSet:
    return frozenset(path for path, node in index.items() if node.owned and path)


def fields_of(obj: dict[str, Any], list_info: ListInfo, *, ignore_status: bool = False) -> FieldSet:
    """The field set an object sets: its leaves and list items, minus the fields the server sets itself
    (``apiVersion``, ``kind``, ``metadata.name``/``namespace``/``uid``/..., and ``status`` if asked)."""
    walker = _Walker(list_info, _Scope(ignore_status=ignore_status, status_only=False))
    return _owned(walker.index(obj))


# ---------------------------------------------------------------------------------------------------
# managedFields entries


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str | None
    time: str | None
    fields: FieldSet
    raw: dict[str, Any] | None = None
    dirty: bool = False

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Kubernetes' manager identity: Apply entries are one per manager whatever the version."""
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource or "")

    def set_fields(self, fields: FieldSet) -> None:
        if fields != self.fields:
            self.fields = fields
            self.dirty = True

    def render(self) -> dict[str, Any]:
        if self.raw is not None and not self.dirty:
            return jsondata.clone(self.raw)
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def conflict(self, path: Path) -> Conflict:
        return Conflict(self.manager, self.api_version, path_string(path), self.operation, self.subresource)


def _decode_entries(raw_entries: Any) -> list[_Entry]:
    """The managedFields of an object; entries that are not FieldsV1 or are malformed are dropped."""
    if not isinstance(raw_entries, list):
        return []
    entries: list[_Entry] = []
    for raw in raw_entries:
        entry = _decode_entry(raw)
        if entry is not None:
            entries.append(entry)
    return entries


def _decode_entry(raw: Any) -> _Entry | None:
    if not isinstance(raw, dict) or raw.get("fieldsType", "FieldsV1") != "FieldsV1":
        return None
    manager, operation = raw.get("manager", ""), raw.get("operation")
    if not isinstance(manager, str) or operation not in (APPLY, UPDATE):
        return None
    try:
        fields = from_fields_v1(raw.get("fieldsV1", {}))
    except FieldManagerError:
        return None
    time = raw.get("time")
    subresource = raw.get("subresource")
    return _Entry(
        manager=manager,
        operation=operation,
        api_version=str(raw.get("apiVersion", "")),
        subresource=subresource if isinstance(subresource, str) and subresource else None,
        time=time if isinstance(time, str) else None,
        fields=fields,
        raw=raw,
    )


def _managed_fields_of(obj: dict[str, Any] | None) -> Any:
    metadata = obj.get("metadata") if obj else None
    return metadata.get("managedFields") if isinstance(metadata, dict) else None


def _is_reset(raw_entries: Any) -> bool:
    """``managedFields: [{}]`` (only empty entries) is the documented way to clear managedFields."""
    return isinstance(raw_entries, list) and bool(raw_entries) and all(e == {} for e in raw_entries)


def _store_entries(obj: dict[str, Any], entries: list[_Entry]) -> None:
    metadata = obj.setdefault("metadata", {})
    kept = [entry.render() for entry in entries if entry.fields]
    if kept:
        metadata["managedFields"] = kept
    else:
        metadata.pop("managedFields", None)


def _find(entries: list[_Entry], identity: tuple[str, str, str, str]) -> _Entry | None:
    return next((entry for entry in entries if entry.identity == identity), None)


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}


# ---------------------------------------------------------------------------------------------------
# Server-side apply


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    list_info: ListInfo,
    now: str,
    subresource: str | None = None,
    ignore_status: bool = False,
) -> dict[str, Any]:
    """Server-side apply ``applied`` (one manager's complete intent) to ``live`` (None: create).

    Raises :class:`ApplyConflict` when the apply would change a field owned by another manager and
    ``force`` is false; with ``force`` the field changes hands. Fields this manager applied last time and
    left out now are removed unless another manager owns them. Returns the new object with updated
    ``metadata.managedFields``; server-set metadata (uid, resourceVersion, ...) is taken from ``live``,
    never from ``applied``.
    """
    if _managed_fields_of(applied):
        raise FieldManagerError("metadata.managedFields must be nil")
    walker = _Walker(list_info, _Scope.of(subresource, ignore_status))
    applied_set = _owned(walker.index(applied, strict=True))
    base = jsondata.clone(live) if live is not None else {}
    live_index = walker.index(base)
    entries = _decode_entries(_managed_fields_of(base))
    if live is not None and not entries:
        version = str(base.get("apiVersion", api_version))
        entries = [_Entry(BEFORE_FIRST_APPLY, UPDATE, version, None, None, _owned(live_index), dirty=True)]
    mine = _find(entries, (manager, APPLY, "", subresource or ""))
    others = [entry for entry in entries if entry is not mine]

    merged = walker.merge(jsondata.clone(base), jsondata.clone(applied), ())
    _take_conflicting(others, live_index, walker.index(merged), force)
    last_set = mine.fields if mine is not None else EMPTY
    owned = applied_set.union(*(entry.fields for entry in others))
    walker.prune(merged, last_set - owned, owned)
    _forget_removed(others, live_index, walker.index(merged))

    changed = not _equal(_without_managed_fields(base), _without_managed_fields(merged))
    if mine is None:
        entries.append(_Entry(manager, APPLY, api_version, subresource, now, applied_set, dirty=True))
    elif changed or mine.fields != applied_set or mine.api_version != api_version:
        mine.set_fields(applied_set)
        mine.api_version, mine.time, mine.dirty = api_version, now, True
    _store_entries(merged, entries)
    return merged


def _take_conflicting(
    others: list[_Entry], before: dict[Path, _Node], after: dict[Path, _Node], force: bool
) -> None:
    """Raise for fields of other managers the apply changes; with ``force``, take them from those managers."""
    taken: list[tuple[_Entry, FieldSet]] = []
    for entry in others:
        hit = frozenset(path for path in entry.fields if _changed(before, after, path))
        if hit:
            taken.append((entry, hit))
    if not taken:
        return
    if not force:
        raise ApplyConflict(list(_conflicts(taken)))
    for entry, hit in taken:
        entry.set_fields(entry.fields - hit)


def _conflicts(taken: list[tuple[_Entry, FieldSet]]) -> Iterator[Conflict]:
    order = sorted(taken, key=lambda pair: (pair[0].manager, pair[0].operation, pair[0].identity))
    for entry, hit in order:
        for path in sorted(hit, key=lambda p: [_element_order(e) for e in p]):
            yield entry.conflict(path)


def _forget_removed(entries: list[_Entry], before: dict[Path, _Node], after: dict[Path, _Node]) -> None:
    """Fields a write removed from the object are no longer owned by anyone."""
    for entry in entries:
        gone = frozenset(path for path in entry.fields if path in before and path not in after)
        if gone:
            entry.set_fields(entry.fields - gone)


# ---------------------------------------------------------------------------------------------------
# Other writes (create, update, patch)


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    list_info: ListInfo,
    now: str,
    subresource: str | None = None,
    ignore_status: bool = False,
) -> dict[str, Any]:
    """Record a non-apply write (``old`` None: create) in ``new``'s managedFields; return the new object.

    The manager's Update entry gains every field the write added or changed (taken from other managers
    without conflict), every entry loses the fields the write removed. As in Kubernetes, managedFields
    sent in ``new`` replace the stored ones (``[{}]`` clears them), and an update of an object without
    managedFields is not tracked (only creates and applies start tracking).
    """
    walker = _Walker(list_info, _Scope.of(subresource, ignore_status))
    result = jsondata.clone(new)
    requested = _managed_fields_of(result)
    entries = _decode_entries(_managed_fields_of(old))
    if subresource is None and _is_reset(requested):
        entries = []
    elif subresource is None and _decode_entries(requested):
        entries = _decode_entries(requested)
    if old is not None and not entries:
        _store_entries(result, [])
        return result
    before, after = walker.index(old or {}), walker.index(result)
    gained = frozenset(path for path in _owned(after) if _changed(before, after, path))
    _forget_removed(entries, before, after)
    mine = _find(entries, (manager, UPDATE, api_version, subresource or ""))
    for entry in entries:
        if entry is not mine:
            entry.set_fields(entry.fields - gained)
    if gained and mine is None:
        entries.append(_Entry(manager, UPDATE, api_version, subresource, now, gained, dirty=True))
    elif gained and mine is not None:
        mine.set_fields(mine.fields | gained)
        mine.time, mine.dirty = now, True
    _store_entries(result, entries)
    return result


# ---------------------------------------------------------------------------------------------------
# List semantics of built-in kinds

# LabelSelector (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job) and ServiceSpec.selector are atomic
# in Kubernetes' schema, so managedFields show them as one leaf (``"f:selector": {}``).
_ATOMIC_SELECTOR_ROOTS = frozenset({"Workload", "Service"})


def builtin_list_info(group: str, kind: str) -> ListInfo:
    """The :data:`ListInfo` of a built-in kind, from :mod:`tugboat.kube.patchmeta`'s struct-tag table."""
    atomic_selector = patchmeta.root_type(group, kind) in _ATOMIC_SELECTOR_ROOTS

    def info(names: tuple[str, ...]) -> ListSemantics | None:
        if atomic_selector and names == ("spec", "selector"):
            return ("atomic", ())
        _, field = patchmeta.type_at(group, kind, names)
        if field is None or field.list_type is None:
            return None
        if field.list_type == "map":
            return (
                ("map", field.keys, dict(field.key_defaults)) if field.key_defaults else ("map", field.keys)
            )
        return ("set", ()) if field.list_type == "set" else None

    return info
