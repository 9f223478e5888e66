"""Benchmark of the GitOps (Application) controller on the simulated local cluster; prints its figures.

Every run starts from nothing: a local cluster with the full simulation (``tugboat cluster serve``, 3
nodes), one local git repository (``file://``) whose ``apps/app-<i>`` each hold a ConfigMap and a
1-replica Deployment, and a fresh ``tugboat gitops-controller`` process. The Applications sync
automatically (prune + selfHeal) into a few shared namespaces (``bench-0`` … ``bench-9``, app ``i`` into
``bench-<i % 10>``, created beforehand). Each run measures:

1. the time from the first create (all Applications created as fast as the API takes them) until one
   LIST shows every Application Synced to the repository's HEAD and Healthy;
2. the controller's CPU per no-op refresh: every app annotated ``argocd.argoproj.io/refresh=normal``,
   the controller process's CPU (utime + stime, children excluded) until every annotation is gone, / N;
3. (runs with 100 apps) commit-to-Synced latency: commits that each change one app's ConfigMap, timed
   until that app reports ``status.sync.revision`` == the new SHA and Synced (polled every 25 ms);
4. the controller's RSS at the end of the run.

Defaults: three runs with 100 apps and one with 1,000; figures of repeated runs are medians. The
controller's periodic resync is pushed out to an hour so that it never lands inside a measurement.
Targets: 1,000 apps Synced + Healthy within 120 s, commit-to-Synced p50 within 2 s.
Run: ``.venv/bin/python bench/gitops.py`` (``--help`` for smaller runs and for profiling with py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import benchsupport
from clusterproc import ClusterProcess, start_cluster
from tugboat.gitops import crds
from tugboat.kube import kinds
from tugboat.kube.client import Client

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
TARGET_LARGE_SECONDS = 120.0
TARGET_LARGE_APPS = 1000
TARGET_COMMIT_P50 = 2.0
CONCURRENT_WRITES = 16

Obj = dict[str, Any]


class BenchFailure(Exception):
    """A measurement could not finish (e.g. an app never became Synced + Healthy); the message says why."""


# ------------------------------------------------------------------------------------ git and manifests


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


class Repo:
    """A git repository with a working tree; the controller reads it as ``file://<path>``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def commit(self, files: dict[str, str], *, message: str) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


def app_name(index: int) -> str:
    return f"app-{index}"


def namespace_of(index: int, namespaces: int) -> str:
    return f"bench-{index % namespaces}"


def configmap_yaml(index: int, version: int) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app_name(index)}-config\n"
        f'data:\n  version: "{version}"\n  greeting: hello from {app_name(index)}\n'
    )


def deployment_yaml(index: int) -> str:
    name = app_name(index)
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: example/app:v1
"""


def app_files(count: int) -> dict[str, str]:
    files = {}
    for i in range(count):
        files[f"apps/{app_name(i)}/configmap.yaml"] = configmap_yaml(i, 1)
        files[f"apps/{app_name(i)}/deployment.yaml"] = deployment_yaml(i)
    return files


def application(index: int, *, repo_url: str, namespace: str) -> Obj:
    return {
        "metadata": {"name": app_name(index), "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": f"apps/{app_name(index)}", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


# ------------------------------------------------------------------------------------ processes


Controller = benchsupport.ControllerProcess


def start_controller(cluster: ClusterProcess, state_dir: Path, extra: Iterable[str]) -> Controller:
    state_dir.mkdir(parents=True)
    log_path = state_dir / "controller.log"
    args = [
        sys.executable,
        "-m",
        "tugboat.cli.main",
        "gitops-controller",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--state-dir",
        str(state_dir),
        *extra,
    ]
    with log_path.open("ab") as log:
        controller = Controller(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), log_path)
    default_project = "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects/default"
    deadline = time.monotonic() + 60
    with cluster.client() as http:
        while time.monotonic() < deadline:
            if controller.proc.poll() is not None:
                raise RuntimeError(f"the controller exited:\n{log_path.read_text()}")
            if http.get(default_project).status_code == 200:
                time.sleep(0.5)  # the informers list after the default project is written
                return controller
            time.sleep(0.1)
    controller.stop()
    raise RuntimeError(f"the controller did not start:\n{log_path.read_text()}")


# ------------------------------------------------------------------------------------ measurements


def app_state(app: Obj) -> tuple[str | None, str | None, str | None]:
    status = app.get("status") or {}
    sync = status.get("sync") or {}
    return sync.get("status"), (status.get("health") or {}).get("status"), sync.get("revision")


def describe_stuck(apps: list[Obj], done: Callable[[Obj], bool], *, show: int = 5) -> str:
    stuck = [app for app in apps if not done(app)]
    counts = collections.Counter(app_state(app)[:2] for app in stuck)
    lines = [f"{len(stuck)} of {len(apps)} apps not done; (sync, health): {dict(counts)}"]
    for app in stuck[:show]:
        status = app.get("status") or {}
        operation = status.get("operationState") or {}
        sync_status, health, revision = app_state(app)
        lines.append(
            f"  {app['metadata']['name']}: sync={sync_status} revision={revision} health={health} "
            f"({(status.get('health') or {}).get('message', '')}) operation={operation.get('phase')} "
            f"({operation.get('message', '')}) pending-operation={'operation' in app} "
            f"conditions={status.get('conditions')}"
        )
        for resource in status.get("resources") or []:
            lines.append(
                f"    {resource.get('kind')} {resource.get('namespace')}/{resource.get('name')}: "
                f"{resource.get('status')} {(resource.get('health') or {}).get('status')}"
            )
    return "\n".join(lines)


class Progress:
    """Prints, every ``every`` seconds, how far the Applications are and who used the CPU meanwhile."""

    def __init__(self, every: float, *, controller: int, cluster: int) -> None:
        self.every = every
        self.pids = {"controller": controller, "server": cluster}
        self.started = self.last = time.perf_counter()
        self.cpu = self._sample()

    def _sample(self) -> dict[str, float]:
        server = self.pids["server"]
        children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
        sample = {name: benchsupport.cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["simulation"] = sum(benchsupport.tree_cpu_seconds(int(child)) for child in children)
        return sample

    def maybe_report(self, items: list[Obj], done: Callable[[Obj], bool]) -> None:
        now = time.perf_counter()
        if not self.every or now - self.last < self.every:
            return
        cpu = self._sample()
        usage = ", ".join(
            f"{name} {100 * (cpu[name] - self.cpu[name]) / (now - self.last):.0f} %" for name in cpu
        )
        self.cpu, self.last = cpu, now
        states = [app_state(app) for app in items]
        operating = sum(
            "operation" in app
            or ((app.get("status") or {}).get("operationState") or {}).get("phase") == "Running"
            for app in items
        )
        bare = sum(not state[0] for state in states)
        print(
            f"    {now - self.started:5.1f} s: {len(items)} apps, {bare} without status, "
            f"{operating} operating, {sum(s[0] == 'Synced' for s in states)} Synced, "
            f"{sum(s[1] == 'Healthy' for s in states)} Healthy, {sum(done(app) for app in items)} done; "
            f"CPU: {usage}",
            flush=True,
        )


async def wait_apps(
    client: Client,
    done: Callable[[Obj], bool],
    *,
    count: int,
    interval: float,
    timeout: float,
    what: str,
    progress: Progress | None = None,
) -> float:
    """Poll a LIST of the Applications until ``count`` of them are ``done``; the seconds it took."""
    started = time.perf_counter()
    items: list[Obj] = []
    while time.perf_counter() - started < timeout:
        items, _ = await client.list(crds.APPLICATION, "argocd")
        if len(items) >= count and all(done(app) for app in items):
            return time.perf_counter() - started
        if progress is not None:
            progress.maybe_report(items, done)
        await asyncio.sleep(interval)
    raise BenchFailure(f"{what}: not reached within {timeout:.0f} s\n{describe_stuck(items, done)}")


async def in_parallel(
    jobs: Sequence[Callable[[], Awaitable[Any]]], *, concurrency: int = CONCURRENT_WRITES
) -> None:
    """Run ``jobs`` with ``concurrency`` of them in flight at a time."""
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            await job()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@dataclasses.dataclass
class RunResult:
    """The figures of one run (``None``: not measured, e.g. after a failure)."""

    apps: int
    creates_seconds: float = 0.0
    ready_seconds: float | None = None
    wave_cpu: tuple[float, float] | None = None
    idle_percent: float | None = None
    refresh_cpu_per_app: float | None = None
    refresh_seconds: float | None = None
    refresh_children_cpu: float | None = None
    latencies: list[float] = dataclasses.field(default_factory=list)
    stages: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    rss_mb: float | None = None
    failure: str = ""
    problems: list[str] = dataclasses.field(default_factory=list)


async def create_and_wait(
    client: Client,
    result: RunResult,
    *,
    repo: Repo,
    head: str,
    pids: tuple[int, int],
    namespaces: int,
    progress: float,
) -> None:
    """Figure 1: create the Applications, wait until all are Synced to ``head`` and Healthy."""
    count = result.apps
    jobs = [
        functools.partial(
            client.create,
            crds.APPLICATION,
            application(i, repo_url=repo.url, namespace=namespace_of(i, namespaces)),
        )
        for i in range(count)
    ]
    controller_pid, cluster_pid = pids
    controller_before, cluster_before = (
        benchsupport.cpu_seconds(controller_pid),
        benchsupport.tree_cpu_seconds(cluster_pid),
    )
    tracker = Progress(progress, controller=controller_pid, cluster=cluster_pid) if progress else None
    started = time.perf_counter()
    await in_parallel(jobs)
    result.creates_seconds = time.perf_counter() - started

    def ready(app: Obj) -> bool:
        return app_state(app) == ("Synced", "Healthy", head) and "operation" not in app

    interval = 0.25 if count <= 100 else 1.0
    await wait_apps(
        client,
        ready,
        count=count,
        interval=interval,
        timeout=max(120.0, count * 0.3),
        what="Synced+Healthy",
        progress=tracker,
    )
    result.ready_seconds = elapsed = time.perf_counter() - started
    result.wave_cpu = (
        benchsupport.cpu_seconds(controller_pid) - controller_before,
        benchsupport.tree_cpu_seconds(cluster_pid) - cluster_before,
    )
    print(
        f"[{count} apps] all Synced + Healthy {result.ready_seconds:.1f} s after the first create "
        f"(creates took {result.creates_seconds:.1f} s; CPU meanwhile: controller {result.wave_cpu[0]:.0f} s "
        f"= {100 * result.wave_cpu[0] / elapsed:.0f} % of a core, cluster + simulation "
        f"{result.wave_cpu[1]:.0f} s = {100 * result.wave_cpu[1] / elapsed:.0f} %)",
        flush=True,
    )


async def refresh_cost(client: Client, result: RunResult, *, pid: int) -> None:
    """Figure 2: the controller's CPU for one no-op refresh of every app, per app."""
    count = result.apps
    await benchsupport.settle(pid)
    before, wall = benchsupport.cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(3.0)
    result.idle_percent = 100 * (benchsupport.cpu_seconds(pid) - before) / (time.perf_counter() - wall)
    items, _ = await client.list(crds.APPLICATION, "argocd")
    patch = {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}
    jobs = [
        functools.partial(client.patch, crds.APPLICATION, app["metadata"]["name"], patch, namespace="argocd")
        for app in items
    ]
    cpu_before, children_before = benchsupport.cpu_seconds(pid), benchsupport.children_cpu_seconds(pid)
    started = time.perf_counter()
    await in_parallel(jobs)

    def refreshed(app: Obj) -> bool:
        return REFRESH_ANNOTATION not in ((app.get("metadata") or {}).get("annotations") or {})

    await wait_apps(
        client, refreshed, count=count, interval=0.1 if count <= 100 else 0.5, timeout=300, what="refresh"
    )
    result.refresh_seconds = time.perf_counter() - started
    used = benchsupport.cpu_seconds(pid) - cpu_before
    result.refresh_children_cpu = benchsupport.children_cpu_seconds(pid) - children_before
    result.refresh_cpu_per_app = used / count
    print(
        f"[{count} apps] no-op refresh: {1000 * result.refresh_cpu_per_app:.1f} ms controller CPU per app "
        f"({used:.2f} s for {count} in {result.refresh_seconds:.1f} s; "
        f"git children {result.refresh_children_cpu:.2f} s; "
        f"idle before {result.idle_percent:.1f} % of a core)",
        flush=True,
    )


def commit_stage(app: Obj, sha: str) -> str:
    """How far ``app`` is with commit ``sha``: "", "operation" (a sync to it started), "succeeded" (that
    sync finished), "synced" (the status says Synced to it)."""
    sync_status, _, revision = app_state(app)
    if sync_status == "Synced" and revision == sha:
        return "synced"
    state = (app.get("status") or {}).get("operationState") or {}
    operation = app.get("operation") or state.get("operation") or {}
    if ((operation.get("sync") or {}).get("revision")) != sha:
        return ""
    return "succeeded" if state.get("phase") == "Succeeded" and "operation" not in app else "operation"


async def commit_latencies(
    client: Client, result: RunResult, *, repo: Repo, pid: int, commits: int, gap: float
) -> None:
    """Commits each changing one app's ConfigMap; per commit, the time until that app is Synced to it
    (and, on the way, until a sync to it started and until that sync succeeded)."""
    count = result.apps
    for n in range(commits):
        index = (n * 37) % count  # 37 is prime: distinct apps spread over the range
        await benchsupport.settle(pid, window=0.25, quiet=0.1, limit=max(gap, 0.25))
        sha = repo.commit(
            {f"apps/{app_name(index)}/configmap.yaml": configmap_yaml(index, n + 2)}, message=f"change {n}"
        )
        started = time.perf_counter()
        seen: dict[str, float] = {}
        while "synced" not in seen:
            app = await client.get(crds.APPLICATION, app_name(index), "argocd")
            stage = commit_stage(app, sha)
            if stage:
                seen.setdefault(stage, time.perf_counter() - started)
            if time.perf_counter() - started > 60:
                raise BenchFailure(
                    f"commit {n} ({sha[:8]}) to {app_name(index)}: not Synced within 60 s\n"
                    f"{describe_stuck([app], lambda _: False)}"
                )
            await asyncio.sleep(0.025)
        result.latencies.append(seen["synced"])
        for stage in ("operation", "succeeded"):
            if stage in seen:
                result.stages.setdefault(stage, []).append(seen[stage])
    print(
        f"[{count} apps] commit to Synced: {latency_text(result)} over {len(result.latencies)} commits",
        flush=True,
    )


def latency_text(result: RunResult) -> str:
    stages = "; ".join(
        f"{label} {statistics.median(result.stages[stage]):.2f} s"
        for stage, label in (("operation", "sync started"), ("succeeded", "sync succeeded"))
        if result.stages.get(stage)
    )
    latencies = result.latencies
    return (
        f"p50 {statistics.median(latencies):.2f} s, p95 {benchsupport.percentile(latencies, 95):.2f} s, "
        f"max {max(latencies):.2f} s (medians of the stages seen on the way: {stages or 'none seen'})"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scenario:
    """What one run does besides creating its Applications."""

    namespaces: int
    commits: int
    commit_gap: float
    progress: float
    profile: Path | None
    controller_args: tuple[str, ...]


async def measure(
    cluster: ClusterProcess,
    controller: Controller,
    result: RunResult,
    *,
    repo: Repo,
    head: str,
    plan: Scenario,
) -> None:
    pid = controller.proc.pid
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="bench") as client:
        for i in range(plan.namespaces):
            await client.create(kinds.NAMESPACE, {"metadata": {"name": f"bench-{i}"}})
        profiler = benchsupport.Profiler(pid, plan.profile.with_suffix(".sync.txt")) if plan.profile else None
        try:
            await create_and_wait(
                client,
                result,
                repo=repo,
                head=head,
                pids=(pid, cluster.proc.pid),
                namespaces=plan.namespaces,
                progress=plan.progress,
            )
        finally:
            if profiler:
                profiler.stop()
        profiler = (
            benchsupport.Profiler(pid, plan.profile.with_suffix(".refresh.txt")) if plan.profile else None
        )
        try:
            await refresh_cost(client, result, pid=pid)
        finally:
            if profiler:
                profiler.stop()
        if plan.commits:
            await commit_latencies(
                client, result, repo=repo, pid=pid, commits=plan.commits, gap=plan.commit_gap
            )


def finish(controller: Controller, result: RunResult, *, keep_logs: Path | None) -> None:
    """Record the controller's RSS and its log's warnings and errors at the end of a run."""
    count = result.apps
    if controller.proc.poll() is None:
        result.rss_mb = benchsupport.memory_mb(controller.proc.pid)
        print(f"[{count} apps] controller RSS at the end: {result.rss_mb:.0f} MB", flush=True)
    else:
        result.failure = result.failure or f"the controller exited ({controller.proc.returncode})"
    result.problems = controller.problems()
    if result.problems:
        print(f"[{count} apps] controller log: {len(result.problems)} warning/error lines, first ones:")
        for line in result.problems[:8]:
            print(f"    {line[:300]}")
    if keep_logs:
        keep_logs.mkdir(parents=True, exist_ok=True)
        target = keep_logs / f"controller-{count}-{int(time.time())}.log"
        target.write_bytes(controller.log_path.read_bytes())


def run_once(count: int, plan: Scenario, *, keep_logs: Path | None) -> RunResult:
    """A fresh cluster, repository and controller; ``count`` Applications; the measurements of ``plan``."""
    result = RunResult(apps=count)
    with tempfile.TemporaryDirectory(prefix="tugboat-bench-gitops-") as tmp:
        root = Path(tmp)
        repo = Repo(root / "repo")
        head = repo.commit(app_files(count), message=f"{count} apps")
        cluster = start_cluster(root / "cluster", simulate=True)
        controller: Controller | None = None
        try:
            args = ("--app-resync", "3600", *plan.controller_args)
            controller = start_controller(cluster, root / "controller", args)
            try:
                asyncio.run(measure(cluster, controller, result, repo=repo, head=head, plan=plan))
            except BenchFailure as exc:
                result.failure = str(exc)
                print(f"[{count} apps] FAILED: {exc}", flush=True)
            finish(controller, result, keep_logs=keep_logs)
        finally:
            if controller is not None:
                controller.stop()
            cluster.stop()
    return result


# ------------------------------------------------------------------------------------ summary


def median_of(results: list[RunResult], field: str) -> float | None:
    values = [getattr(r, field) for r in results if getattr(r, field) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def summary(groups: dict[int, list[RunResult]]) -> list[str]:
    lines = [
        "",
        "summary (medians over runs; 2 cores shared by the cluster, its simulation and the controller):",
    ]
    targets: list[str] = []
    problems: list[str] = []
    for count, results in groups.items():
        ready = median_of(results, "ready_seconds")
        failed = sum(r.ready_seconds is None for r in results)
        lines.append(
            f"  {count:>5} apps, Synced + Healthy after creation: {fmt(ready, '.1f', ' s')}"
            f" (runs: {', '.join(fmt(r.ready_seconds, '.1f') for r in results)})"
            + (f"; {failed} of {len(results)} runs never got there" if failed else "")
        )
        if count == TARGET_LARGE_APPS:
            met = ready is not None and ready <= TARGET_LARGE_SECONDS and not failed
            targets.append(
                f"{count} apps Synced + Healthy within {TARGET_LARGE_SECONDS:.0f} s: "
                f"{fmt(ready, '.1f', ' s')}, {'met' if met else 'MISSED'}"
            )
        per_app = median_of(results, "refresh_cpu_per_app")
        lines.append(
            f"  {count:>5} apps, no-op refresh CPU per app: {fmt(per_app and per_app * 1000, '.1f', ' ms')}"
            f" (wave took {fmt(median_of(results, 'refresh_seconds'), '.1f', ' s')};"
            f" idle controller {fmt(median_of(results, 'idle_percent'), '.1f', ' %')} of a core)"
        )
        lines.append(
            f"  {count:>5} apps, controller RSS at the end: {fmt(median_of(results, 'rss_mb'), '.0f', ' MB')}"
        )
        pooled = RunResult(apps=count)
        for r in results:
            pooled.latencies += r.latencies
            for stage, values in r.stages.items():
                pooled.stages.setdefault(stage, []).extend(values)
        if pooled.latencies:
            per_run = ", ".join(f"{statistics.median(r.latencies):.2f}" for r in results if r.latencies)
            lines.append(
                f"  {count:>5} apps, commit to Synced, all {len(pooled.latencies)} commits of "
                f"{len(results)} runs: {latency_text(pooled)}; per-run p50: {per_run} s"
            )
            p50 = statistics.median(pooled.latencies)
            targets.append(
                f"commit-to-Synced p50 within {TARGET_COMMIT_P50:.0f} s ({count} apps): {p50:.2f} s, "
                f"{'met' if p50 <= TARGET_COMMIT_P50 else 'MISSED'}"
            )
        for r in results:
            if r.failure:
                problems.append(f"a run with {count} apps failed: {r.failure.splitlines()[0]}")
            if r.problems:
                problems.append(f"a run with {count} apps: {len(r.problems)} warning/error lines in the log")
    lines.append("targets:")
    lines += [f"  {item}" for item in targets] or ["  (none measured)"]
    lines.append("problems: " + ("none" if not problems else ""))
    lines += [f"  {item}" for item in problems]
    return lines


def print_hot_spots(count: int, profile: Path) -> None:
    for suffix in (".sync.txt", ".refresh.txt"):
        path = profile.with_suffix(suffix)
        if path.exists():
            print(f"[{count} apps] py-spy hot spots ({path}):")
            print("\n".join(f"    {line}" for line in benchsupport.hot_spots(path)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100, help="apps in the repeated runs")
    parser.add_argument("--small-runs", type=int, default=3)
    parser.add_argument("--large", type=int, default=1000, help="apps in the large run (0: none)")
    parser.add_argument("--large-runs", type=int, default=1)
    parser.add_argument("--commits", type=int, default=20, help="commits per small run (0: none)")
    parser.add_argument(
        "--commit-gap",
        type=float,
        default=1.0,
        help="at most this long for the controller to go quiet between commits",
    )
    parser.add_argument("--namespaces", type=int, default=10, help="shared destination namespaces")
    parser.add_argument(
        "--controller-arg",
        action="append",
        default=[],
        help="extra controller argument, e.g. --controller-arg=--status-processors=40 (repeatable)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the large runs into PREFIX.sync.txt / .refresh.txt"
    )
    parser.add_argument(
        "--progress", type=float, default=0.0, help="print progress every this many seconds while waiting"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the controller logs into this directory")
    args = parser.parse_args()
    groups: dict[int, list[RunResult]] = {}
    runs = [(args.small, args.commits)] * args.small_runs
    runs += [(args.large, 0)] * (args.large_runs if args.large else 0)
    started = time.perf_counter()
    for count, commits in runs:
        profile = args.profile if count == args.large else None
        plan = Scenario(
            namespaces=args.namespaces,
            commits=commits,
            commit_gap=args.commit_gap,
            progress=args.progress,
            profile=profile,
            controller_args=tuple(args.controller_arg),
        )
        groups.setdefault(count, []).append(run_once(count, plan, keep_logs=args.keep_logs))
        if profile is not None:
            print_hot_spots(count, profile)
    for line in summary(groups):
        print(line)
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
