"""Live updates for the web UI and API clients, as server-sent events.

Argo CD's UI keeps its application list and resource tree current with watch streams, and the Argo
Rollouts dashboard does the same with ``…/info/watch``; this module serves those paths as
``text/event-stream``: one ``data: <json>`` line and a blank line per event, and a ``: keepalive``
comment when nothing happened for :data:`KEEPALIVE_SECONDS`, so proxies keep the connection open.

Every stream listens to the cluster through the server's :class:`~tugboat.server.watchhub.WatchHub`, so
a watch per kind and namespace serves every open tab. The resource tree (built by
:mod:`tugboat.server.resourcetree`) and rollout info (:mod:`tugboat.server.rollouts`) are recomputed
at most every :data:`DEBOUNCE_SECONDS` (a rollout step changes dozens of objects at once) and only sent
when they changed. A stream ends when the client goes away: its producer task is cancelled and its
subscriptions are left, and the hub stops a watch nobody listens to any more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tugboat.gitops import crds as gitops_crds
from tugboat.kube import errors, kinds, selectors
from tugboat.kube.client import Obj
from tugboat.kube.kinds import Kind
from tugboat.rollouts import crds as rollout_crds
from tugboat.server import (
    appcaches,
    applications,
    applicationsapi,
    context,
    resourcetree,
    rollouts,
    rolloutsapi,
    watchhub,
)
from tugboat.server.problems import Problem
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
MAX_BACKLOG = 5_000  # events waiting for a slow client before its stream is ended
DEBOUNCE_SECONDS = 0.25
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_HUB_ATTRIBUTE = "tugboat_watch_hub"

Send = Callable[[Obj], None]
Producer = Callable[[Send], Awaitable[None]]

# Kinds a resource tree may hold whose changes are watched (others change the app's status anyway).
TREE_KINDS = {
    (kind.group, kind.kind): kind
    for kind in (
        kinds.POD,
        kinds.SERVICE,
        kinds.CONFIGMAP,
        kinds.SECRET,
        kinds.SERVICEACCOUNT,
        kinds.PVC,
        kinds.DEPLOYMENT,
        kinds.REPLICASET,
        kinds.STATEFULSET,
        kinds.DAEMONSET,
        kinds.JOB,
        kinds.CRONJOB,
        kinds.INGRESS,
        kinds.ENDPOINTS,
        rollout_crds.ROLLOUT,
        rollout_crds.ANALYSISRUN,
        rollout_crds.EXPERIMENT,
    )
}
_ALWAYS_IN_TREE = (kinds.POD, kinds.REPLICASET)  # children of the managed resources


def hub_of(app: Any) -> watchhub.WatchHub | None:
    """The watch hub of a Starlette app (``None`` before the first stream)."""
    found = getattr(app.state, _HUB_ATTRIBUTE, None)
    return found if isinstance(found, watchhub.WatchHub) else None


def hub(request: Request) -> watchhub.WatchHub:
    """The app's watch hub, made on first use."""
    found = hub_of(request.app)
    if found is None:
        found = watchhub.WatchHub(context.settings(request).client)
        setattr(request.app.state, _HUB_ATTRIBUTE, found)
    return found


def encode(payload: Obj) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def event_stream(
    produce: Producer, *, recheck: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[bytes]:
    """The bytes of an event stream of what ``produce`` sends, with keep-alive comments; the producer
    runs as a task that is cancelled (and awaited) when the stream ends for whatever reason.

    At each keep-alive ``recheck`` runs (the caller's session and permissions, again): a stream ends
    when its session is logged out, its account disabled or its permission taken away. A client that
    reads too slowly (``MAX_BACKLOG`` events waiting) is cut off rather than buffered without bound; its
    EventSource reconnects and starts from the current state."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def send(payload: Obj) -> None:
        if queue.qsize() >= MAX_BACKLOG:
            raise Problem(503, "the client reads the stream too slowly")
        queue.put_nowait(encode(payload))

    async def run() -> None:
        try:
            await produce(send)
        except asyncio.CancelledError:
            raise
        except (Problem, errors.KubeError) as exc:
            log.info("event stream ended: %s", exc)
        except Exception:
            log.exception("event stream failed")
        finally:
            queue.put_nowait(None)

    task = asyncio.get_running_loop().create_task(run(), name="event-stream")
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                if recheck is not None:
                    try:
                        await recheck()
                    except (Problem, errors.KubeError) as exc:
                        log.info("event stream ended: %s", exc)
                        return
                yield b": keepalive\n\n"
                continue
            if chunk is None:
                return
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await cancel_and_wait([task])


def sse_response(
    request: Request, produce: Producer, *, authorize: Callable[[], Awaitable[None]] | None = None
) -> Response:
    """The event stream of ``produce`` for ``request``, whose session (and ``authorize``) is checked
    again at every keep-alive."""

    async def recheck() -> None:
        await context.reauthenticate(request)
        if authorize is not None:
            await authorize()

    return StreamingResponse(
        event_stream(produce, recheck=recheck), media_type="text/event-stream", headers=HEADERS
    )


class _Changes:
    """A flag that the listeners of some subscriptions set; :meth:`settled` waits for a change and then
    for the burst it starts to pass."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.subscriptions: dict[watchhub.Key, watchhub.Subscription] = {}

    def listener(self, old: Obj | None, new: Obj | None) -> None:
        self.event.set()

    async def watch(self, hub: watchhub.WatchHub, wanted: Iterable[watchhub.Key]) -> None:
        """Be subscribed to exactly ``wanted`` (new subscriptions are made together)."""
        wanted = set(wanted)
        for key in [k for k in self.subscriptions if k not in wanted]:
            self.subscriptions.pop(key).close()

        async def subscribe(key: watchhub.Key) -> None:
            # Kept as soon as made, so a cancelled stream's close() leaves every one it got.
            self.subscriptions[key] = await hub.subscribe(*key, self.listener)

        new = [key for key in wanted if key not in self.subscriptions]
        results = await asyncio.gather(*(subscribe(key) for key in new), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def close(self) -> None:
        for subscription in self.subscriptions.values():
            subscription.close()
        self.subscriptions.clear()

    async def settled(self) -> None:
        await self.event.wait()
        await asyncio.sleep(DEBOUNCE_SECONDS)
        self.event.clear()


# ----------------------------------------------------------------------------------- applications


def _label_selector(text: str) -> selectors.LabelSelector:
    try:
        return selectors.parse_labels(text)
    except errors.SelectorError as exc:
        raise Problem(400, f"invalid selector '{text}': {exc}") from exc


def _app_filter(request: Request) -> Callable[[Mapping[str, Any]], bool]:
    query = request.query_params
    name = query.get("name", "")
    projects = applications.split_list([*query.getlist("projects"), *query.getlist("project")])
    selector = _label_selector(query.get("selector", ""))

    def passes(app: Mapping[str, Any]) -> bool:
        meta = app.get("metadata") or {}
        if name and meta.get("name") != name:
            return False
        if projects and (app.get("spec") or {}).get("project") not in projects:
            return False
        return selector.matches(meta.get("labels") or {})

    return passes


def _qualified(fields: Sequence[str]) -> list[str]:
    """Paths of the event: ``result…`` as given, others (``metadata.name``, ``items.metadata.name`` as for
    the list) taken as paths of the application."""
    paths = []
    for path in fields:
        if path == "result" or path.startswith("result."):
            paths.append(path)
        elif path.removeprefix("items."):
            paths.append(f"result.application.{path.removeprefix('items.')}")
    return paths


def _without(value: Any, path: Sequence[str]) -> Any:
    """``value`` without the dotted ``path`` (copied along the path only; lists are walked through)."""
    if not path:
        return value
    if isinstance(value, list):
        return [_without(item, path) for item in value]
    if not isinstance(value, Mapping) or path[0] not in value:
        return value
    copied = dict(value)
    if len(path) == 1:
        del copied[path[0]]
    else:
        copied[path[0]] = _without(value[path[0]], path[1:])
    return copied


def application_event(kind: str, app: Obj, fields: Sequence[str]) -> Obj:
    """``{"result": {"type", "application"}}`` trimmed to ``fields`` like Argo CD's watch: paths of the
    event (``result.application.metadata.name``) or of the application; with a leading ``-`` the paths
    are left out instead of kept. ``result.type`` is always kept."""
    event: Obj = {"result": {"type": kind, "application": app}}
    if not fields:
        return event
    if fields[0].startswith("-"):
        for path in _qualified([fields[0][1:], *fields[1:]]):
            if path != "result.type":
                event = _without(event, path.split("."))
        return event
    paths = _qualified(fields)
    if paths and "result.type" not in paths:
        paths.append("result.type")
    return applications.select_fields(event, paths)


async def _stream_applications(request: Request, send: Send) -> None:
    namespace = applicationsapi.app_namespace(request)
    passes = _app_filter(request)
    fields = applications.split_list(request.query_params.getlist("fields"))
    changes: asyncio.Queue[tuple[Obj | None, Obj | None]] = asyncio.Queue()
    subscription = await hub(request).subscribe(
        gitops_crds.APPLICATION, namespace, lambda old, new: changes.put_nowait((old, new))
    )
    try:
        while not changes.empty():  # the initial list: sent below from the cache instead
            changes.get_nowait()
        existing = sorted(subscription.objects(), key=lambda app: str(app["metadata"].get("name")))
        for app in existing:
            if passes(app) and await _may_get_app(request, app):
                send(application_event("ADDED", app, fields))
        while True:
            old, new = await changes.get()
            kind, changed = _app_change(old, new, passes)
            if kind and changed is not None and await _may_get_app(request, changed):
                send(application_event(kind, changed, fields))
    finally:
        subscription.close()


def _app_change(
    old: Obj | None, new: Obj | None, passes: Callable[[Mapping[str, Any]], bool]
) -> tuple[str, Obj | None]:
    """The event a change is for a client that sees the apps that pass its filter ('' for none)."""
    was, now = old is not None and passes(old), new is not None and passes(new)
    if now and was:
        return "MODIFIED", new
    if now:
        return "ADDED", new
    if was:
        return "DELETED", old if new is None else new
    return "", None


async def _may_get_app(request: Request, app: Obj) -> bool:
    return await context.allowed(request, "applications", "get", applicationsapi.rbac_object(app))


async def stream_applications(request: Request) -> Response:
    _app_filter(request)  # a bad selector is a 400 now, not a silent end of the stream
    return sse_response(request, lambda send: _stream_applications(request, send))


# ---------------------------------------------------------------------------------- resource tree


def tree_watches(app: Mapping[str, Any]) -> set[watchhub.Key]:
    """What to watch for changes of an app's tree: the known kinds among its resources, and Pods and
    ReplicaSets, in each namespace it deploys to."""
    resources = [r for r in (app.get("status") or {}).get("resources") or [] if isinstance(r, Mapping)]
    destination = ((app.get("spec") or {}).get("destination") or {}).get("namespace")
    namespaces = {str(r["namespace"]) for r in resources if r.get("namespace")}
    if destination:
        namespaces.add(str(destination))
    watched = set(_ALWAYS_IN_TREE)
    for resource in resources:
        kind = TREE_KINDS.get((str(resource.get("group") or ""), str(resource.get("kind") or "")))
        if kind is not None and kind.namespaced:
            watched.add(kind)
    return {(kind, namespace) for kind in watched for namespace in namespaces}


async def _stream_tree(request: Request, send: Send, namespace: str, name: str) -> None:
    client = context.settings(request).client
    discovery = appcaches.of(request, client).discovery
    changes = _Changes()
    app_key = (gitops_crds.APPLICATION, namespace)
    last: bytes | None = None

    async def from_watches(kind: Kind, in_namespace: str | None) -> list[Obj]:
        # What this stream watches anyway is read from the shared caches; anything else is listed.
        if in_namespace is not None and (kind, in_namespace) in changes.subscriptions:
            return hub(request).objects(kind, in_namespace)
        return await resourcetree.list_objects(client, kind, in_namespace)

    try:
        await changes.watch(hub(request), {app_key})
        while True:
            app = next((a for a in hub(request).objects(*app_key) if a["metadata"].get("name") == name), None)
            if app is None:
                return  # the Application was deleted
            await changes.watch(hub(request), {app_key} | tree_watches(app))
            tree = await resourcetree.resource_tree(client, discovery, app, lister=from_watches)
            encoded = orjson.dumps(tree)
            if encoded != last:
                send({"result": tree})
                last = encoded
            await changes.settled()
    finally:
        changes.close()


async def stream_tree(request: Request) -> Response:
    app = await applicationsapi.authorized_app(request, "get")
    namespace = applicationsapi.app_namespace(request)
    name = app["metadata"]["name"]

    async def still_allowed() -> None:
        await applicationsapi.authorized_app(request, "get")

    return sse_response(
        request, lambda send: _stream_tree(request, send, namespace, name), authorize=still_allowed
    )


# --------------------------------------------------------------------------------------- rollouts


def _rollout_watches(namespace: str, app_namespace: str) -> set[watchhub.Key]:
    watched = {
        (kind, namespace)
        for kind in (
            rollout_crds.ROLLOUT,
            kinds.REPLICASET,
            kinds.POD,
            rollout_crds.ANALYSISRUN,
            rollout_crds.EXPERIMENT,
        )
    }
    return watched | {(gitops_crds.APPLICATION, app_namespace)}


def related_from_cache(hub_: watchhub.WatchHub, namespace: str, *, app_namespace: str) -> rollouts.Related:
    return rollouts.Related(
        replicasets=hub_.objects(kinds.REPLICASET, namespace),
        pods=hub_.objects(kinds.POD, namespace),
        analysisruns=hub_.objects(rollout_crds.ANALYSISRUN, namespace),
        experiments=hub_.objects(rollout_crds.EXPERIMENT, namespace),
        applications=hub_.objects(gitops_crds.APPLICATION, app_namespace),
        app_namespace=app_namespace,
    )


async def _stream_rollouts(request: Request, send: Send, namespace: str, name: str | None) -> None:
    """Send the info of each Rollout of ``namespace`` (or only ``name``) the caller may get, then each
    info that changed; a deleted Rollout is sent once as :func:`rollouts.deleted_info`, with
    ``"type": "DELETED"`` beside ``result``."""
    shared = hub(request)
    app_namespace = context.settings(request).namespace
    changes = _Changes()
    sent: dict[str, tuple[bytes, Obj]] = {}
    try:
        await changes.watch(shared, _rollout_watches(namespace, app_namespace))
        while True:
            related = related_from_cache(shared, namespace, app_namespace=app_namespace)
            found = {
                str(ro["metadata"].get("name")): ro
                for ro in shared.objects(rollout_crds.ROLLOUT, namespace)
                if name is None or ro["metadata"].get("name") == name
            }
            for ro_name in sorted(found):
                if not await context.allowed(request, "rollouts", "get", f"{namespace}/{ro_name}"):
                    continue
                info = rollouts.rollout_info(found[ro_name], related=related)
                info = await rolloutsapi.without_hidden_application(request, info)
                encoded = orjson.dumps(info)
                if sent.get(ro_name, (b"", {}))[0] != encoded:
                    send({"result": info})
                    sent[ro_name] = (encoded, found[ro_name])
            for ro_name in [n for n in sent if n not in found]:
                send({"type": "DELETED", "result": rollouts.deleted_info(sent.pop(ro_name)[1])})
            await changes.settled()
    finally:
        changes.close()


async def stream_rollouts(request: Request) -> Response:
    namespace = request.path_params["namespace"]
    return sse_response(request, lambda send: _stream_rollouts(request, send, namespace, None))


async def stream_rollout(request: Request) -> Response:
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    await context.authorize(request, "rollouts", "get", f"{namespace}/{name}")
    await rollouts.get_rollout(context.settings(request).client, namespace, name)  # 404 now, not later

    async def still_allowed() -> None:
        await context.authorize(request, "rollouts", "get", f"{namespace}/{name}")

    return sse_response(
        request, lambda send: _stream_rollouts(request, send, namespace, name), authorize=still_allowed
    )


def routes() -> list[BaseRoute]:
    guarded = context.guarded
    return [
        Route("/api/v1/stream/applications", guarded(stream_applications), methods=["GET"]),
        Route("/api/v1/stream/applications/{name}/resource-tree", guarded(stream_tree), methods=["GET"]),
        Route("/api/v1/rollouts/{namespace}/info/watch", guarded(stream_rollouts), methods=["GET"]),
        Route("/api/v1/rollouts/{namespace}/{name}/info/watch", guarded(stream_rollout), methods=["GET"]),
    ]
