"""Start Tugboat for the browser tests the way a user does, and change the demo's Git repository.

``tugboat up`` on a fresh state directory starts the local cluster, both controllers and the API server
with the web UI on a free port, and bootstraps the demo (a Git repository under ``STATE/demo-repo`` and
its Applications). The admin password is read with ``tugboat admin initial-password``, as the README says.
Changes to the demo apps are ordinary Git commits to that repository, as ``tugboat demo`` makes them.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from tugboat.cli import demoapps

START_TIMEOUT = 90.0


class StartError(RuntimeError):
    """``tugboat up`` did not come up; the message carries its log."""


@dataclass
class System:
    """A running ``tugboat up``: where its UI is, how to log in, where its state lives."""

    state_dir: Path
    proc: subprocess.Popen[bytes]
    url: str
    kubeconfig: Path
    password: str
    log_path: Path

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def stop(self) -> None:
        """SIGTERM (``up`` stops its companions with it), then SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tugboat(*args: str) -> list[str]:
    return [sys.executable, "-m", "tugboat.cli.main", *args]


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def initial_password(kubeconfig: Path) -> str | None:
    """``tugboat admin initial-password``; None until the server has created it."""
    result = subprocess.run(
        _tugboat("admin", "initial-password", "--kubeconfig", str(kubeconfig)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    password = result.stdout.strip()
    return password if result.returncode == 0 and password else None


def _wait(check: Any, *, what: str, deadline: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    while True:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            raise StartError(f"tugboat up exited ({proc.returncode}) waiting for {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise StartError(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.25)


def start_system(state_dir: Path, *, timeout: float = START_TIMEOUT) -> System:
    """``tugboat up --state-dir STATE --port 0 --ui-port FREE`` (one simulated node), once its UI answers
    and the admin password can be read."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir.parent / f"{state_dir.name}-up.log"
    port = free_port()
    argv = _tugboat(
        "up", "--state-dir", str(state_dir), "--port", "0", "--ui-port", str(port), "--nodes", "1"
    )
    proc = subprocess.Popen(argv, stdout=log_path.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    kubeconfig = state_dir / "kubeconfig"
    deadline = time.monotonic() + timeout
    try:
        _wait(kubeconfig.exists, what="the kubeconfig", deadline=deadline, proc=proc, log=log_path)
        _wait(lambda: _answers(url), what=f"the UI at {url}", deadline=deadline, proc=proc, log=log_path)
        password = _wait(
            lambda: initial_password(kubeconfig),
            what="the initial admin password",
            deadline=deadline,
            proc=proc,
            log=log_path,
        )
    except BaseException:
        System(state_dir, proc, url, kubeconfig, "", log_path).stop()
        raise
    return System(state_dir, proc, url, kubeconfig, str(password), log_path)


# ------------------------------------------------------------------------------------- demo changes

INDEFINITE_PAUSE: dict[str, Any] = {"pause": {}}


def canary_steps(*, pause_until_promoted: bool) -> list[dict[str, Any]]:
    """The demo canary's steps; with ``pause_until_promoted`` its first pause waits for a promotion."""
    steps: list[dict[str, Any]] = demoapps.canary_rollout(demoapps.FIRST_IMAGE)["spec"]["strategy"]["canary"][
        "steps"
    ]
    if pause_until_promoted:
        steps = [INDEFINITE_PAUSE if "pause" in step and i == 1 else step for i, step in enumerate(steps)]
    return steps


def commit_canary(state_dir: Path, *, image: str, pause_until_promoted: bool, message: str) -> str:
    """Set the demo canary Rollout's image and steps in Git and commit; the new commit's SHA."""
    repo = demoapps.repo_path(state_dir)
    path = repo / demoapps.CANARY / demoapps.ROLLOUT_FILE
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    rollout = next(doc for doc in docs if isinstance(doc, dict) and doc.get("kind") == "Rollout")
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = image
    rollout["spec"]["strategy"]["canary"]["steps"] = canary_steps(pause_until_promoted=pause_until_promoted)
    path.write_text("---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in docs))
    demoapps.git(repo, "add", "-A")
    demoapps.git(repo, "commit", "-q", "-m", message)
    return demoapps.git(repo, "rev-parse", "HEAD")
