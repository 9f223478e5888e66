"""Argo CD's per-kind resource customizations, read from ``argocd-cm`` data.

Users configure custom health checks and system-wide ``ignoreDifferences`` in the ``argocd-cm`` ConfigMap,
and we accept their ConfigMaps unchanged. Argo CD reads two forms (``util/settings/settings.go``):

* one key per customization: ``resource.customizations.<type>.<group>_<kind>`` (``<kind>`` alone for the
  core group, ``all`` for every kind), ``<type>`` being ``health``, ``useOpenLibs``, ``actions``,
  ``ignoreDifferences``, ``ignoreResourceUpdates`` or ``knownTypeFields``;
* the older single key ``resource.customizations``: YAML mapping ``<group>/<kind>`` (``<kind>`` for the
  core group; wildcards such as ``*.aws.crossplane.io/*`` allowed) to ``health.lua``,
  ``health.lua.useOpenLibs``, ``actions``, ``ignoreDifferences``, ``ignoreResourceUpdates`` and
  ``knownTypeFields``.

Split keys win over the single key for the same group/kind and customization. This module only parses;
:mod:`tugboat.gitops.luahealth` and :mod:`tugboat.gitops.diff` turn the results into checks and rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from tugboat.gitops.errors import CustomizationError

PREFIX = "resource.customizations"

_SPLIT_TYPES = {
    "health": "health_lua",
    "useOpenLibs": "use_open_libs",
    "actions": "actions",
    "ignoreDifferences": "ignore_differences",
    "ignoreResourceUpdates": "ignore_resource_updates",
    "knownTypeFields": "known_type_fields",
}
_SINGLE_FIELDS = {
    "health.lua": "health_lua",
    "health.lua.useOpenLibs": "use_open_libs",
    "actions": "actions",
    "ignoreDifferences": "ignore_differences",
    "ignoreResourceUpdates": "ignore_resource_updates",
    "knownTypeFields": "known_type_fields",
}


@dataclass(frozen=True)
class ResourceOverride:
    """The customizations of one group/kind pattern (Argo CD's ``ResourceOverride``)."""

    health_lua: str = ""
    use_open_libs: bool = False
    actions: str = ""
    ignore_differences: Mapping[str, Any] = field(default_factory=dict)
    ignore_resource_updates: Mapping[str, Any] = field(default_factory=dict)
    known_type_fields: tuple[Mapping[str, Any], ...] = ()


def split_override_key(key: str) -> tuple[str, str]:
    """``"apps/Deployment"`` → ``("apps", "Deployment")``; ``"Service"`` → ``("", "Service")``."""
    group, slash, kind = key.rpartition("/")
    if not kind or (slash and not group):
        raise CustomizationError(
            f"invalid resource customization key {key!r}: expected <group>/<kind> or <kind>"
        )
    return group, kind


def _split_key_group_kind(config_key: str, group_kind: str) -> tuple[str, str]:
    """``<group>_<kind>`` or ``<kind>`` or ``all`` from a split ``argocd-cm`` key."""
    if group_kind == "all":
        return "*", "*"
    parts = group_kind.split("_")
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    if len(parts) == 1 and group_kind:
        return "", group_kind
    raise CustomizationError(
        f"invalid argocd-cm key {config_key!r}: "
        f"expected {PREFIX}.<type>.<group>_<kind> or {PREFIX}.<type>.<kind>"
    )


def _yaml(config_key: str, text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CustomizationError(f"argocd-cm key {config_key!r} is not valid YAML: {exc}") from exc


def _bool(config_key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "t"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "f", ""):
        return False
    raise CustomizationError(f"argocd-cm key {config_key!r}: expected true or false, got {value!r}")


def _convert(config_key: str, attribute: str, value: Any) -> Any:
    if attribute in ("health_lua", "actions"):
        if not isinstance(value, str):
            raise CustomizationError(f"argocd-cm key {config_key!r}: expected a string")
        return value
    if attribute == "use_open_libs":
        return _bool(config_key, value)
    if attribute in ("ignore_differences", "ignore_resource_updates"):
        parsed = _yaml(config_key, value)
        if parsed is None:
            return {}
        if not isinstance(parsed, Mapping):
            raise CustomizationError(f"argocd-cm key {config_key!r}: expected a mapping")
        return dict(parsed)
    parsed = _yaml(config_key, value)  # known_type_fields
    if parsed is None:
        return ()
    if not isinstance(parsed, list) or not all(isinstance(item, Mapping) for item in parsed):
        raise CustomizationError(f"argocd-cm key {config_key!r}: expected a list of {{field, type}}")
    return tuple(dict(item) for item in parsed)


def resource_overrides(data: Mapping[str, str]) -> dict[tuple[str, str], ResourceOverride]:
    """All resource customizations in ``argocd-cm`` data, by ``(group, kind)`` pattern."""
    overrides: dict[tuple[str, str], ResourceOverride] = {}
    single = data.get(PREFIX)
    if single is not None and single.strip():
        parsed = _yaml(PREFIX, single)
        if not isinstance(parsed, Mapping):
            raise CustomizationError(f"argocd-cm key {PREFIX!r}: expected a mapping of <group>/<kind> keys")
        for key, fields in parsed.items():
            if not isinstance(key, str) or not isinstance(fields, Mapping):
                raise CustomizationError(f"argocd-cm key {PREFIX!r}: entry {key!r} must map to a mapping")
            group_kind = ("*", "*") if key == "all" else split_override_key(key)
            values: dict[str, Any] = {}
            for name, value in fields.items():
                attribute = _SINGLE_FIELDS.get(name)
                if attribute is None:
                    raise CustomizationError(
                        f"argocd-cm key {PREFIX!r}: unsupported customization {name!r} for {key!r}"
                    )
                values[attribute] = _convert(f"{PREFIX} {key}.{name}", attribute, value)
            overrides[group_kind] = ResourceOverride(**values)
    for config_key in sorted(data):
        if not config_key.startswith(PREFIX + "."):
            continue
        parts = config_key.split(".", 3)
        if len(parts) < 4:
            continue
        attribute = _SPLIT_TYPES.get(parts[2])
        if attribute is None:
            raise CustomizationError(
                f"argocd-cm key {config_key!r}: unsupported customization type {parts[2]!r}"
            )
        group_kind = _split_key_group_kind(config_key, parts[3])
        current = overrides.get(group_kind, ResourceOverride())
        overrides[group_kind] = replace(
            current, **{attribute: _convert(config_key, attribute, data[config_key])}
        )
    return overrides
