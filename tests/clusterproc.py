"""Start a real local cluster process (the ``tugboat`` CLI) for tests, and drive kubectl against it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import yaml


@dataclass
class ClusterProcess:
    state_dir: Path
    proc: subprocess.Popen[bytes]
    url: str = ""
    kubeconfig: Path = field(default_factory=Path)
    log_path: Path = field(default_factory=Path)

    def kubectl_env(self) -> dict[str, str]:
        home = self.state_dir / "kubectl-home"
        home.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            {"HOME": str(home), "KUBECACHEDIR": str(home / "cache"), "KUBECONFIG": str(self.kubeconfig)}
        )
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.kubectl_env(),
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, verify=False)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


def start_cluster(
    state_dir: Path, *extra: str, simulate: bool = False, timeout: float = 30
) -> ClusterProcess:
    """Run ``tugboat cluster serve --port 0`` on ``state_dir`` and wait until it answers.

    Without ``simulate`` the server runs bare (``--nodes 0``): no simulated nodes or controllers.
    """
    if not simulate and "--nodes" not in extra:
        extra = (*extra, "--nodes", "0")
    state_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = state_dir / "kubeconfig"
    if kubeconfig.exists():
        kubeconfig.unlink()
    log_path = state_dir / "server.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tugboat.cli.main",
            "cluster",
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(state_dir),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    cluster = ClusterProcess(state_dir, proc, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local cluster exited ({proc.returncode}):\n{log_path.read_text()}")
        if kubeconfig.exists():
            config = yaml.safe_load(kubeconfig.read_text())
            cluster.url = config["clusters"][0]["cluster"]["server"]
            cluster.kubeconfig = kubeconfig
            try:
                if httpx.get(f"{cluster.url}/readyz", verify=False, timeout=2).status_code == 200:
                    return cluster
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    cluster.stop(signal.SIGKILL)
    raise RuntimeError(f"the local cluster did not become ready:\n{log_path.read_text()}")


def have_kubectl() -> bool:
    return shutil.which("kubectl") is not None


def start_rollouts_controller(cluster: ClusterProcess, log_dir: Path) -> subprocess.Popen[bytes]:
    """``tugboat rollouts-controller`` against ``cluster`` (output in ``log_dir``), returned once Rollouts
    are served and its informers have had a moment to list."""
    log = log_dir / "rollouts-controller.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tugboat.cli.main",
            "rollouts-controller",
            "--kubeconfig",
            str(cluster.kubeconfig),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    with cluster.client() as client:
        while client.get("/apis/argoproj.io/v1alpha1/rollouts").status_code != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError(f"the rollout controller did not start:\n{log.read_text()}")
            time.sleep(0.1)
    time.sleep(0.5)
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
