"""``tugboat demo`` end to end: the demo bootstrap, then the seed's success and rollback processes observed
step by step on both demo apps, and a non-zero exit naming the step that did not happen.

Real parts only: the session's simulated local cluster, the GitOps controller and the rollout controller
as separate processes (as in tests/rollouts_e2e/test_seed.py), and a real Git repository in a temp dir.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tugboat.cli import demoapps, democmd
from tugboat.cli.main import app

sys.path.insert(0, str(Path(__file__).parent.parent / "gitops_e2e"))

from gitops_support import start_controller

from clusterproc import ClusterProcess, start_rollouts_controller, stop_process


@pytest.fixture(scope="module")
def demo_state(sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Both controllers running against the simulated cluster, and the demo bootstrapped: its state dir."""
    rollouts = start_rollouts_controller(sim_cluster, tmp_path_factory.mktemp("demo-rollouts"))
    gitops = start_controller(sim_cluster, tmp_path_factory.mktemp("demo-gitops"))
    state = tmp_path_factory.mktemp("demo-state")
    created = demoapps.bootstrap(state, sim_cluster.kubeconfig)
    assert created == [
        f"Git repository {demoapps.repo_path(state)}",
        "Application argocd/demo-bluegreen",
        "Application argocd/demo-canary",
    ]
    assert demoapps.bootstrap(state, sim_cluster.kubeconfig) == []  # idempotent
    yield state
    with sim_cluster.client() as client:
        for name in demoapps.APP_NAMES:
            client.delete(f"/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{name}")
            client.delete(f"/api/v1/namespaces/{name}")
    gitops.stop()
    stop_process(rollouts)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["demo", *args])
    return result.exit_code, result.output


def test_demo_repository_and_image_commits(tmp_path: Path) -> None:
    assert demoapps.create_repo(tmp_path)
    assert not demoapps.create_repo(tmp_path)
    first = demoapps.head(tmp_path)
    assert demoapps.image_of(tmp_path, "canary") == demoapps.FIRST_IMAGE
    sha = demoapps.commit_image(tmp_path, "demo-canary", demoapps.failing_image(2), "N+1")
    assert sha == demoapps.head(tmp_path) != first
    assert demoapps.image_of(tmp_path, "canary") == "tugboat.dev/demo-web:crash-v2"
    assert demoapps.image_of(tmp_path, "bluegreen") == demoapps.FIRST_IMAGE
    assert demoapps.version_of(demoapps.image_of(tmp_path, "canary")) == 2
    template = (demoapps.repo_path(tmp_path) / "canary" / "analysis.yaml").read_text()
    assert "{{args.metrics-url}}/metrics/simulated/summary?namespace=demo-canary" in template
    assert demoapps.METRICS_SECRET in template  # the cluster's address is not in Git


def test_demo_without_a_running_system_says_how_to_start_one(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    code, output = invoke("--state-dir", str(tmp_path), "--kubeconfig", str(kubeconfig))
    assert code == 2, output
    assert "make up" in output and "tugboat up" in output


@pytest.mark.parametrize("strategy", ["bluegreen", "canary"])
def test_demo_observes_every_seed_step(sim_cluster: ClusterProcess, demo_state: Path, strategy: str) -> None:
    code, output = invoke(
        "--strategy",
        strategy,
        "--state-dir",
        str(demo_state),
        "--kubeconfig",
        str(sim_cluster.kubeconfig),
        "--timeout",
        "60",
    )
    assert code == 0, output
    for process, count in (("success", 8), ("rollback", 9)):
        for number in range(1, count + 1):
            assert f"✔ {process} step {number}:" in output, output
    assert "all 17 steps observed" in output
    assert "RolloutAborted" in output  # the abort was narrated with the Rollout's message
    if strategy == "canary":
        assert "Analysis web-" in output and "Successful" in output
        # N+2 is Ready but fails half its requests: its success-rate analysis is what aborts it.
        assert "Step-based analysis phase error/failed" in output, output
    # Git still names the failing version: no one reverted it.
    assert ("bad-v" if strategy == "canary" else "crash-v") in demoapps.image_of(demo_state, strategy)


def test_demo_names_the_step_that_did_not_happen(sim_cluster: ClusterProcess, demo_state: Path) -> None:
    steps = democmd.steps_for("bluegreen")
    broken = [
        dataclasses.replace(s, check=lambda o, r: False) if s.name == "success step 2" else s for s in steps
    ]
    out = io.StringIO()
    code = asyncio.run(
        democmd.run_demo(
            strategy="bluegreen",
            state_dir=demo_state,
            kubeconfig=sim_cluster.kubeconfig,
            timeout=8,  # step 1 is a real rollout: room for a loaded machine; step 2 never happens
            console=Console(file=out, width=200, force_terminal=True, color_system=None),  # the live screen
            steps=broken,
        )
    )
    assert code == 1, out.getvalue()
    assert "✔ success step 1:" in out.getvalue()
    assert "✖ success step 2 did not happen" in out.getvalue()
    assert "FAILED: success step 2 did not happen" in out.getvalue()


def test_demo_cli_times_out_naming_a_step(sim_cluster: ClusterProcess, demo_state: Path) -> None:
    # The previous test left a rollout under way: with a tiny timeout some step cannot be seen in time.
    code, output = invoke(
        "--state-dir", str(demo_state), "--kubeconfig", str(sim_cluster.kubeconfig), "--timeout", "0.01"
    )
    assert code == 1, output
    assert "did not happen" in output and "FAILED:" in output
