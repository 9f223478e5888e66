"""The API server's live streams (``tugboat.server.streams``) over real HTTP: the app runs under uvicorn in
the test's event loop (httpx's ASGI transport buffers whole responses, so it cannot read a stream), over
a bare cluster with Argo's CRDs. Events, filters, keep-alives, the shared watches and the clean-up when a
client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
import orjson
import pytest
import server_support
from starlette.applications import Starlette

from tugboat.gitops import crds as gitops_crds
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds as rollout_crds
from tugboat.server import streams, watchhub

READ_TIMEOUT = 10.0


client = server_support.client_fixture("test-streams", gitops=True, rollouts=True)
namespace = server_support.namespace_fixture("sse")


class Served:
    """The API server under uvicorn, a logged-in HTTP client and the app (for its watch hub)."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    @asynccontextmanager
    async def events(self, path: str, **params: Any) -> AsyncIterator[Events]:
        async with self.http.stream("GET", path, params=params) as response:
            assert response.status_code == 200, await response.aread()
            yield Events(response)


class Events:
    """The events of one open stream, read one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, timeout: float = READ_TIMEOUT) -> Any:
        async def read() -> Any:
            async for line in self.lines:
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("data: "):
                    return orjson.loads(line.removeprefix("data: "))
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), timeout)

    async def until(self, check: Any, timeout: float = READ_TIMEOUT) -> Any:
        """The first event for which ``check(event)`` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            event = await self.next(deadline - asyncio.get_running_loop().time())
            if check(event):
                return event


@asynccontextmanager
async def served(client: Client, namespace: str) -> AsyncIterator[Served]:
    """The API under uvicorn, with a client logged in as admin (bearer header and cookie)."""
    app = await server_support.api_app(client, namespace)
    try:
        async with (
            server_support.serve_in_background(app) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        ):
            http.headers.update(
                server_support.bearer(await server_support.admin_token(http, client, namespace))
            )
            yield Served(app, http)
    finally:
        hub = streams.hub_of(app)
        if hub is not None:
            await hub.close()


def _application(namespace: str, name: str, *, project: str = "default") -> Any:
    return server_support.application(namespace, name, project=project, destination_namespace=namespace)


def _rollout(namespace: str, name: str) -> Any:
    return server_support.rollout(namespace, name, steps=[{"setWeight": 50}, {"pause": {}}])


async def _settle(app: Starlette) -> None:
    """Wait until the hub has stopped the informers of watches nobody listens to."""
    hub = streams.hub_of(app)
    assert hub is not None
    for _ in range(100):
        await hub.settle()
        if not hub.watched():
            return
        await asyncio.sleep(0.05)


def _stream_tasks() -> list[asyncio.Task[Any]]:
    names = ("event-stream", "informer-")
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(names) and not t.done()]


# ----------------------------------------------------------------------------------------- rollouts


async def test_rollout_streams_send_changes_and_share_watches(client: Client, namespace: str) -> None:
    await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "web"))
    await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "api"))
    async with served(client, namespace) as api:
        base = f"/api/v1/rollouts/{namespace}"
        async with (
            api.events(f"{base}/info/watch") as all_events,
            api.events(f"{base}/web/info/watch") as one,
        ):
            headers = all_events.response.headers
            assert headers["content-type"].startswith("text/event-stream")
            assert headers["cache-control"] == "no-cache" and headers["x-accel-buffering"] == "no"

            first = {(await all_events.next())["result"]["objectMeta"]["name"] for _ in range(2)}
            assert first == {"api", "web"}
            initial = (await one.next())["result"]
            assert initial["objectMeta"]["name"] == "web" and initial["currentStepIndex"] == 0
            assert initial["strategy"] == "Canary" and initial["replicaSets"] == []

            # Two streams, one watch per kind and namespace.
            hub = streams.hub_of(api.app)
            assert hub is not None
            watched = hub.watched()
            assert len(watched) == len(set(watched)) == 6
            assert (rollout_crds.ROLLOUT, namespace) in watched

            await client.patch(rollout_crds.ROLLOUT, "web", {"spec": {"replicas": 3}}, namespace=namespace)
            changed = (await one.next())["result"]
            assert changed["desired"] == 3
            assert (await all_events.next())["result"]["objectMeta"]["name"] == "web"  # api did not change

            await client.delete(rollout_crds.ROLLOUT, "api", namespace)
            gone_event = await all_events.next()
            assert gone_event["type"] == "DELETED"
            gone = gone_event["result"]
            assert gone["objectMeta"]["name"] == "api" and gone["deleted"] is True

        missing = await api.http.get(f"{base}/nope/info/watch")
        assert missing.status_code == 404
        await _settle(api.app)
        assert hub.watched() == []
        assert _stream_tasks() == []


async def test_keepalive_comments(client: Client, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "KEEPALIVE_SECONDS", 0.2)
    await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "web"))
    path = f"/api/v1/rollouts/{namespace}/web/info/watch"
    async with served(client, namespace) as api, api.events(path) as events:
        await events.next()
        with pytest.raises(TimeoutError):
            await events.next(timeout=0.7)  # nothing changes: only comments come
        assert ": keepalive" in events.comments


async def test_disconnect_stops_producer_and_watches(client: Client, namespace: str) -> None:
    await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "web"))
    async with served(client, namespace) as api:
        for _ in range(3):  # open and drop streams repeatedly: nothing piles up
            async with api.events(f"/api/v1/rollouts/{namespace}/info/watch") as events:
                await events.next()
                assert _stream_tasks()
            await _settle(api.app)
            assert _stream_tasks() == []
        unauthenticated = await httpx.AsyncClient(base_url=str(api.http.base_url)).get(
            f"/api/v1/rollouts/{namespace}/info/watch"
        )
        assert unauthenticated.status_code == 401


# ------------------------------------------------------------------------------------ applications


async def test_application_stream_filters_fields_and_changes(client: Client, namespace: str) -> None:
    await client.create(gitops_crds.APPLICATION, _application(namespace, "web"))
    await client.create(gitops_crds.APPLICATION, _application(namespace, "db", project="data"))
    async with served(client, namespace) as api:
        async with api.events("/api/v1/stream/applications") as everything:
            added = [(await everything.next())["result"] for _ in range(2)]
            assert [(e["type"], e["application"]["metadata"]["name"]) for e in added] == [
                ("ADDED", "db"),
                ("ADDED", "web"),
            ]

        fields = "result.type,result.application.metadata.name,result.application.spec.project"
        async with (
            api.events("/api/v1/stream/applications", projects="default", fields=fields) as default,
            api.events("/api/v1/stream/applications", name="db", fields="metadata.name") as db,
        ):
            assert await default.next() == {
                "result": {
                    "type": "ADDED",
                    "application": {"metadata": {"name": "web"}, "spec": {"project": "default"}},
                }
            }
            assert await db.next() == {
                "result": {"type": "ADDED", "application": {"metadata": {"name": "db"}}}
            }

            labels = {"metadata": {"labels": {"tier": "front"}}}
            await client.patch(gitops_crds.APPLICATION, "web", labels, namespace=namespace)
            modified = await default.next()
            assert modified["result"]["type"] == "MODIFIED"
            assert modified["result"]["application"]["metadata"] == {"name": "web"}

            await client.create(gitops_crds.APPLICATION, _application(namespace, "cache"))
            assert (await default.next())["result"] == {
                "type": "ADDED",
                "application": {"metadata": {"name": "cache"}, "spec": {"project": "default"}},
            }
            # Moving an app out of the client's project is a deletion for that client.
            await client.patch(
                gitops_crds.APPLICATION, "cache", {"spec": {"project": "data"}}, namespace=namespace
            )
            assert (await default.next())["result"]["type"] == "DELETED"

            await client.delete(gitops_crds.APPLICATION, "db", namespace)
            assert (await db.next())["result"] == {
                "type": "DELETED",
                "application": {"metadata": {"name": "db"}},
            }

        # A leading "-" leaves the fields out instead; a label selector narrows like the list's.
        excluded = "-result.application.spec,result.application.metadata.managedFields"
        async with api.events("/api/v1/stream/applications", fields=excluded, selector="tier=front") as front:
            event = (await front.next())["result"]
            assert event["type"] == "ADDED" and event["application"]["metadata"]["name"] == "web"
            assert (
                "spec" not in event["application"] and "managedFields" not in event["application"]["metadata"]
            )

        bad = await api.http.get("/api/v1/stream/applications", params={"selector": "a in b"})
        assert bad.status_code == 400


async def test_resource_tree_stream(client: Client, namespace: str) -> None:
    app = _application(namespace, "web")
    await client.create(gitops_crds.APPLICATION, app)
    async with served(client, namespace) as api:
        async with api.events("/api/v1/stream/applications/web/resource-tree") as events:
            tree = (await events.next())["result"]
            assert tree["nodes"] == [] or all(node.get("kind") for node in tree["nodes"])

            resources = [
                {
                    "group": "",
                    "version": "v1",
                    "kind": "ConfigMap",
                    "namespace": namespace,
                    "name": "settings",
                }
            ]
            await client.create(
                kinds.CONFIGMAP,
                {"metadata": {"name": "settings", "namespace": namespace}, "data": {"a": "1"}},
            )
            await client.patch(
                gitops_crds.APPLICATION, "web", {"status": {"resources": resources}}, namespace=namespace
            )
            tree = (await events.until(lambda e: e["result"]["nodes"]))["result"]
            assert [(n["kind"], n["name"]) for n in tree["nodes"]] == [("ConfigMap", "settings")]

            hub = streams.hub_of(api.app)
            assert hub is not None
            assert (kinds.CONFIGMAP, namespace) in hub.watched() and (kinds.POD, namespace) in hub.watched()

        assert (await api.http.get("/api/v1/stream/applications/nope/resource-tree")).status_code == 404
        await _settle(api.app)
        assert hub.watched() == []


# ---------------------------------------------------------------------------------------- watch hub


async def test_hub_shares_one_informer_and_tolerates_unserved_kinds(client: Client, namespace: str) -> None:
    hub = watchhub.WatchHub(client)
    seen: list[tuple[str, str]] = []

    def listener(tag: str) -> watchhub.Listener:
        return lambda old, new: seen.append((tag, str((new or old or {})["metadata"]["name"])))

    try:
        first = await hub.subscribe(kinds.CONFIGMAP, namespace, listener("a"))
        second = await hub.subscribe(kinds.CONFIGMAP, namespace, listener("b"))
        assert hub.watched() == [(kinds.CONFIGMAP, namespace)]
        await client.create(kinds.CONFIGMAP, {"metadata": {"name": "one", "namespace": namespace}})
        for _ in range(100):
            if {("a", "one"), ("b", "one")} <= set(seen):
                break
            await asyncio.sleep(0.05)
        assert {("a", "one"), ("b", "one")} <= set(seen)
        assert [cm["metadata"]["name"] for cm in second.objects()] == ["one"]

        widgets = kinds.Kind("example.com", "v1", "Widget", "widgets")
        unserved = await hub.subscribe(widgets, namespace, listener("w"))
        assert unserved.objects() == []

        first.close()
        assert (kinds.CONFIGMAP, namespace) in hub.watched()  # the second subscriber still listens
        second.close()
        second.close()  # leaving twice is harmless
        unserved.close()
        await hub.settle()
        assert hub.watched() == []
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("informer-") and not t.done()]
    finally:
        await hub.close()


async def test_stream_ends_when_its_session_is_logged_out(
    client: Client, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "KEEPALIVE_SECONDS", 0.2)  # the session is checked again at each one
    await client.create(rollout_crds.ROLLOUT, _rollout(namespace, "web"))
    path = f"/api/v1/rollouts/{namespace}/web/info/watch"
    async with served(client, namespace) as api, api.events(path) as events:
        await events.next()
        logout = await api.http.delete("/api/v1/session")  # revokes the bearer token the stream runs on
        assert logout.status_code == 200
        with pytest.raises(AssertionError, match="the stream ended"):
            await events.next(timeout=5)
