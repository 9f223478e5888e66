"""Desired vs live: does the cluster hold what Git says, ignoring what the server and other actors add?

The sync status of an Application is the answer for each of its resources (``ge:pkg/diff``). Comparing
the raw objects would always differ: the server adds ``uid``, ``status``, defaulted fields and canonical
forms of quantities; other controllers set fields users asked to ignore. This module normalizes both
sides, applies ``ignoreDifferences``, and predicts what the live object would be after applying the
desired one; the resource is *modified* when that prediction differs from the live object.

**Normalization** (both sides): ``metadata.creationTimestamp``, ``resourceVersion``, ``uid``,
``generation``, ``managedFields``, ``selfLink``, ``deletionTimestamp``, ``deletionGracePeriodSeconds``, the
tracking annotation ``argocd.argoproj.io/tracking-id`` and
``kubectl.kubernetes.io/last-applied-configuration`` are dropped; ``status`` is dropped unless
``normalize_status=False``; a Secret's ``stringData`` is base64-encoded into ``data``; Endpoints subsets
are sorted.

**Comparison** (Argo CD's legacy diff is a 3-way strategic merge from the last-applied annotation; ours
is the following, which needs no OpenAPI schema and no last-applied annotation):

1. *Desired fields must equal live.* Every field the desired object sets must be present in live with
   an equal value; fields only live has (server defaults, fields set by other actors) are not a
   difference. A zero value in desired (``false``, ``0``, ``""``, ``{}``, ``[]``) equals a missing live field,
   as the API server drops such ``omitempty`` fields. A ``null`` in desired means "not set".
2. Lists of built-in kinds merge the way strategic merge and server-side apply do
   (:mod:`tugboat.kube.patchmeta`): keyed lists (containers by ``name``, ports by ``containerPort`` and
   ``protocol``, …) match items by key, ignoring order and items only live has; sets (``finalizers``) by
   value; other lists (and every list of a custom resource) item by item, same length required, each
   item compared by rule 1. Argo Rollouts' ``spec.template`` is treated as a pod template
   (Argo CD's ``knownTypeFields``).
3. Equal means JSON-equal, plus: quantities compare by value in resource maps (``1000m`` equals ``1``,
   ``1Gi`` equals ``1024Mi``), and an integer equals its decimal string in int-or-string fields.
4. *Removals are detected* two ways, so deleting a field in Git is not silently ignored: a field present
   in the live object's last-applied configuration (client-side apply) but absent from desired, and a
   field live's ``managedFields`` show is owned by our apply manager (``argocd-controller`` by default,
   server-side apply) and by no one else but absent from desired, would be removed by the next apply.

**ignoreDifferences** (:class:`IgnoreRule`, from the Application and from ``argocd-cm``) is applied to both
sides before the comparison: JSON pointers (RFC 6901) and jq path expressions (``del(<expr>)``, in a
helper process with a time limit, see :mod:`tugboat.gitops.jqpath`) are deleted, and the fields owned by
the listed ``managedFieldsManagers`` are removed from both sides wherever live differs from desired
(including fields desired does not set, so they never count as removals). A jq expression that fails is
skipped and reported in :attr:`ResourceDiff.warnings`, as Argo CD skips it.

**Secrets** are masked in the result (Argo CD's ``HideSecretData``): every value becomes a run of ``+``,
equal values the same run, different values different runs, so a diff shows *that* a key changed but
never a value.
"""

from __future__ import annotations

import base64
import difflib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import orjson
import yaml

from tugboat.gitops import customizations, jqpath, resourcekey
from tugboat.gitops.errors import CustomizationError, DiffError, IgnoreDifferencesError
from tugboat.kube import fieldsv1, jsonpatch, patchmeta
from tugboat.kube.errors import PatchError
from tugboat.util import jsondata

log = logging.getLogger(__name__)

TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
DEFAULT_APPLY_MANAGER = "argocd-controller"

_SERVER_METADATA = (
    "creationTimestamp",
    "resourceVersion",
    "uid",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_IGNORED_ANNOTATIONS = (TRACKING_ANNOTATION, LAST_APPLIED_ANNOTATION)

# Objects whose schema we borrow from a built-in type (Argo CD's knownTypeFields for Rollouts).
_KNOWN_ROOTS = {("argoproj.io", "Rollout"): "Workload"}

_QUANTITY_MAPS = frozenset(
    {
        "limits",
        "requests",
        "hard",
        "capacity",
        "allocatable",
        "overhead",
        "used",
        "max",
        "min",
        "default",
        "defaultRequest",
        "maxLimitRequestRatio",
    }
)
_QUANTITY_FIELDS = frozenset({"sizeLimit", "storage"})
_INT_OR_STRING_FIELDS = frozenset(
    {"targetPort", "port", "maxSurge", "maxUnavailable", "minAvailable", "partition"}
)

MASK = "++++++++"


# ---------------------------------------------------------------------------------------------------
# ignoreDifferences


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise IgnoreDifferencesError(f"{what} must be a list of strings")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise IgnoreDifferencesError(f"{what} must be a list of strings")
    return items


@dataclass(frozen=True)
class IgnoreRule:
    """One ``ignoreDifferences`` entry: which resources (group and kind may be ``*`` globs; name and
    namespace exact when given) and what to ignore in them."""

    group: str
    kind: str
    name: str | None = None
    namespace: str | None = None
    json_pointers: Sequence[str] = ()
    jq_path_expressions: Sequence[str] = ()
    managed_fields_managers: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.group, str):
            raise IgnoreDifferencesError("ignoreDifferences: group must be a string")
        if not isinstance(self.kind, str) or not self.kind:
            raise IgnoreDifferencesError("ignoreDifferences: kind is required")
        for attribute in ("name", "namespace"):
            value = getattr(self, attribute)
            if value is not None and not isinstance(value, str):
                raise IgnoreDifferencesError(f"ignoreDifferences: {attribute} must be a string")
        pointers = _strings(self.json_pointers, "ignoreDifferences.jsonPointers")
        expressions = _strings(self.jq_path_expressions, "ignoreDifferences.jqPathExpressions")
        managers = _strings(self.managed_fields_managers, "ignoreDifferences.managedFieldsManagers")
        for pointer in pointers:
            try:
                tokens = jsonpatch.parse_pointer(pointer)
            except PatchError as exc:
                raise IgnoreDifferencesError(f"ignoreDifferences: {exc}") from exc
            if not tokens:
                raise IgnoreDifferencesError('ignoreDifferences: the JSON pointer "" would ignore everything')
        for expression in expressions:
            jqpath.check(expression)
        object.__setattr__(self, "json_pointers", pointers)
        object.__setattr__(self, "jq_path_expressions", expressions)
        object.__setattr__(self, "managed_fields_managers", managers)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> IgnoreRule:
        """An entry of ``Application.spec.ignoreDifferences`` (Argo CD's camelCase fields)."""
        if not isinstance(spec, Mapping):
            raise IgnoreDifferencesError("an ignoreDifferences entry must be an object")
        known = {
            "group",
            "kind",
            "name",
            "namespace",
            "jsonPointers",
            "jqPathExpressions",
            "managedFieldsManagers",
        }
        unknown = sorted(set(spec) - known)
        if unknown:
            raise IgnoreDifferencesError(f"ignoreDifferences: unknown field(s) {', '.join(unknown)}")
        return cls(
            group=spec.get("group") or "",
            kind=spec.get("kind") or "",
            name=spec.get("name") or None,
            namespace=spec.get("namespace") or None,
            json_pointers=spec.get("jsonPointers") or (),
            jq_path_expressions=spec.get("jqPathExpressions") or (),
            managed_fields_managers=spec.get("managedFieldsManagers") or (),
        )

    def matches(self, key: resourcekey.ResourceKey) -> bool:
        """Whether this rule applies to the resource ``key``."""
        return (
            resourcekey.glob_match(self.group, key.group)
            and resourcekey.glob_match(self.kind, key.kind)
            and (not self.name or self.name == key.name)
            and (not self.namespace or self.namespace == key.namespace)
        )


@dataclass(frozen=True)
class DiffSettings:
    """System-level diff settings from ``argocd-cm``: ignore rules per kind and whether status is compared."""

    ignore: tuple[IgnoreRule, ...] = ()
    normalize_status: bool = True


def settings_from_configmap(data: Mapping[str, str]) -> DiffSettings:
    """``resource.customizations.ignoreDifferences.<group>_<kind>`` (and ``.all``), the ``ignoreDifferences``
    entries of ``resource.customizations``, and ``resource.compareoptions``' ``ignoreResourceStatusField``."""
    rules: list[IgnoreRule] = []
    for (group, kind), override in customizations.resource_overrides(data).items():
        spec = override.ignore_differences
        if not spec:
            continue
        unknown = sorted(set(spec) - {"jsonPointers", "jqPathExpressions", "managedFieldsManagers"})
        if unknown:
            raise CustomizationError(
                f"ignoreDifferences for {group or '(core)'}/{kind}: unknown field(s) {', '.join(unknown)}"
            )
        try:
            rules.append(
                IgnoreRule(
                    group,
                    kind,
                    json_pointers=spec.get("jsonPointers") or (),
                    jq_path_expressions=spec.get("jqPathExpressions") or (),
                    managed_fields_managers=spec.get("managedFieldsManagers") or (),
                )
            )
        except IgnoreDifferencesError as exc:
            raise CustomizationError(f"ignoreDifferences for {group or '(core)'}/{kind}: {exc}") from exc
    normalize_status = True
    raw = data.get("resource.compareoptions")
    if raw:
        try:
            options = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise CustomizationError(
                f"argocd-cm key 'resource.compareoptions' is not valid YAML: {exc}"
            ) from exc
        if not isinstance(options, Mapping):
            raise CustomizationError("argocd-cm key 'resource.compareoptions' must be a mapping")
        mode = options.get("ignoreResourceStatusField")
        mode = "off" if mode is False else str(mode).lower() if mode is not None else "all"
        if mode in ("off", "false", "none"):
            normalize_status = False
        elif mode == "crd":
            normalize_status = False
            rules.append(
                IgnoreRule("apiextensions.k8s.io", "CustomResourceDefinition", json_pointers=("/status",))
            )
        elif mode != "all":
            log.warning("unrecognised ignoreResourceStatusField %r; ignoring status for all objects", mode)
    return DiffSettings(tuple(rules), normalize_status)


# ---------------------------------------------------------------------------------------------------
# Normalization


def _metadata(obj: dict[str, Any]) -> dict[str, Any] | None:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else None


def _normalize(obj: dict[str, Any], key: resourcekey.ResourceKey, *, status: bool) -> None:
    """Built-in normalization, in place."""
    metadata = _metadata(obj)
    if metadata is not None:
        for name in _SERVER_METADATA:
            metadata.pop(name, None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            for name in _IGNORED_ANNOTATIONS:
                annotations.pop(name, None)
            if not annotations:
                del metadata["annotations"]
    if status:
        obj.pop("status", None)
    if key.group == "" and key.kind == "Secret":
        _normalize_secret(obj)
    elif key.group == "" and key.kind == "Endpoints":
        _normalize_endpoints(obj)


def _normalize_secret(obj: dict[str, Any]) -> None:
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise DiffError("Secret data must be a map")
    data = dict(data or {})
    for name, value in list(data.items()):
        if value is None:
            data[name] = ""
    string_data = obj.pop("stringData", None)
    if string_data is not None:
        if not isinstance(string_data, dict):
            raise DiffError("Secret stringData must be a map")
        for name, value in string_data.items():
            text = "" if value is None else value if isinstance(value, str) else str(value)
            data[name] = base64.b64encode(text.encode()).decode()
    if data or "data" in obj:
        obj["data"] = data


def _sort_key(value: Any) -> str:
    """A canonical string for ordering and keying JSON values (strings stay themselves)."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _normalize_endpoints(obj: dict[str, Any]) -> None:
    subsets = obj.get("subsets")
    if not isinstance(subsets, list):
        return
    for subset in subsets:
        if not isinstance(subset, dict):
            continue
        for name in ("addresses", "notReadyAddresses"):
            if isinstance(subset.get(name), list):
                subset[name].sort(
                    key=lambda a: (str(a.get("ip", "")), _sort_key(a)) if isinstance(a, dict) else ("", "")
                )
        if isinstance(subset.get("ports"), list):
            subset["ports"].sort(
                key=lambda p: (
                    (str(p.get("name", "")), str(p.get("port", "")), _sort_key(p))
                    if isinstance(p, dict)
                    else ("", "", "")
                )
            )
    subsets.sort(key=_sort_key)


# ---------------------------------------------------------------------------------------------------
# Quantities and equivalence

_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)
_SUFFIX = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


def parse_quantity(value: Any) -> Fraction | None:
    """A Kubernetes quantity (``"500m"``, ``"1Gi"``, ``"1e3"``, ``2``) as an exact number, or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value)
    if not isinstance(value, str) or len(value) > 64:
        return None
    match = _QUANTITY.match(value.strip())
    if match is None:
        return None
    number = Fraction(match.group(1))
    if match.group(2):
        exponent = int(match.group(2)[1:])
        if abs(exponent) > 64:
            return None
        number *= Fraction(10) ** exponent
    if match.group(3):
        number *= _SUFFIX[match.group(3)]
    return number


def _is_quantity_path(path: tuple[str, ...]) -> bool:
    return (len(path) >= 2 and path[-2] in _QUANTITY_MAPS) or (bool(path) and path[-1] in _QUANTITY_FIELDS)


def _equivalent(desired: Any, live: Any, path: tuple[str, ...]) -> bool:
    if jsonpatch.json_equal(desired, live):
        return True
    if _is_quantity_path(path):
        left, right = parse_quantity(desired), parse_quantity(live)
        if left is not None and left == right:
            return True
    if path and path[-1] in _INT_OR_STRING_FIELDS:
        values = {type(desired), type(live)}
        if values == {int, str}:
            return str(desired) == str(live)
    return False


def _is_zero(value: Any) -> bool:
    if value is None or value is False or value == "" or value == []:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, dict):
        return all(_is_zero(item) for item in value.values())
    return False


def _clean(value: Any) -> Any:
    """A copy of a desired value with ``null`` members dropped (they mean "not set")."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------
# Predicting live after apply

_ABSENT: Any = object()
_ITEM = "[]"
# Never removed because last-applied had them: the controller may fill them in outside the manifest.
_IDENTITY = frozenset({("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")})


class _Merger:
    """Computes the live object as it would be after applying desired (see the module docstring)."""

    def __init__(self, root_type: str | None) -> None:
        self.root_type = root_type

    def merge_object(self, desired: dict[str, Any], live: dict[str, Any], prev: Any) -> dict[str, Any]:
        return self._merge_map(desired, live, prev, self.root_type, ())

    def _merge_map(
        self,
        desired: dict[str, Any],
        live: dict[str, Any],
        prev: Any,
        type_name: str | None,
        path: tuple[str, ...],
    ) -> dict[str, Any]:
        out = dict(live)
        for name, wanted in desired.items():
            if wanted is None:
                continue
            fld = patchmeta.field(type_name, name)
            child_prev = prev.get(name, _ABSENT) if isinstance(prev, dict) else _ABSENT
            current = live.get(name)
            if current is not None:
                out[name] = self._merge_value(wanted, current, child_prev, fld, (*path, name))
            elif not _is_zero(wanted):
                out[name] = _clean(wanted)
        if isinstance(prev, dict):
            for name in prev:
                if desired.get(name) is None and (*path, name) not in _IDENTITY:
                    out.pop(name, None)
        return out

    def _merge_value(
        self, desired: Any, live: Any, prev: Any, fld: patchmeta.Field | None, path: tuple[str, ...]
    ) -> Any:
        if isinstance(desired, dict) and isinstance(live, dict):
            return self._merge_map(desired, live, prev, fld.elem if fld is not None else None, path)
        if isinstance(desired, list) and isinstance(live, list):
            return self._merge_list(desired, live, prev if isinstance(prev, list) else None, fld, path)
        if _equivalent(desired, live, path):
            return live
        return _clean(desired)

    def _merge_list(
        self,
        desired: list[Any],
        live: list[Any],
        prev: list[Any] | None,
        fld: patchmeta.Field | None,
        path: tuple[str, ...],
    ) -> list[Any]:
        item_path = (*path, _ITEM)
        if fld is not None and fld.list_type == "map" and fld.keys:
            keyed = self._merge_keyed(desired, live, prev, fld, item_path)
            if keyed is not None:
                return keyed
        if fld is not None and fld.list_type == "set":
            out = list(live)
            for item in desired:
                if item is not None and not any(jsonpatch.json_equal(item, existing) for existing in out):
                    out.append(item)
            if prev is not None:
                dropped = [p for p in prev if not any(jsonpatch.json_equal(p, d) for d in desired)]
                out = [item for item in out if not any(jsonpatch.json_equal(item, p) for p in dropped)]
            return out
        if len(desired) != len(live):
            cleaned: list[Any] = _clean(desired)
            return cleaned
        elem = fld.elem if fld is not None else None
        item_fld = patchmeta.Field(elem=elem) if elem is not None else None
        return [
            self._merge_value(want, have, _ABSENT, item_fld, item_path) if want is not None else have
            for want, have in zip(desired, live, strict=True)
        ]

    def _merge_keyed(
        self,
        desired: list[Any],
        live: list[Any],
        prev: list[Any] | None,
        fld: patchmeta.Field,
        path: tuple[str, ...],
    ) -> list[Any] | None:
        defaults = dict(fld.key_defaults)

        def key_of(item: Any) -> tuple[str, ...] | None:
            if not isinstance(item, dict) or fld.keys[0] not in item:
                return None
            return tuple(
                _sort_key(item[k]) if k in item else _sort_key(defaults[k]) if k in defaults else "\x00"
                for k in fld.keys
            )

        wanted = [item for item in desired if item is not None]
        wanted_keys = [key_of(item) for item in wanted]
        live_keys = [key_of(item) for item in live]
        if any(k is None for k in wanted_keys) or any(k is None for k in live_keys):
            return None  # items without their key: compare as an atomic list
        out = list(live)
        position = {k: i for i, k in enumerate(live_keys)}
        prev_by_key = {key_of(item): item for item in prev or () if key_of(item) is not None}
        for item, item_key in zip(wanted, wanted_keys, strict=True):
            if item_key in position:
                index = position[item_key]
                out[index] = self._merge_map(
                    item, out[index], prev_by_key.get(item_key, _ABSENT), fld.elem, path
                )
            else:
                position[item_key] = len(out)
                out.append(_clean(item))
        removed = {k for k in prev_by_key if k not in set(wanted_keys)}
        if removed:
            out = [item for item in out if key_of(item) not in removed]
        return out


def _root_type(key: resourcekey.ResourceKey) -> str:
    known = _KNOWN_ROOTS.get((key.group, key.kind))
    return known if known is not None else patchmeta.root_type(key.group, key.kind)


# ---------------------------------------------------------------------------------------------------
# Applying ignore rules


def _remove_pointer(obj: Any, pointer: str) -> None:
    tokens = jsonpatch.parse_pointer(pointer)
    current = obj
    for token in tokens[:-1]:
        if isinstance(current, dict):
            if token not in current:
                return
            current = current[token]
        elif isinstance(current, list):
            if not token.isdigit() or int(token) >= len(current):
                return
            current = current[int(token)]
        else:
            return
    last = tokens[-1]
    if isinstance(current, dict):
        current.pop(last, None)
    elif isinstance(current, list) and last.isdigit() and int(last) < len(current):
        del current[int(last)]


def _apply_jq(
    obj: dict[str, Any], expression: str, *, timeout: float, key: resourcekey.ResourceKey, warnings: list[str]
) -> dict[str, Any]:
    try:
        result = jqpath.delete(obj, expression, timeout=timeout)
    except jqpath.JqEvaluationError as exc:
        # jq's messages can quote values; for a Secret say only that it failed.
        detail = "it failed" if key.kind == "Secret" else str(exc)
        message = f"jqPathExpressions {expression!r} on {key}: {detail}; not applied"
        log.warning("%s", message)
        warnings.append(message)
        return obj
    if not isinstance(result, dict):
        message = f"jqPathExpressions {expression!r} on {key} did not return an object; not applied"
        log.warning("%s", message)
        warnings.append(message)
        return obj
    return result


def _ignore_managed_fields(
    desired: dict[str, Any] | None, live: dict[str, Any], owned: Iterable[fieldsv1.Path]
) -> None:
    """Remove the fields trusted managers own from both sides wherever the two differ (Argo CD removes
    the intersection of their fields with the modified ones). A field only live has is removed too, so
    that no later removal rule (last-applied, our apply manager) counts it as a difference."""
    for path in sorted(owned, key=len, reverse=True):
        try:
            in_live, current = fieldsv1.get(live, path)
            if not in_live:
                continue
            in_desired, wanted = fieldsv1.get(desired, path) if desired is not None else (False, None)
            if in_desired and jsonpatch.json_equal(wanted, current):
                continue
            fieldsv1.remove(live, path)
            if in_desired and desired is not None:
                fieldsv1.remove(desired, path)
        except fieldsv1.FieldsV1Error:
            continue


# ---------------------------------------------------------------------------------------------------
# Secrets


def mask_secrets(*objs: Mapping[str, Any] | None) -> list[dict[str, Any] | None]:
    """Copies of Secret objects (e.g. normalized live and predicted live of one Secret) with every
    ``data``/``stringData`` value replaced by ``+`` runs: per key, equal values get the same run and
    different values runs of different lengths (8, 12, 16, …), so a diff still shows which keys changed.
    ``None`` entries stay ``None``; the last-applied annotation (which quotes the data) is dropped."""
    out: list[dict[str, Any] | None] = [None if obj is None else jsondata.clone(dict(obj)) for obj in objs]
    for obj in out:
        if obj is None:
            continue
        metadata = _metadata(obj)
        annotations = metadata.get("annotations") if metadata is not None else None
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED_ANNOTATION, None)
    for section in ("data", "stringData"):
        maps = [obj.get(section) if obj is not None else None for obj in out]
        keys: set[str] = set()
        for data in maps:
            if isinstance(data, dict):
                keys.update(data)
        for name in sorted(keys):
            replacements: list[tuple[Any, str]] = []
            for data in maps:
                if not isinstance(data, dict) or name not in data:
                    continue
                value = data[name]
                for seen, mask in replacements:
                    if jsonpatch.json_equal(seen, value):
                        data[name] = mask
                        break
                else:
                    mask = MASK + "++++" * len(replacements)
                    replacements.append((value, mask))
                    data[name] = mask
    for obj in out:
        if obj is not None and not isinstance(obj.get("data", {}), dict):
            obj["data"] = MASK
    return out


def mask_secret(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of one Secret with its values masked (see :func:`mask_secrets`)."""
    masked = mask_secrets(obj)[0]
    assert masked is not None
    return masked


# ---------------------------------------------------------------------------------------------------
# The result


def to_yaml(obj: Mapping[str, Any] | None) -> str:
    """YAML as the diff shows it: keys sorted, block style; ``None`` is the empty document."""
    if obj is None:
        return ""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(dict(obj), Dumper=dumper, default_flow_style=False, sort_keys=True, allow_unicode=True)


@dataclass
class ResourceDiff:
    """The comparison of one resource.

    ``normalized_live`` is live after normalization and ignore rules (``None`` when the resource does not
    exist); ``predicted_live`` is what live would be after applying desired (``None`` when it is not
    desired, i.e. would be pruned). ``modified`` says they differ. For Secrets both are masked.
    ``warnings`` lists ignore rules that could not be applied (a failing jq expression).
    """

    key: resourcekey.ResourceKey
    modified: bool
    normalized_live: dict[str, Any] | None
    predicted_live: dict[str, Any] | None
    warnings: tuple[str, ...] = ()
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def diff_text(self) -> str:
        """A unified diff of the YAML of normalized live (``---``) and predicted live (``+++``); empty when
        not modified. Computed on first use."""
        if not self.modified:
            return ""
        if self._text is None:
            self._text = "".join(
                difflib.unified_diff(
                    to_yaml(self.normalized_live).splitlines(keepends=True),
                    to_yaml(self.predicted_live).splitlines(keepends=True),
                    fromfile=f"live/{self.key}",
                    tofile=f"desired/{self.key}",
                )
            )
        return self._text

    @property
    def diff_lines(self) -> list[str]:
        """:attr:`diff_text` as lines."""
        return self.diff_text.splitlines()


def _check_object(obj: Any, what: str) -> dict[str, Any] | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise DiffError(f"the {what} object must be a mapping, not {type(obj).__name__}")
    if not isinstance(obj.get("kind"), str) or not isinstance(obj.get("apiVersion"), str):
        raise DiffError(f"the {what} object needs apiVersion and kind")
    if obj.get("metadata") is not None and not isinstance(obj.get("metadata"), Mapping):
        raise DiffError(f"the {what} object's metadata must be a mapping")
    try:
        return jsondata.clone(dict(obj))
    except Exception as exc:  # pragma: no cover - orjson falls back to deepcopy
        raise DiffError(f"the {what} object is not JSON data") from exc


def _last_applied(live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``kubectl.kubernetes.io/last-applied-configuration`` of a live object, if it has a usable one."""
    annotations = _get_annotations(live)
    raw = annotations.get(LAST_APPLIED_ANNOTATION)
    if not isinstance(raw, str):
        return None
    try:
        parsed = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _get_annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def _sole_apply_ownership(raw_live: Mapping[str, Any], manager: str) -> list[fieldsv1.Path]:
    """Paths of live (outside ``status``) that our server-side-apply manager owns and no other manager
    owns in part or whole: if desired no longer has them, the next apply removes them."""
    mine = fieldsv1.owned_by(raw_live, [manager], operation="Apply")
    if not mine:
        return []
    shared: set[fieldsv1.Path] = set()
    for path in fieldsv1.owned_by_others(raw_live, manager, "Apply"):
        shared.update(path[:end] for end in range(1, len(path) + 1))
    return [path for path in mine if path[:1] != ("f:status",) and path not in shared]


def _absent_from(desired: dict[str, Any], paths: Iterable[fieldsv1.Path]) -> list[fieldsv1.Path]:
    out = []
    for path in paths:
        try:
            present, _ = fieldsv1.get(desired, path)
        except fieldsv1.FieldsV1Error:
            continue
        if not present:
            out.append(path)
    return out


def diff(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    *,
    ignore: Iterable[IgnoreRule] = (),
    managed_fields_managers: Iterable[str] = (),
    normalize_status: bool = True,
    apply_manager: str | None = DEFAULT_APPLY_MANAGER,
    jq_timeout: float = jqpath.DEFAULT_TIMEOUT,
) -> ResourceDiff:
    """Compare a desired object (from Git) with the live one (see the module docstring).

    ``ignore`` are the Application's and the system's rules (only those matching the resource apply);
    ``managed_fields_managers`` are trusted managers for every resource. ``apply_manager`` is the
    server-side-apply field manager whose dropped fields count as removals (``None``: don't look). The
    inputs are not modified. Raises :class:`~tugboat.gitops.errors.DiffError` for inputs that are not
    Kubernetes objects.
    """
    desired_obj = _check_object(desired, "desired")
    live_obj = _check_object(live, "live")
    reference = desired_obj if desired_obj is not None else live_obj
    if reference is None:
        raise DiffError("nothing to compare: desired and live are both missing")
    key = resourcekey.ResourceKey.of(reference)
    if desired_obj is not None and live_obj is not None:
        live_key = resourcekey.ResourceKey.of(live_obj)
        if (live_key.group, live_key.kind) != (key.group, key.kind):
            raise DiffError(f"cannot compare {key.group_kind} with {live_key.group_kind}")
    rules = []
    for rule in ignore:
        if not isinstance(rule, IgnoreRule):
            raise DiffError(f"ignore rules must be IgnoreRule objects, not {type(rule).__name__}")
        if rule.matches(key):
            rules.append(rule)
    managers = {*managed_fields_managers}
    for rule in rules:
        managers.update(rule.managed_fields_managers)

    warnings: list[str] = []
    # Read what normalization removes (ownership, last-applied) before normalizing.
    owned: frozenset[fieldsv1.Path] = frozenset()
    sole: list[fieldsv1.Path] = []
    prev: Any = _ABSENT
    if live_obj is not None:
        owned = fieldsv1.owned_by(live_obj, managers) if managers else frozenset()
        sole = _sole_apply_ownership(live_obj, apply_manager) if apply_manager else []
        try:
            prev = _prepare(
                _last_applied(live_obj), key, rules, status=normalize_status, timeout=jq_timeout, warnings=[]
            )
        except DiffError:
            prev = None  # an unusable last-applied configuration only loses removal detection

    norm_desired, norm_live = (
        _prepare(obj, key, rules, status=normalize_status, timeout=jq_timeout, warnings=warnings)
        for obj in (desired_obj, live_obj)
    )
    if norm_live is not None and owned:
        _ignore_managed_fields(norm_desired, norm_live, owned)

    predicted: dict[str, Any] | None
    if norm_desired is None:
        predicted = None
        modified = True
    elif norm_live is None:
        predicted = _clean(norm_desired)
        modified = True
    else:
        predicted = _Merger(_root_type(key)).merge_object(norm_desired, norm_live, prev)
        for path in sorted(_absent_from(norm_desired, sole), key=len, reverse=True):
            try:
                fieldsv1.remove(predicted, path)
            except fieldsv1.FieldsV1Error:
                continue
        modified = not jsonpatch.json_equal(predicted, norm_live)

    if key.group == "" and key.kind == "Secret":
        norm_live, predicted = mask_secrets(norm_live, predicted)
    return ResourceDiff(key, modified, norm_live, predicted, tuple(warnings))


def _prepare(
    obj: dict[str, Any] | None,
    key: resourcekey.ResourceKey,
    rules: list[IgnoreRule],
    *,
    status: bool,
    timeout: float,
    warnings: list[str],
) -> dict[str, Any] | None:
    """One side, normalized and with the ignore rules' pointers and jq expressions applied (in place)."""
    if obj is None:
        return None
    _normalize(obj, key, status=status)
    for rule in rules:
        for pointer in rule.json_pointers:
            _remove_pointer(obj, pointer)
        for expression in rule.jq_path_expressions:
            obj = _apply_jq(obj, expression, timeout=timeout, key=key, warnings=warnings)
    return obj


def ignore_rules(specs: Iterable[Mapping[str, Any]] | None) -> list[IgnoreRule]:
    """An Application's ``spec.ignoreDifferences`` as rules; a malformed entry raises
    :class:`~tugboat.gitops.errors.IgnoreDifferencesError` naming its position."""
    rules = []
    for index, spec in enumerate(specs or ()):
        try:
            rules.append(IgnoreRule.from_spec(spec))
        except IgnoreDifferencesError as exc:
            raise IgnoreDifferencesError(f"spec.ignoreDifferences[{index}]: {exc}") from exc
    return rules


def server_side_diff(
    predicted: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    ignore: Iterable[IgnoreRule] = (),
    normalize_status: bool = True,
    jq_timeout: float = jqpath.DEFAULT_TIMEOUT,
) -> ResourceDiff:
    """Compare a live object with what a server-side apply dry run of the desired one returned.

    Argo CD's server-side diff: the API server itself computed the object the apply would produce
    (defaults, admission, field ownership and removals included), so the two are compared as they are,
    after the built-in normalization (server-set metadata, status) and the ignore rules.
    """
    predicted_obj = _check_object(predicted, "predicted")
    live_obj = _check_object(live, "live")
    assert predicted_obj is not None and live_obj is not None
    key = resourcekey.ResourceKey.of(live_obj)
    rules = [rule for rule in ignore if rule.matches(key)]
    warnings: list[str] = []
    norm_predicted, norm_live = (
        _prepare(obj, key, rules, status=normalize_status, timeout=jq_timeout, warnings=warnings)
        for obj in (predicted_obj, live_obj)
    )
    modified = not jsonpatch.json_equal(norm_predicted, norm_live)
    if key.group == "" and key.kind == "Secret":
        norm_live, norm_predicted = mask_secrets(norm_live, norm_predicted)
    return ResourceDiff(key, modified, norm_live, norm_predicted, tuple(warnings))
