"""``tugboat analysis get|list`` against a real local API server with the AnalysisRun CRD.

The runs are created through tugboat's client and their status written the way a controller writes it
(through ``/status``, or the object itself where the CRD has no status subresource).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from clusterproc import ClusterProcess
from tugboat.cli import analysiscmd, main
from tugboat.kube import errors
from tugboat.kube.client import Client
from tugboat.rollouts import crds

runner = CliRunner()
ANALYSISRUNS = f"/apis/{crds.GROUP}/{crds.VERSION}/analysisruns"


@pytest.fixture(scope="module")
def kube(argo_cluster: ClusterProcess) -> ClusterProcess:
    """The Argo CRDs' API server (tests/conftest.py ``argo_cluster``) with the AnalysisRun CRD (created
    unless some other test module already did)."""
    with argo_cluster.client() as http:
        response = http.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crds.analysisrun_crd()
        )
        assert response.status_code in (201, 409), response.text
        deadline = time.monotonic() + 10
        while http.get(ANALYSISRUNS).status_code != 200:
            assert time.monotonic() < deadline, "analysisruns are not served"
            time.sleep(0.05)
    return argo_cluster


@pytest.fixture
def ns(kube: ClusterProcess) -> str:
    """A fresh namespace on ``kube``."""
    name = f"analysis-{uuid.uuid4().hex[:8]}"
    with kube.client() as http:
        response = http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert response.status_code == 201, response.text
    return name


def create_run(kube: ClusterProcess, namespace: str, name: str, status: dict[str, Any], **spec: Any) -> None:
    run = {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"metrics": [{"name": "error-rate", "provider": {"web": {"url": "http://metrics"}}}], **spec},
    }

    async def create() -> None:
        async with Client.from_kubeconfig(kube.kubeconfig, field_manager="test-controller") as client:
            await client.create(crds.ANALYSISRUN, run)
            try:
                await client.patch_status(crds.ANALYSISRUN, name, status, namespace=namespace)
            except errors.ApiError as exc:
                if not exc.not_found:
                    raise
                await client.patch(crds.ANALYSISRUN, name, {"status": status}, namespace=namespace)

    asyncio.run(create())


def analysis(kube: ClusterProcess, *args: str) -> Any:
    return runner.invoke(analysiscmd.analysis_cli, [*args, "--kubeconfig", str(kube.kubeconfig)])


FAILED = {
    "phase": "Failed",
    "message": 'Metric "error-rate" assessed Failed due to failed (2) > failureLimit (1)',
    "startedAt": "2026-08-08T09:58:00Z",
    "runSummary": {"count": 1, "failed": 1},
    "metricResults": [
        {
            "name": "error-rate",
            "phase": "Failed",
            "count": 3,
            "successful": 1,
            "failed": 2,
            "measurements": [
                {
                    "phase": "Successful",
                    "value": "0.01",
                    "startedAt": "2026-08-08T09:58:00Z",
                    "finishedAt": "2026-08-08T09:58:01Z",
                },
                {
                    "phase": "Failed",
                    "value": "0.3",
                    "startedAt": "2026-08-08T09:58:10Z",
                    "finishedAt": "2026-08-08T09:58:11Z",
                    "message": "above threshold",
                },
            ],
        }
    ],
}


def test_get(kube: ClusterProcess, ns: str) -> None:
    create_run(kube, ns, "web-2", FAILED, args=[{"name": "service", "value": "web-canary"}])
    result = runner.invoke(
        main.app,
        ["analysis", "get", "web-2", "-n", ns, "--no-color", "--kubeconfig", str(kube.kubeconfig)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Name:            web-2",
        f"Namespace:       {ns}",
        "Status:          ✖ Failed",
        'Message:         Metric "error-rate" assessed Failed due to failed (2) > failureLimit (1)',
        "Args:            service=web-canary",
        "Started:         2026-08-08T09:58:00Z",
        "Run Summary:     ✖ 1 of 1 metric",
        "",
        "METRIC      STATUS    COUNT  SUCCESSFUL  FAILED  INCONCLUSIVE  ERROR  CONSECUTIVE-ERROR  MESSAGE",
        "error-rate  ✖ Failed  3      1           2       0             0      0",
        "",
        "METRIC      STATUS        VALUE  STARTED               FINISHED              MESSAGE",
        "error-rate  ✔ Successful  0.01   2026-08-08T09:58:00Z  2026-08-08T09:58:01Z",
        "error-rate  ✖ Failed      0.3    2026-08-08T09:58:10Z  2026-08-08T09:58:11Z  above threshold",
    ]
    data = json.loads(analysis(kube, "get", "web-2", "-n", ns, "-o", "json").stdout)
    assert data["status"]["phase"] == "Failed" and data["metadata"]["name"] == "web-2"


def test_list(kube: ClusterProcess, ns: str) -> None:
    empty = analysis(kube, "list", "-n", ns)
    assert empty.exit_code == 0 and empty.stdout == "" and empty.stderr == "No resources found.\n"
    create_run(kube, ns, "web-2", FAILED)
    create_run(kube, ns, "web-3", {"phase": "Running"})
    result = analysis(kube, "list", "-n", ns)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    ages = [row.pop(3) for row in rows[1:]]
    assert all(re.fullmatch(r"\d+s", age) for age in ages), ages  # just created
    assert rows == [
        ["NAME", "STATUS", "AGE", "INFO"],
        ["web-2", "✖", "Failed", "✔", "1,✖", "2"],
        ["web-3", "◌", "Running"],
    ]
    everywhere = analysis(kube, "list", "-A").stdout.splitlines()
    assert everywhere[0].split() == ["NAMESPACE", "NAME", "STATUS", "AGE", "INFO"]
    assert [ns, "web-3", "◌", "Running"] in [line.split()[:4] for line in everywhere]


def test_unknown_run_and_usage_errors(kube: ClusterProcess, ns: str) -> None:
    missing = analysis(kube, "get", "nope", "-n", ns)
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr == f"error: analysisrun '{ns}/nope' not found\n"
    usage = analysis(kube, "get", "nope", "--bogus")
    assert usage.exit_code == 1 and usage.stderr.startswith("error: No such option")


def test_a_server_without_the_analysisrun_api(cluster: ClusterProcess, namespace: str) -> None:
    """The bare API server (no Argo CRDs): a one-line error naming the missing API, exit 1."""
    with cluster.client() as http:
        if http.get(ANALYSISRUNS).status_code != 404:
            pytest.skip("another test installed the AnalysisRun CRD on the bare API server")
    for args in (["get", "web-1", "-n", namespace], ["list", "-n", namespace]):
        result = analysis(cluster, *args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("error: the server has no analysisruns.argoproj.io API"), (
            result.stderr
        )
