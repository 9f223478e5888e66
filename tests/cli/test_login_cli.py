"""``tugboat login``, ``logout`` and ``account …`` against a real API server (uvicorn on a free port, in a
thread) over the ``argo_cluster`` fixture: the stored config, API keys, can-i, password changes, errors."""

from __future__ import annotations

import asyncio
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

import server_support

from clusterproc import ClusterProcess
from tugboat.cli import logincmd, main
from tugboat.server import auth

runner = CliRunner()
VIEWER_PASSWORD = "viewer-pass-1"


@dataclass
class ApiServer:
    url: str
    host: str  # HOST:PORT, as typed after ``tugboat login``
    namespace: str
    admin_password: str


async def _prepare(cluster: ClusterProcess) -> tuple[str, str]:
    """The server's namespace and admin password; its settings: accounts ci (API keys only) and viewer
    (login), a policy."""
    async with server_support.argo_client(cluster, "test-login-cli") as client:
        namespace = await server_support.fresh_namespace(client, "logincli")
        await auth.bootstrap(client, namespace=namespace)
        await server_support.set_accounts(
            client, namespace, {"accounts.ci": "apiKey", "accounts.viewer": "login, apiKey"}
        )
        await server_support.set_rbac(client, namespace, {"policy.csv": "g, viewer, role:readonly"})
        await auth.set_password(client, "viewer", VIEWER_PASSWORD, namespace=namespace)
        return namespace, await server_support.admin_password(client, namespace)


class _ServerThread(threading.Thread):
    """The API server under uvicorn on a free port, in its own event loop."""

    def __init__(self, cluster: ClusterProcess, namespace: str) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.namespace = namespace
        self.served: server_support.BackgroundServer | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by the fixture
            self.failure = exc

    async def _serve(self) -> None:
        async with server_support.argo_client(self.cluster, "tugboat-server") as client:
            app = await server_support.api_app(client, self.namespace)
            async with server_support.serve_in_background(app) as served:
                self.served = served
                await served.task  # until the fixture asks the server to exit

    def port(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.failure is not None:
                raise self.failure
            if self.served is not None:
                return self.served.port
            time.sleep(0.02)
        raise TimeoutError("the API server did not start")


@pytest.fixture(scope="module")
def api_server(argo_cluster: ClusterProcess) -> Iterator[ApiServer]:
    namespace, password = asyncio.run(_prepare(argo_cluster))
    thread = _ServerThread(argo_cluster, namespace)
    thread.start()
    port = thread.port()
    yield ApiServer(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", namespace, password)
    assert thread.served is not None
    thread.served.server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tugboat" / "config"
    monkeypatch.setenv(logincmd.CONFIG_ENV, str(path))
    monkeypatch.delenv(logincmd.TOKEN_ENV, raising=False)
    return path


def tugboat(*args: str, input: str | None = None) -> Any:
    return runner.invoke(main.app, list(args), input=input)


# ------------------------------------------------------------------------------------------------ tests


def test_login_generate_token_can_i_and_logout(api_server: ApiServer, config: Path) -> None:
    login = tugboat("login", api_server.host, "--plaintext", "--password", api_server.admin_password)
    assert login.exit_code == 0, login.output
    assert f"'admin' logged in successfully to {api_server.host}" in login.output
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    stored = yaml.safe_load(config.read_text())
    assert stored["current-server"] == api_server.host
    [entry] = stored["servers"]
    assert entry["url"] == api_server.url and entry["username"] == "admin" and entry["auth-token"]

    listed = tugboat("account", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["NAME", "ENABLED", "CAPABILITIES"]
    assert lines[1].split() == ["admin", "true", "login"]
    assert lines[2].split() == ["ci", "true", "apiKey"]

    generated = tugboat(
        "account", "generate-token", "--account", "ci", "--expires-in", "1h", "--id", "deploy"
    )
    assert generated.exit_code == 0, generated.output
    token = generated.output.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "ci" and claims["jti"] == "deploy" and claims["exp"] - claims["iat"] == 3600
    info = httpx.get(
        f"{api_server.url}/api/v1/session/userinfo", headers={"Authorization": f"Bearer {token}"}
    )
    assert info.status_code == 200 and info.json()["username"] == "ci"

    assert tugboat("account", "can-i", "sync", "applications", "default/guestbook").output.strip() == "yes"
    # The API key (no RBAC for ci) with --auth-token, against the server named by --server.
    as_ci = tugboat(
        "account",
        "can-i",
        "sync",
        "applications",
        "default/guestbook",
        "--auth-token",
        token,
        "--server",
        api_server.url,
    )
    assert as_ci.exit_code == 0, as_ci.output
    assert as_ci.output.strip() == "no"

    logout = tugboat("logout")
    assert logout.exit_code == 0 and f"logged out from '{api_server.host}'" in logout.output
    assert "auth-token" not in yaml.safe_load(config.read_text())["servers"][0]
    after = tugboat("account", "list")
    assert after.exit_code == 1 and "not logged in" in after.output


def test_login_prompts_for_password_and_reports_errors(api_server: ApiServer, config: Path) -> None:
    wrong = tugboat("login", api_server.url, input="not-the-password\n")
    assert wrong.exit_code == 1
    assert "Password:" in wrong.output and "not-the-password" not in wrong.output
    assert "error: Invalid username or password (401)" in wrong.output
    assert not config.exists()

    unreachable = tugboat(
        "login", f"127.0.0.1:{server_support.free_port()}", "--plaintext", "--password", "x"
    )
    assert (
        unreachable.exit_code == 1
        and "error: cannot reach the API server at http://127.0.0.1:" in unreachable.output
    )
    assert tugboat("account", "list").output.startswith("error: not logged in")

    right = tugboat("login", api_server.url, input=f"{api_server.admin_password}\n")
    assert right.exit_code == 0, right.output
    # A token the server no longer accepts is reported as such, with what to do about it.
    stored = yaml.safe_load(config.read_text())
    stored["servers"][0]["auth-token"] = jwt.encode({"sub": "admin"}, "not-the-server-key-" * 3)
    config.write_text(yaml.safe_dump(stored))
    expired = tugboat("account", "list")
    assert expired.exit_code == 1
    assert f"not authenticated to {api_server.host}" in expired.output and "tugboat login" in expired.output


def test_update_password_keeps_the_session(api_server: ApiServer, config: Path) -> None:
    login = tugboat("login", api_server.url, "--username", "viewer", input=f"{VIEWER_PASSWORD}\n")
    assert login.exit_code == 0, login.output
    assert tugboat("account", "can-i", "sync", "applications", "default/x").output.strip() == "no"
    own = tugboat("account", "generate-token")  # viewer has the apiKey capability: a key for itself
    assert own.exit_code == 0, own.output
    assert jwt.decode(own.output.strip(), options={"verify_signature": False})["sub"] == "viewer"

    refused = tugboat(
        "account", "update-password", "--current-password", "wrong", "--new-password", "new-pass-123"
    )
    assert refused.exit_code == 1 and "current password does not match" in refused.output

    new = "new-pass-123"
    changed = tugboat("account", "update-password", input=f"{VIEWER_PASSWORD}\n{new}\n{new}\n")
    assert changed.exit_code == 0, changed.output
    assert "Password updated for 'viewer'" in changed.output
    # The old session ended with the change; the command logged in again and kept the new token.
    assert tugboat("account", "list").exit_code == 0
    assert tugboat("login", api_server.url, "--username", "viewer", "--password", new).exit_code == 0
    forbidden = tugboat("account", "generate-token", "--account", "ci")
    assert forbidden.exit_code == 1 and "permission denied" in forbidden.output
