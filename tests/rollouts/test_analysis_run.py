"""RunReconciler (tugboat.rollouts.analysis.run) against Argo Rollouts' analysis controller behaviour.

AnalysisRuns are created through the API of the ``argo_cluster`` API server and reconciled by hand with a
controlled clock (``now=``), so intervals, ``initialDelay`` and the 10 s error retry are tested without
sleeping; the test reads the run back from the API after each reconcile, as the controller's informer
would. Measurements come from the real Web provider asking a local HTTP server whose answers each test
programs, or - for in-flight measurements, termination, garbage collection and messages that quote
secrets - from ``Scripted``, a provider defined here that stands in for an external metrics system.

Covered: run phases Successful / Failed / Error / Inconclusive with upstream's messages and events,
the measurement outcome table through real conditions, runSummary and dryRunSummary, dry-run metrics,
measurement history trimming, ``spec.terminate``, a failing metric stopping the others, Secret-backed
args (read at measure time, never stored, redacted in messages), argument and spec errors, the returned
requeue delay, and startedAt / completedAt.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds
from tugboat.rollouts.analysis import providers, run
from tugboat.rollouts.analysis.providers import base

Obj = dict[str, Any]
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SECRET = "s3cr3t-t0ken-value"
_installed: set[str] = set()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------ HTTP metrics


@dataclass
class Endpoint:
    """What one path answers: each request takes the next reply; the last one repeats."""

    replies: list[tuple[int, Any]]
    requests: list[Mapping[str, str]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _MetricsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        endpoint = self.server.endpoints.get(path)
        if endpoint is None:
            code, body = 404, {"error": "no such metric"}
        else:
            endpoint.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            code, body = endpoint.replies.pop(0) if len(endpoint.replies) > 1 else endpoint.replies[0]
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _MetricsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    endpoints: dict[str, Endpoint]


class Metrics:
    """A local HTTP metrics endpoint for the Web provider; ``serve`` programs a path's answers."""

    def __init__(self) -> None:
        self._server = _MetricsServer(("127.0.0.1", 0), _Handler)
        self._server.endpoints = {}
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, path: str, *replies: Any, code: int = 200) -> Endpoint:
        """``replies``: JSON bodies (answered with ``code``) or ``(code, body)`` pairs."""
        pairs = [r if isinstance(r, tuple) else (code, r) for r in replies]
        endpoint = Endpoint(pairs)
        self._server.endpoints[path] = endpoint
        return endpoint

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def web() -> Iterator[Metrics]:
    server = Metrics()
    yield server
    server.close()


def web_metric(name: str, url: str, **fields: Any) -> Obj:
    return {"name": name, "provider": {"web": {"url": url, "jsonPath": "{$}"}}, **fields}


# ------------------------------------------------------------------------------------ scripted metrics


class Scripted:
    """A metric provider standing in for an external metrics system (implements ``MetricProvider``).

    ``plan[metric]`` lists what successive calls answer: a completed phase (``{"phase": "Failed"}``),
    or ``{"phase": "Running", "resume_in": 7}`` for an in-flight measurement to look at again 7 s later.
    ``run`` takes the next step, ``resume`` the next one for the in-flight measurement; ``terminate`` ends
    it with ``terminate_phase``. Every call is logged with the metric it was given.
    """

    kind = "scripted"

    def __init__(self, **plan: list[Obj]) -> None:
        self.plan = plan
        self.calls: list[tuple[str, str]] = []
        self.metrics: list[Mapping[str, Any]] = []
        self.secrets: list[frozenset[str]] = []
        self.collected: list[tuple[str, int]] = []
        self.terminate_phase = "Successful"

    def __call__(self, metric: Mapping[str, Any]) -> providers.MetricProvider:
        return self

    def _step(self, request: base.MeasureRequest, measurement: Obj) -> Obj:
        steps = self.plan[request.metric_name]
        step = dict(steps.pop(0) if len(steps) > 1 else steps[0])
        resume_in = step.pop("resume_in", None)
        out = {**measurement, **step}
        if resume_in is not None:
            out["resumeAt"] = base.rfc3339(request.now() + timedelta(seconds=resume_in))
        return out

    def _log(self, call: str, request: base.MeasureRequest) -> None:
        self.calls.append((call, request.metric_name))
        self.metrics.append(request.metric)
        self.secrets.append(frozenset(request.secrets))

    async def run(self, request: base.MeasureRequest) -> base.Measurement:
        self._log("run", request)
        return self._step(request, {"startedAt": base.rfc3339(request.now())})

    async def resume(self, request: base.MeasureRequest, measurement: base.Measurement) -> base.Measurement:
        self._log("resume", request)
        return self._step(request, measurement)

    async def terminate(
        self, request: base.MeasureRequest, measurement: base.Measurement
    ) -> base.Measurement:
        self._log("terminate", request)
        return {**measurement, "phase": self.terminate_phase, "finishedAt": base.rfc3339(request.now())}

    async def garbage_collect(self, request: base.MeasureRequest, limit: int) -> None:
        self.collected.append((request.metric_name, limit))


def scripted_metric(name: str, **fields: Any) -> Obj:
    query = {"address": "http://metrics.example", "query": f"up{{job='{name}'}}"}
    return {"name": name, "provider": {"prometheus": query}, **fields}


# ------------------------------------------------------------------------------------ harness


@pytest.fixture
async def client(cluster: ClusterProcess) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test-analysis-run") as c:
        if cluster.url not in _installed:
            await crds.install(c)
            _installed.add(cluster.url)
        yield c


class Harness:
    """One AnalysisRun in one namespace, reconciled by hand at chosen times."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = "run"
        self.events: list[tuple[str, str, str]] = []
        self.provider: Scripted | None = None

    def _record(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        assert obj["metadata"]["name"] == self.name
        self.events.append((kind, reason, message))

    async def create(self, spec: Obj, *, provider: Scripted | None = None) -> Obj:
        self.provider = provider
        body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
        return await self.client.create(crds.ANALYSISRUN, body)

    async def get(self) -> Obj:
        return await self.client.get(crds.ANALYSISRUN, self.name, self.namespace)

    async def status(self) -> Obj:
        found: Obj = (await self.get()).get("status") or {}
        return found

    async def step(self, seconds: float) -> float | None:
        """One reconcile at T0 + ``seconds`` of the run as the API holds it."""
        reconciler = run.RunReconciler(self.client, provider_for=self.provider, record=self._record)
        return await reconciler.reconcile(await self.get(), now=at(seconds))

    async def result(self, metric: str) -> Obj:
        status = await self.status()
        return next(r for r in status["metricResults"] if r["name"] == metric)

    async def terminate(self) -> None:
        await self.client.patch(
            crds.ANALYSISRUN, self.name, {"spec": {"terminate": True}}, namespace=self.namespace
        )

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


@pytest.fixture
def h(client: Client, namespace: str) -> Harness:
    return Harness(client, namespace)


def summary(count: int = 0, **counts: int) -> Obj:
    return {"count": count, "successful": 0, "failed": 0, "inconclusive": 0, "error": 0, **counts}


# ------------------------------------------------------------------------------------ run phases


async def test_a_run_measures_at_its_interval_until_count_then_succeeds(h: Harness, web: Metrics) -> None:
    endpoint = web.serve(f"/{h.namespace}/rate", {"rate": 0.99})
    metric = web_metric("rate", f"{web.base}/{h.namespace}/rate", interval="10s", count=3)
    metric["successCondition"] = "result.rate >= 0.95"
    await h.create({"metrics": [metric]})

    assert await h.step(0) == 10
    status = await h.status()
    assert status["phase"] == "Running"
    assert status["startedAt"] == stamp(0)
    assert "completedAt" not in status and "message" not in status
    assert status["runSummary"] == summary(1)
    result = status["metricResults"][0]
    assert result["phase"] == "Running"
    assert (result["count"], result["successful"], result["consecutiveSuccess"]) == (1, 1, 1)
    assert result["measurements"] == [
        {"phase": "Successful", "startedAt": stamp(0), "finishedAt": stamp(0), "value": '{"rate":0.99}'}
    ]

    # Early: nothing is due, the reconciler asks to come back when it is.
    assert await h.step(4) == 6
    assert len(endpoint.requests) == 1
    assert await h.step(10) == 10
    assert await h.step(20) is None
    status = await h.status()
    assert status["phase"] == "Successful"
    assert status["startedAt"] == stamp(0)
    assert status["completedAt"] == stamp(20)
    assert status["runSummary"] == summary(1, successful=1)
    assert status["dryRunSummary"] == summary()
    result = status["metricResults"][0]
    assert result["phase"] == "Successful"
    assert [m["finishedAt"] for m in result["measurements"]] == [stamp(0), stamp(10), stamp(20)]
    assert h.events == [
        ("Normal", "MetricSuccessful", "Metric 'rate' Completed. Result: Successful"),
        ("Normal", "AnalysisRunSuccessful", "Analysis Completed. Result: Successful"),
    ]
    # A completed run is left alone.
    version = (await h.get())["metadata"]["resourceVersion"]
    assert await h.step(100) is None
    assert (await h.get())["metadata"]["resourceVersion"] == version
    assert len(endpoint.requests) == 3


async def test_one_measurement_without_interval_or_count(h: Harness, web: Metrics) -> None:
    web.serve(f"/{h.namespace}/once", {"ok": True})
    await h.create({"metrics": [web_metric("once", f"{web.base}/{h.namespace}/once")]})
    assert await h.step(0) is None
    status = await h.status()
    assert status["phase"] == "Successful"
    assert status["completedAt"] == stamp(0)
    assert len(status["metricResults"][0]["measurements"]) == 1


@pytest.mark.parametrize(
    ("success", "failure", "body", "phase"),
    [
        (None, None, {"v": 1}, "Successful"),
        ("result.v > 5", None, {"v": 1}, "Failed"),
        ("result.v > 5", None, {"v": 9}, "Successful"),
        (None, "result.v > 5", {"v": 1}, "Successful"),
        (None, "result.v > 5", {"v": 9}, "Failed"),
        ("result.v > 5", "result.v < 0", {"v": 1}, "Inconclusive"),
        ("result.v > 0", "result.v > 0", {"v": 1}, "Failed"),
    ],
)
async def test_measurement_outcome(
    h: Harness, web: Metrics, success: str | None, failure: str | None, body: Obj, phase: str
) -> None:
    web.serve(f"/{h.namespace}/v", body)
    metric = web_metric("v", f"{web.base}/{h.namespace}/v", interval="1m")
    if success:
        metric["successCondition"] = success
    if failure:
        metric["failureCondition"] = failure
    await h.create({"metrics": [metric]})
    await h.step(0)
    assert (await h.result("v"))["measurements"][0]["phase"] == phase


async def test_failed_run_message_and_events(h: Harness, web: Metrics) -> None:
    web.serve(f"/{h.namespace}/err", {"rate": 0.2})
    metric = web_metric("error-rate", f"{web.base}/{h.namespace}/err", interval="30s", failureLimit=1)
    metric["successCondition"] = "result.rate < 0.1"
    await h.create({"metrics": [metric]})
    assert await h.step(0) == 30
    assert (await h.status())["phase"] == "Running"
    assert await h.step(30) is None
    status = await h.status()
    assert status["phase"] == "Failed"
    assert status["message"] == 'Metric "error-rate" assessed Failed due to failed (2) > failureLimit (1)'
    assert status["completedAt"] == stamp(30)
    assert status["runSummary"] == summary(1, failed=1)
    result = status["metricResults"][0]
    assert (result["phase"], result["failed"], result["count"]) == ("Failed", 2, 2)
    assert h.events == [
        ("Warning", "MetricFailed", "Metric 'error-rate' Completed. Result: Failed"),
        ("Warning", "AnalysisRunFailed", "Analysis Completed. Result: Failed"),
    ]


async def test_errors_are_retried_every_ten_seconds_then_the_run_errs(h: Harness, web: Metrics) -> None:
    web.serve(f"/{h.namespace}/down", (500, {"error": "down"}))
    await h.create({"metrics": [web_metric("rate", f"{web.base}/{h.namespace}/down", interval="5m")]})
    for t in (0, 10, 20, 30):
        assert await h.step(t) == 10
        assert (await h.status())["phase"] == "Running"
    result = await h.result("rate")
    assert (result["error"], result["consecutiveError"], result.get("count", 0)) == (4, 4, 0)
    assert result["measurements"][-1]["message"] == "received non 2xx response code: 500"
    # Not due before its 10 s.
    assert await h.step(35) == 5
    assert await h.step(40) is None
    status = await h.status()
    assert status["phase"] == "Error"
    assert status["message"] == (
        'Metric "rate" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): '
        '"Error Message: received non 2xx response code: 500"'
    )
    assert status["runSummary"] == summary(1, error=1)
    assert h.reasons()[-2:] == ["MetricError", "AnalysisRunError"]
    assert h.events[-1] == ("Warning", "AnalysisRunError", "Analysis Completed. Result: Error")


async def test_a_success_between_errors_resets_the_consecutive_count(h: Harness, web: Metrics) -> None:
    web.serve(
        f"/{h.namespace}/flaky", *[(500, {})] * 4, (200, {"ok": True}), *[(500, {})] * 4, (200, {"ok": True})
    )
    await h.create({"metrics": [web_metric("flaky", f"{web.base}/{h.namespace}/flaky", interval="10s")]})
    for i in range(9):
        await h.step(10 * i)
    result = await h.result("flaky")
    assert result["phase"] == "Running"
    assert (result["error"], result["consecutiveError"], result["successful"]) == (8, 4, 1)


async def test_an_evaluation_error_errs_the_measurement(h: Harness, web: Metrics) -> None:
    web.serve(f"/{h.namespace}/odd", {"rate": 0.5})
    metric = web_metric("odd", f"{web.base}/{h.namespace}/odd", interval="1m", consecutiveErrorLimit=0)
    metric["successCondition"] = "result.missing.deeper > 1"
    await h.create({"metrics": [metric]})
    assert await h.step(0) is None
    status = await h.status()
    measurement = status["metricResults"][0]["measurements"][0]
    assert measurement["phase"] == "Error"
    assert measurement["value"] == '{"rate":0.5}'
    assert "successCondition" in measurement["message"]
    assert status["phase"] == "Error"
    assert status["message"].startswith(
        'Metric "odd" assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0): '
        '"Error Message: '
    )


async def test_inconclusive_run(h: Harness, web: Metrics) -> None:
    web.serve(f"/{h.namespace}/mid", {"v": 5})
    metric = web_metric("mid", f"{web.base}/{h.namespace}/mid", interval="1m", count=2)
    metric.update(successCondition="result.v > 8", failureCondition="result.v < 2")
    await h.create({"metrics": [metric]})
    assert await h.step(0) is None
    status = await h.status()
    assert status["phase"] == "Inconclusive"
    assert (
        status["message"]
        == 'Metric "mid" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)'
    )
    assert status["runSummary"] == summary(1, inconclusive=1)
    assert h.events == [
        ("Normal", "MetricInconclusive", "Metric 'mid' Completed. Result: Inconclusive"),
        ("Normal", "AnalysisRunInconclusive", "Analysis Completed. Result: Inconclusive"),
    ]


async def test_the_worst_metric_decides_the_run(h: Harness) -> None:
    scripted = Scripted(
        good=[{"phase": "Successful"}],
        unsure=[{"phase": "Inconclusive"}],
        bad=[{"phase": "Failed"}],
    )
    spec = {"metrics": [scripted_metric("good"), scripted_metric("unsure"), scripted_metric("bad")]}
    await h.create(spec, provider=scripted)
    assert await h.step(0) is None
    status = await h.status()
    assert status["phase"] == "Failed"
    assert status["message"] == 'Metric "bad" assessed Failed due to failed (1) > failureLimit (0)'
    assert status["runSummary"] == summary(3, successful=1, inconclusive=1, failed=1)
    assert [r["phase"] for r in status["metricResults"]] == ["Successful", "Inconclusive", "Failed"]


# ------------------------------------------------------------------------------------ stopping


async def test_a_failing_metric_stops_the_others(h: Harness, web: Metrics) -> None:
    steady = web.serve(f"/{h.namespace}/steady", {"ok": True})
    web.serve(f"/{h.namespace}/broken", {"ok": False})
    failing = web_metric("broken", f"{web.base}/{h.namespace}/broken", successCondition="result.ok == true")
    forever = web_metric("steady", f"{web.base}/{h.namespace}/steady", interval="10s")
    await h.create({"metrics": [forever, failing]})
    assert await h.step(0) == 0  # a metric failed: look again at once (the next look ends the run)
    status = await h.status()
    assert [r["phase"] for r in status["metricResults"]] == ["Running", "Failed"]
    assert status["phase"] == "Running"
    # The next look ends the run: no new measurement of the indefinite metric, which ends Successful.
    assert await h.step(1) is None
    status = await h.status()
    assert status["phase"] == "Failed"
    assert status["message"] == 'Metric "broken" assessed Failed due to failed (1) > failureLimit (0)'
    assert [r["phase"] for r in status["metricResults"]] == ["Successful", "Failed"]
    assert len(steady.requests) == 1
    assert status["runSummary"] == summary(2, successful=1, failed=1)


async def test_a_failing_metric_terminates_in_flight_measurements(h: Harness) -> None:
    scripted = Scripted(slow=[{"phase": "Running", "resume_in": 30}], quick=[{"phase": "Failed"}])
    scripted.terminate_phase = "Inconclusive"  # Argo reports a terminated Successful/Inconclusive as such
    await h.create({"metrics": [scripted_metric("slow"), scripted_metric("quick")]}, provider=scripted)
    assert await h.step(0) == 0  # a metric failed: look again at once, not at the resume time
    assert await h.step(1) is None
    assert scripted.calls == [("run", "slow"), ("run", "quick"), ("terminate", "slow")]
    status = await h.status()
    assert status["phase"] == "Failed"
    slow = status["metricResults"][0]
    assert slow["phase"] == "Inconclusive"
    assert slow["message"] == "Metric Terminated"
    assert slow["measurements"][0]["message"] == "Metric Terminated"
    assert slow["measurements"][0]["finishedAt"] == stamp(1)
    assert status["message"] == 'Metric "quick" assessed Failed due to failed (1) > failureLimit (0)'


async def test_terminate_ends_the_run_successfully(h: Harness) -> None:
    scripted = Scripted(steady=[{"phase": "Successful"}], slow=[{"phase": "Running", "resume_in": 60}])
    spec = {"metrics": [scripted_metric("steady", interval="10s"), scripted_metric("slow", interval="10s")]}
    await h.create(spec, provider=scripted)
    assert await h.step(0) == 10
    await h.terminate()
    assert await h.step(5) is None
    status = await h.status()
    assert status["phase"] == "Successful"
    assert status["message"] == "Run Terminated"
    assert status["completedAt"] == stamp(5)
    steady, slow = status["metricResults"]
    assert steady["phase"] == "Successful" and len(steady["measurements"]) == 1
    assert slow["phase"] == "Successful"
    assert slow["message"] == "Metric Terminated"
    assert slow["measurements"] == [
        {
            "startedAt": stamp(0),
            "phase": "Successful",
            "finishedAt": stamp(5),
            "message": "Metric Terminated",
            "resumeAt": stamp(60),
        }
    ]
    assert scripted.calls == [("run", "steady"), ("run", "slow"), ("terminate", "slow")]
    assert h.events[-1] == ("Normal", "AnalysisRunSuccessful", "Analysis Completed. Result: Successful")


async def test_terminate_before_any_measurement(h: Harness) -> None:
    scripted = Scripted(m=[{"phase": "Successful"}])
    await h.create(
        {"metrics": [scripted_metric("m", initialDelay="1m")], "terminate": True}, provider=scripted
    )
    assert await h.step(0) is None
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Successful", "Run Terminated")
    assert status["metricResults"] == []
    assert scripted.calls == []


async def test_a_failure_outranks_terminate_and_unstarted_metrics(h: Harness) -> None:
    scripted = Scripted(bad=[{"phase": "Failed"}], later=[{"phase": "Successful"}])
    spec = {"metrics": [scripted_metric("bad"), scripted_metric("later", initialDelay="1m")]}
    await h.create(spec, provider=scripted)
    assert await h.step(0) == 0  # "bad" failed: look again at once rather than after the initial delay
    assert (await h.status())["phase"] == "Running"
    await h.terminate()
    assert await h.step(1) is None
    status = await h.status()
    assert status["phase"] == "Failed"
    assert status["message"] == 'Metric "bad" assessed Failed due to failed (1) > failureLimit (0)'
    assert [r["name"] for r in status["metricResults"]] == ["bad"]
    assert scripted.calls == [("run", "bad")]


async def test_terminate_with_failures_within_the_limit(h: Harness) -> None:
    scripted = Scripted(m=[{"phase": "Failed"}])
    await h.create({"metrics": [scripted_metric("m", interval="10s", failureLimit=1)]}, provider=scripted)
    await h.step(0)
    await h.terminate()
    await h.step(1)
    status = await h.status()
    # failed (1) is within failureLimit (1): the metric ends Successful, and so does the run.
    assert (status["phase"], status["message"]) == ("Successful", "Run Terminated")


# ------------------------------------------------------------------------------------ dry run


async def test_dry_run_metrics_do_not_decide_the_run(h: Harness) -> None:
    scripted = Scripted(real=[{"phase": "Successful"}], trial=[{"phase": "Failed"}])
    spec = {
        "metrics": [scripted_metric("real", interval="10s", count=2), scripted_metric("trial")],
        "dryRun": [{"metricName": "tri.*"}],
    }
    await h.create(spec, provider=scripted)
    assert await h.step(0) == 10
    status = await h.status()
    trial = status["metricResults"][1]
    assert (trial["phase"], trial["dryRun"]) == ("Failed", True)
    assert trial["message"] == "Metric assessed Failed due to failed (1) > failureLimit (0)"
    assert "dryRun" not in status["metricResults"][0]
    assert status["phase"] == "Running"
    assert h.events == [("Warning", "MetricFailed", "Metric 'trial' Completed. Result: Failed")]
    # The dry-run failure does not stop the real metric.
    assert await h.step(10) is None
    status = await h.status()
    assert status["phase"] == "Successful"
    assert "message" not in status
    assert status["runSummary"] == summary(1, successful=1)
    assert status["dryRunSummary"] == summary(1, failed=1)
    assert scripted.calls.count(("run", "real")) == 2


async def test_a_run_of_dry_run_metrics_only_succeeds(h: Harness) -> None:
    scripted = Scripted(a=[{"phase": "Failed"}], b=[{"phase": "Error", "message": "boom"}])
    spec = {
        "metrics": [scripted_metric("a"), scripted_metric("b", consecutiveErrorLimit=0)],
        "dryRun": [{"metricName": ".*"}],
    }
    await h.create(spec, provider=scripted)
    assert await h.step(0) is None
    status = await h.status()
    assert status["phase"] == "Successful"
    assert status["runSummary"] == summary()
    assert status["dryRunSummary"] == summary(2, failed=1, error=1)
    b = status["metricResults"][1]
    assert b["message"] == "Metric assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0)"


# ------------------------------------------------------------------------------------ history


async def test_measurement_history_keeps_the_last_ten(h: Harness) -> None:
    scripted = Scripted(m=[{"phase": "Successful"}])
    await h.create({"metrics": [scripted_metric("m", interval="10s")]}, provider=scripted)
    for i in range(12):
        await h.step(10 * i)
    result = await h.result("m")
    assert result["count"] == 12
    assert [m["startedAt"] for m in result["measurements"]] == [stamp(10 * i) for i in range(2, 12)]
    assert scripted.collected == [("m", 10), ("m", 10)]


async def test_measurement_retention_rules(h: Harness) -> None:
    scripted = Scripted(
        short=[{"phase": "Successful"}], long=[{"phase": "Successful"}], other=[{"phase": "Successful"}]
    )
    spec = {
        "metrics": [
            scripted_metric("short", interval="10s"),
            scripted_metric("long", interval="10s"),
            scripted_metric("other", interval="10s"),
        ],
        "measurementRetention": [{"metricName": "short", "limit": 3}, {"metricName": "long", "limit": 15}],
    }
    await h.create(spec, provider=scripted)
    for i in range(12):
        await h.step(10 * i)
    lengths = {r["name"]: len(r["measurements"]) for r in (await h.status())["metricResults"]}
    assert lengths == {"short": 3, "long": 12, "other": 10}
    assert ("short", 3) in scripted.collected and ("long", 15) not in scripted.collected


# ------------------------------------------------------------------------------------ args and secrets


async def secret(h: Harness, value: str, *, name: str = "creds") -> None:
    data = {"token": base64.b64encode(value.encode()).decode()}
    body = {"metadata": {"name": name, "namespace": h.namespace}, "data": data}
    existing = await h.client.get_or_none(kinds.SECRET, name, h.namespace)
    if existing is None:
        await h.client.create(kinds.SECRET, body)
    else:
        await h.client.patch(kinds.SECRET, name, {"data": data}, namespace=h.namespace)


def secret_arg(name: str = "token", *, secret_name: str = "creds", key: str = "token") -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


async def test_secret_args_are_read_at_measure_time_and_never_stored(h: Harness, web: Metrics) -> None:
    await secret(h, SECRET)
    endpoint = web.serve(f"/{h.namespace}/private", {"ok": True})
    metric = web_metric(
        "private", f"{web.base}/{h.namespace}/private?service={{{{args.service}}}}", interval="10s"
    )
    metric["provider"]["web"]["headers"] = [{"key": "Authorization", "value": "Bearer {{ args.token }}"}]
    spec = {"metrics": [metric], "args": [{"name": "service", "value": "api"}, secret_arg()]}
    await h.create(spec)
    assert await h.step(0) == 10
    assert endpoint.requests[0]["authorization"] == f"Bearer {SECRET}"
    assert endpoint.requests[0]["path"].endswith("?service=api")
    stored = await h.get()
    assert SECRET not in json.dumps(stored)
    assert stored["spec"]["args"][1] == secret_arg()
    # A new secret value is used at the next measurement.
    await secret(h, "rotated-value")
    await h.step(10)
    assert endpoint.requests[1]["authorization"] == "Bearer rotated-value"
    assert (await h.result("private"))["successful"] == 2


async def test_secret_values_are_redacted_in_messages(h: Harness) -> None:
    await secret(h, SECRET)
    leak = f"query with token={SECRET} refused"
    scripted = Scripted(m=[{"phase": "Error", "message": leak}])
    metric = scripted_metric("m", consecutiveErrorLimit=0)
    metric["provider"]["prometheus"]["headers"] = [{"key": "X-Token", "value": "{{args.token}}"}]
    await h.create({"metrics": [metric], "args": [secret_arg()]}, provider=scripted)
    assert await h.step(0) is None
    # The provider was given the secret (to use, and to redact).
    assert scripted.metrics[0]["provider"]["prometheus"]["headers"] == [{"key": "X-Token", "value": SECRET}]
    assert scripted.secrets[0] == frozenset({SECRET})
    status = await h.status()
    assert SECRET not in json.dumps(status)
    assert status["metricResults"][0]["measurements"][0]["message"] == "query with token=***** refused"
    assert status["metricResults"][0]["message"] == "query with token=***** refused"
    assert status["message"] == (
        'Metric "m" assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0): '
        '"Error Message: query with token=***** refused"'
    )
    assert all(SECRET not in message for _, _, message in h.events)


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            secret_arg(secret_name="nowhere"),
            'Unable to resolve metric arguments: secrets "nowhere" not found',
        ),
        (
            secret_arg(key="nope"),
            "Unable to resolve metric arguments: key 'nope' does not exist in secret 'creds'",
        ),
    ],
)
async def test_a_missing_secret_errs_the_run(h: Harness, arg: Obj, message: str) -> None:
    await secret(h, SECRET)
    scripted = Scripted(m=[{"phase": "Successful"}])
    await h.create({"metrics": [scripted_metric("m")], "args": [arg]}, provider=scripted)
    assert await h.step(0) is None
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Error", message)
    assert scripted.calls == []
    assert h.events == [("Warning", "AnalysisRunError", "Analysis Completed. Result: Error")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([{"name": "service"}], 'Unable to resolve metric arguments: argument "service" was not supplied'),
        ([], "Unable to resolve metric arguments: failed to resolve {{args.service}}"),
        (
            [{"name": "service", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            'Unable to resolve metric arguments: argument "service" was not supplied',
        ),
    ],
)
async def test_unresolved_args_err_the_run(h: Harness, args: list[Obj], message: str) -> None:
    metric = scripted_metric("m")
    metric["provider"]["prometheus"]["query"] = "up{service='{{args.service}}'}"
    scripted = Scripted(m=[{"phase": "Successful"}])
    await h.create({"metrics": [metric], "args": args}, provider=scripted)
    assert await h.step(0) is None
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Error", message)
    assert scripted.calls == []
    assert h.events == [("Warning", "AnalysisRunError", "Analysis Completed. Result: Error")]


async def test_args_are_substituted_before_validation(h: Harness) -> None:
    scripted = Scripted(m=[{"phase": "Successful"}])
    metric = scripted_metric("m", count="{{args.count}}", interval="{{args.every}}")
    spec = {"metrics": [metric], "args": [{"name": "count", "value": "2"}, {"name": "every", "value": "15s"}]}
    await h.create(spec, provider=scripted)
    assert await h.step(0) == 15
    assert await h.step(15) is None
    assert (await h.status())["phase"] == "Successful"
    assert scripted.metrics[0]["count"] == "2"


# ------------------------------------------------------------------------------------ invalid specs


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"metrics": []}, "Analysis spec invalid: no metrics specified"),
        (
            {"metrics": [scripted_metric("m", count=3)]},
            "Analysis spec invalid: metrics[0]: interval must be specified when count > 1",
        ),
        (
            {"metrics": [{"name": "m", "provider": {}}]},
            "Analysis spec invalid: metrics[0]: no provider specified",
        ),
        (
            {"metrics": [scripted_metric("m"), scripted_metric("m")]},
            "Analysis spec invalid: metrics[1]: duplicate name 'm'",
        ),
        (
            {"metrics": [scripted_metric("m")], "dryRun": [{"metricName": "x"}]},
            "Analysis spec invalid: dryRun[0]: Rule didn't match any metric name(s)",
        ),
        (
            {"metrics": [scripted_metric("m")], "measurementRetention": [{"metricName": "x", "limit": 2}]},
            "Analysis spec invalid: measurementRetention[0]: Rule didn't match any metric name(s)",
        ),
    ],
)
async def test_an_invalid_spec_errs_the_run(h: Harness, spec: Obj, message: str) -> None:
    scripted = Scripted(m=[{"phase": "Successful"}])
    await h.create(spec, provider=scripted)
    assert await h.step(0) is None
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Error", message)
    assert scripted.calls == []
    assert h.reasons() == ["AnalysisRunError"]


async def test_a_provider_configuration_error_errs_the_measurement(h: Harness) -> None:
    metric = web_metric("m", "ftp://example.test/", interval="1m")
    await h.create({"metrics": [metric]})
    assert await h.step(0) == 10
    measurement = (await h.result("m"))["measurements"][0]
    assert measurement["phase"] == "Error"
    assert measurement["finishedAt"] == stamp(0)
    assert "provider.web.url" in measurement["message"]


# ------------------------------------------------------------------------------------ requeue


async def test_initial_delay(h: Harness) -> None:
    scripted = Scripted(m=[{"phase": "Successful"}])
    await h.create({"metrics": [scripted_metric("m", initialDelay="30s", interval="1m")]}, provider=scripted)
    assert await h.step(0) == 30
    status = await h.status()
    assert (status["phase"], status["startedAt"]) == ("Running", stamp(0))
    assert status["metricResults"] == []
    assert await h.step(12) == 18
    assert scripted.calls == []
    assert await h.step(30) == 60
    assert scripted.calls == [("run", "m")]
    assert (await h.status())["startedAt"] == stamp(0)


async def test_the_earliest_metric_sets_the_requeue(h: Harness) -> None:
    scripted = Scripted(
        slow=[{"phase": "Successful"}],
        fast=[{"phase": "Successful"}],
        late=[{"phase": "Successful"}],
        erring=[{"phase": "Error", "message": "boom"}],
    )
    spec = {
        "metrics": [
            scripted_metric("slow", interval="5m"),
            scripted_metric("fast", interval="45s"),
            scripted_metric("late", initialDelay="2m", interval="1m"),
        ]
    }
    await h.create(spec, provider=scripted)
    assert await h.step(0) == 45
    assert await h.step(45) == 45
    assert await h.step(90) == 30  # "late" starts at 120 s
    h2 = Harness(h.client, h.namespace)
    h2.name = "erring"
    await h2.create({"metrics": [scripted_metric("erring", interval="5m")]}, provider=scripted)
    assert await h2.step(0) == 10


async def test_in_flight_measurements_requeue_at_resume_at(h: Harness) -> None:
    scripted = Scripted(
        job=[
            {"phase": "Running", "resume_in": 7},
            {"phase": "Running", "resume_in": 0},
            {"phase": "Successful"},
        ]
    )
    await h.create({"metrics": [scripted_metric("job")]}, provider=scripted)
    assert await h.step(0) == 7
    assert await h.step(3) == 4  # not resumed before resumeAt
    assert scripted.calls == [("run", "job")]
    # Resumed, and still running with a resumeAt that has come: look again at once.
    assert await h.step(7) == 0
    assert await h.step(7) is None
    assert scripted.calls == [("run", "job"), ("resume", "job"), ("resume", "job")]
    status = await h.status()
    assert status["phase"] == "Successful"
    assert status["metricResults"][0]["measurements"][0]["startedAt"] == stamp(0)
    assert status["metricResults"][0]["measurements"][0]["finishedAt"] == stamp(7)


async def test_a_deleted_run_is_not_an_error(h: Harness) -> None:
    scripted = Scripted(m=[{"phase": "Successful"}])
    await h.create({"metrics": [scripted_metric("m")]}, provider=scripted)
    obj = await h.get()
    await h.client.delete(crds.ANALYSISRUN, h.name, h.namespace)
    reconciler = run.RunReconciler(h.client, provider_for=scripted, record=h._record)
    assert await reconciler.reconcile(obj, now=at(0)) is None
    assert h.events == []
