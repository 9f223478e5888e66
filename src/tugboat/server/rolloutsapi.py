"""The HTTP handlers of ``/api/v1/rollouts``: the Argo Rollouts dashboard's paths over ``rollouts``.

Argo CD's RBAC has no Rollout resource, so Tugboat names one: resource ``rollouts``, object
``<namespace>/<name>``, actions ``get`` and the name of each action (``promote``, ``abort``, ``undo``,
``restart``; setting an image is ``update``). AnalysisRuns are read under the same resource: a run
owned by a Rollout is named by its Rollout (``<namespace>/<rollout>``), any other by itself. The live
``…/info/watch`` streams are in :mod:`tugboat.server.streams`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tugboat.kube import errors
from tugboat.kube.client import Obj
from tugboat.rollouts import crds
from tugboat.server import appindex, context, rollouts
from tugboat.server.problems import Problem


async def without_hidden_application(request: Request, info: Obj) -> Obj:
    """``info`` without its managing Application when the caller may not get that Application."""
    app = info.get("application")
    if isinstance(app, dict):
        obj = f"{app.get('project') or 'default'}/{app.get('name')}"
        if not await context.allowed(request, "applications", "get", obj):
            info["application"] = None
    return info


async def _cached_apps(request: Request) -> list[Obj] | None:
    """The Applications from the server's watch of them (``None``: not kept; list them)."""
    state = context.settings(request)
    cached = await appindex.of(request.app.state, state.client, state.namespace).apps()
    return cached[0] if cached is not None else None


async def _authorize(request: Request, action: str) -> tuple[str, str]:
    params = request.path_params
    namespace, name = params["namespace"], params.get("name", "*")
    await context.authorize(request, "rollouts", action, f"{namespace}/{name}")
    return namespace, name


async def list_rollouts(request: Request) -> Response:
    namespace = request.path_params["namespace"]
    state = context.settings(request)
    listed = await rollouts.list_infos(
        state.client, namespace, app_namespace=state.namespace, applications=await _cached_apps(request)
    )
    listed["rollouts"] = [
        await without_hidden_application(request, info)
        for info in listed.get("rollouts", [])
        if await context.allowed(
            request, "rollouts", "get", f"{namespace}/{info.get('objectMeta', {}).get('name', '')}"
        )
    ]
    return JSONResponse(listed)


async def get_rollout(request: Request) -> Response:
    namespace, name = await _authorize(request, "get")
    state = context.settings(request)
    info = await rollouts.get_info(
        state.client, namespace, name, app_namespace=state.namespace, applications=await _cached_apps(request)
    )
    return JSONResponse(await without_hidden_application(request, info))


async def promote_rollout(request: Request) -> Response:
    namespace, name = await _authorize(request, "promote")
    full = (await context.json_body(request)).get("full") is True
    return JSONResponse(await rollouts.promote(context.settings(request).client, namespace, name, full=full))


async def abort_rollout(request: Request) -> Response:
    namespace, name = await _authorize(request, "abort")
    return JSONResponse(await rollouts.abort(context.settings(request).client, namespace, name))


async def retry_rollout(request: Request) -> Response:
    namespace, name = await _authorize(request, "retry")
    return JSONResponse(await rollouts.retry(context.settings(request).client, namespace, name))


async def pause_rollout(request: Request) -> Response:
    namespace, name = await _authorize(request, "pause")
    paused = (await context.json_body(request)).get("paused", True)
    if not isinstance(paused, bool):
        raise Problem(400, "paused must be true or false")
    client = context.settings(request).client
    return JSONResponse(await rollouts.set_paused(client, namespace, name, paused=paused))


async def undo_rollout(request: Request) -> Response:
    namespace, name = await _authorize(request, "undo")
    try:
        revision = int(request.path_params["revision"])
    except ValueError:
        raise Problem(400, f"revision must be a number, not '{request.path_params['revision']}'") from None
    client = context.settings(request).client
    return JSONResponse(await rollouts.undo(client, namespace, name, revision=revision))


async def restart_rollout(request: Request) -> Response:
    namespace, name = await _authorize(request, "restart")
    return JSONResponse(await rollouts.restart(context.settings(request).client, namespace, name))


async def set_image(request: Request) -> Response:
    """``PUT …/set/{container}/{image}``: the image may contain ``/`` (``registry/repo:tag``)."""
    namespace, name = await _authorize(request, "update")
    container, image = request.path_params["container"], request.path_params["image"]
    client = context.settings(request).client
    return JSONResponse(await rollouts.set_image(client, namespace, name, container=container, image=image))


def _run_rbac_object(run: Obj) -> str:
    meta = run.get("metadata") or {}
    owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("kind") == "Rollout"]
    return f"{meta.get('namespace')}/{owners[0]['name'] if owners else meta.get('name')}"


async def list_analysis_runs(request: Request) -> Response:
    """The AnalysisRuns of a namespace (optionally ``?rollout=NAME``), newest first."""
    namespace = request.path_params["namespace"]
    try:
        runs, version = await context.settings(request).client.list(crds.ANALYSISRUN, namespace)
    except errors.ApiError as exc:
        if exc.not_found:
            raise Problem(404, f"the server has no AnalysisRun API ({exc.message})") from exc
        raise
    rollout = request.query_params.get("rollout")
    decide = await context.decider(request)
    user, groups = context.username(request), context.groups(request)
    items = [
        run
        for run in runs
        if decide.enforce(user, groups, "rollouts", "get", _run_rbac_object(run))
        and (not rollout or _run_rbac_object(run) == f"{namespace}/{rollout}")
    ]
    items.sort(key=lambda run: str(run["metadata"].get("creationTimestamp") or ""), reverse=True)
    return JSONResponse({"metadata": {"resourceVersion": version}, "items": items})


async def get_analysis_run(request: Request) -> Response:
    """One AnalysisRun with its measurements."""
    params = request.path_params
    client = context.settings(request).client
    run = await client.get_or_none(crds.ANALYSISRUN, params["name"], params["namespace"])
    if run is None:
        raise Problem(404, f'analysisruns.argoproj.io "{params["name"]}" not found')
    await context.authorize(request, "rollouts", "get", _run_rbac_object(run))
    return JSONResponse(run)


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    rollout = "/api/v1/rollouts/{namespace}/{name}"
    return [
        Route("/api/v1/rollouts/{namespace}/info", guarded(list_rollouts), methods=["GET"]),
        Route(f"{rollout}/info", guarded(get_rollout), methods=["GET"]),
        Route(f"{rollout}/promote", guarded(promote_rollout), methods=["PUT"]),
        Route(f"{rollout}/abort", guarded(abort_rollout), methods=["PUT"]),
        Route(f"{rollout}/retry", guarded(retry_rollout), methods=["PUT"]),
        Route(f"{rollout}/pause", guarded(pause_rollout), methods=["PUT"]),
        Route(f"{rollout}/undo/{{revision}}", guarded(undo_rollout), methods=["PUT"]),
        Route(f"{rollout}/restart", guarded(restart_rollout), methods=["PUT"]),
        Route(f"{rollout}/set/{{container}}/{{image:path}}", guarded(set_image), methods=["PUT"]),
        Route("/api/v1/analysisruns/{namespace}", guarded(list_analysis_runs), methods=["GET"]),
        Route("/api/v1/analysisruns/{namespace}/{name}", guarded(get_analysis_run), methods=["GET"]),
    ]
