"""``tugboat demo``: run the seed's two processes (../shared/seed.md) and show each step as it happens.

The demo is a check as much as a show: each numbered step of the seed is a :class:`Step` (a named check
on what the cluster and Git look like), and the demo commits a good version N+1, then a failing N+2, and
waits for every step in order, narrating what it observed (commit SHA; the Application's sync status,
revision and health; the Rollout's phase, step and weights; which ReplicaSet the traffic Service
selects; analysis runs and their measurements). It exits 0 only when every step was seen, otherwise
non-zero naming the step that did not happen. The steps are plain data (:func:`steps_for`), so a test
can swap one for a check that cannot pass.

It only reads the cluster and writes Git, exactly as a user would: the controllers do the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tugboat.cli import demoapps
from tugboat.gitops import crds as gitops_crds
from tugboat.kube import client as kube_client
from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds
from tugboat.localcluster import server
from tugboat.rollouts import crds as rollouts_crds

HASH = "rollouts-pod-template-hash"
POLL_SECONDS = 0.25
DEFAULT_TIMEOUT = 90.0
EXIT_STEP_FAILED = 1
EXIT_UNREACHABLE = 2

Obj = dict[str, Any]


# ------------------------------------------------------------------------------------ observations


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


@dataclass
class Observation:
    """One look at Git and the cluster: everything a step's check may need."""

    strategy: str
    head: str
    app: Obj | None
    rollout: Obj | None
    replicasets: list[Obj]
    services: dict[str, Obj]
    runs: list[Obj]

    @property
    def sync(self) -> str | None:
        return _dig(self.app, "status", "sync", "status")

    @property
    def revision(self) -> str | None:
        return _dig(self.app, "status", "sync", "revision")

    @property
    def health(self) -> str | None:
        return _dig(self.app, "status", "health", "status")

    @property
    def operation_started(self) -> str | None:
        return _dig(self.app, "status", "operationState", "startedAt")

    @property
    def status(self) -> Obj:
        return _dig(self.rollout, "status") or {}

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    @property
    def stable(self) -> str | None:
        return self.status.get("stableRS")

    @property
    def current(self) -> str | None:
        return self.status.get("currentPodHash")

    @property
    def aborted(self) -> bool:
        return bool(self.status.get("abort"))

    @property
    def observed_current_spec(self) -> bool:
        generation = _dig(self.rollout, "metadata", "generation")
        return self.rollout is not None and str(self.status.get("observedGeneration")) == str(generation)

    @property
    def live_image(self) -> str | None:
        containers = _dig(self.rollout, "spec", "template", "spec", "containers") or [{}]
        return containers[0].get("image")

    def selected(self, service: str) -> str | None:
        """The pod-template hash the Service selects (the ReplicaSet it sends traffic to)."""
        return (_dig(self.services.get(service), "spec", "selector") or {}).get(HASH)

    @property
    def traffic(self) -> str | None:
        return self.selected(demoapps.traffic_service(self.strategy))

    def replicaset(self, pod_hash: str | None) -> Obj | None:
        if not pod_hash:
            return None
        return next((rs for rs in self.replicasets if _dig(rs, "metadata", "labels", HASH) == pod_hash), None)

    def desired(self, pod_hash: str | None) -> int:
        return int(_dig(self.replicaset(pod_hash), "spec", "replicas") or 0)

    def ready(self, pod_hash: str | None) -> bool:
        """The ReplicaSet of ``pod_hash`` is scaled up and all its pods are Ready."""
        rs = self.replicaset(pod_hash)
        wanted = self.desired(pod_hash)
        return wanted > 0 and int(_dig(rs, "status", "readyReplicas") or 0) >= wanted

    def image_of(self, pod_hash: str | None) -> str | None:
        containers = _dig(self.replicaset(pod_hash), "spec", "template", "spec", "containers") or [{}]
        return containers[0].get("image")

    def runs_for(self, pod_hash: str | None) -> list[Obj]:
        return [r for r in self.runs if _dig(r, "metadata", "labels", HASH) == pod_hash]

    @property
    def settled(self) -> bool:
        """Nothing is moving: Git is synced, the Rollout is done (Healthy, or Degraded after an abort),
        and its traffic Service sends everything to the stable ReplicaSet, whose pods are Ready."""
        return (
            self.sync == "Synced"
            and self.revision == self.head
            and self.observed_current_spec
            and self.phase in ("Healthy", "Degraded")
            and self.stable is not None
            and self.traffic == self.stable
            and self.ready(self.stable)
        )


async def observe(client: kube_client.Client, *, strategy: str, state_dir: Path) -> Observation:
    ns = demoapps.namespace(strategy)
    head = await asyncio.to_thread(demoapps.head, state_dir)
    app = await client.get_or_none(
        gitops_crds.APPLICATION, demoapps.app_name(strategy), demoapps.CONTROL_NAMESPACE
    )
    rollout = await client.get_or_none(rollouts_crds.ROLLOUT, demoapps.ROLLOUT_NAME, ns)
    services: dict[str, Obj] = {}
    replicasets: list[Obj] = []
    runs: list[Obj] = []
    if rollout is not None:
        found, _ = await client.list(kinds.SERVICE, ns)
        services = {s["metadata"]["name"]: s for s in found}
        replicasets, _ = await client.list(kinds.REPLICASET, ns)
        runs, _ = await client.list(rollouts_crds.ANALYSISRUN, ns)
    return Observation(strategy, head, app, rollout, replicasets, services, runs)


# ------------------------------------------------------------------------------------------ steps


@dataclass
class DemoRun:
    """What a demo run remembers between steps: commits made, hashes seen, per-step notes."""

    strategy: str
    state_dir: Path
    marks: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def sha(self) -> str:
        return str(self.marks.get("sha", ""))


Check = Callable[[Observation, DemoRun], bool]
Act = Callable[[Observation, DemoRun], str]


@dataclass(frozen=True)
class Step:
    """One numbered step of a seed process: done when ``check`` holds (for ``hold`` seconds on end);
    then ``act`` (if any) runs, and its answer is narrated."""

    process: str
    number: int
    title: str
    check: Check
    act: Act | None = None
    hold: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.process} step {self.number}"


def _commit(*, failing: bool) -> Act:
    def act(obs: Observation, run: DemoRun) -> str:
        version = demoapps.version_of(demoapps.image_of(run.state_dir, run.strategy)) + 1
        image = demoapps.failing_image(version, run.strategy) if failing else demoapps.good_image(version)
        message = f"demo: {run.strategy} to {image}" + (" (failing)" if failing else "")
        run.marks.update(
            before=obs.stable,
            image=image,
            sha=demoapps.commit_image(run.state_dir, run.strategy, image, message),
        )
        return f"committed {run.sha[:7]} {image}; N = {obs.stable} ({obs.image_of(obs.stable)})"

    return act


def _settled(obs: Observation, run: DemoRun) -> bool:
    return obs.settled


def _settled_healthy(obs: Observation, run: DemoRun) -> bool:
    return obs.settled and obs.phase == "Healthy"


def _applied(obs: Observation, run: DemoRun) -> bool:
    return obs.revision == run.sha and obs.live_image == run.marks["image"]


def _taken_over(obs: Observation, run: DemoRun) -> bool:
    return obs.observed_current_spec and obs.current not in (None, run.marks["before"])


def _strategy_started(obs: Observation, run: DemoRun) -> bool:
    return obs.current not in (None, run.marks["before"]) and obs.desired(obs.current) > 0


def _deployed(obs: Observation, run: DemoRun) -> bool:
    if not obs.ready(obs.current):
        return False
    if run.strategy == demoapps.CANARY:
        return any(_dig(r, "status", "phase") == "Successful" for r in obs.runs_for(obs.current))
    return True


def _running_new(obs: Observation, run: DemoRun) -> bool:
    return (
        obs.phase == "Healthy"
        and obs.stable == obs.current
        and obs.traffic == obs.current
        and obs.ready(obs.current)
    )


def _synced_healthy(obs: Observation, run: DemoRun) -> bool:
    return (obs.sync, obs.health, obs.revision, obs.phase) == ("Synced", "Healthy", run.sha, "Healthy")


def _quiet(health: str) -> Check:
    """Argo CD does nothing more: still Synced with ``health``, Git HEAD, the synced revision and the live
    Rollout all agree on the commit, and no new sync operation started since the step began."""

    def check(obs: Observation, run: DemoRun) -> bool:
        started = run.memo.setdefault(f"quiet-{health}", obs.operation_started)
        return (
            (obs.sync, obs.health) == ("Synced", health)
            and obs.head == obs.revision == run.sha
            and obs.live_image == run.marks["image"]
            and obs.operation_started == started
        )

    return check


def _failed(obs: Observation, run: DemoRun) -> bool:
    return obs.aborted and obs.current not in (None, run.marks["before"])


def _traffic_back(obs: Observation, run: DemoRun) -> bool:
    before = run.marks["before"]
    return obs.traffic == before and obs.stable == before and obs.head == run.sha


def _running_old(obs: Observation, run: DemoRun) -> bool:
    before = run.marks["before"]
    return obs.ready(before) and obs.traffic == before


def _degraded(obs: Observation, run: DemoRun) -> bool:
    return obs.phase == "Degraded" and (obs.sync, obs.health) == ("Synced", "Degraded")


def steps_for(strategy: str) -> list[Step]:
    """The seed's success process, then its rollback process, as checks on :class:`Observation`."""
    how = "blue-green" if strategy == demoapps.BLUEGREEN else "canary (with analysis)"
    success = "success"
    rollback = "rollback"
    return [
        Step(
            success,
            1,
            "Version N runs as a Rollout managed by Argo CD; Git is updated with N+1",
            _settled,
            act=_commit(failing=False),
        ),
        Step(success, 2, "Argo CD sees the change in Git and applies the new Rollout object", _applied),
        Step(success, 3, "Argo Rollouts takes over: it sees the changed Rollout object", _taken_over),
        Step(success, 4, f"Argo Rollouts applies N+1 with the {how} strategy", _strategy_started),
        Step(success, 5, "Version N+1 deploys successfully", _deployed),
        Step(success, 6, "The cluster runs version N+1 and is completely healthy", _running_new),
        Step(success, 7, "Argo CD shows Synced + Healthy; Argo Rollouts shows Healthy", _synced_healthy),
        Step(
            success,
            8,
            "Argo CD takes no further action: Git and the live Rollout both say N+1",
            _quiet("Healthy"),
            hold=2.0,
        ),
        Step(
            rollback,
            1,
            "Version N+1 runs; Git is updated with a failing N+2",
            _settled_healthy,
            act=_commit(failing=True),
        ),
        Step(rollback, 2, "Argo CD sees the change in Git and applies the new Rollout object", _applied),
        Step(rollback, 3, "Argo Rollouts takes over: it sees the changed Rollout object", _taken_over),
        Step(rollback, 4, f"Argo Rollouts tries N+2 with the {how} strategy", _strategy_started),
        Step(rollback, 5, "Version N+2 fails to deploy: the rollout is aborted", _failed),
        Step(rollback, 6, "Argo Rollouts switches traffic back to N+1; Git is unchanged", _traffic_back),
        Step(rollback, 7, "The cluster runs version N+1 and is completely healthy", _running_old),
        Step(rollback, 8, "The Rollout is Degraded in Argo Rollouts and in Argo CD", _degraded),
        Step(
            rollback,
            9,
            "Argo CD takes no further action: Synced; Git and the live Rollout both say N+2",
            _quiet("Degraded"),
            hold=3.0,
        ),
    ]


# ---------------------------------------------------------------------------------------- display


def _short(value: str | None, width: int = 7) -> str:
    return (value or "-")[:width]


def _weights(obs: Observation) -> str:
    routed = _dig(obs.status, "canary", "weights")
    if routed:
        return f"canary {routed['canary'].get('weight', 0)}% / stable {routed['stable'].get('weight', 0)}%"
    new, stable = obs.desired(obs.current), obs.desired(obs.stable)
    if obs.current == obs.stable or new + stable == 0:
        return "100% stable"
    share = round(100 * new / (new + stable))
    return f"new {share}% / stable {100 - share}% (by replicas)"


def _step_of(obs: Observation) -> str:
    steps = _dig(obs.rollout, "spec", "strategy", "canary", "steps")
    if not steps:
        return ""
    return f" · step {obs.status.get('currentStepIndex', 0)}/{len(steps)}"


def _rs_line(obs: Observation, pod_hash: str | None) -> str:
    rs = obs.replicaset(pod_hash)
    if rs is None:
        return "-"
    ready = int(_dig(rs, "status", "readyReplicas") or 0)
    return f"{rs['metadata']['name']} ({obs.image_of(pod_hash)}, {ready}/{obs.desired(pod_hash)} ready)"


def _measurements(run: Obj) -> str:
    parts = []
    for metric in _dig(run, "status", "metricResults") or []:
        values = [str(m.get("value", m.get("phase", "?"))) for m in metric.get("measurements") or []]
        parts.append(f"{metric.get('name')}={metric.get('phase', '?')} [{', '.join(values)}]")
    return "; ".join(parts)


def state_lines(obs: Observation) -> list[tuple[str, str]]:
    """What the demo shows of the current state, as (label, text) rows."""
    rows = [
        ("Git", f"HEAD {_short(obs.head)}"),
        ("Application", f"{obs.sync or '-'} @ {_short(obs.revision)} · {obs.health or '-'}"),
        ("Rollout", f"{obs.phase or '-'}{_step_of(obs)} · {_weights(obs)}"),
    ]
    message = obs.status.get("message")
    if message:
        rows.append(("", str(message)))
    for name in sorted(obs.services):
        rows.append((f"Service {name}", f"→ {_rs_line(obs, obs.selected(name))}"))
    if obs.current and obs.current != obs.stable:
        rows.append(("New ReplicaSet", _rs_line(obs, obs.current)))
    for run in sorted(obs.runs, key=lambda r: r["metadata"].get("creationTimestamp") or "")[-2:]:
        phase = _dig(run, "status", "phase") or "Pending"
        rows.append((f"Analysis {run['metadata']['name']}", f"{phase} {_measurements(run)}".strip()))
    return rows


def summary(obs: Observation) -> str:
    return " | ".join(f"{label}: {text}" if label else text for label, text in state_lines(obs))


class Display:
    """The live screen on a terminal; plain narrated lines otherwise (logs, tests)."""

    def __init__(self, console: Console, steps: Sequence[Step]) -> None:
        self.console = console
        self.steps = steps
        self.done: dict[str, float] = {}
        self.current: Step | None = None
        self.failed: str | None = None
        self.obs: Observation | None = None
        self.started = time.monotonic()
        self.live = (
            Live(self._render(), console=console, refresh_per_second=4) if console.is_terminal else None
        )

    def __enter__(self) -> Display:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()

    def _render(self) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        for step in self.steps:
            if step.name in self.done:
                icon, style, when = "✔", "green", f"{self.done[step.name]:5.1f}s"
            elif step.name == self.failed:
                icon, style, when = "✖", "red", ""
            elif step is self.current:
                icon, style, when = "◌", "yellow", ""
            else:
                icon, style, when = "·", "dim", ""
            table.add_row(Text(icon, style=style), Text(step.name, style=style), step.title, when)
        state = Table.grid(padding=(0, 2))
        for label, text in state_lines(self.obs) if self.obs else []:
            state.add_row(Text(label, style="bold"), text)
        return Group(table, Text(""), state)

    def _say(self, text: Text | str) -> None:
        if self.live is not None:
            self.live.console.print(text)
        else:
            self.console.print(text, soft_wrap=True)

    def update(self, obs: Observation, step: Step) -> None:
        self.obs, self.current = obs, step
        if self.live is not None:
            self.live.update(self._render())

    def observed(self, step: Step, obs: Observation, note: str) -> None:
        self.done[step.name] = time.monotonic() - self.started
        self._say(Text.assemble(("✔ ", "green"), (step.name, "bold"), f": {step.title}"))
        self._say(f"    {summary(obs)}")
        if note:
            self._say(f"    {note}")
        self.update(obs, step)

    def missed(self, step: Step, obs: Observation | None, timeout: float) -> None:
        self.failed = step.name
        self._say(
            Text.assemble(
                ("✖ ", "red"), (step.name, "bold"), f" did not happen within {timeout:g}s: {step.title}"
            )
        )
        if obs is not None:
            self._say(f"    last seen: {summary(obs)}")
        if self.live is not None:
            self.live.update(self._render())


# ------------------------------------------------------------------------------------------ runner


@dataclass(frozen=True)
class DemoResult:
    observed: list[str]
    failed: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


async def _wait_step(
    client: kube_client.Client, step: Step, run: DemoRun, display: Display, *, timeout: float
) -> Observation | None:
    """Poll until ``step.check`` has held for ``step.hold`` seconds; the last observation, or None."""
    deadline = time.monotonic() + timeout + step.hold
    since: float | None = None
    obs: Observation | None = None
    while True:
        try:
            obs = await observe(client, strategy=run.strategy, state_dir=run.state_dir)
        except kube_errors.KubeError:  # a restarting API server: keep looking until the deadline
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(POLL_SECONDS)
            continue
        display.update(obs, step)
        now = time.monotonic()
        if step.check(obs, run):
            since = now if since is None else since
            if now - since >= step.hold:
                return obs
        else:
            since = None
        if now >= deadline:
            return None
        await asyncio.sleep(POLL_SECONDS)


async def run_steps(
    client: kube_client.Client,
    *,
    strategy: str,
    state_dir: Path,
    steps: Sequence[Step],
    timeout: float,
    console: Console,
) -> DemoResult:
    """Wait for each step in order (acting where a step says to); stop at the first that does not happen."""
    run = DemoRun(strategy, state_dir)
    observed: list[str] = []
    with Display(console, steps) as display:
        for step in steps:
            obs = await _wait_step(client, step, run, display, timeout=timeout)
            if obs is None:
                display.missed(step, display.obs, timeout)
                return DemoResult(observed, failed=step.name)
            note = await asyncio.to_thread(step.act, obs, run) if step.act is not None else ""
            display.observed(step, obs, note)
            observed.append(step.name)
    return DemoResult(observed)


async def reachable(client: kube_client.Client) -> bool:
    try:
        await client.request("GET", "/version")
    except (kube_errors.KubeError, OSError):
        return False
    return True


async def run_demo(
    *,
    strategy: str,
    state_dir: Path,
    kubeconfig: Path,
    timeout: float = DEFAULT_TIMEOUT,
    console: Console | None = None,
    steps: Sequence[Step] | None = None,
) -> int:
    """The whole demo for one strategy; its exit code (0: every step observed, 1: a step missed, 2: no
    cluster)."""
    console = console or Console()
    if not kubeconfig.exists():
        return _unreachable(console, f"no kubeconfig at {kubeconfig}", state_dir)
    try:
        client = kube_client.Client.from_kubeconfig(
            kubeconfig, field_manager=demoapps.FIELD_MANAGER, timeout=10
        )
    except kube_errors.KubeError as exc:
        return _unreachable(console, str(exc), state_dir)
    try:
        if not await reachable(client):
            return _unreachable(console, f"nothing answers at {demoapps.api_url(kubeconfig)}", state_dir)
        for created in await demoapps.bootstrap_async(state_dir, kubeconfig):
            console.print(f"created {created}")
        console.print(
            f"[bold]tugboat demo[/]: {strategy} app [bold]{demoapps.app_name(strategy)}[/] "
            f"from {demoapps.repo_path(state_dir)}"
        )
        result = await run_steps(
            client,
            strategy=strategy,
            state_dir=state_dir,
            steps=steps if steps is not None else steps_for(strategy),
            timeout=timeout,
            console=console,
        )
    except (kube_errors.KubeError, demoapps.DemoError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return EXIT_STEP_FAILED
    finally:
        await client.close()
    if result.ok:
        console.print(f"[bold green]all {len(result.observed)} steps observed[/]: success, then rollback")
        return 0
    console.print(f"[bold red]FAILED:[/] {result.failed} did not happen")
    return EXIT_STEP_FAILED


def _unreachable(console: Console, why: str, state_dir: Path) -> int:
    console.print(f"[bold red]No running Tugboat system:[/] {why}.")
    console.print(
        f"Start it with [bold]make up[/] or [bold]tugboat up --state-dir {state_dir}[/], "
        "then run the demo again."
    )
    return EXIT_UNREACHABLE


def demo(
    strategy: Annotated[
        str, typer.Option("--strategy", help="Which demo app to run the processes on: bluegreen or canary.")
    ] = demoapps.BLUEGREEN,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="State directory (default: $TUGBOAT_HOME or ~/.local/state/tugboat)."
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", help="Kubeconfig of the running system (default: DIR/kubeconfig)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each step.")
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Run the seed's success and rollback processes on a demo app, narrating each step as observed."""
    if strategy not in demoapps.STRATEGIES:
        raise typer.BadParameter(f"expected one of {', '.join(demoapps.STRATEGIES)}", param_hint="--strategy")
    state = state_dir or server.default_state_dir()
    code = asyncio.run(
        run_demo(
            strategy=strategy, state_dir=state, kubeconfig=kubeconfig or state / "kubeconfig", timeout=timeout
        )
    )
    raise typer.Exit(code)
