"""A real Prometheus scrapes /metrics/simulated and sees a bad-* workload fail about half its requests.

Prometheus is the Debian package ``prometheus`` (installed by ``.ci/run``); the test starts its own on a
free port with a 1 s scrape interval and asks it the error ratio an analysis would ask.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from sim_support import controllers_cluster

from clusterproc import ClusterProcess

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")

ERROR_RATIO = (
    'sum(rate(tugboat_sim_http_requests_total{{code="500",service="{service}",namespace="{ns}"}}[10s]))'
    ' / sum(rate(tugboat_sim_http_requests_total{{service="{service}",namespace="{ns}"}}[10s]))'
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def traffic_only_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """The traffic simulator alone: the test plays kubelet and ReplicaSet controller by hand."""
    yield from controllers_cluster(tmp_path_factory, "prom-cluster", "traffic")


@pytest.fixture
def prometheus(traffic_only_cluster: ClusterProcess, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping the cluster's /metrics/simulated every second; yields its base URL."""
    target = urlsplit(traffic_only_cluster.url)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: tugboat-simulated\n"
        "    metrics_path: /metrics/simulated\n"
        f"    scheme: {target.scheme}\n"
        "    tls_config:\n"
        "      insecure_skip_verify: true\n"
        "    static_configs:\n"
        f"      - targets: ['{target.netloc}']\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def query(prometheus: str, expr: str) -> float | None:
    """The value of an instant query with one result (None when it has none yet or Prometheus is down)."""
    try:
        response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    result = response.json()["data"]["result"]
    if len(result) != 1:
        return None
    value = float(result[0]["value"][1])
    return None if value != value else value  # NaN: no traffic yet


def query_vector(prometheus: str, expr: str) -> list[float]:
    try:
        response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.HTTPError:
        return []
    if response.status_code != 200:
        return []
    return [float(r["value"][1]) for r in response.json()["data"]["result"]]


def create_serving_pods(cluster: ClusterProcess, namespace: str, app: str, image: str, replicas: int) -> None:
    """A Service plus ``replicas`` Ready pods labelled like a Deployment's, as a kubelet would report them."""
    with cluster.client() as client:
        service = {
            "metadata": {"name": app},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        response = client.post(f"/api/v1/namespaces/{namespace}/services", json=service)
        assert response.status_code == 201, response.text
        for i in range(replicas):
            name = f"{app}-5d8f7c9b4-{i}"
            pod = {
                "metadata": {"name": name, "labels": {"app": app, "pod-template-hash": "5d8f7c9b4"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            }
            response = client.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
            assert response.status_code == 201, response.text
            status = {
                "phase": "Running",
                "podIP": f"10.244.0.{10 + i}",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
            response = client.patch(
                f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                json={"status": status},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert response.status_code == 200, response.text


def test_prometheus_sees_the_error_ratio_of_a_bad_workload(
    traffic_only_cluster: ClusterProcess, prometheus: str
) -> None:
    cluster = traffic_only_cluster
    ns = "prom"
    with cluster.client() as client:
        response = client.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
        assert response.status_code == 201, response.text
    create_serving_pods(cluster, ns, "bad", "example/app:bad-1", replicas=2)
    create_serving_pods(cluster, ns, "good", "example/app:v1", replicas=2)

    # Per pod, by the labels an analysis template uses: 10/s split over the two pods.
    per_pod = (
        f'sum by (pod) (rate(tugboat_sim_http_requests_total{{service="bad",namespace="{ns}",'
        'pod_template_hash="5d8f7c9b4"}[10s]))'
    )
    deadline = time.monotonic() + 90
    bad = good = None
    rates: list[float] = []
    while time.monotonic() < deadline:
        bad = query(prometheus, ERROR_RATIO.format(service="bad", ns=ns))
        good = query(prometheus, ERROR_RATIO.format(service="good", ns=ns))
        rates = query_vector(prometheus, per_pod)
        if (
            bad is not None
            and good is not None
            and abs(bad - 0.5) <= 0.15
            and good <= 0.01
            and len(rates) == 2
            and all(abs(r - 5.0) <= 1.5 for r in rates)
        ):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"Prometheus never saw the expected traffic: bad={bad} good={good} per pod={rates}")
