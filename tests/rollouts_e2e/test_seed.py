"""The seed, end to end (../shared/seed.md): a Git commit → GitOps sync → the rollout succeeds, or fails
and is rolled back in the cluster without touching Git: Synced + Healthy vs Synced + Degraded.

Real parts only: the simulated local cluster, a real git repository, the GitOps controller and the rollout
controller as separate processes that share nothing but the Kubernetes API.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "gitops_e2e"))

from gitops_support import (
    ControllerProcess,
    GitRepo,
    application,
    create_app,
    get,
    get_app,
    start_controller,
    status_of,
    unique,
    wait_app,
)

from clusterproc import ClusterProcess, start_rollouts_controller, stop_process

HASH = "rollouts-pod-template-hash"


@pytest.fixture(scope="module")
def controllers(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    rollouts = start_rollouts_controller(sim_cluster, tmp_path_factory.mktemp("seed-rollouts"))
    gitops = start_controller(sim_cluster, tmp_path_factory.mktemp("seed-gitops"))
    yield gitops
    gitops.stop()
    stop_process(rollouts)


def manifests(name: str, image: str) -> dict[str, str]:
    rollout = f"""apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  replicas: 2
  progressDeadlineSeconds: 5
  progressDeadlineAbort: true
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
  strategy:
    blueGreen:
      activeService: {name}-active
      previewService: {name}-preview
      scaleDownDelaySeconds: 2
"""
    services = "\n---\n".join(
        f"""apiVersion: v1
kind: Service
metadata:
  name: {name}-{role}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""
        for role in ("active", "preview")
    )
    return {"app/rollout.yaml": rollout, "app/services.yaml": services}


def rollout_status(cluster: ClusterProcess, namespace: str, name: str) -> dict[str, object]:
    found = get(cluster, f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/{name}")
    return dict((found or {}).get("status") or {})


def active_hash(cluster: ClusterProcess, namespace: str, name: str) -> str | None:
    svc = get(cluster, f"/api/v1/namespaces/{namespace}/services/{name}-active") or {}
    return (svc.get("spec", {}).get("selector") or {}).get(HASH)


def test_seed_blue_green_success_then_rollback_without_touching_git(
    sim_cluster: ClusterProcess, controllers: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("seed")
    repo.commit(manifests("web", "demo:v1"), message="N")
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name))
    wait_app(
        sim_cluster,
        name,
        lambda a: status_of(a) == ("Synced", "Healthy"),
        controller=controllers,
        timeout=90,
        what="version N Synced + Healthy",
    )
    n = rollout_status(sim_cluster, name, "web")["stableRS"]

    # (1) Success: N+1 is committed, synced, promoted: Synced + Healthy, the active Service on N+1.
    n1_commit = repo.commit(manifests("web", "demo:v2"), message="N+1")
    app = wait_app(
        sim_cluster,
        name,
        lambda a: (
            a["status"]["sync"].get("revision") == n1_commit
            and status_of(a) == ("Synced", "Healthy")
            and rollout_status(sim_cluster, name, "web").get("stableRS") not in (None, n)
        ),
        controller=controllers,
        timeout=90,
        what="N+1 Synced + Healthy",
    )
    n1 = rollout_status(sim_cluster, name, "web")["stableRS"]
    assert active_hash(sim_cluster, name, "web") == n1
    rollout_resource = next(r for r in app["status"]["resources"] if r["kind"] == "Rollout")
    assert rollout_resource["health"]["status"] == "Healthy"

    # (2) Rollback: N+2 crash-loops; the rollout controller aborts at the progress deadline and brings
    # traffic back to N+1; Git still says N+2, the Application is Synced and Degraded.
    n2_commit = repo.commit(manifests("web", "demo:crash-v3"), message="N+2")
    app = wait_app(
        sim_cluster,
        name,
        lambda a: a["status"]["sync"].get("revision") == n2_commit and status_of(a) == ("Synced", "Degraded"),
        controller=controllers,
        timeout=90,
        what="N+2 Synced + Degraded",
    )
    status = rollout_status(sim_cluster, name, "web")
    assert status["phase"] == "Degraded"
    assert str(status["message"]).startswith("RolloutAborted: Rollout aborted update to revision 3")
    assert status["stableRS"] == n1 and active_hash(sim_cluster, name, "web") == n1
    assert app["status"]["health"]["message"] == f"argoproj.io/Rollout:{name}/web"
    operations = len(app["status"]["history"])
    started = app["status"]["operationState"]["startedAt"]
    # The GitOps controller takes no further action: no new sync, Git unchanged.
    time.sleep(3)
    later = get_app(sim_cluster, name)
    assert later is not None and status_of(later) == ("Synced", "Degraded")
    assert (
        len(later["status"]["history"]) == operations
        and later["status"]["operationState"]["startedAt"] == started
    )
    head = subprocess.run(
        ["git", "-C", str(repo.path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    assert head.strip() == n2_commit


def canary_manifests(image: str) -> dict[str, str]:
    rollout = f"""apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 2
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
    canary:
      canaryService: web-canary
      stableService: web-stable
      scaleDownDelaySeconds: 2
      abortScaleDownDelaySeconds: 2
      trafficRouting:
        nginx:
          stableIngress: web
      steps:
      - setWeight: 20
      - pause: {{}}
"""
    services = "\n---\n".join(
        f"""apiVersion: v1
kind: Service
metadata:
  name: {svc}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""
        for svc in ("web-canary", "web-stable")
    )
    ingress = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  ingressClassName: nginx
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service: {name: web-stable, port: {number: 80}}
"""
    return {"app/rollout.yaml": rollout, "app/services.yaml": services, "app/ingress.yaml": ingress}


def run_cli(cluster: ClusterProcess, *args: str) -> str:
    from typer.testing import CliRunner

    from tugboat.cli.main import app

    result = CliRunner().invoke(app, [*args, "--kubeconfig", str(cluster.kubeconfig)])
    assert result.exit_code == 0, result.output
    return result.output


def canary_weight(cluster: ClusterProcess, namespace: str) -> str | None:
    ingress = get(cluster, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/web-web-canary")
    if ingress is None:
        return None
    return ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/canary-weight")


def test_seed_canary_with_nginx_promote_then_manual_abort(
    sim_cluster: ClusterProcess, controllers: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("seed-canary")
    repo.commit(canary_manifests("demo:v1"), message="N")
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name))
    wait_app(
        sim_cluster, name, lambda a: status_of(a) == ("Synced", "Healthy"), controller=controllers, timeout=90
    )
    n = rollout_status(sim_cluster, name, "web")["stableRS"]

    # (1) N+1: paused at 20 % (the Application shows Suspended), promoted, then Synced + Healthy.
    n1_commit = repo.commit(canary_manifests("demo:v2"), message="N+1")
    wait_app(
        sim_cluster,
        name,
        lambda a: (
            a["status"]["sync"].get("revision") == n1_commit and status_of(a) == ("Synced", "Suspended")
        ),
        controller=controllers,
        timeout=90,
        what="N+1 paused at the first step",
    )
    assert canary_weight(sim_cluster, name) == "20"
    run_cli(sim_cluster, "rollout", "promote", "web", "-n", name)
    wait_app(
        sim_cluster,
        name,
        lambda a: (
            status_of(a) == ("Synced", "Healthy")
            and rollout_status(sim_cluster, name, "web").get("stableRS") not in (None, n)
        ),
        controller=controllers,
        timeout=90,
        what="N+1 promoted",
    )
    n1 = rollout_status(sim_cluster, name, "web")["stableRS"]
    deadline = time.monotonic() + 10
    while canary_weight(sim_cluster, name) != "0":  # the router follows within a reconcile or two
        assert time.monotonic() < deadline, canary_weight(sim_cluster, name)
        time.sleep(0.1)

    # (2) N+2: paused at 20 %, aborted by hand: traffic back on N+1, Synced + Degraded, Git unchanged.
    n2_commit = repo.commit(canary_manifests("demo:v3"), message="N+2")
    wait_app(
        sim_cluster,
        name,
        lambda a: (
            a["status"]["sync"].get("revision") == n2_commit and status_of(a) == ("Synced", "Suspended")
        ),
        controller=controllers,
        timeout=90,
        what="N+2 paused",
    )
    run_cli(sim_cluster, "rollout", "abort", "web", "-n", name)
    app = wait_app(
        sim_cluster,
        name,
        lambda a: status_of(a) == ("Synced", "Degraded"),
        controller=controllers,
        timeout=60,
        what="N+2 aborted: Synced + Degraded",
    )
    status = rollout_status(sim_cluster, name, "web")
    assert str(status["message"]).startswith("RolloutAborted: Rollout aborted update to revision 3")
    assert status["stableRS"] == n1 and canary_weight(sim_cluster, name) == "0"
    svc = get(sim_cluster, f"/api/v1/namespaces/{name}/services/web-canary") or {}
    assert svc["spec"]["selector"][HASH] == n1  # the canary Service points back at stable
    history = len(app["status"]["history"])
    time.sleep(3)
    later = get_app(sim_cluster, name)
    assert later is not None and status_of(later) == ("Synced", "Degraded")
    assert len(later["status"]["history"]) == history
