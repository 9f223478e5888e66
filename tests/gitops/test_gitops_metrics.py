"""The GitOps controller's Prometheus metrics: ``argocd_app_info`` from the app cache, the sync counter and
the refresh histogram moved by a running controller, and ``--metrics-port`` on the real process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
from prometheus_client import exposition, parser

from clusterproc import ClusterProcess
from tugboat.gitops import controller, crds
from tugboat.gitops import metrics as gitops_metrics
from tugboat.kube.client import Client, Obj


def application(name: str, namespace: str, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "project": "nowhere",
            "source": {"repoURL": "https://git.example.com/Org/Demo.git/", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "demo"},
            **spec,
        },
    }
    return body


def scrape(metrics: gitops_metrics.ControllerMetrics) -> str:
    return exposition.generate_latest(metrics.registry).decode()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples called ``name`` in an exposition text: (labels, value)."""
    return [
        (dict(sample.labels), sample.value)
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_app_info_is_read_from_the_app_cache(
    cluster: ClusterProcess, namespace: str, tmp_path: Path
) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
        await crds.install(client, namespace=namespace)
        synced = application("synced", namespace, project="default", syncPolicy={"automated": {}})
        synced["status"] = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
        await client.create(crds.APPLICATION, synced)
        pending = application("pending", namespace, destination={"name": "in-cluster", "namespace": "x"})
        pending["operation"] = {"sync": {"revision": "HEAD"}}
        await client.create(crds.APPLICATION, pending)
        options = controller.ControllerOptions(namespace=namespace, state_dir=tmp_path, install_crds=False)
        ctl = controller.ApplicationController(client, options)
        ctl.apps.start()
        try:
            await ctl.apps.wait_synced()
            text = scrape(ctl.metrics)
        finally:
            await ctl.apps.stop()
    assert "# TYPE argocd_app_info gauge" in text
    common = {
        "namespace": namespace,
        "repo": "https://git.example.com/org/demo",
        "dest_server": "https://kubernetes.default.svc",
    }
    assert sorted(samples(text, "argocd_app_info"), key=lambda s: s[0]["name"]) == [
        (
            {
                **common,
                "name": "pending",
                "project": "nowhere",
                "autosync_enabled": "false",
                "dest_namespace": "x",
                "sync_status": "Unknown",
                "health_status": "Unknown",
                "operation": "sync",
            },
            1.0,
        ),
        (
            {
                **common,
                "name": "synced",
                "project": "default",
                "autosync_enabled": "true",
                "dest_namespace": "demo",
                "sync_status": "Synced",
                "health_status": "Healthy",
                "operation": "",
            },
            1.0,
        ),
    ]


async def test_a_running_controller_counts_refreshes_and_finished_syncs(
    cluster: ClusterProcess, namespace: str, tmp_path: Path
) -> None:
    """An app of a missing project: its refresh fails fast (no Git needed) and its sync ends in Error."""
    server = "https://kubernetes.default.svc"
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
        options = controller.ControllerOptions(namespace=namespace, state_dir=tmp_path)
        ctl = controller.ApplicationController(client, options)
        task = asyncio.create_task(ctl.run())
        try:
            await asyncio.wait_for(ctl.ready.wait(), 30)
            app = application("broken", namespace)
            app["operation"] = {"sync": {"revision": "HEAD", "dryRun": True}}
            await client.create(crds.APPLICATION, app)
            deadline = time.monotonic() + 20
            while True:
                text = scrape(ctl.metrics)
                if samples(text, "argocd_app_sync_total") and samples(text, "argocd_app_reconcile_count"):
                    break
                assert time.monotonic() < deadline, text
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    app_labels = {"namespace": namespace, "name": "broken", "project": "nowhere", "dest_server": server}
    assert samples(text, "argocd_app_sync_total") == [
        ({**app_labels, "phase": "Error", "dry_run": "true"}, 1.0)
    ]
    [(labels, count)] = samples(text, "argocd_app_reconcile_count")
    assert labels == {"namespace": namespace, "dest_server": server} and count >= 1
    buckets = [labels["le"] for labels, _ in samples(text, "argocd_app_reconcile_bucket")]
    assert buckets == ["0.25", "0.5", "1.0", "2.0", "4.0", "8.0", "16.0", "+Inf"]


def test_metrics_port_serves_the_process_metrics(
    cluster: ClusterProcess, namespace: str, tmp_path: Path
) -> None:
    with cluster.client() as api:
        body = application("served", namespace)
        response = api.post(f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications", json=body)
        assert response.status_code == 201, response.text
    port = free_port()
    log = tmp_path / "controller.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tugboat.cli.main",
            "gitops-controller",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--namespace",
            namespace,
            "--state-dir",
            str(tmp_path / "state"),
            "--metrics-port",
            str(port),
            "--metrics-host",
            "127.0.0.1",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        text = ""
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while not any(labels["name"] == "served" for labels, _ in samples(text, "argocd_app_info")):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text() + text
                with contextlib.suppress(httpx.TransportError):
                    text = http.get("/metrics").text
                time.sleep(0.1)
            health = http.get("/healthz")
            assert (health.status_code, health.text) == (200, "ok\n")
            assert http.get("/nothing").status_code == 404
        assert "argocd_app_sync_created" not in text  # no series Argo does not have
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, log.read_text()
