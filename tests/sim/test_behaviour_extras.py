"""Simulation behaviours the other sim tests leave open: traffic shaped by annotations, idleness, check 10.

- DESIGN.md §5: ``sim.tugboat.dev/error-rate`` and ``latency-ms`` annotations and the ``slow`` tag shape the
  traffic ``/metrics/simulated`` reports, annotations win over tags, and bad values are ignored or clamped
  as ``controllers/behaviour.py`` documents.
- Issue 3's "no busy polling": with Deployments Available, nothing but node Lease renewals (and Events)
  writes, so the global resourceVersion stands still between renewals.
- Check 10 of research/kubeapi.md §5: a crash-looping Deployment pod reaches ``CrashLoopBackOff`` in
  ``kubectl get pods`` while the old pods keep running.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
import sim_support
import yaml

from clusterproc import ClusterProcess, have_kubectl, start_cluster

pytestmark = pytest.mark.skipif(not have_kubectl(), reason="kubectl is not on the PATH")

Obj = dict[str, Any]
NOTE = "sim.tugboat.dev/"


# ------------------------------------------------------------------------------------------ helpers


def _deployment(name: str, *, image: str = "nginx:1.25", replicas: int = 2, extra_spec: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
{extra_spec}  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: nginx
        image: {image}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
  - port: 80
"""


def _parse_exposition(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample line of a Prometheus text exposition."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


def _pod_series(values: dict[str, float], namespace: str, pod: str) -> dict[str, float]:
    """One pod's totals: ``ok``, ``errors``, ``count`` and ``sum`` (of request durations, seconds)."""
    found = {"ok": 0.0, "errors": 0.0, "count": 0.0, "sum": 0.0}
    for series, value in values.items():
        name, _, labels = series.partition("{")
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if pairs.get("namespace") != namespace or pairs.get("pod") != pod:
            continue
        if name == "tugboat_sim_http_requests_total":
            found["errors" if pairs["code"].startswith("5") else "ok"] += value
        elif name == "tugboat_sim_http_request_duration_seconds_count":
            found["count"] += value
        elif name == "tugboat_sim_http_request_duration_seconds_sum":
            found["sum"] += value
    return found


def _scrape(cluster: ClusterProcess) -> dict[str, float]:
    with cluster.client() as client:
        response = client.get("/metrics/simulated")
    assert response.status_code == 200, response.text
    return _parse_exposition(response.text)


# ------------------------------------------------------------------------------ traffic behaviours

# name -> (image, annotations, expected error ratio, expected median latency in ms)
TRAFFIC: dict[str, tuple[str, dict[str, str], float, float]] = {
    "rate": ("nginx:1.27", {"error-rate": "0.2"}, 0.2, 5.0),
    "latency": ("nginx:1.27", {"latency-ms": "300"}, 0.0, 300.0),
    "slow": ("registry.example/app:slow-v1", {}, 0.0, 800.0),
    "bad": ("registry.example/app:bad-v1", {}, 0.5, 5.0),
    # Annotations win over tags.
    "bad-override": ("registry.example/app:bad-v1", {"error-rate": "0.1"}, 0.1, 5.0),
    "slow-override": ("registry.example/app:slow-v1", {"latency-ms": "50"}, 0.0, 50.0),
    # Values that are no finite number are ignored: the tag's behaviour (or the default) stays.
    "junk-rate": ("registry.example/app:bad-v1", {"error-rate": "abc"}, 0.5, 5.0),
    "junk-latency": ("registry.example/app:slow-v1", {"latency-ms": "fast"}, 0.0, 800.0),
    "non-finite": ("nginx:1.27", {"error-rate": "nan", "latency-ms": "inf"}, 0.0, 5.0),
    # Out-of-range numbers are clamped: a rate above 1 fails everything, negatives are zero.
    "too-high": ("nginx:1.27", {"error-rate": "2"}, 1.0, 5.0),
    "negative": ("nginx:1.27", {"error-rate": "-0.5", "latency-ms": "-20"}, 0.0, 0.0),
}

MIN_REQUESTS = 30  # 3 s of one Service's 10 requests/s; counters are floors, so ratios are within ~2/n


@pytest.fixture(scope="module")
def traffic_namespace(sim_cluster: ClusterProcess) -> str:
    """One Service and one Ready pod per row of :data:`TRAFFIC`, created together."""
    namespace = "behaviour-traffic"
    with sim_cluster.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).status_code == 201
        for name, (image, notes, _, _) in TRAFFIC.items():
            service = {
                "metadata": {"name": name},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
            }
            pod = {
                "metadata": {
                    "name": f"{name}-0",
                    "labels": {"app": name},
                    "annotations": {NOTE + k: v for k, v in notes.items()},
                },
                "spec": {"containers": [{"name": "app", "image": image}]},
            }
            for kind, body in (("services", service), ("pods", pod)):
                response = client.post(f"/api/v1/namespaces/{namespace}/{kind}", json=body)
                assert response.status_code == 201, response.text
    return namespace


def _served_enough(cluster: ClusterProcess, namespace: str) -> dict[str, dict[str, float]] | None:
    values = _scrape(cluster)
    served = {name: _pod_series(values, namespace, f"{name}-0") for name in TRAFFIC}
    return served if all(s["count"] >= MIN_REQUESTS for s in served.values()) else None


def test_traffic_follows_behaviour_annotations_and_tags(
    sim_cluster: ClusterProcess, traffic_namespace: str
) -> None:
    served = sim_support.wait_for(
        lambda: _served_enough(sim_cluster, traffic_namespace),
        timeout=30,
        interval=0.25,
        what=f"{MIN_REQUESTS} requests for every pod",
    )
    for name, (_, _, rate, latency_ms) in TRAFFIC.items():
        s = served[name]
        requests = s["ok"] + s["errors"]
        assert requests >= MIN_REQUESTS - 2, (name, s)
        assert s["errors"] / requests == pytest.approx(rate, abs=0.07), (name, s)
        mean_ms = 1000 * s["sum"] / s["count"]
        # Log-normal latencies around the median: the mean is a few per cent above it.
        assert latency_ms * 0.9 - 0.5 <= mean_ms <= latency_ms * 1.2 + 0.5, (name, mean_ms, s)
        assert math.isfinite(s["sum"])
    # Every such pod is Ready and Running (its behaviour is only about traffic).
    rows = sim_cluster.kubectl("get", "pods", "-n", traffic_namespace, "--no-headers").stdout.splitlines()
    assert {tuple(r.split()[1:3]) for r in rows} == {("1/1", "Running")}, rows


# ------------------------------------------------------------------------------------ check 10


def _pod_rows(cluster: ClusterProcess, namespace: str, app: str) -> list[list[str]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "--no-headers").stdout
    return [line.split() for line in out.splitlines()]


def test_10_crash_looping_pod_shows_crash_loop_back_off(
    sim_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """10. After ``set image …:crash`` the new pod reaches CrashLoopBackOff; the old pods keep running."""
    ns = sim_namespace
    manifest = _deployment("web", extra_spec="  progressDeadlineSeconds: 10\n")
    sim_cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    rolled = sim_cluster.kubectl("rollout", "status", "-n", ns, "deploy/web", "--timeout=60s", timeout=90)
    assert "successfully rolled out" in rolled.stdout
    try:
        sim_cluster.kubectl("set", "image", "-n", ns, "deploy/web", "nginx=app:crash")
        seen: set[str] = set()

        def crash_loop_back_off() -> list[list[str]] | None:
            rows = _pod_rows(sim_cluster, ns, "web")
            seen.update(r[2] for r in rows)
            return rows if any(r[2] == "CrashLoopBackOff" for r in rows) else None

        rows = sim_support.wait_for(crash_loop_back_off, timeout=30, interval=0.2, what="CrashLoopBackOff")
        crashing = [r for r in rows if r[2] == "CrashLoopBackOff"]
        assert len(crashing) == 1, rows  # maxSurge 25 % of 2: one new pod at a time
        assert crashing[0][1] == "0/1"
        assert int(crashing[0][3]) >= 1, crashing  # RESTARTS, e.g. "1 (3s ago)"
        running = [r for r in rows if r[2] == "Running"]
        assert [r[1] for r in running] == ["1/1", "1/1"], rows  # the old pods still serve
        assert seen <= {"ContainerCreating", "Pending", "Running", "Error", "CrashLoopBackOff"}, seen
        pod = json.loads(sim_cluster.kubectl("get", "pod", "-n", ns, crashing[0][0], "-o", "json").stdout)
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "CrashLoopBackOff"
        deploy = json.loads(sim_cluster.kubectl("get", "deploy", "-n", ns, "web", "-o", "json").stdout)
        assert deploy["status"]["availableReplicas"] == 2
    finally:
        # A crash loop keeps writing: leave nothing behind on the shared cluster.
        sim_cluster.kubectl("delete", "deploy", "-n", ns, "web", "--wait=false")


# ------------------------------------------------------------------------------------------ idleness

IDLE_SECONDS = 3.0
QUIET_SECONDS = 1.0  # shorter than the idle window: anything rewriting faster than that is still caught


@pytest.fixture(scope="module")
def idle_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """A simulated cluster of this module's own: the shared one may hold other tests' crash loops."""
    proc = start_cluster(tmp_path_factory.mktemp("idle-cluster"), simulate=True)
    yield proc
    proc.stop()


def _revision(cluster: ClusterProcess) -> str:
    with cluster.client() as client:
        return str(client.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"])


def _wait_quiet(cluster: ClusterProcess, seconds: float) -> None:
    """Wait until the global revision has not moved for ``seconds``."""
    last, since = _revision(cluster), time.monotonic()

    def quiet() -> bool:
        nonlocal last, since
        now = _revision(cluster)
        if now != last:
            last, since = now, time.monotonic()
        return time.monotonic() - since >= seconds

    sim_support.wait_for(quiet, timeout=30, interval=0.1, what=f"{seconds} s without writes")


async def _watchable_paths(client: httpx.AsyncClient) -> list[str]:
    """The collection path of every watchable resource, in each group's preferred version."""
    versions = ["/api/v1"]
    groups = (await client.get("/apis", headers={"Accept": "application/json"})).json()["groups"]
    versions += [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups]
    paths = []
    for version in versions:
        for resource in (await client.get(version)).json()["resources"]:
            if "/" not in resource["name"] and "watch" in resource["verbs"]:
                paths.append(f"{version}/{resource['name']}")
    return paths


async def _changes_while_idle(url: str, seconds: float) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Watch every resource from the current revision for ``seconds``.

    Returns the revision at the start, the revision a little before the watches end (every change up
    to it has reached the watches by then), and every change seen as ``(revision, path, namespace/name)``.
    """
    async with httpx.AsyncClient(base_url=url, timeout=seconds + 30) as client:
        paths = await _watchable_paths(client)
        start = int((await client.get("/api/v1/namespaces")).json()["metadata"]["resourceVersion"])

        async def watch(path: str) -> list[tuple[int, str, str]]:
            params = {"watch": "true", "resourceVersion": str(start), "timeoutSeconds": str(int(seconds))}
            response = await client.get(path, params=params)
            changes = []
            for line in response.text.splitlines():
                meta = json.loads(line)["object"]["metadata"]
                name = f"{meta.get('namespace', '')}/{meta['name']}"
                changes.append((int(meta["resourceVersion"]), path, name))
            return changes

        watches = asyncio.gather(*(watch(p) for p in paths))
        await asyncio.sleep(seconds - 1.0)
        end = int((await client.get("/api/v1/namespaces")).json()["metadata"]["resourceVersion"])
        seen = [change for changes in await watches for change in changes]
    return start, end, sorted(seen)


def test_idle_cluster_does_not_rewrite_objects(idle_cluster: ClusterProcess) -> None:
    """With Deployments Available, the revision stands still but for node Lease renewals (and Events)."""
    cluster = idle_cluster
    for name in ("alpha", "beta", "gamma"):
        cluster.kubectl("apply", "-f", "-", input=_deployment(name))
    cluster.kubectl(
        "wait", "--for=condition=Available", "deploy/alpha", "deploy/beta", "deploy/gamma", "--timeout=60s"
    )

    def endpoints_published() -> bool:
        for name in ("alpha", "beta", "gamma"):
            out = cluster.kubectl("get", "endpoints", name, "-o", "jsonpath={.subsets[0].addresses[*].ip}")
            if len(out.stdout.split()) != 2:
                return False
        return True

    sim_support.wait_for(endpoints_published, timeout=30, interval=0.1, what="endpoints")
    _wait_quiet(cluster, QUIET_SECONDS)  # the rollout's last status writes and events have landed

    start, end, seen = asyncio.run(_changes_while_idle(cluster.url, IDLE_SECONDS))
    # The watches saw every revision up to ``end``: revisions are one global, gap-free counter.
    assert {rev for rev, _, _ in seen} >= set(range(start + 1, end + 1)), (start, end, seen)
    unexpected = [
        change
        for change in seen
        if not change[1].endswith("/events")
        and not (
            change[1] == "/apis/coordination.k8s.io/v1/leases" and change[2].startswith("kube-node-lease/")
        )
    ]
    assert unexpected == [], unexpected
    # Node Leases renew every 10 s: at most one renewal per node in the window.
    renewals = [name for _, path, name in seen if path.endswith("/leases")]
    assert len(renewals) == len(set(renewals)) <= 3, renewals
    leases = yaml.safe_load(cluster.kubectl("get", "leases", "-n", "kube-node-lease", "-o", "yaml").stdout)
    assert len(leases["items"]) == 3  # one per node
