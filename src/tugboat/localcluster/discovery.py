"""API discovery documents: legacy (``APIVersions``, ``APIGroupList``, ``APIResourceList``) and aggregated.

kubectl 1.32 asks for aggregated discovery v2 first, then v2beta1, then legacy JSON, in one Accept header;
kubectl 1.29 accepts only v2beta1. We answer the first version the client lists (research/kubeapi.md §1.1),
and always serve legacy documents too.
"""

from __future__ import annotations

from typing import Any

from tugboat.localcluster.resources import Registry, ResourceType

AGGREGATED_VERSIONS = ("v2", "v2beta1")

_SUBRESOURCE_KINDS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    # subresource -> (group, version, kind, verbs); "" group/version means the parent's own.
    "status": ("", "", "", ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "log": ("", "v1", "Pod", ("get",)),
    "binding": ("", "v1", "Binding", ("create",)),
    "finalize": ("", "v1", "Namespace", ("update",)),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
}


def negotiate_aggregated(accept: str) -> str | None:
    """The aggregated discovery version the Accept header prefers, or ``None`` for legacy JSON."""
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        params = dict(p.split("=", 1) for p in pieces[1:] if "=" in p)
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") in AGGREGATED_VERSIONS:
                return params["v"]
            continue
        return None
    return None


def aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def _subresource_entries(rt: ResourceType) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    result = []
    for sub in rt.subresources:
        group, version, kind, verbs = _SUBRESOURCE_KINDS.get(sub, ("", "", "", ("get",)))
        result.append((sub, group if kind else rt.group, version or rt.version, kind or rt.kind, verbs))
    return result


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(group, versions) for group, versions in registry.groups() if group],
    }


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        entry: dict[str, Any] = {
            "name": rt.resource,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub, sub_group, sub_version, kind, verbs in _subresource_entries(rt):
            item: dict[str, Any] = {
                "name": f"{rt.resource}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if sub_group != rt.group or sub_version != rt.version:
                item["group"], item["version"] = sub_group, sub_version
            resources.append(item)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def aggregated(registry: Registry, *, core: bool, version: str) -> dict[str, Any]:
    """The aggregated discovery document for ``/api`` (``core``) or ``/apis``."""
    items = []
    for group, versions in registry.groups():
        if (group == "") != core:
            continue
        version_entries = []
        for v in versions:
            resources = []
            for rt in registry.in_group_version(group, v):
                entry: dict[str, Any] = {
                    "resource": rt.resource,
                    "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular,
                    "verbs": list(rt.verbs),
                }
                if rt.short_names:
                    entry["shortNames"] = list(rt.short_names)
                if rt.categories:
                    entry["categories"] = list(rt.categories)
                subs = [
                    {
                        "subresource": sub,
                        "responseKind": {"group": g, "version": ver, "kind": kind},
                        "verbs": list(verbs),
                    }
                    for sub, g, ver, kind, verbs in _subresource_entries(rt)
                ]
                if subs:
                    entry["subresources"] = subs
                resources.append(entry)
            version_entries.append({"version": v, "resources": resources, "freshness": "Current"})
        item: dict[str, Any] = {"metadata": {"name": group} if group else {}, "versions": version_entries}
        items.append(item)
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }
