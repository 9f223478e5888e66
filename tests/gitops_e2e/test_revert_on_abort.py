"""Rollback that reaches Git, end to end: a Rollout that aborts at its progress deadline makes the GitOps
controller revert the offending commit (``tugboat.dev/git-revert-on-abort``), on the branch or on a review
branch; an abort by hand writes nothing.

Real parts only: the simulated local cluster, a bare git repository as ``origin`` (``file://``, so pushes
work), the GitOps controller and the rollout controller as separate processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gitops_support import (
    ControllerProcess,
    application,
    conditions_of,
    create_app,
    get,
    git,
    run_cli,
    start_controller,
    status_of,
    unique,
    wait_app,
)

from clusterproc import ClusterProcess, start_rollouts_controller, stop_process

MODE = "tugboat.dev/git-revert-on-abort"


@pytest.fixture(scope="module")
def controllers(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    rollouts = start_rollouts_controller(sim_cluster, tmp_path_factory.mktemp("revert-rollouts"))
    gitops = start_controller(sim_cluster, tmp_path_factory.mktemp("revert-gitops"))
    yield gitops
    gitops.stop()
    stop_process(rollouts)


class Origin:
    """A bare ``origin`` (what the Application tracks) and a clone that commits and pushes to it."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        self.bare, self.work = root / "origin.git", root / "work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, content in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")

    def rev(self, name: str) -> str:
        return git(self.bare, "rev-parse", "--verify", "--quiet", name)

    def branches(self) -> list[str]:
        return git(self.bare, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def manifests(image: str, *, deadline_abort: bool = True) -> dict[str, str]:
    deadline = "progressDeadlineSeconds: 5\n  progressDeadlineAbort: true" if deadline_abort else ""
    rollout = f"""apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 2
  {deadline}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: main
        image: {image}
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      scaleDownDelaySeconds: 2
      abortScaleDownDelaySeconds: 2
"""
    services = "\n---\n".join(
        f"""apiVersion: v1
kind: Service
metadata:
  name: web-{role}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""
        for role in ("active", "preview")
    )
    return {"app/rollout.yaml": rollout, "app/services.yaml": services}


def rollout_status(cluster: ClusterProcess, namespace: str) -> dict[str, Any]:
    found = get(cluster, f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/web")
    return dict((found or {}).get("status") or {})


def revert_condition(app: dict[str, Any]) -> str:
    return next((c["message"] for c in conditions_of(app) if c.get("type") == "RevertOnAbort"), "")


def start(
    cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path, mode: str, **kw: bool
) -> tuple[str, Origin, str, str]:
    """An app on a healthy N+1, then a commit of N+2 that never becomes ready: ``(name, origin, N+1
    commit, N+2 commit)`` once N+2 is synced."""
    origin = Origin(tmp_path / "git")
    name = unique(f"revert-{mode}")
    n1 = origin.commit(manifests("demo:v1", **kw), "N+1")
    app = application(name, origin.url, "app", namespace=name)
    app["metadata"]["annotations"] = {MODE: mode}
    create_app(cluster, app)
    wait_app(
        cluster, name, lambda a: status_of(a) == ("Synced", "Healthy"), controller=controller, timeout=60
    )
    n2 = origin.commit(manifests("demo:crash-v2", **kw), "N+2: a broken image")
    return name, origin, n1, n2


def test_commit_mode_reverts_on_the_branch_and_the_app_returns_to_healthy(
    sim_cluster: ClusterProcess, controllers: ControllerProcess, tmp_path: Path
) -> None:
    name, origin, n1, n2 = start(sim_cluster, controllers, tmp_path, "commit")
    app = wait_app(
        sim_cluster,
        name,
        lambda a: (
            origin.rev("main") != n2
            and a["status"]["sync"].get("revision") == origin.rev("main")
            and status_of(a) == ("Synced", "Healthy")
            and not rollout_status(sim_cluster, name).get("abort")
        ),
        controller=controllers,
        timeout=60,
        what="the revert synced: Synced + Healthy",
    )
    head = origin.rev("main")
    assert origin.rev(f"{head}^") == n2
    assert origin.rev(f"{head}^{{tree}}") == origin.rev(f"{n1}^{{tree}}")
    message = git(origin.bare, "log", "-1", "--format=%B", head)
    assert "Rollout " in message and f"{name}/web aborted" in message
    assert "has timed out progressing" in message and f"This reverts commit {n2}." in message
    assert app["metadata"]["annotations"]["tugboat.dev/reverted-revision"] == n2
    status = rollout_status(sim_cluster, name)
    assert status["stableRS"] == status["currentPodHash"]
    assert revert_condition(app).startswith(f"Reverted {n2[:7]} in Git on main (commit {head[:7]})")
    shown = run_cli(sim_cluster, "get", name)
    assert shown.exit_code == 0 and "RevertOnAbort" in shown.stdout
    events = get(sim_cluster, "/api/v1/namespaces/argocd/events") or {}
    reasons = [e["reason"] for e in events["items"] if e["involvedObject"].get("name") == name]
    assert reasons.count("RevertedOnAbort") == 1  # once, whatever else the controller reported


def test_branch_mode_pushes_a_review_branch_and_the_app_stays_degraded(
    sim_cluster: ClusterProcess, controllers: ControllerProcess, tmp_path: Path
) -> None:
    name, origin, n1, n2 = start(sim_cluster, controllers, tmp_path, "branch")
    branch = f"tugboat/revert-{n2[:7]}"
    app = wait_app(
        sim_cluster,
        name,
        lambda a: status_of(a) == ("Synced", "Degraded") and bool(revert_condition(a)),
        controller=controllers,
        timeout=60,
        what="the review branch: Synced + Degraded",
    )
    assert revert_condition(app).startswith(f"Reverted {n2[:7]} in Git as branch {branch} for review")
    assert origin.rev("main") == n2 and app["status"]["sync"]["revision"] == n2
    assert origin.rev(f"{branch}^") == n2
    assert origin.rev(f"{branch}^{{tree}}") == origin.rev(f"{n1}^{{tree}}")


def test_a_manual_abort_writes_nothing(
    sim_cluster: ClusterProcess, controllers: ControllerProcess, tmp_path: Path
) -> None:
    name, origin, _, n2 = start(sim_cluster, controllers, tmp_path, "commit", deadline_abort=False)
    wait_app(
        sim_cluster,
        name,
        lambda a: a["status"]["sync"].get("revision") == n2 and status_of(a) == ("Synced", "Progressing"),
        controller=controllers,
        timeout=60,
        what="N+2 progressing",
    )
    from typer.testing import CliRunner

    from tugboat.cli.main import app as cli

    aborted = CliRunner().invoke(
        cli, ["rollout", "abort", "web", "-n", name, "--kubeconfig", str(sim_cluster.kubeconfig)]
    )
    assert aborted.exit_code == 0, aborted.output
    app = wait_app(
        sim_cluster,
        name,
        lambda a: status_of(a) == ("Synced", "Degraded") and bool(revert_condition(a)),
        controller=controllers,
        timeout=60,
        what="the manual abort explained",
    )
    assert "was aborted by hand" in revert_condition(app)
    assert origin.rev("main") == n2 and origin.branches() == ["main"]
    assert "tugboat.dev/reverted-revision" not in app["metadata"]["annotations"]
