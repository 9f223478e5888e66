"""The HTTP handlers of ``/api/v1/projects``: the AppProjects of the server's namespace, read-only.

The web UI and ``argocd proj`` clients read projects to offer them in forms and filters; Argo CD's RBAC
names them by project name (resource ``projects``, action ``get``), and a list leaves out the projects
the caller may not ``get``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tugboat.gitops import crds
from tugboat.server import context
from tugboat.server.problems import Problem


async def list_projects(request: Request) -> Response:
    state = context.settings(request)
    found, version = await state.client.list(crds.APPPROJECT, state.namespace)
    found.sort(key=lambda project: str(project["metadata"].get("name")))
    items = [
        project
        for project in found
        if await context.allowed(request, "projects", "get", str(project["metadata"].get("name")))
    ]
    return JSONResponse({"metadata": {"resourceVersion": version}, "items": items})


async def get_project(request: Request) -> Response:
    name = request.path_params["name"]
    await context.authorize(request, "projects", "get", name)
    state = context.settings(request)
    project = await state.client.get_or_none(crds.APPPROJECT, name, state.namespace)
    if project is None:
        raise Problem(404, f'appprojects.argoproj.io "{name}" not found')
    return JSONResponse(project)


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    return [
        Route("/api/v1/projects", guarded(list_projects), methods=["GET"]),
        Route("/api/v1/projects/{name}", guarded(get_project), methods=["GET"]),
    ]
