"""Benchmark of the rollout controller on the simulated local cluster; prints its figures.

One run starts from nothing: a local cluster with the full simulation (``tugboat cluster serve``, 3 nodes)
and a fresh ``tugboat rollouts-controller`` process. Clients drive Rollouts the way ``kubectl argo
rollouts`` does (an image change patches ``spec.template``; promote and abort are merge patches of
``/status``). In order, on the same cluster and controller:

1. 1,000 blue-green Rollouts (replicas 1, each with its active Service, spread over 10 namespaces) are
   created; the time until every one is Healthy; then, once the controller has gone quiet, its CPU
   seconds per minute and its RSS over 60 s of steady state (``/proc/<pid>/stat`` and ``status``);
2. latencies on 20 blue-green Rollouts (replicas 1, ``autoPromotionEnabled: false``, active and preview
   Services), one Rollout at a time, seen through watches: promote-to-switch (the promote patch until
   the active Service selects the new ``rollouts-pod-template-hash``) and abort-to-Degraded (the abort
   patch of a paused update until ``status.phase`` is Degraded, the active Service still on stable);
3. 100 blue-green Rollouts (replicas 2, automatic promotion) updated at once: the time until all are
   Healthy on their new hash.

Figures 2 and 3 run with the 1,000 steady Rollouts still in place. Targets (2 cores): controller RSS
at most 300 MB with 1,000 Rollouts; abort-to-switch p95 at most 500 ms, checked against the
promote-to-switch p95 (while an update is paused the active Service never leaves stable, so an abort
switches nothing; the promote is the switch users wait for).
Run: ``.venv/bin/python bench/rollouts.py`` (``--help`` for smaller runs and for profiling with py-spy).
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
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import benchsupport
from clusterproc import ClusterProcess, start_cluster
from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.kube.kinds import Kind
from tugboat.rollouts import crds

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HASH_LABEL = "rollouts-pod-template-hash"
GROUP_LABEL = "bench.tugboat.dev/group"
READY_LINE = "rollouts controller: watching Rollouts"
TARGET_RSS_MB = 300.0
TARGET_SWITCH_P95 = 0.5
CONCURRENT_WRITES = 16

Obj = dict[str, Any]


class BenchFailure(Exception):
    """A measurement could not finish (e.g. a Rollout never became Healthy); the message says why."""


# ------------------------------------------------------------------------------------ manifests


def rollout_manifest(
    name: str, *, namespace: str, group: str, replicas: int, auto_promotion: bool, preview: bool
) -> Obj:
    blue_green: Obj = {"activeService": f"{name}-active", "autoPromotionEnabled": auto_promotion}
    if preview:
        blue_green["previewService"] = f"{name}-preview"
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": {GROUP_LABEL: group}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "example/app:v1"}]},
            },
            "strategy": {"blueGreen": blue_green},
        },
    }


def service_manifest(name: str, *, namespace: str, app: str) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def image_patch(image: str) -> Obj:
    return {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}


# ------------------------------------------------------------------------------------ processes


Controller = benchsupport.ControllerProcess


def start_controller(cluster: ClusterProcess, state_dir: Path, extra: Sequence[str]) -> Controller:
    """``tugboat rollouts-controller`` against ``cluster``, returned once its informers are synced."""
    state_dir.mkdir(parents=True)
    args = [
        sys.executable,
        *("-m", "tugboat.cli.main", "rollouts-controller"),
        *("--kubeconfig", str(cluster.kubeconfig)),
        *extra,
    ]
    return benchsupport.start_controller(args, log_path=state_dir / "controller.log", ready_line=READY_LINE)


# ------------------------------------------------------------------------------------ observing


def status_of(ro: Obj) -> Obj:
    return ro.get("status") or {}


def observed(ro: Obj) -> bool:
    return status_of(ro).get("observedGeneration") == str((ro.get("metadata") or {}).get("generation"))


def healthy(ro: Obj) -> bool:
    """Healthy on the latest spec: observed, phase Healthy, fully promoted."""
    status = status_of(ro)
    return (
        observed(ro)
        and status.get("phase") == "Healthy"
        and bool(status.get("stableRS"))
        and status.get("stableRS") == status.get("currentPodHash")
    )


def paused_before_promotion(ro: Obj) -> bool:
    status = status_of(ro)
    return (
        observed(ro)
        and status.get("phase") == "Paused"
        and status.get("message") == "BlueGreenPause"
        and status.get("currentPodHash") != status.get("stableRS")
    )


def selector_hash(svc: Obj) -> str | None:
    return ((svc.get("spec") or {}).get("selector") or {}).get(HASH_LABEL)


def describe_stuck(rollouts: list[Obj], done: Callable[[Obj], bool], *, show: int = 5) -> str:
    stuck = [ro for ro in rollouts if not done(ro)]
    counts = collections.Counter((status_of(ro).get("phase"), status_of(ro).get("message")) for ro in stuck)
    lines = [f"{len(stuck)} of {len(rollouts)} Rollouts not done; (phase, message): {dict(counts)}"]
    for ro in stuck[:show]:
        status = status_of(ro)
        meta = ro["metadata"]
        conditions = [
            f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
            for c in status.get("conditions") or []
        ]
        lines.append(
            f"  {meta['namespace']}/{meta['name']} generation {meta.get('generation')}: "
            f"observedGeneration={status.get('observedGeneration')} phase={status.get('phase')} "
            f"message={status.get('message')!r} currentPodHash={status.get('currentPodHash')} "
            f"stableRS={status.get('stableRS')} replicas={status.get('replicas')} "
            f"updated={status.get('updatedReplicas')} available={status.get('availableReplicas')} "
            f"blueGreen={status.get('blueGreen')} pauseConditions={status.get('pauseConditions')} "
            f"abort={status.get('abort')}"
        )
        lines += [f"    {text}" for text in conditions]
    return "\n".join(lines)


class Watch:
    """The objects of one kind in one namespace, kept up to date by a watch, with the moment each version
    arrived; :meth:`wait_for` answers "when did this first hold after that moment?"."""

    def __init__(self, client: Client, kind: Kind, namespace: str) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.history: dict[str, collections.deque[tuple[float, Obj]]] = {}
        self.synced = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _record(self, obj: Obj, arrived: float) -> None:
        name = obj["metadata"]["name"]
        self.history.setdefault(name, collections.deque(maxlen=64)).append((arrived, obj))
        self._changed.set()
        self._changed = asyncio.Event()

    async def _run(self) -> None:
        revision = ""
        while True:
            if not revision:
                items, revision = await self.client.list(self.kind, self.namespace)
                arrived = time.perf_counter()
                for item in items:
                    self._record(item, arrived)
                self.synced.set()
            try:
                async for event_type, obj in self.client.watch(
                    self.kind, self.namespace, resource_version=revision, timeout_seconds=900
                ):
                    arrived = time.perf_counter()
                    revision = (obj.get("metadata") or {}).get("resourceVersion") or revision
                    if event_type in ("ADDED", "MODIFIED"):
                        self._record(obj, arrived)
            except kube_errors.ApiError as exc:
                if not exc.gone:
                    raise
                revision = ""
            except kube_errors.ConnectionFailed:
                await asyncio.sleep(0.1)

    def latest(self, name: str) -> Obj | None:
        entries = self.history.get(name)
        return entries[-1][1] if entries else None

    def _first_true(self, name: str, check: Callable[[Obj], bool], since: float) -> float | None:
        """The moment ``check`` first held at or after ``since`` (``since`` itself when it held then)."""
        state_at_since: Obj | None = None
        for arrived, obj in self.history.get(name) or ():
            if arrived < since:
                state_at_since = obj
                continue
            if state_at_since is not None and check(state_at_since):
                return since
            state_at_since = None
            if check(obj):
                return arrived
        if state_at_since is not None and check(state_at_since):
            return since
        return None

    async def wait_for(
        self, name: str, check: Callable[[Obj], bool], *, since: float, timeout: float, what: str
    ) -> float:
        deadline = time.perf_counter() + timeout
        while True:
            found = self._first_true(name, check, since)
            if found is not None:
                return found
            changed = self._changed
            left = deadline - time.perf_counter()
            if left <= 0:
                latest = self.latest(name)
                detail = (
                    describe_stuck([latest], lambda _: False) if latest and self.kind == crds.ROLLOUT else ""
                )
                raise BenchFailure(f"{what}: not seen within {timeout:.0f} s\n{detail or latest}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)


async def list_group(client: Client, group: str) -> list[Obj]:
    items, _ = await client.list(crds.ROLLOUT, labels=f"{GROUP_LABEL}={group}", all_namespaces=True)
    found: list[Obj] = items
    return found


class Progress:
    """Prints, every ``every`` seconds, how many Rollouts are done, how many of their ReplicaSets are
    available (the simulation's side), and who used the CPU meanwhile."""

    def __init__(self, client: Client, every: float, *, controller: int, cluster: int) -> None:
        self.client = client
        self.every = every
        self.controller, self.server = controller, cluster
        self.started = self.last = time.perf_counter()
        self.cpu = self._sample()

    def _sample(self) -> dict[str, float]:
        children = Path(f"/proc/{self.server}/task/{self.server}/children").read_text().split()
        return {
            "controller": benchsupport.cpu_seconds(self.controller),
            "API server": benchsupport.cpu_seconds(self.server),
            "simulation": sum(benchsupport.tree_cpu_seconds(int(child)) for child in children),
        }

    async def maybe_report(self, items: list[Obj], done: Callable[[Obj], bool]) -> None:
        now = time.perf_counter()
        if not self.every or now - self.last < self.every:
            return
        cpu = self._sample()
        usage = ", ".join(
            f"{name} {100 * (cpu[name] - self.cpu[name]) / (now - self.last):.0f} %" for name in cpu
        )
        self.cpu, self.last = cpu, now
        phases = collections.Counter(status_of(ro).get("phase") or "none" for ro in items)
        sets, _ = await self.client.list(kinds.REPLICASET, labels=HASH_LABEL, all_namespaces=True)
        available = sum(
            (rs.get("status") or {}).get("availableReplicas", 0)
            >= (rs.get("spec") or {}).get("replicas", 0)
            > 0
            for rs in sets
        )
        print(
            f"    {now - self.started:5.1f} s: {len(items)} Rollouts, {sum(done(ro) for ro in items)} done, "
            f"phases {dict(phases)}; {available} of {len(sets)} ReplicaSets (all groups) available; "
            f"CPU: {usage}",
            flush=True,
        )


async def wait_group(
    client: Client,
    group: str,
    done: Callable[[Obj], bool],
    *,
    count: int,
    since: float,
    interval: float,
    timeout: float,
    what: str,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Poll a LIST of a group's Rollouts until ``count`` are ``done``; per Rollout, the seconds after
    ``since`` at which a LIST first showed it done."""
    first_done: dict[str, float] = {}
    items: list[Obj] = []
    while time.perf_counter() - since < timeout:
        items = await list_group(client, group)
        now = time.perf_counter() - since
        for ro in items:
            if done(ro):
                first_done.setdefault(f"{ro['metadata']['namespace']}/{ro['metadata']['name']}", now)
        if len(items) >= count and all(done(ro) for ro in items):
            return first_done
        if progress is not None:
            await progress.maybe_report(items, done)
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


async def create_rollouts(
    client: Client,
    names: Sequence[tuple[str, str]],
    *,
    group: str,
    replicas: int,
    auto_promotion: bool,
    preview: bool,
) -> None:
    """Services first (so that no Rollout starts InvalidSpec), then the Rollouts; 16 writes in flight."""
    services = []
    for namespace, name in names:
        roles = ("active", "preview") if preview else ("active",)
        services += [
            functools.partial(
                client.create,
                kinds.SERVICE,
                service_manifest(f"{name}-{role}", namespace=namespace, app=name),
            )
            for role in roles
        ]
    await in_parallel(services)
    manifests = [
        rollout_manifest(
            name,
            namespace=namespace,
            group=group,
            replicas=replicas,
            auto_promotion=auto_promotion,
            preview=preview,
        )
        for namespace, name in names
    ]
    await in_parallel([functools.partial(client.create, crds.ROLLOUT, body) for body in manifests])


def spread(values: Sequence[float], *, seconds: bool = False) -> str:
    """p50, p95 and max of durations, in milliseconds (or seconds)."""
    scale, unit, digits = (1.0, "s", 1) if seconds else (1000.0, "ms", 0)
    figures = (statistics.median(values), benchsupport.percentile(values, 95), max(values))
    p50, p95, top = (f"{scale * value:.{digits}f} {unit}" for value in figures)
    return f"p50 {p50}, p95 {p95}, max {top} (n={len(values)})"


# ------------------------------------------------------------------------------------ measurements


@dataclasses.dataclass
class Results:
    """The figures of the run (``None`` or empty: not measured, e.g. after a failure)."""

    steady_count: int = 0
    steady_ready_seconds: float | None = None
    steady_creates_seconds: float | None = None
    steady_cpu_per_minute: float | None = None
    steady_cluster_cpu_per_minute: float | None = None
    steady_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    promote_switch: list[float] = dataclasses.field(default_factory=list)
    promote_healthy: list[float] = dataclasses.field(default_factory=list)
    abort_degraded: list[float] = dataclasses.field(default_factory=list)
    burst_count: int = 0
    burst_seconds: float | None = None
    burst_each: list[float] = dataclasses.field(default_factory=list)
    burst_patch_seconds: float | None = None
    burst_cpu: float | None = None
    failures: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    steady: int
    namespaces: int
    steady_seconds: float
    latency: int
    burst: int
    burst_replicas: int
    progress: float
    profile: Path | None


async def steady_state(
    client: Client, results: Results, *, plan: Plan, controller: int, cluster: int
) -> None:
    """Figure 1: create the steady Rollouts, wait until all are Healthy, measure 60 s of steady state."""
    count = results.steady_count = plan.steady
    for i in range(plan.namespaces):
        await client.create(kinds.NAMESPACE, {"metadata": {"name": f"bench-{i}"}})
    names = [(f"bench-{i % plan.namespaces}", f"steady-{i}") for i in range(count)]
    progress = (
        Progress(client, plan.progress, controller=controller, cluster=cluster) if plan.progress else None
    )
    before = benchsupport.cpu_seconds(controller)
    with benchsupport.profiled(controller, plan.profile and plan.profile.with_suffix(".steady.txt")):
        started = time.perf_counter()
        await create_rollouts(client, names, group="steady", replicas=1, auto_promotion=True, preview=False)
        results.steady_creates_seconds = time.perf_counter() - started
        await wait_group(
            client,
            "steady",
            healthy,
            count=count,
            since=started,
            interval=1.0,
            timeout=max(120.0, count * 0.4),
            what=f"{count} Rollouts Healthy",
            progress=progress,
        )
    results.steady_ready_seconds = elapsed = time.perf_counter() - started
    used = benchsupport.cpu_seconds(controller) - before
    print(
        f"[steady] {count} Rollouts all Healthy {elapsed:.1f} s after the first create "
        f"(creates of {count} Services + {count} Rollouts took {results.steady_creates_seconds:.1f} s; "
        f"controller CPU meanwhile {used:.0f} s = {100 * used / elapsed:.0f} % of a core)",
        flush=True,
    )
    settled = await benchsupport.settle(controller, window=2.0, quiet=0.05, limit=60.0)
    print(
        f"[steady] controller quiet {settled:.1f} s later; measuring {plan.steady_seconds:.0f} s", flush=True
    )
    cpu_before, cluster_before = benchsupport.cpu_seconds(controller), benchsupport.tree_cpu_seconds(cluster)
    wall = time.perf_counter()
    rss: list[float] = []
    while time.perf_counter() - wall < plan.steady_seconds:
        rss.append(benchsupport.memory_mb(controller))
        await asyncio.sleep(min(5.0, plan.steady_seconds - (time.perf_counter() - wall)))
    span = time.perf_counter() - wall
    rss.append(benchsupport.memory_mb(controller))
    results.steady_cpu_per_minute = 60 * (benchsupport.cpu_seconds(controller) - cpu_before) / span
    results.steady_cluster_cpu_per_minute = (
        60 * (benchsupport.tree_cpu_seconds(cluster) - cluster_before) / span
    )
    results.steady_rss_mb = max(rss)
    results.peak_rss_mb = benchsupport.memory_mb(controller, "VmHWM")
    items = await list_group(client, "steady")
    still = sum(healthy(ro) for ro in items)
    print(
        f"[steady] over {span:.0f} s with {count} Rollouts: controller CPU "
        f"{results.steady_cpu_per_minute:.3f} s per minute, RSS {min(rss):.0f}-{max(rss):.0f} MB "
        f"(peak since start {results.peak_rss_mb:.0f} MB); cluster + simulation CPU "
        f"{results.steady_cluster_cpu_per_minute:.1f} s per minute; {still} of {len(items)} still Healthy",
        flush=True,
    )
    if still != count:
        raise BenchFailure(f"steady state: only {still} of {count} Rollouts stayed Healthy")


async def update_and_wait_paused(client: Client, *, namespace: str, names: Sequence[str], image: str) -> None:
    """Change every Rollout's image at once; wait until each update is paused before its promotion."""
    await asyncio.gather(
        *(client.patch(crds.ROLLOUT, name, image_patch(image), namespace=namespace) for name in names)
    )
    await wait_group(
        client,
        "latency",
        paused_before_promotion,
        count=len(names),
        since=time.perf_counter(),
        interval=0.2,
        timeout=120,
        what=f"{image}: paused before promotion (BlueGreenPause)",
    )


async def switch_latencies(client: Client, results: Results, *, plan: Plan, controller: int) -> None:
    """Figure 2: promote-to-switch and abort-to-Degraded, one Rollout at a time."""
    namespace = "bench-latency"
    await client.create(kinds.NAMESPACE, {"metadata": {"name": namespace}})
    names = [f"latency-{i}" for i in range(plan.latency)]
    await create_rollouts(
        client,
        [(namespace, name) for name in names],
        group="latency",
        replicas=1,
        auto_promotion=False,
        preview=True,
    )
    await wait_group(
        client,
        "latency",
        healthy,
        count=len(names),
        since=time.perf_counter(),
        interval=0.2,
        timeout=120,
        what="latency Rollouts Healthy",
    )
    rollouts, services = Watch(client, crds.ROLLOUT, namespace), Watch(client, kinds.SERVICE, namespace)
    for watch in (rollouts, services):
        watch.start()
    try:
        await asyncio.gather(rollouts.synced.wait(), services.synced.wait())
        await promote_each(
            client, results, rollouts, services, names=names, namespace=namespace, pid=controller
        )
        print(
            f"[latency] promote to active Service switched: {spread(results.promote_switch)}; "
            f"promote to Healthy: {spread(results.promote_healthy)}",
            flush=True,
        )
        await abort_each(
            client, results, rollouts, services, names=names, namespace=namespace, pid=controller
        )
        print(f"[latency] abort to Degraded (active on stable): {spread(results.abort_degraded)}", flush=True)
    finally:
        for watch in (rollouts, services):
            await watch.stop()


async def promote_each(
    client: Client,
    results: Results,
    rollouts: Watch,
    services: Watch,
    *,
    names: Sequence[str],
    namespace: str,
    pid: int,
) -> None:
    """Update to N+1, then per Rollout: promote; the time until its active Service switched to N+1 (and
    until it is Healthy on N+1)."""
    await update_and_wait_paused(client, namespace=namespace, names=names, image="example/app:v2")
    for name in names:
        ro = rollouts.latest(name)
        assert ro is not None
        new_hash = status_of(ro)["currentPodHash"]
        await benchsupport.settle(pid, window=0.25, quiet=0.1, limit=1.0)
        started = time.perf_counter()
        await client.patch_status(crds.ROLLOUT, name, {"pauseConditions": None}, namespace=namespace)
        switched = await services.wait_for(
            f"{name}-active",
            selects(new_hash),
            since=started,
            timeout=30,
            what=f"{name}: active Service on {new_hash} after promote",
        )
        done = await rollouts.wait_for(
            name,
            healthy_on(new_hash),
            since=started,
            timeout=30,
            what=f"{name}: Healthy on {new_hash} after promote",
        )
        results.promote_switch.append(switched - started)
        results.promote_healthy.append(done - started)


def selects(pod_hash: str) -> Callable[[Obj], bool]:
    """Whether a Service selects the pods of ``pod_hash``."""
    return lambda svc: selector_hash(svc) == pod_hash


def healthy_on(pod_hash: str) -> Callable[[Obj], bool]:
    """Whether a Rollout is Healthy with ``pod_hash`` stable."""
    return lambda ro: healthy(ro) and status_of(ro).get("stableRS") == pod_hash


def aborted_to(stable: str) -> Callable[[Obj], bool]:
    """Whether a Rollout is Degraded by an abort, ``stable`` still its stable ReplicaSet."""

    def check(ro: Obj) -> bool:
        status = status_of(ro)
        message = str(status.get("message", ""))
        return (
            status.get("phase") == "Degraded"
            and message.startswith("RolloutAborted")
            and status.get("stableRS") == stable
        )

    return check


async def abort_each(
    client: Client,
    results: Results,
    rollouts: Watch,
    services: Watch,
    *,
    names: Sequence[str],
    namespace: str,
    pid: int,
) -> None:
    """Update to N+2, then per Rollout: abort; the time until it is Degraded, its active Service on N+1."""
    await update_and_wait_paused(client, namespace=namespace, names=names, image="example/app:v3")
    for name in names:
        ro = rollouts.latest(name)
        assert ro is not None
        stable = status_of(ro)["stableRS"]
        await benchsupport.settle(pid, window=0.25, quiet=0.1, limit=1.0)
        started = time.perf_counter()
        await client.patch_status(crds.ROLLOUT, name, {"abort": True}, namespace=namespace)
        degraded = await rollouts.wait_for(
            name,
            aborted_to(stable),
            since=started,
            timeout=30,
            what=f"{name}: Degraded after abort",
        )
        on_stable = await services.wait_for(
            f"{name}-active",
            selects(stable),
            since=started,
            timeout=30,
            what=f"{name}: active Service on stable {stable} after abort",
        )
        results.abort_degraded.append(max(degraded, on_stable) - started)


async def burst_update(
    client: Client, results: Results, *, plan: Plan, controller: int, cluster: int
) -> None:
    """Figure 3: many Rollouts updated at once; the time until all are Healthy on their new hash."""
    namespace = "bench-burst"
    count = results.burst_count = plan.burst
    await client.create(kinds.NAMESPACE, {"metadata": {"name": namespace}})
    names = [f"burst-{i}" for i in range(count)]
    started = time.perf_counter()
    await create_rollouts(
        client,
        [(namespace, name) for name in names],
        group="burst",
        replicas=plan.burst_replicas,
        auto_promotion=True,
        preview=False,
    )
    await wait_group(
        client,
        "burst",
        healthy,
        count=count,
        since=started,
        interval=0.5,
        timeout=300,
        what="burst v1 Healthy",
    )
    print(
        f"[burst] {count} Rollouts x {plan.burst_replicas} replicas Healthy on v1 "
        f"{time.perf_counter() - started:.1f} s after the first create",
        flush=True,
    )
    old = {
        f"{namespace}/{ro['metadata']['name']}": status_of(ro)["stableRS"]
        for ro in await list_group(client, "burst")
    }

    def done(ro: Obj) -> bool:
        return healthy(ro) and status_of(ro).get("stableRS") != old[f"{namespace}/{ro['metadata']['name']}"]

    await benchsupport.settle(controller, window=1.0, quiet=0.05, limit=30.0)
    progress = (
        Progress(client, plan.progress, controller=controller, cluster=cluster) if plan.progress else None
    )
    before = benchsupport.cpu_seconds(controller)
    with benchsupport.profiled(controller, plan.profile and plan.profile.with_suffix(".burst.txt")):
        started = time.perf_counter()
        await asyncio.gather(
            *(
                client.patch(crds.ROLLOUT, name, image_patch("example/app:v2"), namespace=namespace)
                for name in names
            )
        )
        results.burst_patch_seconds = time.perf_counter() - started
        first_done = await wait_group(
            client,
            "burst",
            done,
            count=count,
            since=started,
            interval=0.25,
            timeout=300,
            what="burst v2 Healthy",
            progress=progress,
        )
    results.burst_seconds = elapsed = time.perf_counter() - started
    results.burst_each = list(first_done.values())
    results.burst_cpu = benchsupport.cpu_seconds(controller) - before
    print(
        f"[burst] {count} simultaneous updates all Healthy on the new hash {elapsed:.1f} s after the first "
        f"patch (patches took {results.burst_patch_seconds:.2f} s; "
        f"per Rollout {spread(results.burst_each, seconds=True)}; "
        f"controller CPU {results.burst_cpu:.1f} s = {100 * results.burst_cpu / elapsed:.0f} % of a core)",
        flush=True,
    )


async def measure(cluster: ClusterProcess, controller: Controller, results: Results, *, plan: Plan) -> None:
    pid, cluster_pid = controller.proc.pid, cluster.proc.pid
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="bench") as client:
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if plan.steady:
            steps.append(
                (
                    "steady",
                    lambda: steady_state(client, results, plan=plan, controller=pid, cluster=cluster_pid),
                )
            )
        if plan.latency:
            steps.append(("latency", lambda: switch_latencies(client, results, plan=plan, controller=pid)))
        if plan.burst:
            steps.append(
                (
                    "burst",
                    lambda: burst_update(client, results, plan=plan, controller=pid, cluster=cluster_pid),
                )
            )
        for name, step in steps:
            try:
                await step()
            except BenchFailure as exc:
                results.failures.append(f"{name}: {exc}")
                print(f"[{name}] FAILED: {exc}", flush=True)
            if controller.proc.poll() is not None:
                results.failures.append(f"the controller exited ({controller.proc.returncode})")
                return


# ------------------------------------------------------------------------------------ summary


def summary(results: Results, plan: Plan) -> list[str]:
    lines = ["", "summary (2 cores shared by the cluster, its simulation and the controller):"]
    targets: list[str] = []
    if results.steady_ready_seconds is not None:
        lines.append(
            f"  {results.steady_count} blue-green Rollouts created -> all Healthy: "
            f"{results.steady_ready_seconds:.1f} s"
        )
    if results.steady_rss_mb is not None and results.steady_cpu_per_minute is not None:
        lines.append(
            f"  steady state with {results.steady_count} Rollouts: "
            f"controller RSS {results.steady_rss_mb:.0f} MB (peak {results.peak_rss_mb:.0f} MB), "
            f"CPU {results.steady_cpu_per_minute:.3f} s per minute"
        )
        met = results.steady_rss_mb <= TARGET_RSS_MB
        targets.append(
            f"controller RSS <= {TARGET_RSS_MB:.0f} MB with {results.steady_count} Rollouts: "
            f"{results.steady_rss_mb:.0f} MB, {'met' if met else 'MISSED'}"
        )
    if results.promote_switch:
        lines.append(f"  promote -> active Service switched: {spread(results.promote_switch)}")
        lines.append(f"  promote -> Healthy: {spread(results.promote_healthy)}")
        p95 = benchsupport.percentile(results.promote_switch, 95)
        targets.append(
            f"abort-to-switch p95 <= {1000 * TARGET_SWITCH_P95:.0f} ms, checked on promote-to-switch (the "
            f"closest equivalent: a paused update never moves the active Service, so its abort switches "
            f"nothing): {1000 * p95:.0f} ms, {'met' if p95 <= TARGET_SWITCH_P95 else 'MISSED'}"
        )
    if results.abort_degraded:
        lines.append(f"  abort (paused) -> Degraded, active on stable: {spread(results.abort_degraded)}")
    if results.burst_seconds is not None:
        lines.append(
            f"  {results.burst_count} simultaneous blue-green updates (replicas {plan.burst_replicas}) "
            f"-> all Healthy: {results.burst_seconds:.1f} s"
        )
    lines.append("targets:")
    lines += [f"  {item}" for item in targets] or ["  (none measured)"]
    problems = [failure.splitlines()[0] for failure in results.failures]
    if results.problems:
        problems.append(f"{len(results.problems)} warning/error lines in the controller log")
    lines.append("problems: " + ("none" if not problems else ""))
    lines += [f"  {item}" for item in problems]
    return lines


def finish(controller: Controller, results: Results, *, keep_logs: Path | None) -> None:
    results.problems = controller.problems()
    if results.problems:
        print(f"controller log: {len(results.problems)} warning/error lines, first ones:")
        for line in results.problems[:10]:
            print(f"    {line[:300]}")
    if keep_logs:
        keep_logs.mkdir(parents=True, exist_ok=True)
        (keep_logs / f"rollouts-controller-{int(time.time())}.log").write_bytes(
            controller.log_path.read_bytes()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steady", type=int, default=1000, help="Rollouts of figure 1 (0: skip)")
    parser.add_argument("--namespaces", type=int, default=10, help="namespaces of figure 1")
    parser.add_argument("--steady-seconds", type=float, default=60.0, help="steady-state window")
    parser.add_argument("--latency", type=int, default=20, help="Rollouts of figure 2 (0: skip)")
    parser.add_argument("--burst", type=int, default=100, help="Rollouts of figure 3 (0: skip)")
    parser.add_argument("--burst-replicas", type=int, default=2)
    parser.add_argument(
        "--progress", type=float, default=15.0, help="print progress every this many seconds while waiting"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy figures 1 and 3 into PREFIX.steady.txt / PREFIX.burst.txt"
    )
    parser.add_argument(
        "--controller-arg",
        action="append",
        default=[],
        help="extra controller argument, e.g. --controller-arg=--rollout-threads=20 (repeatable)",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the controller log into this directory")
    args = parser.parse_args()
    plan = Plan(
        steady=args.steady,
        namespaces=args.namespaces,
        steady_seconds=args.steady_seconds,
        latency=args.latency,
        burst=args.burst,
        burst_replicas=args.burst_replicas,
        progress=args.progress,
        profile=args.profile,
    )
    results = Results()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tugboat-bench-rollouts-") as tmp:
        root = Path(tmp)
        cluster = start_cluster(root / "cluster", simulate=True)
        controller: Controller | None = None
        try:
            controller = start_controller(cluster, root / "controller", args.controller_arg)
            asyncio.run(measure(cluster, controller, results, plan=plan))
            finish(controller, results, keep_logs=args.keep_logs)
        finally:
            if controller is not None:
                controller.stop()
            cluster.stop()
    if plan.profile is not None:
        for suffix in (".steady.txt", ".burst.txt"):
            path = plan.profile.with_suffix(suffix)
            if path.exists():
                print(f"py-spy hot spots ({path}):")
                print("\n".join(f"    {line}" for line in benchsupport.hot_spots(path)))
    for line in summary(results, plan):
        print(line)
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
