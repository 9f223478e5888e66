"""The HTTP handlers of what lies under one Application: its resource tree, managed resources with their
diffs, one live resource, its desired manifests, events and pod logs (Argo CD's paths and payloads).

Everything here reads; each handler authorizes ``applications, get`` on ``<project>/<app>`` (logs need
``logs, get`` too, as in Argo CD) and only shows objects that belong to the app, so a caller who may
read one app cannot read arbitrary objects of the cluster through it. Secret values never leave masked.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tugboat.gitops import resourcekey
from tugboat.kube.client import Obj
from tugboat.server import appcaches, applicationsapi, applogs, appmanaged, context, resourcetree
from tugboat.server.problems import Problem


async def resource_tree(request: Request) -> Response:
    app = await applicationsapi.authorized_app(request, "get")
    client = context.settings(request).client
    caches = appcaches.of(request, client)
    found = await resourcetree.resource_tree(client, caches.discovery, app)
    return applicationsapi.FastJSON(found)


async def managed_resources(request: Request) -> Response:
    app = await applicationsapi.authorized_app(request, "get")
    client = context.settings(request).client
    query = request.query_params
    filters = {
        "group": query.get("group", ""),
        "kind": query.get("kind", ""),
        "namespace": query.get("namespace", ""),
        "name": query.get("name", ""),
    }
    found = await appmanaged.managed_resources(client, app, appcaches.of(request, client), filters=filters)
    return applicationsapi.FastJSON(found)


async def app_resource(request: Request, app: Obj) -> Obj:
    """The live object the query names (``group``, ``kind``, ``namespace``, ``resourceName``), once it is
    known to be one of the app's: a managed resource or a node of its tree. 404 otherwise."""
    query = request.query_params
    group, kind, name = query.get("group", ""), query.get("kind", ""), query.get("resourceName", "")
    namespace = query.get("namespace", "")
    if not kind or not name:
        raise Problem(400, "kind and resourceName are required")
    client = context.settings(request).client
    discovery = appcaches.of(request, client).discovery
    key = resourcekey.ResourceKey(group, kind, namespace, name)
    if not appmanaged.is_managed(app, key):
        tree = await resourcetree.resource_tree(client, discovery, app)
        if resourcetree.find_node(tree, group=group, kind=kind, namespace=namespace, name=name) is None:
            raise Problem(
                404, f"{kind} {namespace}/{name} not found as part of application {app['metadata']['name']}"
            )
    found_kind = await discovery.kind_for(group, kind)
    obj = None if found_kind is None else await client.get_or_none(found_kind, name, namespace or None)
    if obj is None:
        raise Problem(404, f"{kind} {namespace}/{name} not found")
    obj.setdefault("apiVersion", found_kind.api_version if found_kind else "")
    obj.setdefault("kind", kind)
    return obj


async def get_resource(request: Request) -> Response:
    app = await applicationsapi.authorized_app(request, "get")
    obj = await app_resource(request, app)
    return applicationsapi.FastJSON({"manifest": appmanaged.json_text(appmanaged.masked(obj))})


async def manifests(request: Request) -> Response:
    app = await applicationsapi.authorized_app(request, "get")
    client = context.settings(request).client
    revision = request.query_params.get("revision") or None
    found = await appmanaged.desired_manifests(client, app, appcaches.of(request, client), revision=revision)
    return applicationsapi.FastJSON(found)


async def events(request: Request) -> Response:
    app = await applicationsapi.authorized_app(request, "get")
    client = context.settings(request).client
    query = request.query_params
    name = query.get("resourceName", "")
    if not name:
        meta = app["metadata"]
        found = await applogs.events(
            client, meta["namespace"], name=meta["name"], uid=str(meta.get("uid") or ""), kind="Application"
        )
        return applicationsapi.FastJSON(found)
    namespace, uid = query.get("resourceNamespace", ""), query.get("resourceUID", "")
    tree = await resourcetree.resource_tree(client, appcaches.of(request, client).discovery, app)
    nodes = [
        node
        for node in tree["nodes"]
        if node["name"] == name and node["namespace"] == namespace and (not uid or node["uid"] == uid)
    ]
    if not nodes:
        raise Problem(404, f"{name} not found as part of application {app['metadata']['name']}")
    found = await applogs.events(client, namespace, name=name, uid=uid, kind=nodes[0]["kind"] if uid else "")
    return applicationsapi.FastJSON(found)


async def pod_logs(request: Request) -> Response:
    app = await applicationsapi.authorized_app(request, "get")
    await context.authorize(request, "logs", "get", applicationsapi.rbac_object(app))
    client = context.settings(request).client
    query = request.query_params
    pod = request.path_params.get("pod") or query.get("podName", "")
    namespace = query.get("namespace", "")
    tree = await resourcetree.resource_tree(client, appcaches.of(request, client).discovery, app)
    pods = [
        node
        for node in tree["nodes"]
        if node["kind"] == "Pod" and node["name"] == pod and (not namespace or node["namespace"] == namespace)
    ]
    if not pods:
        raise Problem(404, f"pod {pod} not found as part of application {app['metadata']['name']}")
    wanted = applogs.LogRequest(
        namespace=pods[0]["namespace"],
        pod=pod,
        container=query.get("container", ""),
        tail_lines=applogs.optional_int(query.get("tailLines"), "tailLines"),
        since_seconds=applogs.optional_int(query.get("sinceSeconds"), "sinceSeconds"),
        previous=query.get("previous", "").lower() == "true",
        follow=query.get("follow", "").lower() == "true",
        filter=query.get("filter", ""),
    )
    if wanted.follow:
        return StreamingResponse(await applogs.start_follow(client, wanted), media_type="application/json")
    return Response(b"".join(await applogs.read(client, wanted)), media_type="application/json")


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    base = "/api/v1/applications/{name}"
    return [
        Route(f"{base}/resource-tree", guarded(resource_tree), methods=["GET"]),
        Route(f"{base}/managed-resources", guarded(managed_resources), methods=["GET"]),
        Route(f"{base}/resource", guarded(get_resource), methods=["GET"]),
        Route(f"{base}/manifests", guarded(manifests), methods=["GET"]),
        Route(f"{base}/events", guarded(events), methods=["GET"]),
        Route(f"{base}/pods/{{pod}}/logs", guarded(pod_logs), methods=["GET"]),
        Route(f"{base}/logs", guarded(pod_logs), methods=["GET"]),
    ]
