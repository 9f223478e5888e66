"""The arithmetic of simulated traffic: who receives how many requests, integrated lazily over time.

The local cluster pretends that every Service receives a steady request rate, split evenly over its Ready
pods, and that traffic routers (nginx canary annotations, SMI TrafficSplit, Istio VirtualService, set up
later by the rollout controller) divert shares of it to other Services. Nothing here ticks: the model
only remembers, per Service, the rate each member pod receives since the last change and the integral of
that rate up to then; a pod's counters are that integral's growth while it was a member, scaled by its
error rate and latency distribution. Any change (membership, weights, behaviour) re-anchors just the
Service or pod it touches, and a scrape reads the counters in O(series). Counters never decrease, and
they are deterministic (floors of the exact expected values), so tests and dashboards are stable.

Routing rules, per namespace (one hop; a route's destinations don't route again):

- Every Service is an entry point receiving ``requests_per_second`` unless it is a destination of some
  other route (a canary Service only gets what is diverted to it).
- A route ``key`` with weights ``{service: weight}`` spreads the traffic entering at ``key`` (the Service
  of that name, or, when ``key`` names no Service, a route of its own such as an Ingress or a
  VirtualService) over the named Services in proportion to the weights.
- Traffic for a Service without Ready pods is dropped (a real proxy would answer 503; no pod counts it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

# Prometheus client libraries' default latency buckets, in seconds.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Latencies are log-normal around the pod's latency (its median): about 95 % within ×0.6 … ×1.6.
LATENCY_SIGMA = 0.25


@lru_cache(maxsize=256)
def latency_cdf(latency_ms: float, buckets: tuple[float, ...] = BUCKETS) -> tuple[float, ...]:
    """Fraction of requests at most as slow as each bucket bound (plus 1.0 for ``+Inf``)."""
    median = latency_ms / 1000.0
    fractions = []
    for bound in buckets:
        if median <= 0:
            fractions.append(1.0)
        else:
            z = math.log(bound / median) / (LATENCY_SIGMA * math.sqrt(2.0))
            fractions.append(0.5 * (1.0 + math.erf(z)))
    return (*fractions, 1.0)


def mean_latency_seconds(latency_ms: float) -> float:
    return latency_ms / 1000.0 * math.exp(LATENCY_SIGMA**2 / 2.0)


@dataclass(frozen=True)
class PodInfo:
    """What the model needs of a pod: how it answers, and the labels its series carry."""

    error_rate: float = 0.0
    latency_ms: float = 5.0
    rollouts_pod_template_hash: str = ""
    pod_template_hash: str = ""

    def same_behaviour(self, other: PodInfo) -> bool:
        return self.error_rate == other.error_rate and self.latency_ms == other.latency_ms


@dataclass
class Counters:
    """Cumulative values of one series (requests of one pod through one Service)."""

    ok: float = 0.0
    errors: float = 0.0
    seconds: float = 0.0  # sum of latencies
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))

    def plus(self, requests: float, info: PodInfo) -> Counters:
        """These counters after ``requests`` more requests answered the way ``info`` says."""
        if requests <= 0:
            return Counters(self.ok, self.errors, self.seconds, list(self.buckets))
        cdf = latency_cdf(info.latency_ms)
        return Counters(
            ok=self.ok + requests * (1.0 - info.error_rate),
            errors=self.errors + requests * info.error_rate,
            seconds=self.seconds + requests * mean_latency_seconds(info.latency_ms),
            buckets=[b + requests * f for b, f in zip(self.buckets, cdf, strict=True)],
        )

    @property
    def count(self) -> float:
        return self.buckets[-1]


@dataclass
class Sample:
    """One series' current counters, as a scrape reports them."""

    namespace: str
    service: str
    pod: str
    info: PodInfo
    counters: Counters


@dataclass
class _Series:
    info: PodInfo
    base: Counters = field(default_factory=Counters)  # counters as of ``mark``
    mark: float = 0.0  # the Service's per-member integral when ``base`` was taken
    member: bool = False


@dataclass
class _Flow:
    """One Service: its Ready members and the requests each has received (the per-member integral)."""

    exists: bool = False
    inbound: float = 0.0  # requests per second entering this Service
    per_member: float = 0.0  # requests per second each member receives since ``anchor``
    anchor: float = 0.0
    integral: float = 0.0  # requests per member from the start up to ``anchor``
    series: dict[str, _Series] = field(default_factory=dict)
    members: int = 0

    def integral_at(self, now: float) -> float:
        return self.integral + self.per_member * max(0.0, now - self.anchor)

    def reanchor(self, now: float) -> None:
        self.integral = self.integral_at(now)
        self.anchor = now
        self.per_member = self.inbound / self.members if self.members else 0.0


@dataclass
class _Namespace:
    flows: dict[str, _Flow] = field(default_factory=dict)
    routes: dict[str, dict[str, float]] = field(default_factory=dict)
    pods: dict[str, set[str]] = field(default_factory=dict)  # pod -> Services holding a series of it


class TrafficModel:
    """Per-pod request counters of simulated Service traffic, computed lazily from a clock."""

    def __init__(
        self, *, requests_per_second: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.requests_per_second = requests_per_second
        self.clock = clock
        self._namespaces: dict[str, _Namespace] = {}

    # ------------------------------------------------------------------------------------- inputs

    def set_service(self, namespace: str, name: str, *, exists: bool = True) -> None:
        """Declare that a Service exists (an entry point), or that it was deleted (drops its series)."""
        if exists:
            flow = self._ns(namespace).flows.setdefault(name, _Flow())
            if not flow.exists:
                flow.exists = True
                self._rebalance(namespace)
            return
        ns = self._namespaces.get(namespace)
        removed = ns.flows.pop(name, None) if ns else None
        if ns is None or removed is None:
            return
        for pod in removed.series:
            services = ns.pods.get(pod)
            if services is not None:
                services.discard(name)
                if not services:
                    del ns.pods[pod]
        self._rebalance(namespace)

    def set_member(self, namespace: str, service: str, pod: str, info: PodInfo | None) -> None:
        """Make ``pod`` a Ready endpoint of ``service`` answering as ``info`` says, or (None) not one."""
        if info is None and namespace not in self._namespaces:
            return
        ns = self._ns(namespace)
        flow = ns.flows.get(service)
        if flow is None or not flow.exists:
            if info is None:
                return
            self.set_service(namespace, service)
            flow = ns.flows[service]
        series = flow.series.get(pod)
        if info is None:
            if series is not None and series.member:
                self._leave(flow, series)
            return
        if series is None:
            series = flow.series[pod] = _Series(info=info)
            ns.pods.setdefault(pod, set()).add(service)
        if not series.member:
            self._join(flow, series, info)
        elif not series.info.same_behaviour(info):
            now = self.clock()
            series.base = series.base.plus(flow.integral_at(now) - series.mark, series.info)
            series.mark = flow.integral_at(now)
            series.info = info
        else:
            series.info = info  # labels only

    def set_members(self, namespace: str, service: str, members: Mapping[str, PodInfo]) -> None:
        """Replace the Ready endpoints of ``service`` by ``members``."""
        flow = self._ns(namespace).flows.get(service)
        if flow is not None:
            for pod, series in list(flow.series.items()):
                if series.member and pod not in members:
                    self.set_member(namespace, service, pod, None)
        for pod, info in members.items():
            self.set_member(namespace, service, pod, info)

    def remove_pod(self, namespace: str, pod: str) -> None:
        """Forget a deleted pod: leave every Service and drop its series."""
        ns = self._namespaces.get(namespace)
        if ns is None:
            return
        for service in ns.pods.pop(pod, set()):
            flow = ns.flows.get(service)
            if flow is None:
                continue
            series = flow.series.pop(pod, None)
            if series is not None and series.member:
                now = self.clock()
                flow.reanchor(now)
                flow.members -= 1
                flow.reanchor(now)

    def set_weights(self, namespace: str, key: str, weights: Mapping[str, float] | None) -> None:
        """Route the traffic entering at ``key`` to Services in proportion to ``weights`` (None: stop)."""
        if weights is None:
            ns = self._namespaces.get(namespace)
            if ns is None or ns.routes.pop(key, None) is None:
                return
        else:
            self._ns(namespace).routes[key] = {name: max(0.0, float(w)) for name, w in weights.items()}
        self._rebalance(namespace)

    def weights(self, namespace: str, key: str) -> dict[str, float] | None:
        ns = self._namespaces.get(namespace)
        route = ns.routes.get(key) if ns else None
        return dict(route) if route is not None else None

    # ------------------------------------------------------------------------------------ outputs

    def inbound_rate(self, namespace: str, service: str) -> float:
        """Requests per second currently entering ``service`` (before it is split over its pods)."""
        ns = self._namespaces.get(namespace)
        flow = ns.flows.get(service) if ns else None
        return flow.inbound if flow else 0.0

    def pod_rate(self, namespace: str, service: str, pod: str) -> float:
        """Requests per second ``pod`` currently receives through ``service``."""
        ns = self._namespaces.get(namespace)
        flow = ns.flows.get(service) if ns else None
        series = flow.series.get(pod) if flow else None
        return flow.per_member if flow and series and series.member else 0.0

    def samples(self) -> Iterator[Sample]:
        """Every series' counters now, sorted by namespace, Service and pod."""
        now = self.clock()
        for namespace in sorted(self._namespaces):
            flows = self._namespaces[namespace].flows
            for service in sorted(flows):
                flow = flows[service]
                for pod in sorted(flow.series):
                    series = flow.series[pod]
                    counters = series.base
                    if series.member:
                        counters = counters.plus(flow.integral_at(now) - series.mark, series.info)
                    yield Sample(namespace, service, pod, series.info, counters)

    # ----------------------------------------------------------------------------------- internals

    def _ns(self, namespace: str) -> _Namespace:
        return self._namespaces.setdefault(namespace, _Namespace())

    def _join(self, flow: _Flow, series: _Series, info: PodInfo) -> None:
        now = self.clock()
        flow.reanchor(now)
        flow.members += 1
        flow.reanchor(now)
        series.member = True
        series.info = info
        series.mark = flow.integral

    def _leave(self, flow: _Flow, series: _Series) -> None:
        now = self.clock()
        flow.reanchor(now)
        series.base = series.base.plus(flow.integral - series.mark, series.info)
        series.member = False
        flow.members -= 1
        flow.reanchor(now)

    def _rebalance(self, namespace: str) -> None:
        """Recompute every Service's inbound rate in ``namespace``; re-anchor those whose rate changed."""
        ns = self._ns(namespace)
        inbound = self._inbound(ns)
        now = self.clock()
        for name, flow in ns.flows.items():
            rate = inbound.get(name, 0.0)
            if rate != flow.inbound:
                flow.reanchor(now)
                flow.inbound = rate
                flow.reanchor(now)
        for name in [n for n, f in ns.flows.items() if not f.exists and not f.series]:
            del ns.flows[name]
        if not ns.flows and not ns.routes:
            del self._namespaces[namespace]

    def _inbound(self, ns: _Namespace) -> dict[str, float]:
        diverted = {dest for key, route in ns.routes.items() for dest in route if dest != key}
        entries = {name for name, flow in ns.flows.items() if flow.exists} | set(ns.routes)
        inbound: dict[str, float] = {}
        for entry in entries - diverted:
            route = ns.routes.get(entry)
            if route is None:
                inbound[entry] = inbound.get(entry, 0.0) + self.requests_per_second
                continue
            total = sum(route.values())
            for dest, weight in route.items():
                if total > 0 and weight > 0:
                    share = self.requests_per_second * weight / total
                    inbound[dest] = inbound.get(dest, 0.0) + share
        return inbound


# ------------------------------------------------------------------------------ Prometheus exposition

REQUESTS = "tugboat_sim_http_requests_total"
DURATION = "tugboat_sim_http_request_duration_seconds"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _bound(value: float) -> str:
    return "+Inf" if value == math.inf else repr(value)


def _labels(sample: Sample) -> str:
    pairs = (
        ("namespace", sample.namespace),
        ("service", sample.service),
        ("pod", sample.pod),
        ("rollouts_pod_template_hash", sample.info.rollouts_pod_template_hash),
        ("pod_template_hash", sample.info.pod_template_hash),
    )
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)


def exposition(samples: Iterator[Sample] | list[Sample]) -> str:
    """The Prometheus text format (0.0.4) of ``samples``; counts are whole requests (floors)."""
    samples = list(samples)
    lines = [
        f"# HELP {REQUESTS} Simulated HTTP requests a pod answered through a Service, by status code.",
        f"# TYPE {REQUESTS} counter",
    ]
    for sample in samples:
        labels = _labels(sample)
        lines.append(f'{REQUESTS}{{{labels},code="200"}} {math.floor(sample.counters.ok)}')
        lines.append(f'{REQUESTS}{{{labels},code="500"}} {math.floor(sample.counters.errors)}')
    lines += [
        f"# HELP {DURATION} Simulated latency of the HTTP requests a pod answered through a Service.",
        f"# TYPE {DURATION} histogram",
    ]
    for sample in samples:
        labels = _labels(sample)
        for bound, value in zip((*BUCKETS, math.inf), sample.counters.buckets, strict=True):
            lines.append(f'{DURATION}_bucket{{{labels},le="{_bound(bound)}"}} {math.floor(value)}')
        lines.append(f"{DURATION}_sum{{{labels}}} {round(sample.counters.seconds, 6)!r}")
        lines.append(f"{DURATION}_count{{{labels}}} {math.floor(sample.counters.count)}")
    return "\n".join(lines) + "\n"
