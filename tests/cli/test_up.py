"""``tugboat up`` from the CLI: the local cluster and the supervised controllers, their logs, surviving a
killed controller, a clean stop that leaves no process behind, state kept across restarts, and the same
controllers against an existing cluster (``--kubeconfig``); the API server and UI companion answering,
with a login by the initial admin password that ``up`` prints.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from clusterproc import ClusterProcess

CONTROLLERS = ("gitops-controller", "rollouts-controller")
COMPANIONS = (*CONTROLLERS, "server")


def children(pid: int, names: tuple[str, ...] = CONTROLLERS) -> dict[str, int]:
    """The controller (or other companion) processes ``pid`` runs, by name."""
    ps = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True)
    found: dict[str, int] = {}
    for line in ps.stdout.splitlines():
        child, _, args = line.strip().partition(" ")
        for name in names:
            if f" {name} " in f" {args} ":
                found[name] = int(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait(check: object, *, what: str, timeout: float = 60) -> object:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_up(state: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    if "--ui-port" not in extra:  # never the default 8080: tests run side by side
        extra = (*extra, "--ui-port", str(free_port()))
    argv = [sys.executable, "-m", "tugboat.cli.main", "up", "--state-dir", str(state), *extra]
    return subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def cluster_of(state: Path, proc: subprocess.Popen[bytes], *, newer_than: float = 0.0) -> ClusterProcess:
    kubeconfig = state / "kubeconfig"
    wait(lambda: kubeconfig.exists() and kubeconfig.stat().st_mtime > newer_than, what="the kubeconfig")
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    return ClusterProcess(state, proc, url=server, kubeconfig=kubeconfig)


def ui_ready(log: Path) -> tuple[str, str] | None:
    """The UI's URL and the password ``up`` printed once the UI answered."""
    found = re.search(r"UI ready: (http://\S+) \(user admin, password: (\S+)\)", log.read_text())
    return (found.group(1), found.group(2)) if found else None


def initial_password(cluster: ClusterProcess) -> str:
    with cluster.client() as client:
        secret = client.get("/api/v1/namespaces/argocd/secrets/argocd-initial-admin-secret").json()
    return base64.b64decode(secret["data"]["password"]).decode()


def served(cluster: ClusterProcess, path: str) -> bool:
    with cluster.client() as client:
        return bool(client.get(path).status_code == 200)


@pytest.fixture
def up_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    state, log = tmp_path / "state", tmp_path / "up.log"
    proc = start_up(state, log, "--port", "0", "--nodes", "1", "--no-demo")
    yield proc, state, log
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_up_supervises_the_controllers_and_stops_cleanly(
    up_process: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    proc, state, log = up_process
    cluster = cluster_of(state, proc)
    wait(lambda: served(cluster, "/apis/argoproj.io/v1alpha1/rollouts"), what="the rollout CRDs")
    wait(lambda: served(cluster, "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"), what="apps")
    running = wait(lambda: len(children(proc.pid)) == 2 and children(proc.pid), what="both controllers")
    assert isinstance(running, dict)
    for name in CONTROLLERS:
        assert (state / "logs" / f"{name}.log").exists()
    assert "everything is running" in log.read_text()

    # The API server and UI answer on --ui-port; `up` prints the initial password, which logs in.
    ready = wait(lambda: ui_ready(log), what="the UI announced", timeout=60)
    assert isinstance(ready, tuple)
    url, password = ready
    assert password == initial_password(cluster)
    with httpx.Client(base_url=url, timeout=10) as ui:
        assert ui.get("/healthz").status_code == 200
        login = ui.post("/api/v1/session", json={"username": "admin", "password": password})
        assert login.status_code == 200, login.text
        userinfo = ui.get(
            "/api/v1/session/userinfo", headers={"Authorization": f"Bearer {login.json()['token']}"}
        )
        assert userinfo.json()["username"] == "admin"
    server_pid = children(proc.pid, COMPANIONS)["server"]

    # A killed controller is restarted (with back-off) and catches up.
    os.kill(running["rollouts-controller"], signal.SIGKILL)
    restarted = wait(
        lambda: (
            children(proc.pid).get("rollouts-controller") not in (None, running["rollouts-controller"])
            and children(proc.pid)
        ),
        what="the rollout controller restarted",
        timeout=30,
    )
    assert isinstance(restarted, dict)
    with cluster.client() as client:
        response = client.post("/api/v1/namespaces", json={"metadata": {"name": "kept"}})
        assert response.status_code == 201

    # Ctrl-C stops everything: no controller is left behind.
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, log.read_text()
    for pid in (*restarted.values(), server_pid):
        wait(lambda pid=pid: not alive(pid), what=f"process {pid} gone", timeout=10)

    # A second `up` on the same state directory finds the cluster's state.
    before = (state / "kubeconfig").stat().st_mtime
    again = start_up(state, log, "--port", "0", "--nodes", "1", "--no-demo")
    try:
        cluster = cluster_of(state, again, newer_than=before)
        wait(lambda: served(cluster, "/api/v1/namespaces/kept"), what="the namespace kept across restarts")
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0


def test_up_against_an_existing_cluster(cluster: ClusterProcess, tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    proc = start_up(tmp_path / "state", log, "--kubeconfig", str(cluster.kubeconfig))
    try:
        wait(lambda: served(cluster, "/apis/argoproj.io/v1alpha1/rollouts"), what="CRDs on that cluster")
        wait(lambda: served(cluster, "/apis/argoproj.io/v1alpha1/applications"), what="Application CRD")
        wait(lambda: len(children(proc.pid)) == 2, what="both controllers")
        assert "controllers running against your cluster" in log.read_text()
        assert not (tmp_path / "state" / "kubeconfig").exists()  # no local cluster was started
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()


def test_up_with_a_missing_kubeconfig_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tugboat.cli.main", "up", "--kubeconfig", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "does not exist" in " ".join(result.stderr.split())


def app_status(cluster: ClusterProcess, name: str) -> tuple[str | None, str | None]:
    with cluster.client() as client:
        response = client.get(f"/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{name}")
    if response.status_code != 200:
        return None, None
    status = response.json().get("status") or {}
    return (status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status")


def test_up_bootstraps_the_demo_applications(tmp_path: Path) -> None:
    state, log = tmp_path / "state", tmp_path / "up.log"
    proc = start_up(state, log, "--port", "0", "--nodes", "1")
    try:
        cluster = cluster_of(state, proc)
        for name in ("demo-bluegreen", "demo-canary"):
            wait(
                lambda name=name: app_status(cluster, name) == ("Synced", "Healthy"),
                what=f"{name} Synced + Healthy",
                timeout=120,
            )
        assert (state / "demo-repo" / ".git").is_dir()
        assert "demo:" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
