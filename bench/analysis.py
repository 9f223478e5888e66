"""Benchmark of analysis: the condition evaluator's cost and the AnalysisRun controller under load.

Every measurement of every AnalysisRun evaluates its conditions, and a Rollout's analysis is only as
good as the punctuality of its measurements, so issue 6 sets two targets (2 cores): an evaluation under
20 µs, and a p95 lag under 250 ms between a measurement's due time and its taking with 500 AnalysisRuns
measuring every second. In order:

1. the evaluator, in this process: µs per evaluation (median of timeit repeats) of the four cases of
   research/deps.md §5.1 (A-D), compiled once (``expr.compile(text).evaluate``) and as the controller
   calls it (``expr.evaluate_condition``, which finds the compiled form in a cache), their compile cost
   on first use, and ``evaluate.measurement_phase`` with both conditions (one measurement's verdict);
2. the controller: a bare local cluster (``tugboat cluster serve --nodes 0``), a fresh ``tugboat
   rollouts-controller --controllers analysis`` and N AnalysisRuns (default 500), each with one Web
   metric (interval 1 s, both conditions) asking an HTTP endpoint served by a thread of this process,
   which records the arrival (wall clock) and service time of every request per run (``?run=<name>``).
   Once every run measures at its cadence, a window (default 60 s) is measured: the controller's CPU
   and RSS from ``/proc``, requests served per second, and per request the lag behind its due time.
   Then every run is terminated (``spec.terminate``; ``count`` ends them too should this process die).

The due time: the controller takes measurement k+1 once measurement k's ``finishedAt`` plus the interval
has come, and a Web measurement's ``startedAt`` and ``finishedAt`` are both the reconcile's start (RFC 3339,
to the millisecond). So due(k+1) = startedAt(k) + 1 s, read from the runs themselves: a LIST every 5 s
during the window sees every measurement (each run keeps its last 10), and measurement j of a run is its
j-th request to the endpoint. The lag is arrival(k+1) - due(k+1): the timer, the work queue, the
reconcile's work before its request and the connection. Also printed: the lag against a precise finish
(arrival(k) + service(k) + 1 s, the endpoint's view alone) and the interval spread
(arrival(k+1) - arrival(k) - 1 s).
Run: ``.venv/bin/python bench/analysis.py`` (``--help`` for smaller runs and for profiling with py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import functools
import itertools
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import timeit
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import benchsupport
from clusterproc import ClusterProcess, start_cluster
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds
from tugboat.rollouts.analysis import evaluate, expr, metrics

READY_LINE = "analysis controller: watching AnalysisRuns"
TARGET_EVAL_US = 20.0
TARGET_LAG_P95 = 0.25
INTERVAL = 1.0
NAMESPACE = "bench-analysis"
SUCCESS = "result[0] >= 0.95"
FAILURE = "result[0] < 0.5"
JSON_PATH = "{$.data}"
BODY = b'{"data":[0.99]}'
LIST_EVERY = 5.0  # seconds between LISTs of the runs in the window (they keep 10 measurements each)
CADENCE_ARRIVALS = 3  # requests a run has made before it counts as measuring at its cadence

Obj = dict[str, Any]

# The cases of research/deps.md §5.1 (name, condition, result).
CASES: tuple[tuple[str, str, Any], ...] = (
    ("A", "result[0] >= 0.95", [0.99]),
    ("B", "len(result)>0 && result[0]<5", [3]),
    ("C", "result.x<5 && !isNaN(result.y)", {"x": 3, "y": 0.5}),
    ("D", "all(result,{# > 0.9})", [0.91, 0.95, 0.99]),
)


class BenchFailure(Exception):
    """A measurement could not finish (e.g. the runs never completed); the message says why."""


# ------------------------------------------------------------------------------------ evaluator


@dataclasses.dataclass(frozen=True)
class EvalFigure:
    name: str
    text: str
    compiled_us: float | None  # expr.compile(text).evaluate(...)
    condition_us: float  # expr.evaluate_condition / evaluate.measurement_phase
    compile_us: float | None  # the first compile of a text


def per_call_us(fn: Callable[[], object], *, repeats: int) -> float:
    """µs per call of ``fn``: the median of ``repeats`` timeit repeats (each long enough to time well)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return 1e6 * statistics.median(timer.repeat(repeat=repeats, number=number)) / number


def compile_us(text: str, *, repeats: int, texts: int = 300) -> float:
    """µs per compile of ``text`` on first use: distinct copies (a numbered comment) miss the cache."""
    times: list[float] = []
    for repeat in range(repeats):
        variants = [f"{text} /*{repeat}-{i}*/" for i in range(texts)]
        started = time.perf_counter()
        for variant in variants:
            expr.compile(variant)
        times.append((time.perf_counter() - started) / texts)
    return 1e6 * statistics.median(times)


def evaluator_figures(*, repeats: int) -> list[EvalFigure]:
    figures = []
    for name, text, result in CASES:
        compiled = expr.compile(text)
        env = {"result": result}
        figures.append(
            EvalFigure(
                name=name,
                text=text,
                compiled_us=per_call_us(functools.partial(compiled.evaluate, env), repeats=repeats),
                condition_us=per_call_us(
                    functools.partial(expr.evaluate_condition, text, result), repeats=repeats
                ),
                compile_us=compile_us(text, repeats=repeats),
            )
        )
    verdict = functools.partial(evaluate.measurement_phase, [0.99], success=SUCCESS, failure=FAILURE)
    assert verdict() == evaluate.SUCCESSFUL
    figures.append(
        EvalFigure(
            name="phase",
            text=f"measurement_phase({SUCCESS!r} / {FAILURE!r})",
            compiled_us=None,
            condition_us=per_call_us(verdict, repeats=repeats),
            compile_us=None,
        )
    )
    return figures


def evaluator_lines(figures: Sequence[EvalFigure]) -> list[str]:
    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [f"  {'case':<6}{'compiled':>9}{'condition':>10}{'compile':>9}  expression (µs per call)"]
    for fig in figures:
        lines.append(
            f"  {fig.name:<6}{us(fig.compiled_us):>9}{us(fig.condition_us):>10}{us(fig.compile_us):>9}  "
            f"{fig.text}"
        )
    return lines


# ------------------------------------------------------------------------------------ the endpoint


def _response(*, close: bool) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode() + BODY


class Endpoint:
    """The Web metric's target: an HTTP/1.1 server on 127.0.0.1 in a thread (and event loop) of its own,
    so that its timestamps do not wait on this process's other work. Every request gets ``BODY``; per run
    (the ``run`` query parameter) it records each request's arrival (wall clock, as the controller's
    stamps) and its service time (until the answer was written)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        self.served = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="web-endpoint", daemon=True)
        self._keep_alive = _response(close=False)
        self._close = _response(close=True)

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10) or not self.port:
            raise RuntimeError("the Web endpoint did not start")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def url(self, run: str) -> str:
        return f"http://127.0.0.1:{self.port}/measure?run={urllib.parse.quote(run)}"

    def counts(self) -> dict[str, int]:
        return {run: len(seen) for run, seen in list(self.arrivals.items())}

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                close = b"\r\nconnection: close" in head.lower()
                writer.write(self._close if close else self._keep_alive)
                await writer.drain()
                self.arrivals[_run_of(head)].append((arrived, time.time() - arrived))
                self.served += 1
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


def _run_of(head: bytes) -> str:
    target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1") if b" " in head else ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    return (query.get("run") or ["?"])[0]


# ------------------------------------------------------------------------------------ timing


class Schedule:
    """When each measurement of each run was started, in the controller's own whole seconds: collected
    from LISTs of the runs (each keeps its last 10 measurements; measurement j of a run is its j-th
    request to the endpoint, a Web measurement being one request)."""

    def __init__(self) -> None:
        self.started: dict[str, dict[int, float]] = collections.defaultdict(dict)
        self.taken: dict[str, int] = {}  # measurements taken per run, at the latest LIST

    def collect(self, runs: Sequence[Obj]) -> None:
        for run in runs:
            results = (run.get("status") or {}).get("metricResults") or []
            if not results:
                continue
            result, name = results[0], run["metadata"]["name"]
            taken = int(result.get("count") or 0) + int(result.get("error") or 0)
            kept = result.get("measurements") or []
            self.taken[name] = taken
            for index, measurement in enumerate(kept, start=taken - len(kept)):
                started = metrics.parse_time(measurement.get("startedAt"))
                if started is not None:
                    self.started[name][index] = started.timestamp()  # milliseconds when stored


@dataclasses.dataclass
class Timing:
    """Per-request figures of the requests that arrived inside the window (seconds)."""

    lag: list[float] = dataclasses.field(default_factory=list)  # behind the controller's due time
    lag_precise: list[float] = dataclasses.field(default_factory=list)  # behind arrival + service + 1 s
    spread: list[float] = dataclasses.field(default_factory=list)  # arrival(k+1) - arrival(k) - 1 s
    unknown_due: int = 0  # requests in the window whose predecessor's startedAt no LIST saw
    misaligned_runs: int = 0  # runs whose measurements and requests do not pair up one to one


def timings(
    arrivals: Mapping[str, Sequence[tuple[float, float]]],
    schedule: Schedule,
    *,
    interval: float,
    since: float,
    until: float,
) -> Timing:
    """Lags of the requests that arrived in [since, until]: due(k+1) = startedAt(k) + interval."""
    out = Timing()
    for run, seen in arrivals.items():
        started = schedule.started.get(run, {})
        # Request j arrives after measurement j was stamped; more measurements than requests, or a
        # request before its stamp, means the two sequences do not pair up (e.g. a request that failed
        # to connect): such a run's lags are left out.
        if schedule.taken.get(run, 0) > len(seen) or any(
            seen[j][0] < second for j, second in started.items() if j < len(seen)
        ):
            out.misaligned_runs += 1
            continue
        for k, ((arrived, service), (following, _)) in enumerate(itertools.pairwise(seen)):
            if not since <= following <= until:
                continue
            out.lag_precise.append(following - (arrived + service + interval))
            out.spread.append(following - arrived - interval)
            if k in started:
                out.lag.append(following - (started[k] + interval))
            else:
                out.unknown_due += 1
    return out


# ------------------------------------------------------------------------------------ the controller


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    runs: int
    duration: float
    progress: float
    profile: Path | None
    controller_args: tuple[str, ...]


@dataclasses.dataclass
class Results:
    """The figures of the run (``None`` or empty: not measured, e.g. after a failure)."""

    evaluator: list[EvalFigure] = dataclasses.field(default_factory=list)
    runs: int = 0
    ramp_seconds: float | None = None
    window_seconds: float | None = None
    controller_cpu: float | None = None
    cluster_cpu: float | None = None
    bench_cpu: float | None = None
    rss_mb: list[float] = dataclasses.field(default_factory=list)
    peak_rss_mb: float | None = None
    served: int = 0
    timing: Timing | None = None
    phases: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    load_before: str = ""
    failures: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)


def run_manifest(name: str, *, url: str, count: int) -> Obj:
    return {
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "metrics": [
                {
                    "name": "web",
                    "interval": f"{INTERVAL:g}s",
                    "count": count,
                    "successCondition": SUCCESS,
                    "failureCondition": FAILURE,
                    "provider": {"web": {"url": url, "jsonPath": JSON_PATH, "timeoutSeconds": 5}},
                }
            ]
        },
    }


async def wait_for_cadence(endpoint: Endpoint, names: Sequence[str], *, timeout: float) -> int:
    """Wait until every run has made ``CADENCE_ARRIVALS`` requests; how many had when the wait ended."""
    deadline = time.monotonic() + timeout
    while True:
        counts = endpoint.counts()
        ready = sum(counts.get(name, 0) >= CADENCE_ARRIVALS for name in names)
        if ready == len(names) or time.monotonic() > deadline:
            return ready
        await asyncio.sleep(0.25)


async def list_runs(client: Client) -> list[Obj]:
    runs, _ = await client.list(crds.ANALYSISRUN, NAMESPACE)
    found: list[Obj] = runs
    return found


async def measure_window(
    client: Client,
    endpoint: Endpoint,
    schedule: Schedule,
    results: Results,
    *,
    plan: Plan,
    controller: int,
    cluster: int,
) -> tuple[float, float]:
    """The measured window: CPU and RSS of the controller, served requests, and every few seconds a LIST
    of the runs for their measurements' stamps; returns the window's wall-clock bounds."""
    schedule.collect(await list_runs(client))
    me = os.getpid()
    cpu = benchsupport.cpu_seconds(controller)
    cluster_cpu, bench_cpu = benchsupport.tree_cpu_seconds(cluster), benchsupport.cpu_seconds(me)
    served = endpoint.served
    since, started = time.time(), time.perf_counter()
    mark = (started, cpu, served)
    listed = started
    with benchsupport.profiled(controller, plan.profile):
        while (elapsed := time.perf_counter() - started) < plan.duration:
            results.rss_mb.append(benchsupport.memory_mb(controller))
            await asyncio.sleep(min(1.0, plan.duration - elapsed))
            now = time.perf_counter()
            if now - listed >= LIST_EVERY:
                schedule.collect(await list_runs(client))
                listed = now
            if plan.progress and now - mark[0] >= plan.progress:
                used, count = benchsupport.cpu_seconds(controller), endpoint.served
                print(
                    f"[window] {now - started:.0f} s: {(count - mark[2]) / (now - mark[0]):.0f} requests/s, "
                    f"controller {100 * (used - mark[1]) / (now - mark[0]):.0f} % of a core, "
                    f"RSS {results.rss_mb[-1]:.0f} MB",
                    flush=True,
                )
                mark = (now, used, count)
    until = time.time()
    results.window_seconds = span = time.perf_counter() - started
    results.rss_mb.append(benchsupport.memory_mb(controller))
    results.peak_rss_mb = benchsupport.memory_mb(controller, "VmHWM")
    results.controller_cpu = benchsupport.cpu_seconds(controller) - cpu
    results.cluster_cpu = benchsupport.tree_cpu_seconds(cluster) - cluster_cpu
    results.bench_cpu = benchsupport.cpu_seconds(me) - bench_cpu
    results.served = endpoint.served - served
    print(
        f"[window] {span:.0f} s: controller CPU {results.controller_cpu:.1f} s, "
        f"{results.served / span:.0f} requests/s served",
        flush=True,
    )
    return since, until


async def terminate_all(client: Client, names: Sequence[str], *, timeout: float) -> list[Obj]:
    """``spec.terminate`` on every run; the runs once all have completed."""
    await benchsupport.in_parallel(
        [
            functools.partial(
                client.patch, crds.ANALYSISRUN, name, {"spec": {"terminate": True}}, namespace=NAMESPACE
            )
            for name in names
        ]
    )
    deadline = time.monotonic() + timeout
    while True:
        runs = await list_runs(client)
        done = [r for r in runs if (r.get("status") or {}).get("phase") in metrics.COMPLETED]
        if len(done) == len(runs):
            return runs
        if time.monotonic() > deadline:
            raise BenchFailure(f"{len(runs) - len(done)} of {len(runs)} runs not completed after terminate")
        await asyncio.sleep(1.0)


async def measure_controller(
    cluster: ClusterProcess,
    controller: benchsupport.ControllerProcess,
    endpoint: Endpoint,
    results: Results,
    *,
    plan: Plan,
) -> None:
    pid = controller.proc.pid
    names = [f"run-{i}" for i in range(plan.runs)]
    results.runs = plan.runs
    count = math.ceil(plan.duration / INTERVAL) + 300  # a backstop: runs are terminated after the window
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="bench") as client:
        await client.create(kinds.NAMESPACE, {"metadata": {"name": NAMESPACE}})
        started = time.perf_counter()
        await benchsupport.in_parallel(
            [
                functools.partial(
                    client.create, crds.ANALYSISRUN, run_manifest(name, url=endpoint.url(name), count=count)
                )
                for name in names
            ]
        )
        created = time.perf_counter() - started
        ready = await wait_for_cadence(endpoint, names, timeout=max(60.0, 0.1 * plan.runs + 30))
        results.ramp_seconds = time.perf_counter() - started
        print(
            f"[ramp] {plan.runs} AnalysisRuns created in {created:.1f} s; {ready} measuring at their cadence "
            f"({CADENCE_ARRIVALS} requests each) {results.ramp_seconds:.1f} s after the first create",
            flush=True,
        )
        if ready < plan.runs:
            results.failures.append(
                f"only {ready} of {plan.runs} runs reached their cadence before the window"
            )
        schedule = Schedule()
        since, until = await measure_window(
            client, endpoint, schedule, results, plan=plan, controller=pid, cluster=cluster.proc.pid
        )
        runs = await terminate_all(client, names, timeout=60.0 + 0.05 * plan.runs)
    schedule.collect(runs)
    results.timing = timings(endpoint.arrivals, schedule, interval=INTERVAL, since=since, until=until)
    for run in runs:
        status = run.get("status") or {}
        results.phases[str(status.get("phase"))] += 1
        for result in status.get("metricResults") or []:
            for key in ("successful", "failed", "inconclusive", "error"):
                results.outcomes[key] += int(result.get(key) or 0)


# ------------------------------------------------------------------------------------ summary


def spread_ms(values: Sequence[float]) -> str:
    if not values:
        return "(none)"
    figures = [statistics.median(values)] + [benchsupport.percentile(values, p) for p in (95, 99)]
    p50, p95, p99 = (f"{1000 * value:.0f}" for value in figures)
    return f"p50 {p50} ms, p95 {p95} ms, p99 {p99} ms, max {1000 * max(values):.0f} ms (n={len(values)})"


def controller_lines(results: Results) -> list[str]:
    lines: list[str] = []
    span = results.window_seconds
    if span and results.controller_cpu is not None:
        per_minute = 60 * results.controller_cpu / span
        lines.append(
            f"  controller CPU {per_minute:.1f} s per minute = "
            f"{100 * results.controller_cpu / span:.0f} % of one core; RSS {max(results.rss_mb):.0f} MB "
            f"(peak since start {results.peak_rss_mb:.0f} MB)"
        )
        lines.append(
            f"  meanwhile: cluster {100 * (results.cluster_cpu or 0) / span:.0f} % of a core, this process "
            f"(endpoint + client) {100 * (results.bench_cpu or 0) / span:.0f} %"
        )
        lines.append(
            f"  requests served {results.served / span:.1f}/s "
            f"(runs / interval = {results.runs / INTERVAL:.0f})"
        )
    timing = results.timing
    if timing is not None:
        lines.append(f"  lag due -> taken: {spread_ms(timing.lag)}")
        lines.append(
            f"  lag behind a precise finish (arrival + service + 1 s): {spread_ms(timing.lag_precise)}"
        )
        lines.append(f"  interval spread (arrival k+1 - arrival k - 1 s): {spread_ms(timing.spread)}")
        if timing.unknown_due or timing.misaligned_runs:
            lines.append(
                f"  left out: {timing.unknown_due} requests whose due time no LIST saw, "
                f"{timing.misaligned_runs} runs whose requests and measurements do not pair up"
            )
    if results.phases:
        lines.append(f"  runs after terminate: {dict(results.phases)}; measurements {dict(results.outcomes)}")
    return lines


def summary(results: Results, plan: Plan) -> list[str]:
    lines = [
        "",
        f"summary (2 cores shared by the cluster, the controller and this process; {results.load_before}):",
    ]
    lines.append("  evaluator, µs per call (compiled: expr.compile once; condition: evaluate_condition):")
    lines += [f"  {line}" for line in evaluator_lines(results.evaluator)]
    if results.window_seconds:
        lines.append(
            f"  {results.runs} AnalysisRuns, one Web metric each at {INTERVAL:g} s, "
            f"{results.window_seconds:.0f} s window:"
        )
        lines += controller_lines(results)
    targets: list[str] = []
    cases = [fig for fig in results.evaluator if fig.compiled_us is not None]
    if cases:
        worst = max(cases, key=lambda fig: fig.condition_us)
        met = worst.condition_us < TARGET_EVAL_US
        targets.append(
            f"evaluation < {TARGET_EVAL_US:.0f} µs: worst {worst.condition_us:.1f} µs (case {worst.name}, "
            f"evaluate_condition): {'PASS' if met else 'FAIL'}"
        )
    if results.timing is not None and results.timing.lag:
        p95 = benchsupport.percentile(results.timing.lag, 95)
        met = p95 < TARGET_LAG_P95 and results.runs >= 500
        note = "" if results.runs >= 500 else f" (only {results.runs} runs: the target is for 500)"
        targets.append(
            f"p95 lag < {1000 * TARGET_LAG_P95:.0f} ms with 500 runs: {1000 * p95:.0f} ms{note}: "
            f"{'PASS' if met else 'FAIL'}"
        )
    lines.append("targets:")
    lines += [f"  {item}" for item in targets] or ["  (none measured)"]
    problems = [failure.splitlines()[0] for failure in results.failures]
    if results.outcomes.get("error"):
        problems.append(f"{results.outcomes['error']} measurements ended in Error")
    if results.problems:
        problems.append(f"{len(results.problems)} warning/error lines in the controller log")
    lines.append("problems: " + ("none" if not problems else ""))
    lines += [f"  {item}" for item in problems]
    return lines


def load_average() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_controller_bench(results: Results, *, plan: Plan, keep_logs: Path | None) -> None:
    endpoint = Endpoint()
    endpoint.start()
    with tempfile.TemporaryDirectory(prefix="tugboat-bench-analysis-") as tmp:
        root = Path(tmp)
        cluster = start_cluster(root / "cluster")
        controller: benchsupport.ControllerProcess | None = None
        try:
            controller = benchsupport.start_controller(
                [
                    sys.executable,
                    *("-m", "tugboat.cli.main", "rollouts-controller", "--controllers", "analysis"),
                    *("--kubeconfig", str(cluster.kubeconfig)),
                    *plan.controller_args,
                ],
                log_path=root / "controller" / "controller.log",
                ready_line=READY_LINE,
            )
            try:
                asyncio.run(measure_controller(cluster, controller, endpoint, results, plan=plan))
            except BenchFailure as exc:
                results.failures.append(str(exc))
                print(f"[controller] FAILED: {exc}", flush=True)
            if controller.proc.poll() is not None:
                results.failures.append(f"the controller exited ({controller.proc.returncode})")
            results.problems = controller.problems()
            for line in results.problems[:10]:
                print(f"    controller log: {line[:300]}")
            if keep_logs:
                keep_logs.mkdir(parents=True, exist_ok=True)
                target = keep_logs / f"analysis-controller-{int(time.time())}.log"
                target.write_bytes(controller.log_path.read_bytes())
        finally:
            if controller is not None:
                controller.stop()
            cluster.stop()
            endpoint.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="concurrent AnalysisRuns (0: evaluator only)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the measured window")
    parser.add_argument("--repeats", type=int, default=7, help="timeit repeats per evaluator figure")
    parser.add_argument(
        "--progress", type=float, default=15.0, help="print progress every this many seconds (0: never)"
    )
    parser.add_argument("--profile", type=Path, help="py-spy the controller during the window into this file")
    parser.add_argument(
        "--controller-arg",
        action="append",
        default=[],
        help="extra controller argument, e.g. --controller-arg=--analysis-threads=40 (repeatable)",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the controller log into this directory")
    args = parser.parse_args()
    plan = Plan(
        runs=args.runs,
        duration=args.duration,
        progress=args.progress,
        profile=args.profile,
        controller_args=tuple(args.controller_arg),
    )
    results = Results(load_before=load_average())
    started = time.perf_counter()
    results.evaluator = evaluator_figures(repeats=args.repeats)
    print("[evaluator] µs per call:", flush=True)
    print("\n".join(evaluator_lines(results.evaluator)), flush=True)
    if plan.runs:
        run_controller_bench(results, plan=plan, keep_logs=args.keep_logs)
    if plan.profile is not None and plan.profile.exists():
        print(f"py-spy hot spots ({plan.profile}):")
        print("\n".join(f"    {line}" for line in benchsupport.hot_spots(plan.profile)))
    for line in summary(results, plan):
        print(line)
    print(f"(benchmark took {time.perf_counter() - started:.0f} s; now {load_average()})")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
