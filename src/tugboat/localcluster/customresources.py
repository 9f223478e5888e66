"""How a CustomResourceDefinition becomes served resource types.

Each served version of a CRD is one :class:`ResourceType` carrying the version's structural schema (for
pruning, defaulting, validation and list semantics), its printer columns and its subresources.
"""

from __future__ import annotations

from typing import Any

from tugboat.localcluster import crdschema, metadata
from tugboat.localcluster.resources import ResourceType, ScalePaths


def types_for_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CRD serves (none while its names are not accepted)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
    if not (group and plural and kind):
        return []
    result = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        openapi = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
        subresources = version.get("subresources") or {}
        subs = []
        scale = None
        if "status" in subresources:
            subs.append("status")
        if "scale" in subresources:
            subs.append("scale")
            paths = subresources["scale"] or {}
            scale = ScalePaths(
                spec_replicas=paths.get("specReplicasPath", ".spec.replicas"),
                status_replicas=paths.get("statusReplicasPath", ".status.replicas"),
                label_selector=paths.get("labelSelectorPath"),
            )
        result.append(
            ResourceType(
                group=group,
                version=version.get("name", ""),
                resource=plural,
                kind=kind,
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(subs),
                generation=True,
                singular=names.get("singular") or kind.lower(),
                list_kind=names.get("listKind") or f"{kind}List",
                scale=scale,
                crd_name=metadata.name_of(crd),
                schema=crdschema.Schema(openapi),
                printer_columns=list(version.get("additionalPrinterColumns") or []),
                openapi_schema=crdschema.openapi_schema_for(openapi) if openapi else None,
                storage_version=bool(version.get("storage", False)),
            )
        )
    return result
