"""OpenAPI v3 documents, as much of them as kubectl needs (and CRD schemas for ``kubectl explain``).

kubectl's ``apply``, ``create -f`` and ``replace`` (default ``--validate=strict``) download the v3 index
and the document of the object's group version, and look for a PATCH operation carrying
``x-kubernetes-group-version-kind`` and a ``fieldValidation`` parameter (research/kubeapi.md §1.1). Each
document's URL carries a hash of its content, because kubectl caches documents by that hash.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tugboat.localcluster.resources import Registry, ResourceType

_QUERY_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _definition_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


def _operation(rt: ResourceType, verb: str) -> dict[str, Any]:
    params = [
        {"name": p, "in": "query", "schema": {"type": "string"}, "uniqueItems": True} for p in _QUERY_PARAMS
    ]
    return {
        "operationId": f"{verb}{rt.kind}",
        "parameters": params if verb in ("patch", "update", "create") else [],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    }


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    prefix = "/" + _gv_path(group, version)
    for rt in registry.in_group_version(group, version):
        scope = (
            f"{prefix}/namespaces/{{namespace}}/{rt.resource}" if rt.namespaced else f"{prefix}/{rt.resource}"
        )
        paths[scope] = {"get": _operation(rt, "list"), "post": _operation(rt, "post")}
        paths[f"{scope}/{{name}}"] = {
            "get": _operation(rt, "get"),
            "put": _operation(rt, "put"),
            "patch": _operation(rt, "patch"),
            "delete": _operation(rt, "delete"),
        }
        schema: dict[str, Any] = dict(rt.openapi_schema or {"type": "object"})
        schema["x-kubernetes-group-version-kind"] = [
            {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ]
        schemas[_definition_name(rt)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


class OpenAPI:
    """Serves the index and per-group-version documents, recomputed when the registry changes."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._generation = -1
        self._docs: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}

    def _refresh(self) -> None:
        if self._generation == self.registry.generation:
            return
        docs: dict[str, bytes] = {}
        for group, versions in self.registry.groups():
            for version in versions:
                body = orjson.dumps(group_version_document(self.registry, group, version))
                docs[_gv_path(group, version)] = body
        self._docs = docs
        self._hashes = {path: hashlib.sha512(body).hexdigest()[:64].upper() for path, body in docs.items()}
        self._generation = self.registry.generation

    def index(self) -> dict[str, Any]:
        self._refresh()
        return {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={self._hashes[path]}"}
                for path in self._docs
            }
        }

    def document(self, path: str) -> bytes | None:
        self._refresh()
        return self._docs.get(path.strip("/"))
