"""The API server's own endpoints, in-process over a real bare cluster: ``/api/version``, ``/metrics``
(per-request counts and durations by route template, logins, separate registries per app) and the
OpenAPI document, all without a session."""

from __future__ import annotations

import server_support
from prometheus_client import parser
from starlette.applications import Starlette

import tugboat
from tugboat.kube.client import Client
from tugboat.server import auth, servermetrics

client = server_support.client_fixture("test-serverinfo")
namespace = server_support.namespace_fixture("info")


async def _app(client: Client, namespace: str) -> Starlette:
    app = await server_support.api_app(client, namespace)
    servermetrics.instrument(app)  # idempotent: create_app may already have done it
    return app


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _requests(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], **labels: str) -> float:
    key = ("http_server_requests_total", tuple(sorted(labels.items())))
    return samples.get(key, 0.0)


async def test_version_is_public(client: Client, namespace: str) -> None:
    async with server_support.asgi_client(await _app(client, namespace)) as api:
        response = await api.get("/api/version")
    assert response.status_code == 200
    assert response.json()["Version"] == f"v{tugboat.__version__}"


async def test_metrics_count_requests_by_route_template(client: Client, namespace: str) -> None:
    async with server_support.asgi_client(await _app(client, namespace)) as api:
        password = await auth.initial_password(client, namespace=namespace)
        assert (
            await api.post("/api/v1/session", json={"username": "admin", "password": "x"})
        ).status_code == 401
        login = await api.post("/api/v1/session", json={"username": "admin", "password": password})
        assert login.status_code == 200
        for name in ("one", "two", "three"):
            assert (await api.get(f"/api/v1/applications/{name}")).status_code == 404
        assert (await api.get("/healthz")).status_code == 200
        api.cookies.clear()
        response = await api.get("/metrics")  # public: no session
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    template = "/api/v1/applications/{name}"
    assert _requests(samples, method="GET", route=template, code="404") == 3
    assert _requests(samples, method="GET", route="/healthz", code="200") == 1
    assert _requests(samples, method="POST", route="/api/v1/session", code="200") == 1
    assert not any("/api/v1/applications/one" in str(labels) for _, labels in samples)
    count = ("http_server_request_duration_seconds_count", (("method", "GET"), ("route", template)))
    assert samples[count] == 3
    assert samples[("argocd_login_request_total", (("status", "failure"),))] == 1
    assert samples[("argocd_login_request_total", (("status", "success"),))] == 1
    assert samples[("argocd_info", (("version", tugboat.__version__),))] == 1


async def test_each_app_has_its_own_registry(client: Client, namespace: str) -> None:
    first, second = await _app(client, namespace), await _app(client, namespace)
    async with server_support.asgi_client(first) as api:
        await api.get("/api/version")
        await api.get("/api/version")
    async with server_support.asgi_client(second) as api:
        text = (await api.get("/metrics")).text
    assert _requests(_samples(text), method="GET", route="/api/version", code="200") == 0


async def test_unmatched_paths_share_one_label(client: Client, namespace: str) -> None:
    async with server_support.asgi_client(await _app(client, namespace)) as api:
        for path in ("/nope/1", "/nope/2"):
            await api.get(path)
        text = (await api.get("/metrics")).text
    samples = _samples(text)
    raw = sum(
        value
        for (name, labels), value in samples.items()
        if name == "http_server_requests_total" and any(v.startswith("/nope") for _, v in labels)
    )
    assert raw == 0  # a route template (or "unmatched"), never the raw path
    assert sum(value for (name, _), value in samples.items() if name == "http_server_requests_total") >= 2
