"""The ReplicaSet controller (research/kubeapi.md §4 item 3, §5 check 27).

Most tests run a cluster with only the ReplicaSet and Deployment controllers and play kubelet and
scheduler themselves: they bind pods and set their phase and Ready condition through ``/status``, so that
readiness, availability and the scale-down order are under the test's control.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sim_support import controllers_cluster, eventually, new_namespace, stamp

from clusterproc import ClusterProcess, have_kubectl
from tugboat.kube import errors, kinds
from tugboat.kube.client import Client
from tugboat.localcluster.controllers import podtemplates as pt
from tugboat.localcluster.controllers.replicaset import Expectations, calculate_status, pods_to_delete

Obj = dict[str, Any]
_counter = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def rs_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "replicaset", "replicaset,deployment")


@pytest.fixture
async def client(rs_cluster: ClusterProcess) -> Any:
    async with Client.from_kubeconfig(rs_cluster.kubeconfig, field_manager="test") as c:
        yield c


@pytest.fixture
async def ns(client: Client) -> str:
    return await new_namespace(client, f"rs{next(_counter)}")


def replica_set(name: str, replicas: int, *, min_ready: int = 0, labels: Obj | None = None) -> Obj:
    labels = labels or {"app": name}
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": {**labels, "tier": "front"}},
            "spec": {"containers": [{"name": "c", "image": "app:v1"}]},
        },
    }
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"metadata": {"name": name}, "spec": spec}


async def pods_of(client: Client, ns: str, selector: str) -> list[Obj]:
    items, _ = await client.list(kinds.POD, ns, labels=selector)
    return sorted(items, key=pt.name)


async def live_pods(client: Client, ns: str, selector: str) -> list[Obj]:
    return [p for p in await pods_of(client, ns, selector) if not pt.deleting(p)]


async def bind(client: Client, ns: str, pod: str, node: str = "node-1") -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod, "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    await client.request("POST", kinds.POD.object_path(pod, ns, "binding"), body=body)


async def run_pod(client: Client, ns: str, pod: str, *, ready: bool, since: datetime | None = None) -> None:
    """What the kubelet would write: Running, and Ready (since ``since``) or not."""
    condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp(since)}
    status = {"phase": "Running", "conditions": [condition], "podIP": "10.0.0.9"}
    await client.patch_status(kinds.POD, pod, status, namespace=ns)


async def rs_status(client: Client, ns: str, name: str) -> Obj:
    return pt.status(await client.get(kinds.REPLICASET, name, ns))


async def events_for(client: Client, ns: str, name: str) -> list[Obj]:
    items, _ = await client.list(kinds.EVENT, ns, fields=f"involvedObject.name={name}")
    return items


# ---------------------------------------------------------------------------------------- pure parts


def test_template_hash_is_stable_safe_and_ignores_its_own_label() -> None:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "a:1"}]},
    }
    value = pt.template_hash(template)
    assert value == pt.template_hash(template)
    assert set(value) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(value) <= 10
    assert pt.template_hash(pt.with_hash_label(template, value)) == value
    assert pt.template_hash(template, 1) != value
    changed = {**template, "spec": {"containers": [{"name": "c", "image": "a:2"}]}}
    assert pt.template_hash(changed) != value
    assert pt.equal_ignore_hash(pt.with_hash_label(template, value), template)
    assert pt.equal_ignore_hash(
        {**template, "metadata": {"labels": {"app": "web"}, "annotations": {}}}, template
    )
    assert not pt.equal_ignore_hash(changed, template)


def test_fnv32a_and_safe_encoding_match_upstream() -> None:
    assert pt.fnv32a(b"") == 0x811C9DC5
    assert pt.fnv32a(b"a") == 0xE40C292C
    assert pt.safe_encode("0123456789") == "456789bcdf"


def test_scaled_values_round_like_intstr() -> None:
    assert pt.scaled_value("25%", 2, round_up=True) == 1
    assert pt.scaled_value("25%", 2, round_up=False) == 0
    assert pt.scaled_value("30%", 10, round_up=True) == 3
    assert pt.scaled_value(2, 10, round_up=False) == 2
    assert pt.go_round(2.5) == 3 and pt.go_round(-2.5) == -3 and pt.go_round(1.4) == 1


def _pod(name: str, *, node: str = "", phase: str = "Pending", ready: bool = False, created: int = 0) -> Obj:
    status: Obj = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": stamp()}]
    return {
        "metadata": {"name": name, "creationTimestamp": f"2024-01-01T00:00:{created:02d}Z"},
        "spec": {"nodeName": node} if node else {},
        "status": status,
    }


def test_scale_down_prefers_unscheduled_pending_unready_then_newest() -> None:
    pods = [
        _pod("ready-old", node="n1", phase="Running", ready=True, created=1),
        _pod("ready-new", node="n2", phase="Running", ready=True, created=5),
        _pod("running-unready", node="n1", phase="Running", created=2),
        _pod("pending-scheduled", node="n1", created=3),
        _pod("unscheduled", created=4),
    ]
    assert len(pods_to_delete(pods, pods, 5)) == 5
    chosen = [pt.name(p) for p in pods_to_delete(pods, pods, 4)]
    assert chosen == ["unscheduled", "pending-scheduled", "running-unready", "ready-old"]
    # the pod doubled up on node n1 goes before the one alone on n2, even though it is older
    assert [pt.name(p) for p in pods_to_delete(pods[:2], pods, 1)] == ["ready-old"]
    assert [pt.name(p) for p in pods_to_delete(pods[:2], pods[:2], 1)] == ["ready-new"]


def test_availability_waits_for_min_ready_seconds() -> None:
    now = datetime.now(UTC)
    rs = {"metadata": {"generation": 3}, "spec": {"minReadySeconds": 10, "template": {}}}
    fresh = _pod("a", node="n", phase="Running", ready=True)
    old = _pod("b", node="n", phase="Running", ready=True)
    old["status"]["conditions"][0]["lastTransitionTime"] = stamp(now - timedelta(seconds=30))
    status, wait = calculate_status(rs, [fresh, old], None, now)
    assert status == {
        "replicas": 2,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 3,
    }
    assert wait is not None and 8 < wait <= 11
    failing, _ = calculate_status(rs, [], ("FailedCreate", "boom"), now)
    assert failing["replicas"] == 0
    assert failing["conditions"][0]["type"] == "ReplicaFailure"
    assert failing["conditions"][0]["reason"] == "FailedCreate"


def test_expectations_block_until_observed() -> None:
    expectations = Expectations()
    assert expectations.satisfied("ns/a")
    expectations.expect_creations("ns/a", 2)
    assert not expectations.satisfied("ns/a")
    expectations.creation_observed("ns/a")
    assert not expectations.satisfied("ns/a")
    expectations.creation_observed("ns/a")
    assert expectations.satisfied("ns/a")
    expectations.expect_deletions("ns/a", ["ns/p1"])
    expectations.deletion_observed("ns/a", "ns/other")
    assert not expectations.satisfied("ns/a")
    expectations.deletion_observed("ns/a", "ns/p1")
    assert expectations.satisfied("ns/a")
    short = Expectations(ttl=0.0)
    short.expect_creations("k", 1)
    time.sleep(0.01)
    assert short.satisfied("k")


# ----------------------------------------------------------------------------------------- controller


async def test_creates_pods_from_the_template(client: Client, ns: str) -> None:
    rs = await client.create(
        kinds.REPLICASET, {**replica_set("web", 3), "metadata": {"name": "web", "namespace": ns}}
    )

    async def three_pods() -> list[Obj]:
        pods = await pods_of(client, ns, "app=web")
        assert len(pods) == 3
        return pods

    pods = await eventually(three_pods)
    for pod in pods:
        assert pt.name(pod).startswith("web-") and len(pt.name(pod)) == len("web-") + 5
        assert pt.labels_of(pod) == {"app": "web", "tier": "front"}
        assert pt.meta(pod)["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": pt.uid(rs),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]

    async def counted() -> bool:
        status = await rs_status(client, ns, "web")
        assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1}
        return True

    await eventually(counted)
    await asyncio.sleep(0.5)  # nothing more is created once the informer has caught up
    assert len(await pods_of(client, ns, "app=web")) == 3

    async def events() -> list[str]:
        messages = sorted(
            e["message"] for e in await events_for(client, ns, "web") if e["reason"] == "SuccessfulCreate"
        )
        assert messages == sorted(f"Created pod: {pt.name(p)}" for p in pods)
        return messages

    await eventually(events)


async def test_replaces_deleted_pods_exactly_once(client: Client, ns: str) -> None:
    await client.create(
        kinds.REPLICASET, {**replica_set("many", 20), "metadata": {"name": "many", "namespace": ns}}
    )

    async def twenty() -> list[Obj]:
        pods = await pods_of(client, ns, "app=many")
        assert len(pods) == 20
        return pods

    pods = await eventually(twenty)
    for pod in pods[:5]:
        await client.delete(kinds.POD, pt.name(pod), ns)
    await asyncio.sleep(0.3)
    after = await eventually(twenty)
    assert {pt.name(p) for p in after} & {pt.name(p) for p in pods[:5]} == set()
    await asyncio.sleep(0.5)
    assert len(await pods_of(client, ns, "app=many")) == 20
    status = await eventually(lambda: _status_with(client, ns, "many", replicas=20))
    assert status["observedGeneration"] == 1


async def _status_with(client: Client, ns: str, name: str, **wanted: int) -> Obj:
    status = await rs_status(client, ns, name)
    for key, value in wanted.items():
        assert status.get(key, 0) == value, (key, status)
    return status


async def test_ready_and_available_replicas_honour_min_ready_seconds(client: Client, ns: str) -> None:
    await client.create(
        kinds.REPLICASET,
        {**replica_set("slow", 2, min_ready=2), "metadata": {"name": "slow", "namespace": ns}},
    )
    pods = await eventually(lambda: _exactly(client, ns, "app=slow", 2))
    for pod in pods:
        await bind(client, ns, pt.name(pod))
        await run_pod(client, ns, pt.name(pod), ready=True)
    status = await eventually(lambda: _status_with(client, ns, "slow", replicas=2, readyReplicas=2))
    assert status.get("availableReplicas", 0) < 2
    # no pod event comes when minReadySeconds pass: the controller's own timer must notice
    await eventually(lambda: _status_with(client, ns, "slow", availableReplicas=2), timeout=10)


async def _exactly(client: Client, ns: str, selector: str, count: int) -> list[Obj]:
    pods = await live_pods(client, ns, selector)
    assert len(pods) == count, [pt.name(p) for p in pods]
    return pods


async def test_scale_down_deletes_unscheduled_then_unready_pods(client: Client, ns: str) -> None:
    await client.create(
        kinds.REPLICASET, {**replica_set("down", 4), "metadata": {"name": "down", "namespace": ns}}
    )
    pods = await eventually(lambda: _exactly(client, ns, "app=down", 4))
    ready_a, ready_b, unready, unscheduled = (pt.name(p) for p in pods)
    for name in (ready_a, ready_b, unready):
        await bind(client, ns, name)
    await run_pod(client, ns, ready_a, ready=True)
    await run_pod(client, ns, ready_b, ready=True)
    await run_pod(client, ns, unready, ready=False)
    await eventually(lambda: _status_with(client, ns, "down", readyReplicas=2))

    await client.patch(kinds.REPLICASET, "down", {"spec": {"replicas": 3}}, namespace=ns)
    left = await eventually(lambda: _exactly(client, ns, "app=down", 3))
    assert unscheduled not in {pt.name(p) for p in left}

    await client.patch(kinds.REPLICASET, "down", {"spec": {"replicas": 2}}, namespace=ns)
    left = await eventually(lambda: _exactly(client, ns, "app=down", 2))
    assert {pt.name(p) for p in left} == {ready_a, ready_b}
    # a bound pod is deleted gracefully: without a kubelet it stays, terminating, and no longer counts
    terminating = [p for p in await pods_of(client, ns, "app=down") if pt.deleting(p)]
    assert [pt.name(p) for p in terminating] == [unready]
    await eventually(
        lambda: _status_with(client, ns, "down", replicas=2, readyReplicas=2, observedGeneration=3)
    )

    async def deletions() -> bool:
        messages = {
            e["message"] for e in await events_for(client, ns, "down") if e["reason"] == "SuccessfulDelete"
        }
        assert messages == {f"Deleted pod: {unscheduled}", f"Deleted pod: {unready}"}
        return True

    await eventually(deletions)


async def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(client: Client, ns: str) -> None:
    orphan = {
        "metadata": {"name": "stray", "namespace": ns, "labels": {"app": "adopt"}},
        "spec": {"containers": [{"name": "c", "image": "app:v1"}]},
    }
    await client.create(kinds.POD, orphan)
    rs = await client.create(
        kinds.REPLICASET, {**replica_set("adopt", 2), "metadata": {"name": "adopt", "namespace": ns}}
    )
    pods = await eventually(lambda: _exactly(client, ns, "app=adopt", 2))
    assert "stray" in {pt.name(p) for p in pods}

    async def adopted() -> bool:
        pod = await client.get(kinds.POD, "stray", ns)
        ref = pt.controller_ref(pod)
        assert ref is not None and ref["uid"] == pt.uid(rs) and ref["blockOwnerDeletion"] is True
        return True

    await eventually(adopted)
    status = await eventually(lambda: _status_with(client, ns, "adopt", replicas=2))
    assert status["fullyLabeledReplicas"] == 1  # the stray pod lacks the template's tier label

    await client.patch(kinds.POD, "stray", {"metadata": {"labels": {"app": "gone"}}}, namespace=ns)

    async def released() -> bool:
        pod = await client.get(kinds.POD, "stray", ns)
        assert not pt.meta(pod).get("ownerReferences")
        return True

    await eventually(released)
    await eventually(lambda: _exactly(client, ns, "app=adopt", 2))


async def test_reports_replica_failure_when_pods_cannot_be_created(client: Client, ns: str) -> None:
    body = replica_set("broken", 1)
    body["metadata"] = {"name": "broken", "namespace": ns}
    # an annotation key no pod may carry: the local cluster accepts it in a template, not on a pod
    body["spec"]["template"]["metadata"]["annotations"] = {"bad key!": "x"}
    try:
        await client.create(kinds.REPLICASET, body)
    except errors.ApiError as exc:
        pytest.skip(f"the server validates template annotations now: {exc}")

    async def failed() -> Obj:
        status = await rs_status(client, ns, "broken")
        cond = status["conditions"][0]
        assert cond["type"] == "ReplicaFailure" and cond["status"] == "True"
        assert cond["reason"] == "FailedCreate"
        return cond

    cond = await eventually(failed)
    assert "annotations" in cond["message"]
    events = await eventually(lambda: _events_with_reason(client, ns, "broken", "FailedCreate"))
    assert events[0]["type"] == "Warning" and events[0]["message"].startswith("Error creating: ")

    fixed = {"spec": {"template": {"metadata": {"annotations": None}}}}
    await client.patch(kinds.REPLICASET, "broken", fixed, namespace=ns)
    await eventually(lambda: _exactly(client, ns, "app=broken", 1), timeout=90)

    async def recovered() -> bool:
        assert "conditions" not in await rs_status(client, ns, "broken")
        return True

    await eventually(recovered)


async def _events_with_reason(client: Client, ns: str, name: str, reason: str) -> list[Obj]:
    events = [e for e in await events_for(client, ns, name) if e["reason"] == reason]
    assert events
    return events


async def test_does_not_recreate_pods_while_being_deleted(client: Client, ns: str) -> None:
    body = {
        **replica_set("fin", 2),
        "metadata": {"name": "fin", "namespace": ns, "finalizers": ["example.com/hold"]},
    }
    await client.create(kinds.REPLICASET, body)
    pods = await eventually(lambda: _exactly(client, ns, "app=fin", 2))
    await client.delete(kinds.REPLICASET, "fin", ns)
    await client.delete(kinds.POD, pt.name(pods[0]), ns)
    await asyncio.sleep(1.0)
    assert len(await live_pods(client, ns, "app=fin")) == 1
    await client.patch(kinds.REPLICASET, "fin", {"metadata": {"finalizers": None}}, namespace=ns)


def test_orphan_deletion_keeps_pods_without_owner(
    rs_cluster: ClusterProcess, kubectl_available: None
) -> None:
    """Check 27: ``kubectl delete rs --cascade=orphan`` leaves its pods, with no ownerReferences."""
    ns = f"rs{next(_counter)}"
    rs_cluster.kubectl("create", "namespace", ns)
    manifest = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: keep}
spec:
  replicas: 2
  selector: {matchLabels: {app: keep}}
  template:
    metadata: {labels: {app: keep}}
    spec: {containers: [{name: c, image: app:v1}]}
"""
    rs_cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    deadline = time.monotonic() + 20
    names: list[str] = []
    while time.monotonic() < deadline:
        out = rs_cluster.kubectl("get", "pods", "-n", ns, "-l", "app=keep", "-o", "name").stdout.split()
        if len(out) == 2:
            names = out
            break
        time.sleep(0.1)
    assert len(names) == 2
    rs_cluster.kubectl("delete", "rs", "keep", "-n", ns, "--cascade=orphan")
    assert "NotFound" in rs_cluster.kubectl("get", "rs", "keep", "-n", ns, check=False).stderr
    for name in names:
        owners = rs_cluster.kubectl(
            "get", name, "-n", ns, "-o", "jsonpath={.metadata.ownerReferences}"
        ).stdout
        assert owners == ""
    time.sleep(0.5)
    assert sorted(rs_cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout.split()) == sorted(names)


def test_kubectl_get_rs_columns(rs_cluster: ClusterProcess, kubectl_available: None) -> None:
    if not have_kubectl():
        pytest.skip("no kubectl")
    ns = f"rs{next(_counter)}"
    rs_cluster.kubectl("create", "namespace", ns)
    rs_cluster.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input="""
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: cols}
spec:
  replicas: 2
  selector: {matchLabels: {app: cols}}
  template:
    metadata: {labels: {app: cols}}
    spec: {containers: [{name: c, image: app:v1}]}
""",
    )
    deadline = time.monotonic() + 20
    row: list[str] = []
    while time.monotonic() < deadline:
        lines = rs_cluster.kubectl("get", "rs", "cols", "-n", ns).stdout.splitlines()
        row = lines[1].split()
        if row[1:4] == ["2", "2", "0"]:
            break
        time.sleep(0.1)
    assert row[:4] == ["cols", "2", "2", "0"]
