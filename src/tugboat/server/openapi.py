"""An OpenAPI 3.1 description of the API server, built from the app's own routes.

Clients and API explorers need a machine-readable list of what the server answers. Writing it by hand
would drift from the code, so the paths come from the routes the app actually has (path template,
methods, the handler's docstring as the summary, public or not); only the shapes of the main payloads
are written here, as loose JSON Schemas (Argo CD's objects are large and open-ended, so they are
described by their well-known fields, with everything else allowed). Served at ``/api/openapi.json``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from starlette.routing import BaseRoute, Mount, Route

import tugboat

__all__ = ["OPENAPI_VERSION", "SCHEMAS", "document", "operations"]

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/"
_PUBLIC_API = {("POST", "/api/v1/session"), ("POST", "/api/webhook")}

Obj = dict[str, Any]


def _ref(name: str) -> Obj:
    return {"$ref": _REF + name}


def _loose(description: str, properties: Obj | None = None, **extra: Any) -> Obj:
    """An object schema that names its main fields and allows any other."""
    return {"type": "object", "description": description, "properties": properties or {}, **extra}


_STRING: Obj = {"type": "string"}
_BOOL: Obj = {"type": "boolean"}
_METADATA = _loose("Kubernetes object metadata.", {"name": _STRING, "namespace": _STRING})

SCHEMAS: dict[str, Obj] = {
    "Error": {
        "type": "object",
        "description": "An error answer, in the shape of Argo CD's gateway (code: a gRPC status code).",
        "properties": {"error": _STRING, "code": {"type": "integer"}, "message": _STRING},
        "required": ["error", "code", "message"],
    },
    "SessionCreateRequest": {
        "type": "object",
        "properties": {"username": _STRING, "password": _STRING},
        "required": ["username", "password"],
    },
    "SessionResponse": {
        "type": "object",
        "description": "A session token; the same value is set as the HTTP-only cookie argocd.token.",
        "properties": {"token": _STRING},
        "required": ["token"],
    },
    "Application": _loose(
        "An argoproj.io/v1alpha1 Application.",
        {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": _METADATA,
            "spec": _loose("What to deploy where (source(s), destination, project, syncPolicy)."),
            "status": _loose("Sync and health status, resources, history, operationState."),
            "operation": _loose("A requested operation (e.g. sync)."),
        },
    ),
    "ApplicationList": {
        "type": "object",
        "properties": {
            "metadata": _loose("List metadata.", {"resourceVersion": _STRING, "continue": _STRING}),
            "items": {"type": "array", "items": _ref("Application")},
        },
        "required": ["items"],
    },
    "ApplicationSyncRequest": _loose(
        "How to sync: revision, pruning, dry run, strategy, a subset of resources, sync options.",
        {
            "revision": _STRING,
            "prune": _BOOL,
            "dryRun": _BOOL,
            "strategy": _loose("hook: {} or apply: {force}."),
            "resources": {
                "type": "array",
                "items": _loose(
                    "One resource to sync.",
                    {"group": _STRING, "kind": _STRING, "name": _STRING, "namespace": _STRING},
                ),
            },
            "syncOptions": _loose("Sync options.", {"items": {"type": "array", "items": _STRING}}),
        },
    ),
    "RolloutInfo": _loose(
        "A Rollout as Argo Rollouts' dashboard shows it: status, strategy, step, ReplicaSets and pods, "
        "AnalysisRuns, experiments, and the Application that manages it.",
        {
            "objectMeta": _METADATA,
            "status": _STRING,
            "message": _STRING,
            "strategy": _STRING,
            "step": _STRING,
            "replicaSets": {"type": "array", "items": _loose("A ReplicaSet of the Rollout.")},
            "analysisRuns": {"type": "array", "items": _loose("An AnalysisRun of the Rollout.")},
        },
    ),
    "RolloutInfoList": {
        "type": "object",
        "properties": {"rollouts": {"type": "array", "items": _ref("RolloutInfo")}},
    },
    "Version": _loose("The server's version.", {"Version": _STRING}, required=["Version"]),
}

# Request and answer schemas of the operations that have one, by (method, path template).
_REQUESTS = {
    ("POST", "/api/v1/session"): "SessionCreateRequest",
    ("POST", "/api/v1/applications/{name}/sync"): "ApplicationSyncRequest",
}
_ANSWERS = {
    ("POST", "/api/v1/session"): "SessionResponse",
    ("GET", "/api/v1/applications"): "ApplicationList",
    ("GET", "/api/v1/applications/{name}"): "Application",
    ("POST", "/api/v1/applications/{name}/sync"): "Application",
    ("GET", "/api/v1/rollouts/{namespace}/info"): "RolloutInfoList",
    ("GET", "/api/v1/rollouts/{namespace}/{name}/info"): "RolloutInfo",
    ("GET", "/api/version"): "Version",
}
_QUERY = {
    ("GET", "/api/v1/applications"): {
        "projects": "Only Applications of these projects (comma-separated or repeated).",
        "selector": "A label selector.",
        "search": "Only Applications whose name contains this text.",
        "fields": "Keep only these fields (e.g. items.metadata.name,items.status.sync.status).",
        "limit": "At most this many items.",
        "continue": "The continue token of the previous page.",
    },
}
_MEDIA = {
    "/metrics": "text/plain",
    "/healthz": "text/plain",
}


def _path_format(route: BaseRoute) -> str | None:
    """The route's path with Starlette's converters left out (``{rest:path}`` -> ``{rest}``)."""
    if isinstance(route, Mount):
        return route.path_format.rstrip("/") + "/{path}"
    if isinstance(route, Route):
        return route.path_format
    return None


def _methods(route: BaseRoute) -> list[str]:
    if isinstance(route, Mount):
        return ["GET"]
    methods = getattr(route, "methods", None) or {"GET"}
    return sorted(method for method in methods if method != "HEAD")


def _endpoint(route: BaseRoute) -> Callable[..., Any] | None:
    endpoint = getattr(route, "endpoint", None)
    return endpoint if callable(endpoint) else None


def is_public(method: str, path: str, endpoint: Callable[..., Any] | None) -> bool:
    """Whether an operation answers without a session: everything outside ``/api`` (UI, health,
    metrics), the login and the webhook, and handlers not wrapped by ``context.guarded`` or wrapped with
    ``public=True`` (the ``public`` attribute ``context.guarded`` sets)."""
    if not path.startswith("/api/") or (method, path) in _PUBLIC_API:
        return True
    if endpoint is None:
        return True
    flag = getattr(endpoint, "public", None)
    return flag if isinstance(flag, bool) else True  # not a guarded handler: it checks nothing itself


def _summary(endpoint: Callable[..., Any] | None, method: str, path: str) -> str:
    doc = (getattr(endpoint, "__doc__", None) or "").strip()
    if doc:
        return doc.splitlines()[0].strip()
    name = getattr(endpoint, "__name__", "")
    return name.replace("_", " ").strip().capitalize() if name else f"{method} {path}"


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    return f"{method.lower()}_{words}"


def _tag(path: str) -> str:
    parts = [part for part in path.split("/") if part and not part.startswith("{")]
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        return parts[2]
    if parts[:1] == ["api"] and len(parts) > 1:
        return parts[1]
    return "ui" if not parts or parts[0] not in ("healthz", "metrics") else "operations"


def _parameters(method: str, path: str) -> list[Obj]:
    params: list[Obj] = [
        {"name": name, "in": "path", "required": True, "schema": _STRING}
        for name in re.findall(r"{([^}]+)}", path)
    ]
    for name, description in _QUERY.get((method, path), {}).items():
        params.append(
            {"name": name, "in": "query", "required": False, "description": description, "schema": _STRING}
        )
    return params


def _responses(method: str, path: str) -> Obj:
    answer = _ANSWERS.get((method, path))
    media = _MEDIA.get(path)
    if answer is not None:
        ok: Obj = {"description": "OK", "content": {"application/json": {"schema": _ref(answer)}}}
    elif media is not None:
        ok = {"description": "OK", "content": {media: {"schema": _STRING}}}
    else:
        ok = {"description": "OK"}
    error = {"description": "An error", "content": {"application/json": {"schema": _ref("Error")}}}
    return {"200": ok, "default": error}


def _operation(method: str, path: str, endpoint: Callable[..., Any] | None) -> Obj:
    operation: Obj = {
        "operationId": _operation_id(method, path),
        "summary": _summary(endpoint, method, path),
        "tags": [_tag(path)],
        "responses": _responses(method, path),
    }
    parameters = _parameters(method, path)
    if parameters:
        operation["parameters"] = parameters
    request = _REQUESTS.get((method, path))
    if request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(request)}},
        }
    if is_public(method, path, endpoint):
        operation["security"] = []
    return operation


def operations(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str, Callable[..., Any] | None]]:
    """(method, OpenAPI path, endpoint) of every HTTP route, in the app's order."""
    for route in routes:
        path = _path_format(route)
        if path is None:
            continue
        for method in _methods(route):
            yield method, path, _endpoint(route)


def document(routes: Iterable[BaseRoute], *, title: str = "Tugboat API") -> Obj:
    """The OpenAPI 3.1 document of an app with these routes."""
    paths: dict[str, Obj] = {}
    for method, path, endpoint in operations(routes):
        item = paths.setdefault(path, {})
        item.setdefault(method.lower(), _operation(method, path, endpoint))  # the first route wins
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": tugboat.__version__,
            "description": "Argo CD and Argo Rollouts dashboard compatible API of the Tugboat server.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "argocd.token"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }
