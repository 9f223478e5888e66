"""``GET /api/openapi.json``: an OpenAPI 3.1 document that lists every route of the real app, marks the
public ones, and holds together structurally (required keys, resolvable references, path parameters)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import server_support
from starlette.routing import Mount, Route

from clusterproc import ClusterProcess
from tugboat.server import openapi

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
async def served(argo_cluster: ClusterProcess) -> AsyncIterator[tuple[Any, list[Any]]]:
    """The document as the server answers it, and the app's routes."""
    async with server_support.argo_client(argo_cluster, "test-openapi") as client:
        namespace = await server_support.fresh_namespace(client, "openapi")
        app = await server_support.api_app(client, namespace)
        async with server_support.asgi_client(app) as api:
            response = await api.get("/api/openapi.json")  # no session
        assert response.status_code == 200, response.text
        yield response.json(), list(app.routes)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def structural_problems(doc: dict[str, Any]) -> list[str]:
    """What OpenAPI 3.1 requires of the parts this document uses, checked by hand."""
    problems = []
    if not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi"))):
        problems.append(f"openapi: {doc.get('openapi')!r}")
    info = doc.get("info") or {}
    problems += [f"info.{key} missing" for key in ("title", "version") if not isinstance(info.get(key), str)]
    components = doc.get("components") or {}
    schemes = components.get("securitySchemes") or {}
    for name, scheme in schemes.items():
        if scheme.get("type") not in {"apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"}:
            problems.append(f"security scheme {name}: type {scheme.get('type')!r}")
        if scheme.get("type") == "apiKey" and (
            scheme.get("in") not in {"query", "header", "cookie"} or not scheme.get("name")
        ):
            problems.append(f"security scheme {name}: apiKey needs in and name")
    operation_ids: list[str] = []
    for path, item in (doc.get("paths") or {}).items():
        if not path.startswith("/"):
            problems.append(f"path {path!r} does not start with /")
        templated = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            if method not in METHODS:
                problems.append(f"{path}: {method} is not an HTTP method")
                continue
            where = f"{method.upper()} {path}"
            responses = operation.get("responses")
            if not isinstance(responses, dict) or not responses:
                problems.append(f"{where}: no responses")
            for code, response in (responses or {}).items():
                if not (code == "default" or re.fullmatch(r"[1-5](\d\d|XX)", code)):
                    problems.append(f"{where}: response code {code!r}")
                if not isinstance(response.get("description"), str):
                    problems.append(f"{where}: response {code} has no description")
            operation_ids.append(operation.get("operationId"))
            declared = set()
            for parameter in operation.get("parameters") or []:
                if parameter.get("in") not in {"path", "query", "header", "cookie"} or not parameter.get(
                    "name"
                ):
                    problems.append(f"{where}: bad parameter {parameter}")
                if parameter.get("in") == "path":
                    declared.add(parameter["name"])
                    if parameter.get("required") is not True:
                        problems.append(f"{where}: path parameter {parameter['name']} not required")
            if declared != templated:
                problems.append(f"{where}: path parameters {declared} != template {templated}")
            for requirement in operation.get("security", doc.get("security") or []):
                problems += [f"{where}: unknown scheme {name}" for name in requirement if name not in schemes]
    duplicates = {oid for oid in operation_ids if operation_ids.count(oid) > 1}
    if None in operation_ids or duplicates:
        problems.append(f"operationIds missing or repeated: {duplicates}")
    schemas = components.get("schemas") or {}
    for ref in refs(doc):
        name = ref.removeprefix("#/components/schemas/")
        if name == ref or name not in schemas:
            problems.append(f"unresolved $ref {ref}")
    return problems


def test_document_is_structurally_valid_openapi_3_1(served: tuple[Any, list[Any]]) -> None:
    doc, _ = served
    assert structural_problems(doc) == []
    schemas = doc["components"]["schemas"]
    for name in (
        "SessionCreateRequest",
        "SessionResponse",
        "Application",
        "ApplicationList",
        "ApplicationSyncRequest",
        "RolloutInfo",
        "Error",
    ):
        assert schemas[name]["type"] == "object"
    assert schemas["Error"]["required"] == ["error", "code", "message"]
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "cookie"}


def test_every_route_of_the_app_is_described(served: tuple[Any, list[Any]]) -> None:
    doc, routes = served
    paths = doc["paths"]
    for route in routes:
        if isinstance(route, Mount):
            assert route.path_format.rstrip("/") + "/{path}" in paths
            continue
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in paths[route.path_format], f"{method} {route.path}"


def test_public_operations_need_no_security(served: tuple[Any, list[Any]]) -> None:
    doc, _ = served
    paths = doc["paths"]
    assert paths["/api/v1/session"]["post"]["security"] == []
    assert paths["/api/version"]["get"]["security"] == []
    assert paths["/api/openapi.json"]["get"]["security"] == []
    assert paths["/metrics"]["get"]["security"] == []
    assert paths["/healthz"]["get"]["security"] == []
    assert "security" not in paths["/api/v1/session"]["delete"]  # the document's default: a session
    assert "security" not in paths["/api/v1/applications"]["get"]
    listing = paths["/api/v1/applications"]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApplicationList"
    }
    assert {p["name"] for p in listing["parameters"]} >= {"projects", "selector", "fields"}
    login = paths["/api/v1/session"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "SessionCreateRequest"
    )


def test_summaries_come_from_docstrings() -> None:
    async def handler() -> None:
        """First line.

        More."""

    route = Route("/api/v1/things/{id}", handler, methods=["GET"])
    doc = openapi.document([route])
    operation = doc["paths"]["/api/v1/things/{id}"]["get"]
    assert operation["summary"] == "First line."
    assert operation["parameters"][0] == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
