"""The CustomResourceDefinitions of the GitOps controller: ``Application`` and ``AppProject``.

Users bring their Argo CD manifests unchanged, so the names, scope, short names and printer columns are
Argo CD's (research/argocd.md §2): ``applications.argoproj.io`` has no status subresource (the controller
and users write ``status`` and the top-level ``operation`` like any field) and prints Sync Status and
Health Status. The schemas are our own and deliberately open below the top-level fields (Argo's spec
grows every release); the controller validates what it uses and reports problems as conditions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind

GROUP = "argoproj.io"
VERSION = "v1alpha1"

APPLICATION = Kind(GROUP, VERSION, "Application", "applications")
APPPROJECT = Kind(GROUP, VERSION, "AppProject", "appprojects")

_OPEN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _crd(kind: Kind, *, short_names: list[str], schema: dict[str, Any], columns: list[Obj]) -> Obj:
    version: Obj = {
        "name": kind.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {},
    }
    if columns:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{kind.group}",
            "labels": {
                "app.kubernetes.io/name": f"{kind.plural}.{kind.group}",
                "app.kubernetes.io/part-of": "tugboat",
            },
        },
        "spec": {
            "group": kind.group,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": short_names,
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def application_crd() -> Obj:
    schema = {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["destination", "project"],
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {
                    "project": {"type": "string"},
                    "destination": {
                        "type": "object",
                        "properties": {
                            "server": {"type": "string"},
                            "name": {"type": "string"},
                            "namespace": {"type": "string"},
                        },
                    },
                    "source": _OPEN,
                    "sources": {"type": "array", "items": _OPEN},
                    "syncPolicy": _OPEN,
                    "ignoreDifferences": {"type": "array", "items": _OPEN},
                    "info": {"type": "array", "items": _OPEN},
                    "revisionHistoryLimit": {"type": "integer", "format": "int64"},
                },
            },
            "status": _OPEN,
            "operation": _OPEN,
        },
    }
    columns: list[Obj] = [
        {"name": "Sync Status", "type": "string", "jsonPath": ".status.sync.status"},
        {"name": "Health Status", "type": "string", "jsonPath": ".status.health.status"},
        {"name": "Revision", "type": "string", "jsonPath": ".status.sync.revision", "priority": 10},
        {"name": "Project", "type": "string", "jsonPath": ".spec.project", "priority": 10},
    ]
    return _crd(APPLICATION, short_names=["app", "apps"], schema=schema, columns=columns)


def appproject_crd() -> Obj:
    schema = {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _OPEN,
            "status": _OPEN,
        },
    }
    return _crd(APPPROJECT, short_names=["appproj", "appprojs"], schema=schema, columns=[])


def default_project(namespace: str) -> Obj:
    """Argo CD's ``default`` AppProject: any repository, any destination, any kind."""
    return {
        "apiVersion": APPPROJECT.api_version,
        "kind": APPPROJECT.kind,
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }


async def install(client: Client, *, namespace: str = "argocd") -> None:
    """Install or upgrade the CRDs (server-side apply), then create the control namespace and the
    ``default`` AppProject when missing (an existing one is the user's and is left alone)."""
    for crd in (application_crd(), appproject_crd()):
        await client.apply(kinds.CRD, crd, force=True)
    if await client.get_or_none(kinds.NAMESPACE, namespace) is None:
        try:
            await client.create(kinds.NAMESPACE, {"metadata": {"name": namespace}})
        except errors.ApiError as exc:
            if not exc.already_exists:
                raise
    for _ in range(50):  # the new types may take a moment to be served
        try:
            if await client.get_or_none(APPPROJECT, "default", namespace) is None:
                await client.create(APPPROJECT, default_project(namespace))
            return
        except errors.ApiError as exc:
            if exc.already_exists:
                return
            if not exc.not_found:
                raise
        await asyncio.sleep(0.1)
    raise errors.KubeError("the AppProject type was not served after installing its CRD")
