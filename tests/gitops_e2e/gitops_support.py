"""End-to-end support for GitOps tests: real git repositories, a real controller process, polling.

A module starts one :class:`ControllerProcess` (``tugboat gitops-controller``) against the session's
simulated cluster; each test makes its own git repository in a temp dir (:class:`GitRepo`) and its own
Applications (unique names), and polls them with :func:`wait_app`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from clusterproc import ClusterProcess

APPS = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid() % 1000}-{next(_names)}"


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


class GitRepo:
    """A real repository with a working tree, committed to with :meth:`commit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def write(self, files: Mapping[str, str | None]) -> None:
        for name, content in files.items():
            target = self.path / name
            if content is None:
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)

    def copy_tree(self, source: Path, dest: str) -> None:
        shutil.copytree(source, self.path / dest, dirs_exist_ok=True)

    def commit(self, files: Mapping[str, str | None] | None = None, message: str = "change") -> str:
        if files:
            self.write(files)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


@dataclass
class ControllerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    args: list[str]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_controller(cluster: ClusterProcess, state_dir: Path, *extra: str) -> ControllerProcess:
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "controller.log"
    args = [
        sys.executable,
        "-m",
        "tugboat.cli.main",
        "gitops-controller",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--state-dir",
        str(state_dir),
        "--self-heal-backoff",
        "0.5",
        *extra,
    ]
    proc = subprocess.Popen(args, stdout=log_path.open("ab"), stderr=subprocess.STDOUT)
    controller = ControllerProcess(proc, log_path, args)
    # Ready when the CRDs are served and the default project exists.
    deadline = time.monotonic() + 60
    with cluster.client() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the controller exited:\n{controller.log()}")
            response = client.get("/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects/default")
            if response.status_code == 200:
                time.sleep(0.5)  # let the informers list
                return controller
            time.sleep(0.1)
    controller.stop(signal.SIGKILL)
    raise RuntimeError(f"the controller did not start:\n{controller.log()}")


def application(
    name: str,
    repo: str,
    path: str,
    *,
    namespace: str,
    automated: bool | Mapping[str, Any] = True,
    revision: str = "HEAD",
    sync_options: list[str] | None = None,
    finalizer: bool = True,
    **source: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": "default",
        "source": {"repoURL": repo, "path": path, "targetRevision": revision, **source},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        "syncPolicy": {"syncOptions": sync_options if sync_options is not None else ["CreateNamespace=true"]},
    }
    if automated:
        spec["syncPolicy"]["automated"] = (
            dict(automated) if isinstance(automated, Mapping) else {"prune": True, "selfHeal": True}
        )
    meta: dict[str, Any] = {"name": name, "namespace": "argocd"}
    if finalizer:
        meta["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta, "spec": spec}


def create_app(cluster: ClusterProcess, app: Mapping[str, Any]) -> None:
    with cluster.client() as client:
        response = client.post(APPS, json=app)
        assert response.status_code == 201, response.text


def get_app(cluster: ClusterProcess, name: str) -> dict[str, Any] | None:
    with cluster.client() as client:
        response = client.get(f"{APPS}/{name}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def patch_app(cluster: ClusterProcess, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
    with cluster.client() as client:
        response = client.patch(
            f"{APPS}/{name}", json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def status_of(app: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    status = (app or {}).get("status") or {}
    return (status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status")


def wait_app(
    cluster: ClusterProcess,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 60,
    what: str = "",
    controller: ControllerProcess | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    app: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        app = get_app(cluster, name)
        if app is not None and check(app):
            return app
        time.sleep(0.1)
    summary = yaml.safe_dump((app or {}).get("status"), sort_keys=False)
    logs = controller.log()[-6000:] if controller else ""
    raise AssertionError(f"timed out waiting for {what or name}; status:\n{summary}\n{logs}")


def synced_healthy(app: Mapping[str, Any]) -> bool:
    return status_of(app) == ("Synced", "Healthy")


def get(cluster: ClusterProcess, path: str) -> dict[str, Any] | None:
    with cluster.client() as client:
        response = client.get(path)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def http_client(cluster: ClusterProcess) -> httpx.Client:
    return cluster.client()


# ------------------------------------------------------------------ helpers for the feature tests

PROJECTS = "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects"


def run_cli(cluster: ClusterProcess, *args: str) -> Any:
    """``tugboat app ARGS --kubeconfig K``, in process (typer's runner); the result has ``exit_code``,
    ``stdout`` and ``stderr``."""
    from typer.testing import CliRunner

    from tugboat.cli import main

    return CliRunner().invoke(main.app, ["app", *args, "--kubeconfig", str(cluster.kubeconfig)])


def wait_for(check: Callable[[], Any], *, timeout: float = 30, what: str = "", interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")


def operation_state(app: Mapping[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = ((app or {}).get("status") or {}).get("operationState") or {}
    return result


def operation_phase(app: Mapping[str, Any] | None) -> str | None:
    phase: str | None = operation_state(app).get("phase")
    return phase


def conditions_of(app: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ((app or {}).get("status") or {}).get("conditions") or []
    return found


def sync_results(app: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (operation_state(app).get("syncResult") or {}).get("resources") or []
    return found


def create_project(cluster: ClusterProcess, name: str, spec: Mapping[str, Any]) -> None:
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": dict(spec),
    }
    with cluster.client() as client:
        response = client.post(PROJECTS, json=body)
        assert response.status_code == 201, response.text


# ------------------------------------------------------------------------------------------ manifests


def configmap(name: str, data: dict[str, str]) -> str:
    """A ConfigMap manifest (YAML) for a test repository."""
    lines = [f"  {k}: {v!r}" for k, v in data.items()]
    return (
        "\n".join(["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}", "data:", *lines])
        + "\n"
    )


def deployment(name: str, image: str = "nginx:1.25", replicas: int = 1) -> str:
    """A Deployment manifest (YAML) for a test repository: one container ``main`` running ``image``."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
"""
