"""The HTTP handlers of ``/api/v1/applications``: Argo CD's paths and payloads over ``applications``.

Each handler authorizes with Argo CD's RBAC names (resource ``applications``, object
``<project>/<name>``); lists leave out what the caller may not ``get`` instead of refusing.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tugboat.kube.client import Obj
from tugboat.server import appcaches, appindex, applications, appmanaged, context
from tugboat.server.problems import Problem


class FastJSON(JSONResponse):
    """A JSON answer encoded with orjson: a list of a thousand apps encodes about ten times faster."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def checked_namespace(request: Request, namespace: object) -> str:
    """``namespace`` when it is the server's own (where Applications and AppProjects live), else 403.

    Argo CD serves Applications of other namespaces only when they are listed in its settings; Tugboat
    serves its control namespace only, so a caller cannot point the server at objects elsewhere by
    naming an Application namespace it writes itself."""
    own = context.settings(request).namespace
    if namespace in (None, "", own):
        return own
    raise Problem(403, f"application namespace '{namespace}' is not permitted: Applications live in '{own}'")


def app_namespace(request: Request) -> str:
    return checked_namespace(request, request.query_params.get("appNamespace"))


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


async def _visible(request: Request, apps: list[Obj]) -> list[Obj]:
    """The apps the caller may ``get``."""
    decide = await context.decider(request)
    user, groups = context.username(request), context.groups(request)
    return [app for app in apps if decide.enforce(user, groups, "applications", "get", rbac_object(app))]


async def list_applications(request: Request) -> Response:
    query = request.query_params
    state, namespace = context.settings(request), app_namespace(request)
    cached = None
    if namespace == state.namespace:
        cached = await appindex.of(request.app.state, state.client, namespace).apps()
    listed = await applications.list_applications(
        state.client,
        namespace,
        projects=applications.split_list([*query.getlist("projects"), *query.getlist("project")]),
        selector=query.get("selector", ""),
        search=query.get("search", ""),
        cached=cached,
    )
    limit = applications.parse_limit(query.get("limit"))
    visible = await _visible(request, listed["items"])
    listed["items"], token = applications.paginate(visible, limit=limit, token=query.get("continue", ""))
    fields = applications.split_list(query.getlist("fields"))
    selected = applications.select_fields(listed, fields)
    if token:  # kept whatever fields were asked for: without it a client cannot get the next page
        selected["metadata"] = {**(selected.get("metadata") or {}), "continue": token}
    return FastJSON(selected)


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
    namespace = checked_namespace(request, body.get("appNamespace") or app_namespace(request))
    name = request.path_params["name"]
    current = await authorized_app(request, "sync", namespace=namespace)
    operation = applications.sync_operation(body, username=context.username(request))
    applications.refuse_revision_under_auto_sync(current, operation)
    app = await applications.request_operation(context.settings(request).client, namespace, name, operation)
    return JSONResponse(app)


async def revision_metadata(request: Request) -> Response:
    app = await authorized_app(request, "get")
    client = context.settings(request).client
    index = request.query_params.get("sourceIndex") or "0"
    if not index.isdigit():
        raise Problem(400, f"invalid sourceIndex '{index}'")
    found = await appmanaged.revision_metadata(
        client, app, appcaches.of(request, client), request.path_params["revision"], source_index=int(index)
    )
    return JSONResponse(found)


async def rollback(request: Request) -> Response:
    body = await context.json_body(request)
    namespace = checked_namespace(request, body.get("appNamespace") or app_namespace(request))
    app = await authorized_app(request, "sync", namespace=namespace)
    operation = applications.rollback_operation(app, body, username=context.username(request))
    written = await applications.request_operation(
        context.settings(request).client,
        namespace,
        app["metadata"]["name"],
        operation,
        check=applications.refuse_automated,
    )
    return JSONResponse(written)


def _cascade(value: str | None) -> bool | None:
    if value in (None, ""):
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Problem(400, f"invalid cascade '{value}': use true or false")


async def delete_application(request: Request) -> Response:
    query = request.query_params
    namespace = app_namespace(request)
    app = await authorized_app(request, "delete", namespace=namespace)
    await applications.delete_application(
        context.settings(request).client,
        namespace,
        app["metadata"]["name"],
        cascade=_cascade(query.get("cascade")),
        policy=query.get("propagationPolicy", ""),
    )
    return JSONResponse({})


async def terminate_operation(request: Request) -> Response:
    namespace = app_namespace(request)
    app = await authorized_app(request, "sync", namespace=namespace)
    await applications.terminate_operation(
        context.settings(request).client, namespace, app["metadata"]["name"]
    )
    return JSONResponse({})


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    return [
        Route("/api/v1/applications", guarded(list_applications), methods=["GET"]),
        Route("/api/v1/applications/{name}", guarded(get_application), methods=["GET"]),
        Route("/api/v1/applications/{name}", guarded(delete_application), methods=["DELETE"]),
        Route("/api/v1/applications/{name}/sync", guarded(sync_application), methods=["POST"]),
        Route("/api/v1/applications/{name}/rollback", guarded(rollback), methods=["POST"]),
        Route("/api/v1/applications/{name}/operation", guarded(terminate_operation), methods=["DELETE"]),
        Route(
            "/api/v1/applications/{name}/revisions/{revision}/metadata",
            guarded(revision_metadata),
            methods=["GET"],
        ),
    ]
