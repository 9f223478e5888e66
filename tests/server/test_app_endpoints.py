"""The Application endpoints of the API server that need no controller: list pages, projects, and the
RBAC names each handler asks for; in-process over a real bare cluster with Argo's CRDs."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import server_support

from tugboat.gitops import crds as gitops_crds
from tugboat.kube.client import Client

client = server_support.client_fixture("test-app-endpoints", gitops=True)
namespace = server_support.namespace_fixture("appep")


async def _deny(client: Client, namespace: str, *rules: str) -> None:
    await server_support.set_rbac(client, namespace, server_support.admin_denied(*rules))


async def _pages(api: httpx.AsyncClient, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        query = {**params, **({"continue": token} if token else {})}
        response = await api.get("/api/v1/applications", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([app["metadata"]["name"] for app in body["items"]])
        token = (body.get("metadata") or {}).get("continue") or ""
        if not token:
            return pages


async def test_list_pages_are_continuous_and_stable(client: Client, namespace: str) -> None:
    names = [f"app-{i:02d}" for i in range(7)]
    for name in reversed(names):
        await client.create(gitops_crds.APPLICATION, server_support.application(namespace, name))
    async with server_support.logged_in_api(client, namespace) as api:
        assert await _pages(api, limit=3) == [names[0:3], names[3:6], names[6:7]]
        assert await _pages(api, limit=7) == [names]
        assert await _pages(api) == [names]
        # fields trims the apps but keeps the token
        first = (
            await api.get("/api/v1/applications", params={"limit": 2, "fields": "items.metadata.name"})
        ).json()
        assert first["items"] == [{"metadata": {"name": "app-00"}}, {"metadata": {"name": "app-01"}}]
        token = first["metadata"]["continue"]
        # an app created before the cursor and one deleted after it do not shift the next page
        await client.create(gitops_crds.APPLICATION, server_support.application(namespace, "app-00a"))
        await client.delete(gitops_crds.APPLICATION, "app-02", namespace)
        second = (await api.get("/api/v1/applications", params={"limit": 2, "continue": token})).json()
        assert [app["metadata"]["name"] for app in second["items"]] == ["app-03", "app-04"]
        # filters apply before paging
        filtered = await _pages(api, limit=2, search="app-0", projects="default")
        assert [name for page in filtered for name in page] == [
            "app-00",
            "app-00a",
            "app-01",
            "app-03",
            "app-04",
            "app-05",
            "app-06",
        ]
        bad = await api.get("/api/v1/applications", params={"continue": "!!!"})
        assert bad.status_code == 400
        assert (await api.get("/api/v1/applications", params={"limit": "x"})).status_code == 400


async def test_list_pages_skip_what_rbac_hides(client: Client, namespace: str) -> None:
    for name in ("a", "b", "c", "d"):
        await client.create(gitops_crds.APPLICATION, server_support.application(namespace, name))
    await _deny(client, namespace, "applications, get, default/b")
    async with server_support.logged_in_api(client, namespace) as api:
        assert await _pages(api, limit=2) == [["a", "c"], ["d"]]


async def test_projects(client: Client, namespace: str) -> None:
    for name in ("default", "team", "secret"):
        project = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]},
        }
        await client.create(gitops_crds.APPPROJECT, project)
    await _deny(client, namespace, "projects, get, secret")
    async with server_support.logged_in_api(client, namespace) as api:
        listed = await api.get("/api/v1/projects")
        assert listed.status_code == 200, listed.text
        assert [p["metadata"]["name"] for p in listed.json()["items"]] == ["default", "team"]
        one = await api.get("/api/v1/projects/team")
        assert one.status_code == 200 and one.json()["spec"]["sourceRepos"] == ["*"]
        assert (await api.get("/api/v1/projects/secret")).status_code == 403
        assert (await api.get("/api/v1/projects/nope")).status_code == 404
