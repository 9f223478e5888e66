"""Simulated kubelets: pod lifecycle with the behaviours of behaviour.py, events, graceful deletion.

On a real cluster the kubelet of a node starts the containers of the pods bound to it and reports their
status; everything users watch (``kubectl get pods``, rollouts, Services' endpoints, Jobs) follows from
that status. One :class:`Kubelet` plays the kubelets of every node, kwok-style: a small state machine per
container (pull → create → start → ready, exit → restart with back-off) whose transitions are timers on
the work queue, so an idle cluster costs nothing and a thousand pods cost a thousand timers. Status is
written through ``pods/status`` as kubelet does (a strategic merge patch: conditions merge by type, so
conditions owned by others survive), only when something visible changed, and the events are kubelet's
(``Pulling``, ``Pulled``, ``Created``, ``Started``, ``BackOff``, ``Failed``, ``Unhealthy``, ``Killing``).

How a container behaves comes from :func:`~tugboat.localcluster.controllers.behaviour.behaviour_of`:
crash loops (``CrashLoopBackOff`` with kubelet's doubling back-off and message), image pull failures
(``ErrImagePull`` then ``ImagePullBackOff``), never-ready containers, delayed readiness, and Job pods that
exit with a code after a run time. The state is rebuilt from the pods' status when the kubelet restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key, split_key
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster import metadata
from tugboat.localcluster.controllers.base import Context, SimulationOptions
from tugboat.localcluster.controllers.behaviour import Behaviour, behaviour_of
from tugboat.localcluster.controllers.nodes import heartbeat_stopped, node_index, pod_cidr
from tugboat.localcluster.controllers.podstatus import patch_pod_status

log = logging.getLogger(__name__)

CRASH_RUN_SECONDS = 1.0  # how long a crash-looping container runs before it dies
JOB_RUN_SECONDS = 1.0  # how long a container that exits runs, unless ``run-for`` says otherwise
INIT_RUN_SECONDS = 0.5  # how long an init container runs
ERR_IMAGE_PULL_SECONDS = 1.0  # how long ErrImagePull shows before ImagePullBackOff
FIRST_RESTART_SECONDS = 0.5  # the first restart is immediate upstream (no back-off yet); keep it visible
DEFAULT_PROBE_PERIOD = 10.0
ORPHAN_GRACE_SECONDS = 40.0  # PodGC's quarantine before deleting the pods of a node that no longer exists
TERMINATION_EXIT_CODE = 143  # SIGTERM, for containers that are not expected to exit cleanly
READINESS_FAILURE = "Readiness probe failed: HTTP probe failed with statuscode: 503"
NODE_INDEX = "kubelet:node"

_TERMINAL = ("Succeeded", "Failed")
_CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


# ---------------------------------------------------------------------------------------- formatting


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text for kubelet's durations (``312ms``, ``10s``, ``1m20s``, ``5m0s``)."""
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    minutes, secs = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    secs_text = f"{secs:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs_text}s"
    if minutes:
        return f"{minutes}m{secs_text}s"
    return f"{secs_text}s"


def normalize_image(image: str) -> str:
    """The fully qualified reference containerd reports (``nginx`` → ``docker.io/library/nginx:latest``)."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def image_id(image: str) -> str:
    """A stable, plausible ``imageID`` (``repo@sha256:…``) for an image."""
    ref = normalize_image(image)
    repository = ref.split("@", 1)[0]
    last = repository.rsplit("/", 1)
    if ":" in last[-1]:
        repository = repository.rsplit(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(ref.encode()).hexdigest()}"


def image_size(image: str) -> int:
    digest = hashlib.sha256(image.encode()).digest()
    return 5_000_000 + int.from_bytes(digest[:4], "big") % 95_000_000


def pull_failure(image: str) -> str:
    """containerd's error for a tag that does not exist."""
    ref = normalize_image(image)
    return f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {ref}: not found'


def pod_ref(pod_name: str, namespace: str, uid: str) -> str:
    """kubelet's ``format.Pod``: ``name_namespace(uid)``."""
    return f"{pod_name}_{namespace}({uid})"


def _wall(at: float, loop_now: float) -> str:
    """The RFC 3339 time of loop time ``at``."""
    return metadata.rfc3339(datetime.fromtimestamp(time.time() - (loop_now - at), UTC))


# --------------------------------------------------------------------------------------------- model


@dataclass
class Run:
    """One instance of a container (what the runtime calls a container)."""

    container_id: str
    started_at: str
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""

    def terminated(self) -> Obj:
        return {
            "containerID": self.container_id,
            "exitCode": self.exit_code if self.exit_code is not None else 0,
            "finishedAt": self.finished_at,
            "reason": self.reason,
            "startedAt": self.started_at,
        }

    @classmethod
    def from_status(cls, state: Obj, container_id: str = "") -> Run:
        return cls(
            container_id=str(state.get("containerID") or container_id),
            started_at=str(state.get("startedAt") or ""),
            finished_at=str(state.get("finishedAt") or ""),
            exit_code=int(state.get("exitCode") or 0) if "exitCode" in state else None,
            reason=str(state.get("reason") or ""),
        )


@dataclass
class Container:
    """The simulated state of one container of a pod."""

    name: str
    image: str
    kind: str  # "init", "sidecar" (an init container with restartPolicy Always) or "app"
    job_like: bool  # an app container of a pod with restartPolicy Never or OnFailure: it runs to completion
    pull_policy: str
    behaviour: Behaviour
    ready_delay: float
    probe_period: float
    state: str = "waiting"  # waiting, running or terminated
    reason: str = ""  # the waiting reason
    message: str = ""
    run: Run | None = None  # the latest instance (running, or terminated)
    last: Run | None = None  # the previous terminated instance (lastState)
    restart_count: int = 0
    ready: bool = False
    pulled: bool = False
    begun: bool = False
    done: bool = False  # terminated and not coming back
    crash_backoff: float = 0.0
    pull_backoff: float = 0.0
    timers: dict[str, float] = field(default_factory=dict)  # action -> loop time

    @property
    def field_path(self) -> str:
        group = "containers" if self.kind == "app" else "initContainers"
        return f"spec.{group}{{{self.name}}}"

    @property
    def exits(self) -> bool:
        """Whether this container's process ends by itself (crash loops, Job pods, run-for/exit-code)."""
        b = self.behaviour
        if self.kind == "init" or (self.kind == "app" and self.job_like):
            return True
        return b.crash_loop or b.run_for is not None or b.exit_code is not None

    def run_time(self) -> float:
        if self.kind == "init":
            return INIT_RUN_SECONDS
        if self.behaviour.run_for is not None:
            return self.behaviour.run_for
        return CRASH_RUN_SECONDS if self.behaviour.crash_loop else JOB_RUN_SECONDS

    def exit_code(self) -> int:
        if self.behaviour.crash_loop:
            return 1 if self.behaviour.exit_code in (None, 0) else int(self.behaviour.exit_code)
        if self.kind == "init":
            return 0
        return int(self.behaviour.exit_code or 0)

    def succeeded(self) -> bool:
        return self.state == "terminated" and self.run is not None and self.run.exit_code == 0


# An event to emit about a pod: (the container it concerns, or None for the pod; type; reason; message).
PodEvent = tuple[Container | None, str, str, str]


@dataclass
class PodSim:
    """The simulated state of one pod on one node."""

    key: str
    uid: str
    name: str
    namespace: str
    node: str
    restart_policy: str
    init: list[Container]
    apps: list[Container]
    start_time: str
    host_ip: str
    host_network: bool
    gates: list[str]
    pod_ip: str = ""
    init_index: int = 0
    conditions: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (status, since)
    written: Any = None  # the visible part of the status last written or seen
    written_rv: int = 0
    delete_sent: bool = False
    terminal: bool = False

    @property
    def containers(self) -> list[Container]:
        return self.init + self.apps

    @property
    def initialized(self) -> bool:
        return self.init_index >= len(self.init)


class _NodeIPs:
    """host-local IPAM for one node: addresses handed out in order, wrapping around."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.IPv4Network(cidr, strict=False)
        self.used: set[int] = set()
        self._next = 2

    def allocate(self) -> str:
        size = self.network.num_addresses
        for _ in range(size):
            offset = self._next
            self._next = self._next + 1 if self._next + 1 < size - 1 else 2
            if offset not in self.used:
                self.used.add(offset)
                return str(self.network.network_address + offset)
        raise RuntimeError(f"no free pod IP in {self.network}")

    def reserve(self, ip: str) -> None:
        offset = self._offset(ip)
        if offset is not None:
            self.used.add(offset)

    def release(self, ip: str) -> None:
        offset = self._offset(ip)
        if offset is not None:
            self.used.discard(offset)

    def _offset(self, ip: str) -> int | None:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            return None
        return int(address) - int(self.network.network_address) if address in self.network else None


# ------------------------------------------------------------------------------------------- kubelet


class Kubelet:
    """Runs the pods bound to every node of the cluster (except nodes whose heartbeat was stopped)."""

    name = "kubelet"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.options: SimulationOptions = ctx.options
        self.pods = ctx.informers.informer(kinds.POD)
        self.nodes = ctx.informers.informer(kinds.NODE)
        self.queue: WorkQueue[str] = WorkQueue()
        self.sims: dict[str, PodSim] = {}
        self._ips: dict[str, _NodeIPs] = {}
        self._images: dict[str, set[str]] = {}  # node -> images present
        self._orphans: dict[str, float] = {}  # pod key -> loop time it was first seen on a missing node
        self._ids = 0
        self.pods.add_index(NODE_INDEX, _node_of)
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)

    async def run(self) -> None:
        for pod in self.pods.objects():  # keep the addresses of running pods before handing out new ones
            status = pod.get("status") or {}
            node = _node_of(pod)
            if node and status.get("podIP") and status.get("phase") not in _TERMINAL:
                ips = self._node_ips(node[0])
                if ips is not None and not (pod.get("spec") or {}).get("hostNetwork"):
                    ips.reserve(str(status["podIP"]))
        await run_workers(self.queue, self.sync, workers=8, name="kubelet")

    # -------------------------------------------------------------------------------------- handlers

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old or {}
        key = object_key(pod)
        if new is None:
            self._forget(key)
            return
        if _node_of(new) or key in self.sims:
            self.queue.add(key)

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        name = object_key(new or old or {})
        if new is not None and old is not None and heartbeat_stopped(old) == heartbeat_stopped(new):
            return
        for pod in self.pods.by_index(NODE_INDEX, name):
            self.queue.add(object_key(pod))

    def _forget(self, key: str) -> None:
        self._orphans.pop(key, None)
        sim = self.sims.pop(key, None)
        if sim is not None and not sim.terminal:
            self._release_ip(sim)

    # ------------------------------------------------------------------------------------------ sync

    async def sync(self, key: str) -> float | None:
        pod = self.pods.cache.get(key)
        if pod is None:
            self._forget(key)
            return None
        meta = pod.get("metadata") or {}
        sim = self.sims.get(key)
        if sim is not None and sim.uid != meta.get("uid"):
            self._forget(key)
            sim = None
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        if not node_name:
            return None
        node = self.nodes.get(node_name)
        if node is None:
            return await self._orphaned(key, pod, node_name)
        self._orphans.pop(key, None)
        if heartbeat_stopped(node):
            return None  # this node's kubelet is "dead": nothing moves until it comes back
        loop_now = asyncio.get_running_loop().time()
        if sim is None:
            sim = self._admit(pod, node, loop_now)
            self.sims[key] = sim
        if metadata.deleting(pod):
            await self._terminate(sim, pod)
            return None
        if sim.terminal:
            return None
        events: list[PodEvent] = []
        try:
            self._advance(sim, pod, loop_now, events)
            await self._write(sim, pod, loop_now)
        finally:
            self._emit(sim, pod, events)
        return self._next_wake(sim, loop_now)

    def _next_wake(self, sim: PodSim, loop_now: float) -> float | None:
        times = [t for c in sim.containers for t in c.timers.values()]
        if not times:
            return None
        return max(0.001, min(times) - loop_now)

    async def _orphaned(self, key: str, pod: Obj, node_name: str) -> float | None:
        """PodGC's part: pods bound to a node that does not exist are deleted after a quarantine."""
        loop_now = asyncio.get_running_loop().time()
        first = self._orphans.setdefault(key, loop_now)
        if loop_now - first < ORPHAN_GRACE_SECONDS:
            return ORPHAN_GRACE_SECONDS - (loop_now - first) + 0.01
        if await self.client.get_or_none(kinds.NODE, node_name) is not None:
            self._orphans.pop(key, None)
            return None
        namespace, name = split_key(key)
        uid = (pod.get("metadata") or {}).get("uid")
        await self._delete_now(name, namespace, str(uid))
        return None

    # ----------------------------------------------------------------------------------------- admit

    def _admit(self, pod: Obj, node: Obj, loop_now: float) -> PodSim:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        host_ip = _internal_ip(node)
        sim = PodSim(
            key=object_key(pod),
            uid=str(meta.get("uid")),
            name=str(meta.get("name")),
            namespace=str(meta.get("namespace")),
            node=object_key(node),
            restart_policy=str(spec.get("restartPolicy") or "Always"),
            init=[
                self._container(pod, c, "sidecar" if c.get("restartPolicy") == "Always" else "init")
                for c in spec.get("initContainers") or []
            ],
            apps=[self._container(pod, c, "app") for c in spec.get("containers") or []],
            start_time=str(status.get("startTime") or metadata.rfc3339()),
            host_ip=host_ip,
            host_network=bool(spec.get("hostNetwork")),
            gates=[
                str(g.get("conditionType"))
                for g in spec.get("readinessGates") or []
                if g.get("conditionType")
            ],
        )
        self._remember_conditions(sim, status)
        if status.get("containerStatuses") or status.get("initContainerStatuses"):
            self._adopt(sim, pod, loop_now)
        return sim

    @staticmethod
    def _remember_conditions(sim: PodSim, status: Obj) -> None:
        for condition in status.get("conditions") or []:
            if condition.get("type") and condition.get("lastTransitionTime"):
                since = str(condition["lastTransitionTime"])
                sim.conditions[str(condition["type"])] = (str(condition.get("status")), since)

    def _container(self, pod: Obj, spec: Obj, kind: str) -> Container:
        single = {"metadata": pod.get("metadata") or {}, "spec": {"containers": [spec]}}
        behaviour = behaviour_of(single)
        probe = spec.get("readinessProbe") or {}
        base = behaviour.ready_after if behaviour.ready_after is not None else self.options.readiness_delay
        image = str(spec.get("image") or "")
        policy = spec.get("imagePullPolicy") or (
            "Always" if normalize_image(image).endswith(":latest") else "IfNotPresent"
        )
        return Container(
            name=str(spec.get("name")),
            image=image,
            kind=kind,
            job_like=kind == "app" and (pod.get("spec") or {}).get("restartPolicy") in ("Never", "OnFailure"),
            pull_policy=str(policy),
            behaviour=behaviour,
            ready_delay=max(base, float(probe.get("initialDelaySeconds") or 0)),
            probe_period=float(probe.get("periodSeconds") or DEFAULT_PROBE_PERIOD),
        )

    def _adopt(self, sim: PodSim, pod: Obj, loop_now: float) -> None:
        """Rebuild the state of a pod this kubelet ran before it restarted, from the pod's status."""
        status = pod.get("status") or {}
        sim.written = _view(status)
        sim.written_rv = metadata.revision_of(pod)
        if status.get("phase") in _TERMINAL:
            sim.terminal = True
            for c in sim.containers:
                c.begun, c.done, c.state = True, True, "terminated"
            return
        sim.pod_ip = str(status.get("podIP") or "")
        if sim.pod_ip and not sim.host_network:
            ips = self._node_ips(sim.node)
            if ips is not None:
                ips.reserve(sim.pod_ip)
        statuses = {
            str(s.get("name")): s
            for s in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        }
        wall_now = time.time()
        for c in sim.containers:
            seen = statuses.get(c.name)
            if seen is not None:
                self._adopt_container(sim, c, seen, loop_now, wall_now)
        while sim.init_index < len(sim.init) and self._init_done(sim.init[sim.init_index]):
            sim.init_index += 1

    def _adopt_container(
        self, sim: PodSim, c: Container, seen: Obj, loop_now: float, wall_now: float
    ) -> None:
        state = seen.get("state") or {}
        c.restart_count = int(seen.get("restartCount") or 0)
        c.ready = bool(seen.get("ready"))
        c.pulled = bool(seen.get("imageID"))
        last = (seen.get("lastState") or {}).get("terminated")
        if last:
            c.last = Run.from_status(last)
        c.crash_backoff = self._backoff_after(c.restart_count) if c.restart_count else 0.0
        container_id = str(seen.get("containerID") or "")
        if "running" in state:
            c.begun, c.state = True, "running"
            c.run = Run(container_id, str(state["running"].get("startedAt") or metadata.rfc3339()))
            elapsed = wall_now - (metadata.epoch_seconds(c.run.started_at) or wall_now)
            if c.exits:
                c.timers["exit"] = loop_now + max(0.0, c.run_time() - elapsed)
            if not c.ready and c.kind != "init":
                if c.behaviour.never_ready:
                    c.timers["probe"] = loop_now + c.probe_period
                else:
                    c.timers["ready"] = loop_now + max(0.0, c.ready_delay - elapsed)
        elif "terminated" in state:
            c.begun, c.state = True, "terminated"
            c.run = Run.from_status(state["terminated"], container_id)
            if self._restarts(sim, c):
                c.timers["restart"] = loop_now + FIRST_RESTART_SECONDS
            else:
                c.done = True
        elif "waiting" in state:
            reason = str((state.get("waiting") or {}).get("reason") or "")
            if reason == "CrashLoopBackOff":
                c.begun, c.state, c.reason = True, "waiting", reason
                c.message = str((state.get("waiting") or {}).get("message") or "")
                c.run = c.last
                c.timers["restart"] = loop_now + max(1.0, c.crash_backoff / 2)
            elif reason in ("ErrImagePull", "ImagePullBackOff"):
                c.begun, c.state, c.reason = True, "waiting", reason
                c.message = str((state.get("waiting") or {}).get("message") or "")
                c.pull_backoff = self.options.crash_backoff_base
                c.timers["repull"] = loop_now + self.options.crash_backoff_base

    def _backoff_after(self, restarts: int) -> float:
        backoff = self.options.crash_backoff_base * 2 ** max(0, restarts - 1)
        return float(min(backoff, self.options.crash_backoff_max))

    @staticmethod
    def _init_done(c: Container) -> bool:
        return c.succeeded() or (c.kind == "sidecar" and c.state == "running")

    # --------------------------------------------------------------------------------- state machine

    def _advance(self, sim: PodSim, pod: Obj, loop_now: float, events: list[PodEvent]) -> None:
        """Start what can start, then apply every transition that is due, in time order."""
        self._progress(sim, pod, loop_now, events)
        for _ in range(1000):
            due: tuple[float, Container, str] | None = None
            for c in sim.containers:
                for action, at in c.timers.items():
                    if at <= loop_now and (due is None or at < due[0]):
                        due = (at, c, action)
            if due is None:
                return
            at, c, action = due
            del c.timers[action]
            self._apply(sim, pod, c, action, at, loop_now, events)
            self._progress(sim, pod, at, events)

    def _apply(
        self,
        sim: PodSim,
        pod: Obj,
        c: Container,
        action: str,
        at: float,
        loop_now: float,
        events: list[PodEvent],
    ) -> None:
        if action == "pulled":
            self._pulled(sim, c, at, loop_now, events)
        elif action == "pull-backoff":
            c.state, c.reason, c.message = (
                "waiting",
                "ImagePullBackOff",
                f'Back-off pulling image "{c.image}"',
            )
            events.append((c, "Normal", "BackOff", f'Back-off pulling image "{c.image}"'))
            events.append((c, "Warning", "Failed", "Error: ImagePullBackOff"))
            c.timers["repull"] = at + c.pull_backoff
        elif action == "repull":
            events.append((c, "Normal", "Pulling", f'Pulling image "{c.image}"'))
            c.timers["pulled"] = at + self.options.start_delay
        elif action == "ready":
            c.ready = c.state == "running"
        elif action == "probe":
            if c.state == "running":
                events.append((c, "Warning", "Unhealthy", READINESS_FAILURE))
                c.timers["probe"] = at + c.probe_period
        elif action == "exit":
            self._exit(sim, c, at, loop_now, events)
        elif action == "restart":
            self._restart(sim, c, at, loop_now, events)

    def _progress(self, sim: PodSim, pod: Obj, at: float, events: list[PodEvent]) -> None:
        """Start the next init container, or the app containers once initialisation is done."""
        while sim.init_index < len(sim.init):
            c = sim.init[sim.init_index]
            if not c.begun:
                self._begin(sim, c, at, events)
                return
            if not self._init_done(c):
                return
            sim.init_index += 1
        for c in sim.apps:
            if not c.begun:
                self._begin(sim, c, at, events)

    def _begin(self, sim: PodSim, c: Container, at: float, events: list[PodEvent]) -> None:
        c.begun = True
        if self._needs_pull(sim, c) or c.behaviour.image_pull_fail:
            events.append((c, "Normal", "Pulling", f'Pulling image "{c.image}"'))
        c.timers["pulled"] = at + self.options.start_delay

    def _pulled(
        self,
        sim: PodSim,
        c: Container,
        at: float,
        loop_now: float,
        events: list[PodEvent],
    ) -> None:
        self._ensure_sandbox(sim)
        if c.behaviour.image_pull_fail:
            failure = pull_failure(c.image)
            c.state, c.reason, c.message = "waiting", "ErrImagePull", failure
            events.append((c, "Warning", "Failed", f'Failed to pull image "{c.image}": {failure}'))
            events.append((c, "Warning", "Failed", "Error: ErrImagePull"))
            c.pull_backoff = self._next_backoff(c.pull_backoff)
            c.timers["pull-backoff"] = at + ERR_IMAGE_PULL_SECONDS
            return
        needs_pull = self._needs_pull(sim, c)
        events.append(self._pulled_event(c, pulled=needs_pull))
        if needs_pull:
            self._images.setdefault(sim.node, set()).add(c.image)
        c.pulled = True
        self._start(sim, c, at, loop_now, events)

    def _needs_pull(self, sim: PodSim, c: Container) -> bool:
        present = self._images.setdefault(sim.node, set())
        return c.pull_policy == "Always" or (c.pull_policy == "IfNotPresent" and c.image not in present)

    def _pulled_event(self, c: Container, *, pulled: bool) -> PodEvent:
        """kubelet's ``Pulled``: after pulling the image (which takes ``start_delay``), or it was present."""
        if not pulled:
            return (c, "Normal", "Pulled", f'Container image "{c.image}" already present on machine')
        took = go_duration(self.options.start_delay)
        return (
            c,
            "Normal",
            "Pulled",
            f'Successfully pulled image "{c.image}" in {took} ({took} including waiting). '
            f"Image size: {image_size(c.image)} bytes.",
        )

    def _start(
        self,
        sim: PodSim,
        c: Container,
        at: float,
        loop_now: float,
        events: list[PodEvent],
    ) -> None:
        self._ids += 1
        seed = f"{sim.uid}/{c.name}/{c.restart_count}/{self._ids}/{time.time_ns()}"
        c.run = Run("containerd://" + hashlib.sha256(seed.encode()).hexdigest(), _wall(at, loop_now))
        c.state, c.reason, c.message, c.ready = "running", "", "", False
        events.append((c, "Normal", "Created", f"Created container: {c.name}"))
        events.append((c, "Normal", "Started", f"Started container {c.name}"))
        if c.exits:
            c.timers["exit"] = at + c.run_time()
        if c.kind == "init":
            return
        if c.behaviour.never_ready:
            c.timers["probe"] = at + max(c.ready_delay, 1.0)
        elif c.ready_delay <= 0:
            c.ready = True
        else:
            c.timers["ready"] = at + c.ready_delay

    def _restarts(self, sim: PodSim, c: Container) -> bool:
        code = c.run.exit_code if c.run is not None else 0
        if c.kind == "sidecar":
            return True
        if c.kind == "init":
            return code != 0 and sim.restart_policy != "Never"
        if sim.restart_policy == "Always":
            return True
        return sim.restart_policy == "OnFailure" and code != 0

    def _next_backoff(self, current: float) -> float:
        if current <= 0:
            return self.options.crash_backoff_base
        return min(current * 2, self.options.crash_backoff_max)

    def _exit(
        self,
        sim: PodSim,
        c: Container,
        at: float,
        loop_now: float,
        events: list[PodEvent],
    ) -> None:
        if c.state != "running" or c.run is None:
            return
        code = c.exit_code()
        c.run.exit_code, c.run.reason, c.run.finished_at = (
            code,
            "Completed" if code == 0 else "Error",
            _wall(at, loop_now),
        )
        c.state, c.ready = "terminated", False
        c.timers.pop("ready", None)
        c.timers.pop("probe", None)
        if not self._restarts(sim, c):
            c.done = True
            c.ready = c.kind == "init" and code == 0  # a completed init container reports ready
            return
        if c.crash_backoff <= 0:
            c.crash_backoff = self.options.crash_backoff_base
            c.timers["restart"] = at + FIRST_RESTART_SECONDS
            return
        wait = c.crash_backoff
        c.crash_backoff = self._next_backoff(wait)
        c.last = c.run
        c.state, c.reason = "waiting", "CrashLoopBackOff"
        c.message = (
            f"back-off {go_duration(wait)} restarting failed container={c.name} "
            f"pod={pod_ref(sim.name, sim.namespace, sim.uid)}"
        )
        events.append(
            (
                c,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {c.name} in pod "
                f"{pod_ref(sim.name, sim.namespace, sim.uid)}",
            )
        )
        c.timers["restart"] = at + wait

    def _restart(
        self,
        sim: PodSim,
        c: Container,
        at: float,
        loop_now: float,
        events: list[PodEvent],
    ) -> None:
        c.last = c.run
        c.restart_count += 1
        if c.pull_policy == "Always":
            events.append((c, "Normal", "Pulling", f'Pulling image "{c.image}"'))
        events.append(self._pulled_event(c, pulled=c.pull_policy == "Always"))
        self._start(sim, c, at, loop_now, events)

    # ------------------------------------------------------------------------------------------ IPs

    def _node_ips(self, node_name: str) -> _NodeIPs | None:
        ips = self._ips.get(node_name)
        if ips is None:
            node = self.nodes.get(node_name)
            spec = (node or {}).get("spec") or {}
            cidr = spec.get("podCIDR")
            if not cidr:
                index = node_index(node_name)
                if index is None:
                    index = 200 + int(hashlib.sha256(node_name.encode()).hexdigest(), 16) % 50
                cidr = pod_cidr(index, self.options.node_pods)
            ips = _NodeIPs(str(cidr))
            self._ips[node_name] = ips
        return ips

    def _ensure_sandbox(self, sim: PodSim) -> None:
        if sim.pod_ip:
            return
        if sim.host_network:
            sim.pod_ip = sim.host_ip
            return
        ips = self._node_ips(sim.node)
        if ips is not None:
            sim.pod_ip = ips.allocate()

    def _release_ip(self, sim: PodSim) -> None:
        if sim.pod_ip and not sim.host_network:
            ips = self._ips.get(sim.node)
            if ips is not None:
                ips.release(sim.pod_ip)

    # ---------------------------------------------------------------------------------------- status

    def _phase(self, sim: PodSim) -> str:
        """kubelet's getPhase, from the containers' states."""
        if any(c.kind == "init" and c.done and not c.succeeded() for c in sim.init):
            return "Failed"
        if not sim.initialized:
            return "Pending"
        running = waiting = stopped = succeeded = 0
        for c in sim.apps:
            if c.state == "running":
                running += 1
            elif c.state == "terminated":
                stopped += 1
                succeeded += 1 if c.succeeded() else 0
            elif c.last is not None:
                stopped += 1
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if sim.restart_policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            if sim.restart_policy == "Never" or all(c.done for c in sim.apps):
                return "Failed"
            return "Running"
        return "Pending"

    def _condition(self, sim: PodSim, type_: str, status: str, reason: str = "", message: str = "") -> Obj:
        previous = sim.conditions.get(type_)
        since = previous[1] if previous is not None and previous[0] == status else metadata.rfc3339()
        sim.conditions[type_] = (status, since)
        # None removes a reason or message an earlier status had (strategic merge by condition type).
        return {
            "type": type_,
            "status": status,
            "lastTransitionTime": since,
            "reason": reason or None,
            "message": message or None,
        }

    def _conditions(self, sim: PodSim, pod: Obj, phase: str) -> list[Obj]:
        sandbox = bool(sim.pod_ip) and phase not in _TERMINAL
        incomplete = [c.name for c in sim.init if not self._init_done(c)]
        unready = [c.name for c in sim.containers if c.kind != "init" and not c.ready]
        result = [self._condition(sim, "PodReadyToStartContainers", "True" if sandbox else "False")]
        if incomplete and phase != "Succeeded":
            result.append(
                self._condition(
                    sim,
                    "Initialized",
                    "False",
                    "ContainersNotInitialized",
                    f"containers with incomplete status: [{' '.join(incomplete)}]",
                )
            )
        else:
            result.append(self._condition(sim, "Initialized", "True"))
        if phase == "Succeeded":
            containers_ready = self._condition(sim, "ContainersReady", "False", "PodCompleted")
            ready = self._condition(sim, "Ready", "False", "PodCompleted")
        elif unready:
            message = f"containers with unready status: [{' '.join(unready)}]"
            containers_ready = self._condition(sim, "ContainersReady", "False", "ContainersNotReady", message)
            ready = self._condition(sim, "Ready", "False", "ContainersNotReady", message)
        else:
            containers_ready = self._condition(sim, "ContainersReady", "True")
            ready = self._gated_ready(sim, pod)
        result += [ready, containers_ready, self._condition(sim, "PodScheduled", "True")]
        return result

    def _gated_ready(self, sim: PodSim, pod: Obj) -> Obj:
        present = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
        for gate in sim.gates:
            if gate not in present:
                message = f'corresponding condition of pod readiness gate "{gate}" does not exist.'
                return self._condition(sim, "Ready", "False", "ReadinessGatesNotReady", message)
            if present[gate] != "True":
                message = f'the status of pod readiness gate "{gate}" is not "True", but {present[gate]}'
                return self._condition(sim, "Ready", "False", "ReadinessGatesNotReady", message)
        return self._condition(sim, "Ready", "True")

    def _container_status(self, sim: PodSim, c: Container) -> Obj:
        status: Obj = {}
        if c.run is not None:
            status["containerID"] = c.run.container_id
        status["image"] = normalize_image(c.image)
        status["imageID"] = image_id(c.image) if c.pulled else ""
        status["lastState"] = {"terminated": c.last.terminated()} if c.last is not None else {}
        status["name"] = c.name
        status["ready"] = c.ready
        status["restartCount"] = c.restart_count
        status["started"] = c.state == "running"
        if c.state == "running" and c.run is not None:
            status["state"] = {"running": {"startedAt": c.run.started_at}}
        elif c.state == "terminated" and c.run is not None:
            status["state"] = {"terminated": c.run.terminated()}
        else:
            reason = c.reason or self._idle_reason(sim, c)
            waiting: Obj = {"reason": reason}
            if c.message:
                waiting["message"] = c.message
            status["state"] = {"waiting": waiting}
        return status

    @staticmethod
    def _idle_reason(sim: PodSim, c: Container) -> str:
        if c.kind != "app" or not sim.initialized:
            return "PodInitializing"
        return "ContainerCreating"

    def _status(self, sim: PodSim, pod: Obj) -> Obj:
        phase = self._phase(sim)
        status: Obj = {
            "phase": phase,
            "conditions": self._conditions(sim, pod, phase),
            "hostIP": sim.host_ip,
            "hostIPs": [{"ip": sim.host_ip}],
            "startTime": sim.start_time,
            "containerStatuses": [self._container_status(sim, c) for c in sim.apps],
        }
        if sim.pod_ip:
            status["podIP"] = sim.pod_ip
            status["podIPs"] = [{"ip": sim.pod_ip}]
        if sim.init:
            status["initContainerStatuses"] = [self._container_status(sim, c) for c in sim.init]
        return status

    async def _write(self, sim: PodSim, pod: Obj, loop_now: float) -> None:
        cached = pod.get("status") or {}
        if metadata.revision_of(pod) > sim.written_rv and _view(cached) != sim.written:
            sim.written = _view(cached)  # someone else changed what we reported: compare with that
            self._remember_conditions(sim, cached)
        status = self._status(sim, pod)
        view = _view(status)
        if view == sim.written:
            return
        namespace, name = split_key(sim.key)
        result = await patch_pod_status(self.client, name, namespace, status)
        if result is None:
            return
        sim.written = view
        sim.written_rv = metadata.revision_of(result)
        if status["phase"] in _TERMINAL:
            sim.terminal = True
            for c in sim.containers:
                c.timers.clear()
            self._release_ip(sim)

    # --------------------------------------------------------------------------------------- events

    def _emit(self, sim: PodSim, pod: Obj, events: Iterable[PodEvent]) -> None:
        recorder = self.ctx.recorder("kubelet", sim.node)
        for c, type_, reason, message in events:
            recorder.event(pod, type_, reason, message, field_path=c.field_path if c is not None else "")

    # -------------------------------------------------------------------------------------- deletion

    async def _terminate(self, sim: PodSim, pod: Obj) -> None:
        """Graceful deletion: stop the containers, report it, then finish the deletion at once."""
        if sim.delete_sent:
            return
        loop_now = asyncio.get_running_loop().time()
        events: list[PodEvent] = []
        if not sim.terminal:
            for c in sim.containers:
                c.timers.clear()
                if c.state != "running" or c.run is None:
                    continue
                events.append((c, "Normal", "Killing", f"Stopping container {c.name}"))
                code = 0 if sim.restart_policy == "Always" or c.kind != "app" else TERMINATION_EXIT_CODE
                c.run.exit_code, c.run.reason = code, "Completed" if code == 0 else "Error"
                c.run.finished_at = _wall(loop_now, loop_now)
                c.state, c.ready, c.done = "terminated", False, True
            try:
                if events:
                    await self._write_final(sim, pod)
            finally:
                self._emit(sim, pod, events)
        namespace, name = split_key(sim.key)
        await self._delete_now(name, namespace, sim.uid)
        sim.delete_sent = True
        if not sim.terminal:
            sim.terminal = True
            self._release_ip(sim)

    async def _write_final(self, sim: PodSim, pod: Obj) -> None:
        status = self._status(sim, pod)
        if status["phase"] not in _TERMINAL:
            # A deleted pod whose containers all stopped is terminal even with restartPolicy Always.
            codes = [c.run.exit_code for c in sim.apps if c.run is not None]
            status["phase"] = "Succeeded" if codes and all(code == 0 for code in codes) else "Failed"
            for condition in status["conditions"]:
                if condition["type"] == "PodReadyToStartContainers":
                    condition["status"] = "False"
        namespace, name = split_key(sim.key)
        await patch_pod_status(self.client, name, namespace, status)

    async def _delete_now(self, name: str, namespace: str | None, uid: str) -> None:
        try:
            await self.client.delete(kinds.POD, name, namespace, grace_period=0, preconditions={"uid": uid})
        except errors.ApiError as exc:
            if not exc.conflict:  # a different pod of the same name: not ours to delete
                raise


# ---------------------------------------------------------------------------------------- helpers


def _node_of(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []


def _internal_ip(node: Obj) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return "172.18.0.254"


def _view(status: Obj) -> Any:
    """The part of a pod status whose change is worth a write (times alone are not)."""

    def containers(key: str) -> tuple[Any, ...]:
        result = []
        for s in status.get(key) or []:
            state = s.get("state") or {}
            kind = next(iter(state), "")
            detail = state.get(kind) or {}
            result.append(
                (
                    s.get("name"),
                    bool(s.get("ready")),
                    int(s.get("restartCount") or 0),
                    s.get("containerID") or "",
                    kind,
                    detail.get("reason") or "",
                    detail.get("message") or "",
                    bool(s.get("started")),
                )
            )
        return tuple(result)

    conditions = tuple(
        sorted(
            (str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""))
            for c in status.get("conditions") or []
            if c.get("type") in _CONDITION_ORDER
        )
    )
    return (
        status.get("phase"),
        conditions,
        status.get("podIP") or "",
        status.get("hostIP") or "",
        containers("containerStatuses"),
        containers("initContainerStatuses"),
    )
