"""The seed's most common failure end to end: a new version that runs but serves errors, caught by a
Prometheus analysis and rolled back.

A real Prometheus (Debian package ``prometheus``) scrapes the simulated cluster's ``/metrics/simulated``
every second. A canary Rollout has an analysis step whose AnalysisTemplate asks Prometheus for the
canary's success rate (its pods selected by ``rollouts_pod_template_hash``, passed as a
``podTemplateHashValue: Latest`` arg). A good image passes and is promoted; an image tagged ``bad-…``
(pods Ready, half the requests failing) fails the measurement, and the rollout aborts back to stable.
Then the same through Git and the GitOps controller: the Application ends Synced + Degraded, Git unchanged.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "gitops_e2e"))

import gitops_support
from rollouts_e2e_support import Obj, RolloutHandle, apply, items, start_controller, stop_controller, wait_for

from clusterproc import ClusterProcess

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")

SUCCESS_RATE = (
    'sum(rate(tugboat_sim_http_requests_total{namespace="{{args.namespace}}",'
    'rollouts_pod_template_hash="{{args.canary-hash}}",code!="500"}[10s])) / '
    'sum(rate(tugboat_sim_http_requests_total{namespace="{{args.namespace}}",'
    'rollouts_pod_template_hash="{{args.canary-hash}}"}[10s]))'
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the cluster's simulated traffic every second; yields its base URL."""
    workdir = tmp_path_factory.mktemp("prometheus")
    target = urlsplit(sim_cluster.url)
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: tugboat-simulated\n    metrics_path: /metrics/simulated\n"
        f"    scheme: {target.scheme}\n    tls_config:\n      insecure_skip_verify: true\n"
        f"    static_configs:\n      - targets: ['{target.netloc}']\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=(workdir / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (workdir / "prometheus.log").read_text()
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def controller(sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("prometheus-analysis"))
    yield
    stop_controller(proc)


def manifests(namespace: str, prometheus: str) -> list[Obj]:
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate"},
        "spec": {
            "args": [{"name": "namespace"}, {"name": "canary-hash"}],
            "metrics": [
                {
                    "name": "success-rate",
                    "initialDelay": "8s",
                    "interval": "3s",
                    "count": 2,
                    "successCondition": "result[0] >= 0.9",
                    "failureCondition": "result[0] < 0.9",
                    "provider": {"prometheus": {"address": prometheus, "query": SUCCESS_RATE}},
                }
            ],
        },
    }
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "shop/web:1"}]},
            },
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 50},
                        {
                            "analysis": {
                                "templates": [{"templateName": "success-rate"}],
                                "args": [
                                    {"name": "namespace", "value": namespace},
                                    {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                                ],
                            }
                        },
                    ]
                }
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return [template, service, rollout]


@pytest.mark.usefixtures("controller")
def test_prometheus_analysis_promotes_good_and_rolls_back_bad(
    sim_cluster: ClusterProcess, sim_namespace: str, prometheus: str
) -> None:
    apply(sim_cluster, sim_namespace, manifests(sim_namespace, prometheus))
    ro = RolloutHandle(sim_cluster, sim_namespace, "web")
    rev1 = str(ro.wait_phase("Healthy", timeout=60)["status"]["stableRS"])

    # A good version: the canary serves without errors, the analysis passes, it is promoted.
    ro.set_image("shop/web:2")
    status = ro.wait_update(rev1, "Healthy", timeout=120)["status"]
    rev2 = str(status["currentPodHash"])
    assert status["stableRS"] == rev2 != rev1
    (good,) = items(sim_cluster, f"/apis/argoproj.io/v1alpha1/namespaces/{sim_namespace}/analysisruns")
    assert good["status"]["phase"] == "Successful", good["status"]
    values = [float(m["value"].strip("[]")) for m in good["status"]["metricResults"][0]["measurements"]]
    assert values and all(v >= 0.9 for v in values)

    # A bad version: Ready pods that fail half their requests; the analysis fails and the update aborts.
    ro.set_image("shop/web:bad-3")
    status = ro.wait_update(rev2, "Degraded", timeout=120)["status"]
    assert status["message"].startswith(
        "RolloutAborted: Rollout aborted update to revision 3: Step-based analysis phase error/failed: "
        'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
    ), status["message"]
    assert status["stableRS"] == rev2
    bad_hash = str(status["currentPodHash"])
    wait_for(lambda: ro.pod_count(bad_hash) == 0 and ro.pod_count(rev2) == 2, what="the bad pods gone")
    runs = items(sim_cluster, f"/apis/argoproj.io/v1alpha1/namespaces/{sim_namespace}/analysisruns")
    (bad,) = [r for r in runs if r["metadata"]["labels"]["rollouts-pod-template-hash"] == bad_hash]
    value = float(bad["status"]["metricResults"][0]["measurements"][-1]["value"].strip("[]"))
    assert 0.2 < value < 0.8, value  # about half the requests failed


@pytest.fixture(scope="module")
def gitops(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gitops_support.ControllerProcess]:
    proc = gitops_support.start_controller(sim_cluster, tmp_path_factory.mktemp("prometheus-gitops"))
    yield proc
    proc.stop()


def as_files(docs: list[Obj], image: str) -> dict[str, str]:
    docs = [dict(d) for d in docs]
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return {"app/manifests.yaml": yaml.safe_dump_all(docs, sort_keys=False)}


@pytest.mark.usefixtures("controller")
def test_seed_through_git_bad_version_ends_synced_and_degraded(
    sim_cluster: ClusterProcess, gitops: gitops_support.ControllerProcess, prometheus: str, tmp_path: Path
) -> None:
    name = gitops_support.unique("seed-prom")
    docs = manifests(name, prometheus)
    repo = gitops_support.GitRepo(tmp_path / "repo")
    repo.commit(as_files(docs, "shop/web:1"), message="N")
    gitops_support.create_app(sim_cluster, gitops_support.application(name, repo.url, "app", namespace=name))

    def healthy_on(commit: str | None = None) -> Callable[[Obj], bool]:
        def check(app: Obj) -> bool:
            same = commit is None or app["status"]["sync"].get("revision") == commit
            return same and gitops_support.status_of(app) == ("Synced", "Healthy")

        return check

    gitops_support.wait_app(sim_cluster, name, healthy_on(), controller=gitops, timeout=90)
    ro = RolloutHandle(sim_cluster, name, "web")
    n = ro.status()["stableRS"]
    n1_commit = repo.commit(as_files(docs, "shop/web:2"), message="N+1")
    gitops_support.wait_app(
        sim_cluster,
        name,
        lambda a: healthy_on(n1_commit)(a) and ro.status().get("stableRS") not in (None, n),
        controller=gitops,
        timeout=120,
        what="N+1 analysed and promoted",
    )
    n1 = ro.status()["stableRS"]
    n2_commit = repo.commit(as_files(docs, "shop/web:bad-3"), message="N+2")
    app = gitops_support.wait_app(
        sim_cluster,
        name,
        lambda a: (
            a["status"]["sync"].get("revision") == n2_commit
            and gitops_support.status_of(a) == ("Synced", "Degraded")
        ),
        controller=gitops,
        timeout=120,
        what="N+2 failed its analysis: Synced + Degraded",
    )
    status = ro.status()
    assert "Step-based analysis phase error/failed" in status["message"]
    assert status["stableRS"] == n1
    assert gitops_support.git(repo.path, "rev-parse", "HEAD") == n2_commit  # rolled back in the cluster only
    history = len(app["status"]["history"])
    time.sleep(3)
    later = gitops_support.get_app(sim_cluster, name)
    assert later is not None and gitops_support.status_of(later) == ("Synced", "Degraded")
    assert len(later["status"]["history"]) == history  # no further sync operation
