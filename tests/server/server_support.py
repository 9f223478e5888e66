"""What the API server's tests share, so each test file keeps only what it checks: a Kubernetes client
with Argo's CRDs and fresh namespaces (also as one-line fixtures), the API app in-process (optionally
logged in as admin) or under a real uvicorn, the Application and Rollout bodies the tests create, and the
``argocd-cm``/``argocd-rbac-cm`` writers.

A plain module beside the tests (pytest puts ``tests/server`` on ``sys.path`` for them); tests elsewhere
add this folder to ``sys.path`` before importing it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from clusterproc import ClusterProcess
from tugboat.gitops import crds as gitops_crds
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds as rollout_crds
from tugboat.server import app as server_app
from tugboat.server import auth, rbac

BASE_URL = "http://tugboat"

_counters: collections.defaultdict[str, Iterator[int]] = collections.defaultdict(itertools.count)


# ---------------------------------------------------------------------------------- cluster and namespaces


@contextlib.asynccontextmanager
async def argo_client(
    cluster: ClusterProcess,
    field_manager: str,
    *,
    gitops: bool = False,
    rollouts: bool = False,
    control_namespace: str = "argocd",
) -> AsyncIterator[Client]:
    """A client for ``cluster`` writing as ``field_manager``; first installs Argo CD's CRDs (and
    ``control_namespace`` with its ``default`` AppProject) with ``gitops``, and Argo Rollouts' CRDs with
    ``rollouts``."""
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager=field_manager) as client:
        if gitops:
            await gitops_crds.install(client, namespace=control_namespace)
        if rollouts:
            await rollout_crds.install(client)
        yield client


async def fresh_namespace(client: Client, prefix: str) -> str:
    """Create and name a new namespace ``<prefix><n>`` (one counter per prefix), for one test's objects."""
    name = f"{prefix}{next(_counters[prefix])}"
    await client.create(kinds.NAMESPACE, {"metadata": {"name": name}})
    return name


def client_fixture(field_manager: str, *, gitops: bool = False, rollouts: bool = False) -> Any:
    """A ``client`` fixture over ``argo_cluster`` (see ``argo_client``), for a test module to take in one
    line: ``client = server_support.client_fixture("test-x", gitops=True)``."""

    @pytest.fixture
    async def client(argo_cluster: ClusterProcess) -> AsyncIterator[Client]:
        async with argo_client(argo_cluster, field_manager, gitops=gitops, rollouts=rollouts) as c:
            yield c

    return client


def namespace_fixture(prefix: str) -> Any:
    """A fixture that gives each test a fresh namespace (see ``fresh_namespace``) made with the module's
    ``client`` fixture: ``namespace = server_support.namespace_fixture("x")``."""

    @pytest.fixture
    async def namespace(client: Client) -> str:
        return await fresh_namespace(client, prefix)

    return namespace


def free_port() -> int:
    """A local TCP port nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------ the API in-process


async def api_app(client: Client, namespace: str, *, limiter: auth.LoginLimiter | None = None) -> Starlette:
    """The API server's app over ``client``, its settings bootstrapped in ``namespace``."""
    key = await auth.bootstrap(client, namespace=namespace)
    return server_app.create_app(client, secret_key=key, namespace=namespace, limiter=limiter)


def asgi_client(app: Starlette) -> httpx.AsyncClient:
    """An HTTP client that calls ``app`` in-process (whole answers only: it cannot read a stream)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


async def admin_password(client: Client, namespace: str) -> str:
    """The admin's initial password, as bootstrapped in ``namespace``."""
    password = await auth.initial_password(client, namespace=namespace)
    assert password
    return password


async def session_token(api: httpx.AsyncClient, username: str, password: str) -> str:
    """Log in; the session token (the session cookie also stays in ``api``'s jar)."""
    response = await api.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def admin_token(api: httpx.AsyncClient, client: Client, namespace: str) -> str:
    """Log in as admin with the initial password; the session token (the cookie stays in ``api``)."""
    return await session_token(api, "admin", await admin_password(client, namespace))


def bearer(token: str) -> dict[str, str]:
    """The header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def logged_in_api(
    client: Client, namespace: str, *, limiter: auth.LoginLimiter | None = None, login: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process over ``client`` (settings in ``namespace``). With ``login``, every request says
    it is the admin with a bearer header and the session cookie is dropped; without, no session."""
    async with asgi_client(await api_app(client, namespace, limiter=limiter)) as api:
        if login:
            api.headers.update(bearer(await admin_token(api, client, namespace)))
            api.cookies.clear()
        yield api


# ----------------------------------------------------------------------------------- the API under uvicorn


@dataclasses.dataclass
class BackgroundServer:
    """A uvicorn server running as a task of the event loop that started it."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve_in_background(app: Starlette) -> AsyncIterator[BackgroundServer]:
    """Serve ``app`` over real HTTP on a free local port while the block runs (for streams, which the
    in-process transport cannot read, and for clients in other threads or processes)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield BackgroundServer(server, task, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


# ------------------------------------------------------------------------------------------------ bodies


def application(
    namespace: str,
    name: str,
    *,
    project: str = "default",
    labels: dict[str, str] | None = None,
    destination_namespace: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """An Application ``name`` in ``namespace`` from a path named like it in an example repository,
    deployed to ``destination_namespace`` (by default: named like the app); ``spec`` adds or replaces
    fields of its spec."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        metadata["labels"] = labels
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata,
        "spec": {
            "project": project,
            "source": {"repoURL": "https://example.com/repo.git", "path": name, "targetRevision": "HEAD"},
            "destination": {
                "server": "https://kubernetes.default.svc",
                "namespace": destination_namespace or name,
            },
            **spec,
        },
    }


def rollout(
    namespace: str,
    name: str,
    *,
    replicas: int = 1,
    steps: list[Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A canary Rollout ``name`` of one ``nginx:1`` container labelled ``app: <name>``, with ``steps``
    (by default: 20% then an indefinite pause); ``spec`` adds or replaces fields of its spec."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
            },
            "strategy": {
                "canary": {"steps": steps if steps is not None else [{"setWeight": 20}, {"pause": {}}]}
            },
            **spec,
        },
    }


# ------------------------------------------------------------------------------------ settings ConfigMaps


async def write_configmap(client: Client, namespace: str, name: str, data: dict[str, str]) -> None:
    """Create ConfigMap ``name`` with ``data``, or replace the data of the one there."""
    existing = await client.get_or_none(kinds.CONFIGMAP, name, namespace)
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace}, "data": data}
    if existing is None:
        await client.create(kinds.CONFIGMAP, body)
    else:
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        await client.replace(kinds.CONFIGMAP, body)


async def set_rbac(client: Client, namespace: str, data: dict[str, str]) -> None:
    """Make ``argocd-rbac-cm`` in ``namespace`` hold ``data`` (``policy.csv``, ``policy.default``, ...)."""
    await write_configmap(client, namespace, rbac.RBAC_CONFIGMAP, data)


async def set_accounts(client: Client, namespace: str, data: dict[str, str]) -> None:
    """Make ``argocd-cm`` in ``namespace`` hold ``data`` (``accounts.<name>`` and the like)."""
    await write_configmap(client, namespace, auth.SETTINGS_CONFIGMAP, data)


def admin_denied(*rules: str) -> dict[str, str]:
    """An RBAC policy that denies the admin each ``resource, action, object`` given: a refusal then proves
    a handler asked with exactly those names."""
    return {"policy.csv": "\n".join(f"p, admin, {rule}, deny" for rule in rules)}


@contextlib.asynccontextmanager
async def denied_to_admin(client: Client, namespace: str, *rules: str) -> AsyncIterator[None]:
    """``argocd-rbac-cm`` denying the admin each ``resource, action, object`` while the block runs."""
    await set_rbac(client, namespace, admin_denied(*rules))
    try:
        yield
    finally:
        await client.delete(kinds.CONFIGMAP, rbac.RBAC_CONFIGMAP, namespace)
