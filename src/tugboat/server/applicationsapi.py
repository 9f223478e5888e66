"""The HTTP handlers of ``/api/v1/applications``: Argo CD's paths and payloads over ``applications``.

Each handler authorizes with Argo CD's RBAC names (resource ``applications``, object
``<project>/<name>``); lists leave out what the caller may not ``get`` instead of refusing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tugboat.kube.client import Obj
from tugboat.server import applications, context


def app_namespace(request: Request) -> str:
    return request.query_params.get("appNamespace") or context.settings(request).namespace


def rbac_object(app: Obj) -> str:
    """``<project>/<name>``, the object Argo CD's policies name an Application by."""
    project = str((app.get("spec") or {}).get("project") or "default")
    return f"{project}/{app['metadata']['name']}"


async def authorized_app(request: Request, action: str, *, namespace: str | None = None) -> Obj:
    """The Application named in the path, once the caller may do ``action`` on it (403 otherwise)."""
    state = context.settings(request)
    app = await applications.get_application(
        state.client, namespace or app_namespace(request), request.path_params["name"]
    )
    await context.authorize(request, "applications", action, rbac_object(app))
    return app


async def list_applications(request: Request) -> Response:
    query = request.query_params
    listed = await applications.list_applications(
        context.settings(request).client,
        app_namespace(request),
        projects=applications.split_list([*query.getlist("projects"), *query.getlist("project")]),
        selector=query.get("selector", ""),
        search=query.get("search", ""),
    )
    listed["items"] = [
        app
        for app in listed["items"]
        if await context.allowed(request, "applications", "get", rbac_object(app))
    ]
    fields = applications.split_list(query.getlist("fields"))
    return JSONResponse(applications.select_fields(listed, fields))


async def get_application(request: Request) -> Response:
    mode = request.query_params.get("refresh")
    app = await authorized_app(request, "get")
    if mode:
        state = context.settings(request)
        return JSONResponse(
            await applications.refresh(state.client, app_namespace(request), app["metadata"]["name"], mode)
        )
    return JSONResponse(app)


async def sync_application(request: Request) -> Response:
    body = await context.json_body(request)
    namespace = str(body.get("appNamespace") or app_namespace(request))
    name = request.path_params["name"]
    await authorized_app(request, "sync", namespace=namespace)
    operation = applications.sync_operation(body, username=context.username(request))
    app = await applications.request_operation(context.settings(request).client, namespace, name, operation)
    return JSONResponse(app)


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    return [
        Route("/api/v1/applications", guarded(list_applications), methods=["GET"]),
        Route("/api/v1/applications/{name}", guarded(get_application), methods=["GET"]),
        Route("/api/v1/applications/{name}/sync", guarded(sync_application), methods=["POST"]),
    ]
