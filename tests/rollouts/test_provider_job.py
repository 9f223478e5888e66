"""The Job metric provider against the simulated local cluster.

Job pods exit with the code in their ``sim.tugboat.dev/exit-code`` annotation after ``run-for``; a pod
annotated ``image-pull: fail`` never starts. Each test owns a real AnalysisRun (the garbage collector
deletes Jobs whose owner does not exist), so the AnalysisRun CRD is installed once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import pytest

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds
from tugboat.rollouts.analysis.providers import base, job

SIM = "sim.tugboat.dev/"


def _install_analysisrun_crd(cluster: ClusterProcess) -> None:
    """Only the AnalysisRun CRD: Argo's Rollout CRD would make ``kubectl get ro`` ambiguous elsewhere."""
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    with cluster.client() as http:
        if http.get(f"{path}/analysisruns.{crds.GROUP}").status_code == 404:
            created = http.post(path, json=crds.analysisrun_crd())
            assert created.status_code in (201, 409), created.text
        deadline = time.monotonic() + 10
        while http.get(f"/apis/{crds.GROUP}/{crds.VERSION}/analysisruns").status_code != 200:
            assert time.monotonic() < deadline, "analysisruns not served"
            time.sleep(0.05)


@pytest.fixture
async def kube(sim_cluster: ClusterProcess) -> AsyncIterator[Client]:
    _install_analysisrun_crd(sim_cluster)
    async with Client.from_kubeconfig(sim_cluster.kubeconfig, field_manager="test") as client:
        yield client


async def new_run(kube: Client, namespace: str, name: str = "run") -> dict[str, Any]:
    return await kube.create(
        crds.ANALYSISRUN,
        {"metadata": {"name": name, "namespace": namespace}, "spec": {"metrics": []}},
    )


def job_metric(name: str = "smoke", *, exit_code: int = 0, run_for: str = "200ms", **pod_notes: str) -> Any:
    notes = {f"{SIM}exit-code": str(exit_code), f"{SIM}run-for": run_for}
    notes.update({SIM + key.replace("_", "-"): value for key, value in pod_notes.items()})
    return {
        "name": name,
        "provider": {
            "job": {
                "metadata": {"labels": {"team": "qa"}, "annotations": {"note": "smoke test"}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": notes, "labels": {"app": "smoke"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "test", "image": "busybox", "command": ["true"]}],
                        },
                    },
                },
            }
        },
    }


def request_for(run: dict[str, Any], metric: dict[str, Any]) -> base.MeasureRequest:
    def never(result: Any) -> str:
        raise AssertionError("a Job measurement has no condition to evaluate")

    return base.MeasureRequest(run=run, metric=metric, evaluate=never, now=lambda: dt.datetime.now(dt.UTC))


async def until_done(
    provider: job.JobProvider,
    request: base.MeasureRequest,
    measurement: base.Measurement,
    timeout: float = 30,
) -> base.Measurement:
    deadline = time.monotonic() + timeout
    while measurement.get("phase") == base.RUNNING:
        assert time.monotonic() < deadline, f"still running: {measurement}"
        await asyncio.sleep(0.1)
        measurement = await provider.resume(request, measurement)
    return measurement


# ------------------------------------------------------------------------------------------ pure


def test_job_names_follow_upstream() -> None:
    run: dict[str, Any] = {"metadata": {"uid": "0b2c7f3e-8a51-4c1e-9d7b-1f2e3d4c5b6a"}}
    assert job.job_name(run, "smoke") == "0b2c7f3e-8a51-4c1e-9d7b-1f2e3d4c5b6a.smoke.1"
    run["status"] = {"metricResults": [{"name": "smoke", "count": 4, "error": 2}, {"name": "other"}]}
    assert job.job_name(run, "smoke") == "0b2c7f3e-8a51-4c1e-9d7b-1f2e3d4c5b6a.smoke.7"
    run["status"]["metricResults"].append({"name": "a-very-long-metric-name-for-jobs", "count": 6})
    long = job.job_name(run, "a-very-long-metric-name-for-jobs")
    # Cut to 63 characters, then the dangling '-' is dropped so that the name stays valid.
    assert long == "0b2c7f3e-8a51-4c1e-9d7b-1f2e3d4c5b6a.a-very-long-metric-name.7"


def test_resume_delay_grows_with_age() -> None:
    assert job.resume_delay(0) == 0
    assert job.resume_delay(2) == 2
    assert job.resume_delay(50) == 10


async def test_job_spec_must_have_a_template() -> None:
    async with Client(httpx.AsyncClient(base_url="http://127.0.0.1:1"), field_manager="test") as nowhere:
        with pytest.raises(base.ProviderError, match=r"provider\.job\.spec must be a Job spec"):
            job.JobProvider({"name": "m", "provider": {"job": {"spec": {}}}}, client=nowhere)


# --------------------------------------------------------------------------------------- cluster


async def test_successful_job(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    uid = run["metadata"]["uid"]
    metric = job_metric()
    provider = job.JobProvider(metric, client=kube)
    request = request_for(run, metric)
    measurement = await provider.run(request)
    name = f"{uid}.smoke.1"
    assert measurement["phase"] == "Running"
    assert measurement["metadata"] == {"job-name": name, "job-namespace": sim_namespace}
    assert measurement["resumeAt"] == measurement["startedAt"]
    created = await kube.get(kinds.JOB, name, sim_namespace)
    meta = created["metadata"]
    assert meta["labels"] == {"team": "qa", "analysisrun.argoproj.io/uid": uid}
    assert meta["annotations"] == {
        "note": "smoke test",
        "analysisrun.argoproj.io/name": "run",
        "analysisrun.argoproj.io/namespace": sim_namespace,
        "analysisrun.argoproj.io/metric-name": "smoke",
    }
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "AnalysisRun",
        "run",
        uid,
        True,
    )
    template_labels = created["spec"]["template"]["metadata"]["labels"]
    assert template_labels["analysisrun.argoproj.io/uid"] == uid and template_labels["app"] == "smoke"

    done = await until_done(provider, request, measurement)
    assert done["phase"] == "Successful"
    assert done["finishedAt"] and "message" not in done
    assert done["metadata"]["job-name"] == name


async def test_failed_job(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    metric = job_metric(exit_code=1)
    provider = job.JobProvider(metric, client=kube)
    request = request_for(run, metric)
    done = await until_done(provider, request, await provider.run(request))
    assert done["phase"] == "Failed"


async def test_pod_that_cannot_pull_its_image_is_inconclusive(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    metric = job_metric(image_pull="fail")
    provider = job.JobProvider(metric, client=kube)
    request = request_for(run, metric)
    done = await until_done(provider, request, await provider.run(request))
    assert done["phase"] == "Inconclusive"
    assert "container test has terminal error (ErrImagePull" in done["message"]


async def test_running_job_asks_to_be_resumed_later(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    metric = job_metric(run_for="60s")
    provider = job.JobProvider(metric, client=kube)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=50)
    request = request_for(run, metric)
    measurement = await provider.run(request)
    measurement["startedAt"] = base.rfc3339(started)
    resumed = await provider.resume(request, measurement)
    assert resumed["phase"] == "Running"
    resume_at = base.parse_time(resumed["resumeAt"])
    assert resume_at is not None
    assert 8 <= (resume_at - dt.datetime.now(dt.UTC)).total_seconds() <= 11  # sqrt(2 * 50) = 10


async def test_terminate_deletes_the_job(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    metric = job_metric(run_for="60s")
    provider = job.JobProvider(metric, client=kube)
    request = request_for(run, metric)
    measurement = await provider.run(request)
    name = measurement["metadata"]["job-name"]
    terminated = await provider.terminate(request, measurement)
    assert (terminated["phase"], terminated["message"]) == ("Inconclusive", "Metric Terminated")
    assert terminated["finishedAt"]
    remaining = await kube.get_or_none(kinds.JOB, name, sim_namespace)
    assert remaining is None or remaining["metadata"].get("deletionTimestamp")
    # Terminating again, or terminating a completed measurement, changes nothing.
    assert await provider.terminate(request, terminated) == terminated


async def test_retrying_a_measurement_adopts_its_job(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    metric = job_metric(run_for="60s")
    provider = job.JobProvider(metric, client=kube)
    first = await provider.run(request_for(run, metric))
    again = await provider.run(request_for(run, metric))
    assert again["phase"] == "Running"
    assert again["metadata"] == first["metadata"]


async def test_a_job_owned_by_another_run_is_not_adopted(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    other = await new_run(kube, sim_namespace, "other")
    metric = job_metric(run_for="60s")
    squatter = job.job_manifest(run, metric)  # this run's next Job name, but owned by the other run
    squatter["metadata"]["ownerReferences"][0].update(name="other", uid=other["metadata"]["uid"])
    await kube.create(kinds.JOB, squatter)
    measurement = await job.JobProvider(metric, client=kube).run(request_for(run, metric))
    assert measurement["phase"] == "Error"
    assert "already exists" in measurement["message"]


async def test_resume_errors(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    metric = job_metric()
    provider = job.JobProvider(metric, client=kube)
    request = request_for(run, metric)
    missing = await provider.resume(request, {"phase": "Running", "startedAt": "2024-05-01T10:00:00Z"})
    assert (missing["phase"], missing["message"]) == ("Error", "job metadata reference missing")
    gone = await provider.resume(
        request, {"phase": "Running", "startedAt": "2024-05-01T10:00:00Z", "metadata": {"job-name": "nope"}}
    )
    assert gone["phase"] == "Error" and "not found" in gone["message"]


async def test_garbage_collect_keeps_the_newest_jobs_of_the_metric(kube: Client, sim_namespace: str) -> None:
    run = await new_run(kube, sim_namespace)
    metric = job_metric(run_for="60s")
    other_metric = job_metric("other", run_for="60s")
    provider = job.JobProvider(metric, client=kube)
    names = []
    for taken in range(3):
        counted = {**run, "status": {"metricResults": [{"name": "smoke", "count": taken}]}}
        names.append((await provider.run(request_for(counted, metric)))["metadata"]["job-name"])
    other = await job.JobProvider(other_metric, client=kube).run(request_for(run, other_metric))
    await provider.garbage_collect(request_for(run, metric), 1)
    jobs, _ = await kube.list(kinds.JOB, sim_namespace)
    live = sorted(j["metadata"]["name"] for j in jobs if not j["metadata"].get("deletionTimestamp"))
    assert live == sorted([names[2], other["metadata"]["job-name"]])
    assert names[2].endswith(".smoke.3")
