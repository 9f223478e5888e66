"""The web UI's files as the API server serves them: the single-page app for every page path (deep links
and reloads), its assets, and every ES module syntactically valid and reachable from ``main.js``."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
import server_support

from tugboat.kube.client import Client
from tugboat.server import app as server_app
from tugboat.server import ui

_JS_DIR = ui.STATIC_DIR / "js"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    # The static routes never touch the cluster: a client for an address nothing listens on is enough.
    async with Client.for_url("http://127.0.0.1:9", field_manager="test-ui") as client:
        app = server_app.create_app(client, secret_key=b"k" * 32, namespace="argocd")
        async with server_support.asgi_client(app) as http:
            yield http


@pytest.mark.parametrize(
    "path", ["/", "/login", "/applications", "/applications/argocd/guestbook", "/rollouts/demo/web"]
)
async def test_page_paths_serve_the_app(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/assets/js/main.js">' in response.text
    assert response.headers["cache-control"] == "no-cache"


async def test_assets_are_served_without_a_session(api: httpx.AsyncClient) -> None:
    script = await api.get("/assets/js/core.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert (await api.get("/assets/favicon.svg")).status_code == 200
    assert (await api.get("/assets/js/missing.js")).status_code == 404


def test_index_references_only_local_assets() -> None:
    index = (ui.STATIC_DIR / "index.html").read_text()
    for url in re.findall(r'(?:src|href)="([^"]+)"', index):
        assert url.startswith("/assets/"), f"{url} is not served by Tugboat (no CDN on these machines)"
        assert (ui.STATIC_DIR / url.removeprefix("/assets/")).is_file(), url


def test_every_module_imported_by_main_exists_and_nothing_is_fetched_from_elsewhere() -> None:
    main = (_JS_DIR / "main.js").read_text()
    imports = re.findall(r"import\s+(?:[^'\"]*from\s+)?['\"]([^'\"]+)['\"]", main)
    assert imports
    for module in imports:
        assert module.startswith("./"), module
        assert (_JS_DIR / module).is_file(), f"main.js imports {module}, which does not exist"
    loads_remote = re.compile(
        r"""(?:from\s+|import\(|fetch\(|EventSource\(|src=|href=|url\()\s*['"]?https?://"""
    )
    for asset in [*_JS_DIR.glob("*.js"), *ui.STATIC_DIR.glob("*.css")]:
        assert not loads_remote.search(asset.read_text()), f"{asset.name} loads something from the network"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("script", sorted(path.name for path in _JS_DIR.glob("*.js")))
def test_module_syntax(script: str) -> None:
    checked = subprocess.run(
        ["node", "--check", "--input-type=module"],
        input=(_JS_DIR / script).read_text(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
