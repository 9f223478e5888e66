"""The rollout controller process's Prometheus metrics: Argo Rollouts' families read from the informer
caches of real controller objects, and ``--metrics-port`` on the real process."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
from prometheus_client import exposition, parser

from clusterproc import ClusterProcess
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import controller, crds, metrics


def samples(text: str, name: str) -> dict[tuple[str, ...], float]:
    """The samples called ``name``: sorted label items (without namespace) → value."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                labels = {k: v for k, v in sample.labels.items() if k != "namespace"}
                out[tuple(f"{k}={v}" for k, v in sorted(labels.items()))] = sample.value
    return out


def rollout(name: str, namespace: str, strategy: Obj, replicas: int | None = 3) -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "demo:1"}]},
        },
        "strategy": strategy,
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _fill(client: Client, namespace: str) -> None:
    canary = {
        "canary": {
            "canaryService": "c",
            "stableService": "s",
            "trafficRouting": {"nginx": {"stableIngress": "i"}},
        }
    }
    await client.create(crds.ROLLOUT, rollout("canary", namespace, canary))
    status = {
        "replicas": 3,
        "availableReplicas": 2,
        "updatedReplicas": 1,
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": "RolloutAborted", "message": "x"}
        ],
    }
    await client.patch_status(crds.ROLLOUT, "canary", status, namespace=namespace)
    await client.create(crds.ROLLOUT, rollout("bg", namespace, {"blueGreen": {"activeService": "a"}}, None))
    run: Obj = {
        "metadata": {"name": "run", "namespace": namespace},
        "spec": {
            "metrics": [
                {"name": "rate", "provider": {"prometheus": {"address": "http://p", "query": "q"}}},
                {"name": "ping", "provider": {"web": {"url": "http://w"}}},
            ],
            "dryRun": [{"metricName": "ping"}],
        },
        "status": {"phase": "Running", "metricResults": [{"name": "rate", "phase": "Successful"}]},
    }
    await client.create(crds.ANALYSISRUN, run)
    experiment: Obj = {
        "metadata": {"name": "ex", "namespace": namespace},
        "spec": {"templates": []},
        "status": {"phase": "Running"},
    }
    await client.create(crds.EXPERIMENT, experiment)


async def test_collector_reads_the_controller_caches(cluster: ClusterProcess, namespace: str) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
        await crds.install(client)
        await _fill(client, namespace)
        ctl = controller.RolloutController(client, install_crds=False)
        registry = metrics.make_registry(
            rollouts=ctl.rollouts, analysis_runs=ctl.analysisruns, experiments=ctl.experiments
        )
        caches = (ctl.rollouts, ctl.analysisruns, ctl.experiments)
        for informer in caches:
            informer.start()
        try:
            for informer in caches:
                await informer.wait_synced()
            text = exposition.generate_latest(registry).decode()
        finally:
            for informer in caches:
                await informer.stop()
    # Other tests' objects live in other namespaces of the same cluster: keep ours.
    text = "\n".join(
        line for line in text.splitlines() if "namespace=" not in line or f'"{namespace}"' in line
    )
    assert samples(text, "rollout_info") == {
        ("name=canary", "phase=Abort", "strategy=canary", "traffic_router=Nginx"): 1.0,
        ("name=bg", "phase=Progressing", "strategy=blueGreen", "traffic_router="): 1.0,
    }
    assert samples(text, "rollout_info_replicas_available") == {("name=canary",): 2.0, ("name=bg",): 0.0}
    assert samples(text, "rollout_info_replicas_unavailable")[("name=canary",)] == 1.0
    assert samples(text, "rollout_info_replicas_desired") == {("name=canary",): 3.0, ("name=bg",): 1.0}
    assert samples(text, "rollout_info_replicas_updated")[("name=canary",)] == 1.0
    phases = samples(text, "rollout_phase")
    assert phases[("name=canary", "phase=Abort", "strategy=canary")] == 1.0
    assert phases[("name=canary", "phase=Completed", "strategy=canary")] == 0.0
    assert samples(text, "analysis_run_info") == {("name=run", "phase=Running"): 1.0}
    assert samples(text, "analysis_run_metric_type") == {
        ("metric=rate", "name=run", "type=Prometheus"): 1.0,
        ("metric=ping", "name=run", "type=Web"): 1.0,
    }
    metric_phases = samples(text, "analysis_run_metric_phase")
    assert (
        metric_phases[("dry_run=false", "metric=rate", "name=run", "phase=Successful", "type=Prometheus")]
        == 1.0
    )
    assert (
        metric_phases[("dry_run=false", "metric=rate", "name=run", "phase=Running", "type=Prometheus")] == 0.0
    )
    assert metric_phases[("dry_run=true", "metric=ping", "name=run", "phase=Pending", "type=Web")] == 1.0
    assert len(metric_phases) == 12
    assert samples(text, "experiment_info") == {("name=ex", "phase=Running"): 1.0}
    assert samples(text, "experiment_phase")[("name=ex", "phase=Running")] == 1.0


def test_metrics_port_serves_the_process_metrics(
    cluster: ClusterProcess, namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "controller.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tugboat.cli.main",
            "rollouts-controller",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--metrics-port",
            str(port),
            "--metrics-host",
            "127.0.0.1",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        with cluster.client() as api:
            deadline = time.monotonic() + 30
            path = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts"
            body = rollout("served", namespace, {"blueGreen": {"activeService": "a"}})
            while (response := api.post(path, json=body)).status_code == 404:  # the CRDs are not in yet
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            assert response.status_code == 201, response.text
        text = ""
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while ("name=served",) not in samples(text, "rollout_info_replicas_desired"):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text() + text
                with contextlib.suppress(httpx.TransportError):
                    text = http.get("/metrics").text
                time.sleep(0.1)
            assert http.get("/healthz").status_code == 200
        assert "# TYPE analysis_run_metric_phase gauge" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, log.read_text()
