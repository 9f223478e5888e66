"""Simulated traffic: the lazily integrated model (with an injected clock) and /metrics/simulated live."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_support import controllers_cluster

from clusterproc import ClusterProcess
from tugboat.localcluster.controllers.trafficmodel import (
    BUCKETS,
    PodInfo,
    Sample,
    TrafficModel,
    exposition,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


GOOD = PodInfo()
BAD = PodInfo(error_rate=0.5, rollouts_pod_template_hash="abc123")


def model(rate: float = 10.0) -> tuple[TrafficModel, Clock]:
    clock = Clock()
    return TrafficModel(requests_per_second=rate, clock=clock), clock


def counts(m: TrafficModel) -> dict[tuple[str, str, str], Sample]:
    return {(s.namespace, s.service, s.pod): s for s in m.samples()}


def total(sample: Sample) -> float:
    return sample.counters.ok + sample.counters.errors


def test_even_split_over_ready_pods() -> None:
    m, clock = model()
    m.set_service("ns", "web")
    m.set_members("ns", "web", {"a": GOOD, "b": GOOD})
    clock.advance(10)
    got = counts(m)
    assert total(got["ns", "web", "a"]) == pytest.approx(50)
    assert total(got["ns", "web", "b"]) == pytest.approx(50)
    assert m.pod_rate("ns", "web", "a") == pytest.approx(5)


def test_service_without_ready_pods_has_no_series() -> None:
    m, clock = model()
    m.set_service("ns", "web")
    clock.advance(10)
    assert list(m.samples()) == []
    assert m.inbound_rate("ns", "web") == 10


def test_membership_changes_reanchor() -> None:
    m, clock = model()
    m.set_service("ns", "web")
    m.set_member("ns", "web", "a", GOOD)
    clock.advance(5)  # a alone: 50
    m.set_member("ns", "web", "b", GOOD)
    clock.advance(10)  # 50 each
    got = counts(m)
    assert total(got["ns", "web", "a"]) == pytest.approx(100)
    assert total(got["ns", "web", "b"]) == pytest.approx(50)
    m.set_member("ns", "web", "a", None)  # a unready: frozen, b gets everything
    clock.advance(3)
    got = counts(m)
    assert total(got["ns", "web", "a"]) == pytest.approx(100)
    assert total(got["ns", "web", "b"]) == pytest.approx(80)
    m.set_member("ns", "web", "a", GOOD)  # back: continues from 100
    clock.advance(2)
    got = counts(m)
    assert total(got["ns", "web", "a"]) == pytest.approx(110)
    assert total(got["ns", "web", "b"]) == pytest.approx(90)


def test_deleted_pod_and_service_drop_their_series() -> None:
    m, clock = model()
    m.set_members("ns", "web", {"a": GOOD, "b": GOOD})
    m.set_members("ns", "api", {"a": GOOD})
    clock.advance(1)
    m.remove_pod("ns", "a")
    clock.advance(1)
    got = counts(m)
    assert set(got) == {("ns", "web", "b")}
    assert total(got["ns", "web", "b"]) == pytest.approx(15)
    m.set_service("ns", "web", exists=False)
    assert list(m.samples()) == []


def test_error_ratio_follows_error_rate() -> None:
    m, clock = model()
    m.set_members("ns", "bad", {"b1": BAD, "b2": BAD})
    m.set_members("ns", "good", {"g1": GOOD})
    clock.advance(60)
    got = counts(m)
    bad = [got["ns", "bad", "b1"].counters, got["ns", "bad", "b2"].counters]
    errors = sum(math.floor(c.errors) for c in bad)
    requests = errors + sum(math.floor(c.ok) for c in bad)
    assert requests == 600
    assert errors / requests == pytest.approx(0.5, abs=0.01)
    assert got["ns", "good", "g1"].counters.errors == 0


def test_behaviour_change_keeps_history() -> None:
    m, clock = model()
    m.set_member("ns", "web", "a", GOOD)
    clock.advance(10)  # 100 ok
    m.set_member("ns", "web", "a", PodInfo(error_rate=1.0))
    clock.advance(10)  # 100 errors
    c = counts(m)["ns", "web", "a"].counters
    assert c.ok == pytest.approx(100)
    assert c.errors == pytest.approx(100)


def test_weights_divert_traffic_to_another_service() -> None:
    m, clock = model()
    m.set_members("ns", "stable", {"s1": GOOD, "s2": GOOD})
    m.set_members("ns", "canary", {"c1": BAD})
    assert m.inbound_rate("ns", "canary") == 10  # no route yet: every Service gets the standard rate
    m.set_weights("ns", "stable", {"stable": 80, "canary": 20})
    assert m.weights("ns", "stable") == {"stable": 80, "canary": 20}
    assert m.inbound_rate("ns", "stable") == pytest.approx(8)
    assert m.inbound_rate("ns", "canary") == pytest.approx(2)  # only what is routed to it
    clock.advance(10)
    got = counts(m)
    assert total(got["ns", "stable", "s1"]) == pytest.approx(40)
    assert total(got["ns", "canary", "c1"]) == pytest.approx(20)
    m.set_weights("ns", "stable", None)
    clock.advance(10)
    got = counts(m)
    assert total(got["ns", "stable", "s1"]) == pytest.approx(90)
    assert total(got["ns", "canary", "c1"]) == pytest.approx(120)


def test_route_key_that_is_not_a_service() -> None:
    """An Istio-style route is an entry point of its own; its destinations get nothing else."""
    m, clock = model()
    m.set_members("ns", "stable", {"s1": GOOD})
    m.set_members("ns", "canary", {"c1": GOOD})
    m.set_weights("ns", "vs/primary", {"stable": 3, "canary": 1})
    assert m.inbound_rate("ns", "stable") == pytest.approx(7.5)
    assert m.inbound_rate("ns", "canary") == pytest.approx(2.5)
    m.set_weights("ns", "vs/primary", {"stable": 0, "canary": 1})
    clock.advance(4)
    got = counts(m)
    assert total(got["ns", "stable", "s1"]) == 0
    assert total(got["ns", "canary", "c1"]) == pytest.approx(40)


def test_traffic_to_a_service_without_pods_is_dropped() -> None:
    m, clock = model()
    m.set_members("ns", "stable", {"s1": GOOD})
    m.set_service("ns", "canary")
    m.set_weights("ns", "stable", {"stable": 50, "canary": 50})
    clock.advance(10)
    assert total(counts(m)["ns", "stable", "s1"]) == pytest.approx(50)


def test_latency_histogram_shape() -> None:
    m, clock = model()
    m.set_members("ns", "web", {"fast": GOOD, "slow": PodInfo(latency_ms=800)})
    clock.advance(100)
    got = counts(m)
    for sample in got.values():
        buckets = sample.counters.buckets
        assert buckets == sorted(buckets)
        assert buckets[-1] == pytest.approx(500)
    slow = dict(zip(BUCKETS, got["ns", "web", "slow"].counters.buckets, strict=False))
    assert slow[0.5] < 0.05 * 500 and slow[1.0] > 0.75 * 500
    assert got["ns", "web", "slow"].counters.seconds / 500 == pytest.approx(0.8, rel=0.05)
    fast = dict(zip(BUCKETS, got["ns", "web", "fast"].counters.buckets, strict=False))
    assert fast[0.01] > 0.95 * 500


def parse(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample line of a Prometheus text exposition."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


def test_exposition_format() -> None:
    m, clock = model()
    m.set_members("ns", "web", {"web-1": BAD})
    clock.advance(10)
    text = exposition(m.samples())
    assert "# TYPE tugboat_sim_http_requests_total counter" in text
    assert "# TYPE tugboat_sim_http_request_duration_seconds histogram" in text
    assert text.count("# HELP ") == 2
    labels = (
        'namespace="ns",service="web",pod="web-1",rollouts_pod_template_hash="abc123",pod_template_hash=""'
    )
    values = parse(text)
    assert values[f'tugboat_sim_http_requests_total{{{labels},code="200"}}'] == 50
    assert values[f'tugboat_sim_http_requests_total{{{labels},code="500"}}'] == 50
    assert values[f'tugboat_sim_http_request_duration_seconds_bucket{{{labels},le="+Inf"}}'] == 100
    assert values[f'tugboat_sim_http_request_duration_seconds_bucket{{{labels},le="0.005"}}'] == 50
    assert values[f"tugboat_sim_http_request_duration_seconds_count{{{labels}}}"] == 100
    assert values[f"tugboat_sim_http_request_duration_seconds_sum{{{labels}}}"] > 0.4
    line = re.compile(r'^[a-z_]+\{([a-z_]+="[^"]*",?)+\} \d+(\.\d+)?$')
    assert all(line.match(x) for x in text.splitlines() if not x.startswith("#"))


def test_exposition_escapes_label_values() -> None:
    m, _ = model()
    m.set_members("ns", "web", {"a": PodInfo(pod_template_hash='x"y\\z')})
    assert 'pod_template_hash="x\\"y\\\\z"' in exposition(m.samples())


Op = tuple[str, Any, Any, float]
_ops = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "remove", "weights", "behaviour", "service"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["web", "canary", "vs"]),
        st.floats(min_value=0, max_value=5),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_counters_are_monotonic(ops: list[Op]) -> None:
    m, clock = model()
    seen: dict[tuple[str, str, str], list[float]] = {}

    def check() -> None:
        for key, s in counts(m).items():
            now = [math.floor(s.counters.ok), math.floor(s.counters.errors), *s.counters.buckets]
            before = seen.get(key)
            if before is not None:
                assert all(n >= b - 1e-9 for n, b in zip(now, before, strict=True)), (key, before, now)
            seen[key] = now

    for op, pod, service, dt in ops:
        if op == "join":
            m.set_member("ns", service, pod, GOOD)
        elif op == "leave":
            m.set_member("ns", service, pod, None)
        elif op == "remove":
            m.remove_pod("ns", pod)
            for key in [k for k in seen if k[2] == pod]:
                del seen[key]  # a deleted pod's series is gone; a new one may start from zero
        elif op == "weights":
            m.set_weights("ns", service, {"web": dt, "canary": 5 - dt})
        elif op == "behaviour":
            m.set_member("ns", service, pod, PodInfo(error_rate=dt / 5, latency_ms=dt * 100))
        elif op == "service":
            m.set_service("ns", service, exists=False)
            for key in [k for k in seen if k[1] == service]:
                del seen[key]
        check()
        clock.advance(dt)
        check()
    # Whatever happened, the pods of the namespace never receive more than the entry points send.
    entries = 3 * 10.0
    assert sum(m.inbound_rate("ns", s) for s in ("web", "canary", "vs")) <= entries + 1e-9


# ------------------------------------------------------------------------------------- integration


@pytest.fixture(scope="module")
def traffic_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """A cluster running only the traffic simulator: the test plays the kubelet (pod status by hand)."""
    yield from controllers_cluster(tmp_path_factory, "traffic", "traffic")


def make_ready_pod(
    cluster: ClusterProcess, namespace: str, name: str, *, app: str, image: str, ready: bool = True
) -> None:
    """Create a pod and give it the status a kubelet would (Running, podIP, Ready)."""
    labels = {"app": app, "pod-template-hash": f"{app}-hash"}
    pod = {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }
    with cluster.client() as client:
        created = client.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
        assert created.status_code == 201, created.text
    set_pod_ready(cluster, namespace, name, ready)


def set_pod_ready(cluster: ClusterProcess, namespace: str, name: str, ready: bool) -> None:
    status = {
        "phase": "Running",
        "podIP": "10.244.0.10",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    with cluster.client() as client:
        response = client.patch(
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text


def make_service(cluster: ClusterProcess, namespace: str, name: str, app: str) -> None:
    service = {
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    with cluster.client() as client:
        response = client.post(f"/api/v1/namespaces/{namespace}/services", json=service)
        assert response.status_code == 201, response.text


def scrape(cluster: ClusterProcess) -> dict[str, float]:
    with cluster.client() as client:
        response = client.get("/metrics/simulated")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse(response.text)


def requests_of(values: dict[str, float], namespace: str, **labels: str) -> dict[str, float]:
    """``{pod/code: value}`` of the request counters matching ``labels``."""
    found = {}
    for series, value in values.items():
        if not series.startswith("tugboat_sim_http_requests_total{"):
            continue
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if pairs["namespace"] == namespace and all(pairs[k] == v for k, v in labels.items()):
            found[f"{pairs['pod']}/{pairs['code']}"] = value
    return found


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last result: {result!r}")
        time.sleep(0.1)


def _namespace(cluster: ClusterProcess, name: str) -> str:
    with cluster.client() as client:
        response = client.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert response.status_code == 201, response.text
    return name


def test_metrics_simulated_follows_services_and_pods(traffic_cluster: ClusterProcess, tmp_path: Path) -> None:
    cluster = traffic_cluster
    ns = _namespace(cluster, "traffic-live")
    make_service(cluster, ns, "good", "good")
    make_service(cluster, ns, "bad", "bad")
    make_ready_pod(cluster, ns, "good-1", app="good", image="example/app:v1")
    make_ready_pod(cluster, ns, "good-2", app="good", image="example/app:v1")
    make_ready_pod(cluster, ns, "bad-1", app="bad", image="example/app:bad-1")
    make_ready_pod(cluster, ns, "idle-1", app="good", image="example/app:v1", ready=False)

    # 10/s per Service: after a second or so, both good pods and the bad pod count requests.
    wait_for(lambda: all(v >= 5 for v in requests_of(scrape(cluster), ns, code="200").values()) or None)
    values = scrape(cluster)
    good = requests_of(values, ns, service="good", pod_template_hash="good-hash")
    assert set(good) == {"good-1/200", "good-1/500", "good-2/200", "good-2/500"}  # not the unready pod
    assert good["good-1/500"] == good["good-2/500"] == 0
    assert abs(good["good-1/200"] - good["good-2/200"]) <= 2  # an even split
    bad = requests_of(values, ns, service="bad")
    assert abs(bad["bad-1/500"] - bad["bad-1/200"]) <= 1  # bad-* tags fail half their requests
    assert 'rollouts_pod_template_hash=""' in next(iter(values))  # absent label: empty string

    # An unready pod keeps its counters (frozen), and the other one takes all the traffic.
    set_pod_ready(cluster, ns, "good-1", False)

    def frozen() -> bool:
        first = requests_of(scrape(cluster), ns, service="good")
        time.sleep(0.5)
        second = requests_of(scrape(cluster), ns, service="good")
        return first["good-1/200"] == second["good-1/200"] and second["good-2/200"] > first["good-2/200"]

    wait_for(frozen)

    # A deleted pod's series disappear; a deleted Service's too.
    with cluster.client() as client:
        assert client.delete(f"/api/v1/namespaces/{ns}/pods/bad-1").status_code == 200
        assert client.delete(f"/api/v1/namespaces/{ns}/services/good").status_code == 200
    wait_for(lambda: not requests_of(scrape(cluster), ns, pod="bad-1") or None)
    wait_for(lambda: not requests_of(scrape(cluster), ns, service="good") or None)
