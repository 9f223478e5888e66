"""The Deployment controller (research/kubeapi.md §4 item 4; §5 checks 5-7, 9-11, 25-27, 33).

Two kinds of cluster: one with only the ReplicaSet and Deployment controllers, where a small in-test
"kubelet" thread binds pods and makes them Ready (or crash), so that rollouts can be paced and checked
step by step; and the full simulation (``sim_cluster``), where the conformance checks run with the real
kubectl exactly as a user would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sim_support import controllers_cluster

from clusterproc import ClusterProcess
from tugboat.localcluster.controllers import deployment as dc
from tugboat.localcluster.controllers import podtemplates as pt

Obj = dict[str, Any]
T = TypeVar("T")
_counter = iter(range(1, 10_000))

pytestmark = pytest.mark.usefixtures("kubectl_available")


# ------------------------------------------------------------------------------------------- helpers


def wait_for(check: Callable[[], T | None], *, timeout: float = 30.0, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy (assertion errors count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check.__name__}: {last!r}")
        time.sleep(0.05)


def manifest(
    name: str = "web",
    *,
    image: str = "nginx:1.25",
    replicas: int = 2,
    strategy: str = "",
    extra_spec: str = "",
) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  {strategy}
  {extra_spec}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: nginx, image: "{image}"}}]}}
"""


class Kube:
    """kubectl and raw reads against one namespace of a test cluster."""

    def __init__(self, cluster: ClusterProcess, namespace: str) -> None:
        self.cluster = cluster
        self.ns = namespace

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 90) -> Any:
        return self.cluster.kubectl(*args, "-n", self.ns, input=input, check=check, timeout=timeout)

    def apply(self, text: str) -> str:
        return str(self.kubectl("apply", "-f", "-", input=text).stdout)

    def get(self, kind: str, name: str) -> Obj:
        result: Obj = json.loads(self.kubectl("get", kind, name, "-o", "json").stdout)
        return result

    def items(self, kind: str, selector: str = "") -> list[Obj]:
        args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
        items: list[Obj] = json.loads(self.kubectl(*args).stdout)["items"]
        return sorted(items, key=pt.creation_key)

    def replica_sets(self, app: str = "web") -> list[Obj]:
        """The app's ReplicaSets, oldest revision first."""
        return sorted(self.items("rs", f"app={app}"), key=pt.revision)

    def rs_by_revision(self, app: str = "web") -> dict[int, Obj]:
        return {pt.revision(rs): rs for rs in self.replica_sets(app)}

    def events(self, name: str, reason: str) -> list[str]:
        items = self.items("events", "")
        return [
            e["message"]
            for e in items
            if e["involvedObject"].get("name") == name and e.get("reason") == reason
        ]

    def rollout_status(self, name: str = "web", timeout: str = "60s") -> Any:
        return self.kubectl(
            "rollout", "status", f"deploy/{name}", f"--timeout={timeout}", check=False, timeout=120
        )

    def wait_rolled_out(self, name: str = "web") -> None:
        result = self.rollout_status(name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "successfully rolled out" in result.stdout


class FakeKubelet(threading.Thread):
    """Plays scheduler and kubelet for one namespace: binds pods, runs them, finishes deletions.

    Images whose tag contains ``crash`` never become Ready (their container waits in CrashLoopBackOff);
    others become Ready ``ready_after`` seconds after they were first seen. Terminating pods are removed
    ``termination_delay`` seconds after their deletion started.
    """

    def __init__(self, cluster: ClusterProcess, namespace: str) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.ns = namespace
        self.ready_after = 0.0
        self.termination_delay = 0.0
        self.stopped = threading.Event()
        self._seen: dict[str, float] = {}
        self._terminating: dict[str, float] = {}

    def run(self) -> None:
        with self.cluster.client() as http:
            while not self.stopped.wait(0.05):
                try:
                    response = http.get(f"/api/v1/namespaces/{self.ns}/pods")
                    for pod in response.json().get("items") or []:
                        self._step(http, pod)
                except Exception:
                    continue

    def _step(self, http: Any, pod: Obj) -> None:
        name = pt.name(pod)
        base = f"/api/v1/namespaces/{self.ns}/pods/{name}"
        now = time.monotonic()
        if pt.deleting(pod):
            since = self._terminating.setdefault(name, now)
            if now - since >= self.termination_delay:
                http.request("DELETE", base, json={"gracePeriodSeconds": 0})
            return
        if not pt.spec(pod).get("nodeName"):
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name},
                "target": {"name": "node-1"},
            }
            http.post(f"{base}/binding", json=binding)
            self._seen[name] = now
            return
        first = self._seen.setdefault(name, now)
        image = pt.spec(pod)["containers"][0].get("image", "")
        crash = "crash" in image.rpartition(":")[2]
        ready = not crash and (pt.pod_ready(pod) or now - first >= self.ready_after)
        if pt.status(pod).get("phase") == "Running" and pt.pod_ready(pod) == ready:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        state = {"waiting": {"reason": "CrashLoopBackOff"}} if crash else {"running": {"startedAt": stamp}}
        status = {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}
            ],
            "containerStatuses": [
                {
                    "name": "nginx",
                    "image": image,
                    "ready": ready,
                    "restartCount": 2 if crash else 0,
                    "state": state,
                }
            ],
        }
        http.patch(
            f"{base}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )


@pytest.fixture(scope="module")
def dep_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "deployment", "replicaset,deployment")


@pytest.fixture
def kube(dep_cluster: ClusterProcess) -> Iterator[Kube]:
    ns = f"dep{next(_counter)}"
    dep_cluster.kubectl("create", "namespace", ns)
    yield Kube(dep_cluster, ns)


@pytest.fixture
def kubelet(kube: Kube) -> Iterator[FakeKubelet]:
    fake = FakeKubelet(kube.cluster, kube.ns)
    fake.start()
    yield fake
    fake.stopped.set()
    fake.join(5)


@pytest.fixture
def sim(sim_cluster: ClusterProcess, sim_namespace: str) -> Kube:
    return Kube(sim_cluster, sim_namespace)


# ---------------------------------------------------------------------------------------- pure parts


def _deployment(replicas: int, surge: Any = "25%", unavailable: Any = "25%") -> Obj:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    return {"metadata": {"name": "d", "generation": 1}, "spec": {"replicas": replicas, "strategy": strategy}}


def test_surge_rounds_up_and_unavailability_down() -> None:
    assert dc.fenceposts(_deployment(2)) == (1, 0)
    assert dc.fenceposts(_deployment(10, "25%", "25%")) == (3, 2)
    assert dc.fenceposts(_deployment(3, 0, 0)) == (0, 1)
    assert dc.max_unavailable(_deployment(2, 0, 5)) == 2
    recreate = {"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}}
    assert dc.max_surge(recreate) == 0 and dc.max_unavailable(recreate) == 0


def test_new_replica_set_grows_within_the_surge() -> None:
    d = _deployment(4, 1, 0)
    old: Obj = {"metadata": {"name": "old"}, "spec": {"replicas": 4}}
    new: Obj = {"metadata": {"name": "new"}, "spec": {"replicas": 0}}
    assert dc.new_rs_replicas(d, [old, new], new) == 1
    old["spec"]["replicas"] = 3
    new["spec"]["replicas"] = 1
    assert dc.new_rs_replicas(d, [old, new], new) == 2
    assert (
        dc.new_rs_replicas({"spec": {"replicas": 4, "strategy": {"type": "Recreate"}}}, [old, new], new) == 4
    )


def test_proportional_scaling_follows_the_max_replicas_annotation() -> None:
    d = _deployment(20, 3, 2)  # was 10 with maxSurge 3: max-replicas 13
    d["status"] = {"replicas": 13}
    rs = {"metadata": {"annotations": {pt.MAX_REPLICAS: "13"}}, "spec": {"replicas": 8}}
    assert dc.rs_fraction(rs, d) == pt.go_round(8 * 23 / 13) - 8
    assert dc.rs_fraction(rs, d) == 6
    assert dc.proportion(rs, d, 10, 0) == 6 and dc.proportion(rs, d, 10, 7) == 3
    smaller = _deployment(5, 2, 1)  # scaled down to 5: max-replicas 7
    assert dc.rs_fraction(rs, smaller) == -4
    assert dc.proportion(rs, smaller, -6, 0) == -4 and dc.proportion(rs, smaller, -6, -4) == -2


def test_revision_history_keeps_its_length_bounded() -> None:
    history = ""
    for revision in range(1, 5):
        history = dc._append_history(history, str(revision))
    assert history == "1,2,3,4"
    long = ",".join(str(i) for i in range(1000, 1400))  # 2000 characters minus one
    trimmed = dc._append_history(long, "9999")
    assert len(trimmed) <= 2000 and trimmed.endswith(",9999") and not trimmed.startswith("1000,")


def test_conditions_keep_their_transition_time_and_time_out() -> None:
    status: Obj = {}
    dc.set_condition(
        status, {**dc.new_condition("Progressing", "True", "A", "m"), "lastTransitionTime": "t0"}
    )
    dc.set_condition(status, dc.new_condition("Progressing", "True", "A", "other message"))
    assert status["conditions"][0]["message"] == "m"  # same status and reason: kept as it was
    dc.set_condition(status, dc.new_condition("Progressing", "True", "B", "n"))
    assert status["conditions"][0]["lastTransitionTime"] == "t0" and status["conditions"][0]["reason"] == "B"
    d = {"metadata": {"generation": 1}, "spec": {"replicas": 1, "progressDeadlineSeconds": 5}}
    status["conditions"][0]["lastUpdateTime"] = "2020-01-01T00:00:00Z"
    assert dc.deployment_timed_out(d, status)
    status["conditions"][0]["lastUpdateTime"] = pt.format_time(pt.now())
    assert not dc.deployment_timed_out(d, status)


# ------------------------------------------------------------------------- controller, in-test kubelet


def test_creates_a_hashed_replica_set_with_revision_annotations(kube: Kube, kubelet: FakeKubelet) -> None:
    assert "created" in kube.apply(manifest())
    kube.wait_rolled_out()
    d = kube.get("deploy", "web")
    assert d["metadata"]["generation"] == 1 and d["status"]["observedGeneration"] == 1
    assert pt.annotations_of(d)[pt.REVISION] == "1"
    (rs,) = kube.replica_sets()
    hash_value = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{hash_value}"
    assert set(hash_value) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hash_value}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": hash_value}
    assert pt.annotations_of(rs) == {
        pt.REVISION: "1",
        pt.DESIRED_REPLICAS: "2",
        pt.MAX_REPLICAS: "3",
    }
    assert pt.controller_ref(rs) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": d["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert {k: v for k, v in d["status"].items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
    }
    conditions = {c["type"]: c for c in d["status"]["conditions"]}
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Available"]["message"] == "Deployment has minimum availability."
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert (
        conditions["Progressing"]["message"] == f'ReplicaSet "web-{hash_value}" has successfully progressed.'
    )
    messages = wait_for(lambda: kube.events("web", "ScalingReplicaSet"))
    assert messages == [f"Scaled up replica set web-{hash_value} to 2"]


def test_rolling_update_stays_within_surge_and_availability(kube: Kube, kubelet: FakeKubelet) -> None:
    strategy = "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"
    kube.apply(manifest(replicas=4, strategy=strategy))
    kube.wait_rolled_out()
    kubelet.ready_after = 0.4
    assert "configured" in kube.apply(manifest(replicas=4, strategy=strategy, image="nginx:1.26"))
    worst_total, worst_available = 0, 99
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rss = kube.replica_sets()
        worst_total = max(worst_total, sum(pt.replicas(rs) for rs in rss))
        pods = [p for p in kube.items("pods", "app=web") if pt.pod_ready(p) and not pt.deleting(p)]
        worst_available = min(worst_available, len(pods))
        if (
            len(rss) == 2
            and pt.replicas(rss[0]) == 0
            and pt.int_field(pt.status(rss[1]), "availableReplicas") == 4
        ):
            break
    assert worst_total <= 5
    assert worst_available >= 4
    kube.wait_rolled_out()
    d = kube.get("deploy", "web")
    assert d["metadata"]["generation"] == 2 and d["status"]["observedGeneration"] == 2
    old, new = kube.replica_sets()
    assert pt.revision(old) == 1 and pt.revision(new) == 2
    assert pt.replicas(old) == 0 and pt.replicas(new) == 4
    messages = kube.events("web", "ScalingReplicaSet")
    assert f"Scaled down replica set {pt.name(old)} to 3 from 4" in messages
    assert f"Scaled up replica set {pt.name(new)} to 1" in messages


def test_undo_readopts_the_old_replica_set_as_a_new_revision(kube: Kube, kubelet: FakeKubelet) -> None:
    kube.apply(manifest())
    kube.wait_rolled_out()
    kube.apply(manifest(image="nginx:1.26"))
    kube.wait_rolled_out()
    history = kube.kubectl("rollout", "history", "deploy/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "rolled back" in kube.kubectl("rollout", "undo", "deploy/web").stdout
    kube.wait_rolled_out()
    d = kube.get("deploy", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert pt.annotations_of(d)[pt.REVISION] == "3"
    revisions = kube.rs_by_revision()
    assert sorted(revisions) == [2, 3]
    readopted = revisions[3]
    assert readopted["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert pt.annotations_of(readopted)[pt.REVISION_HISTORY] == "1"
    assert pt.replicas(readopted) == 2 and pt.replicas(revisions[2]) == 0


def test_progress_deadline_exceeded_then_undo_recovers(kube: Kube, kubelet: FakeKubelet) -> None:
    kube.apply(manifest(extra_spec="progressDeadlineSeconds: 3"))
    kube.wait_rolled_out()
    kube.kubectl("set", "image", "deploy/web", "nginx=app:crash")
    result = kube.rollout_status()
    assert result.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in result.stderr
    d = kube.get("deploy", "web")
    progressing = dc.get_condition(d["status"], "Progressing")
    assert progressing is not None and progressing["status"] == "False"
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    new_rs = kube.rs_by_revision()[2]
    assert progressing["message"] == f'ReplicaSet "{pt.name(new_rs)}" has timed out progressing.'
    assert d["status"]["availableReplicas"] == 2  # the old pods still serve
    assert d["status"]["unavailableReplicas"] == 1
    assert kube.kubectl("rollout", "undo", "deploy/web").returncode == 0
    kube.wait_rolled_out()
    revisions = kube.rs_by_revision()
    assert pt.replicas(revisions[2]) == 0 and pt.replicas(revisions[3]) == 2


def test_scale_through_the_scale_subresource(kube: Kube, kubelet: FakeKubelet) -> None:
    kube.apply(manifest())
    kube.wait_rolled_out()
    kube.kubectl("scale", "deploy/web", "--replicas=4")
    kube.wait_rolled_out()

    def four_of_four() -> bool:
        row = kube.kubectl("get", "deploy", "web", "--no-headers").stdout.split()
        assert row[1] == "4/4", row
        return True

    wait_for(four_of_four)
    d = kube.get("deploy", "web")
    assert d["metadata"]["generation"] == 2 and d["status"]["observedGeneration"] == 2
    (rs,) = kube.replica_sets()
    assert pt.annotations_of(rs)[pt.DESIRED_REPLICAS] == "4" and pt.annotations_of(rs)[pt.MAX_REPLICAS] == "5"
    assert pt.revision(rs) == 1


def test_pause_holds_the_rollout_but_not_scaling(kube: Kube, kubelet: FakeKubelet) -> None:
    kube.apply(manifest())
    kube.wait_rolled_out()
    kube.kubectl("rollout", "pause", "deploy/web")
    kube.kubectl("set", "image", "deploy/web", "nginx=nginx:1.26")

    def paused() -> Obj:
        d = kube.get("deploy", "web")
        cond = dc.get_condition(d["status"], "Progressing")
        assert cond is not None and cond["reason"] == "DeploymentPaused" and cond["status"] == "Unknown"
        assert cond["message"] == "Deployment is paused"
        assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
        return d

    wait_for(paused)
    kube.kubectl("scale", "deploy/web", "--replicas=3")
    wait_for(lambda: [pt.replicas(rs) for rs in kube.replica_sets()] == [3])
    time.sleep(0.5)
    assert len(kube.replica_sets()) == 1  # still no new ReplicaSet while paused
    kube.kubectl("rollout", "resume", "deploy/web")
    kube.wait_rolled_out()
    old, new = kube.replica_sets()
    assert pt.replicas(old) == 0 and pt.replicas(new) == 3
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


def test_scaling_during_a_rollout_is_proportional(kube: Kube, kubelet: FakeKubelet) -> None:
    strategy = "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"
    kube.apply(manifest(replicas=4, strategy=strategy))
    kube.wait_rolled_out()
    kube.kubectl("set", "image", "deploy/web", "nginx=app:crash")  # the new pods never become Ready
    wait_for(lambda: [pt.replicas(rs) for rs in kube.replica_sets()] == [4, 1])
    kube.kubectl("scale", "deploy/web", "--replicas=8")
    # 8 + maxSurge 1 = 9 pods, shared in proportion to the sizes before (max-replicas 5): 4 -> 7, 1 -> 2
    wait_for(lambda: [pt.replicas(rs) for rs in kube.replica_sets()] == [7, 2])
    old, new = kube.replica_sets()
    assert (
        pt.annotations_of(old)[pt.DESIRED_REPLICAS] == "8" and pt.annotations_of(new)[pt.MAX_REPLICAS] == "9"
    )
    messages = wait_for(lambda: kube.events("web", "ScalingReplicaSet"))
    assert f"Scaled up replica set {pt.name(old)} to 7 from 4" in messages
    assert f"Scaled up replica set {pt.name(new)} to 2 from 1" in messages
    time.sleep(0.5)
    assert [pt.replicas(rs) for rs in kube.replica_sets()] == [7, 2]


def test_recreate_waits_for_old_pods_to_be_gone(kube: Kube, kubelet: FakeKubelet) -> None:
    kubelet.termination_delay = 1.0
    strategy = "strategy: {type: Recreate}"
    kube.apply(manifest(replicas=3, strategy=strategy))
    kube.wait_rolled_out()
    d = kube.get("deploy", "web")
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    kube.apply(manifest(replicas=3, strategy=strategy, image="nginx:1.26"))
    overlap = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rss = kube.replica_sets()
        pods = kube.items("pods", "app=web")
        new = [rs for rs in rss if pt.revision(rs) == 2]
        if new and pt.replicas(new[0]) > 0:
            old_hash = rss[0]["metadata"]["labels"]["pod-template-hash"]
            overlap |= any(p["metadata"]["labels"]["pod-template-hash"] == old_hash for p in pods)
            break
    assert new and not overlap
    kube.wait_rolled_out()
    messages = kube.events("web", "ScalingReplicaSet")
    assert f"Scaled down replica set {pt.name(rss[0])} to 0 from 3" in messages
    assert f"Scaled up replica set {pt.name(new[0])} to 3" in messages


def test_revision_history_limit_deletes_old_replica_sets(kube: Kube, kubelet: FakeKubelet) -> None:
    extra = "revisionHistoryLimit: 1"
    for tag in ("1.25", "1.26", "1.27", "1.28"):
        kube.apply(manifest(image=f"nginx:{tag}", extra_spec=extra))
        kube.wait_rolled_out()
    wait_for(lambda: sorted(kube.rs_by_revision()) == [3, 4], what="two ReplicaSets left")


def test_restart_makes_a_new_revision(kube: Kube, kubelet: FakeKubelet) -> None:
    kube.apply(manifest())
    kube.wait_rolled_out()
    kube.kubectl("rollout", "restart", "deploy/web")
    kube.wait_rolled_out()
    revisions = kube.rs_by_revision()
    assert sorted(revisions) == [1, 2]
    annotations = revisions[2]["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert pt.replicas(revisions[1]) == 0


def test_adopts_an_existing_replica_set_and_its_pods(kube: Kube, kubelet: FakeKubelet) -> None:
    orphan = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-handmade, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: "nginx:1.25"}]}
"""
    kube.apply(orphan)
    wait_for(lambda: len([p for p in kube.items("pods", "app=web") if pt.pod_ready(p)]) == 2)
    pods_before = {pt.name(p) for p in kube.items("pods", "app=web")}
    kube.apply(manifest())
    kube.wait_rolled_out()
    (rs,) = kube.replica_sets()
    assert pt.name(rs) == "web-handmade"
    d = kube.get("deploy", "web")
    assert pt.controller_ref(rs)["uid"] == d["metadata"]["uid"]  # type: ignore[index]
    assert pt.revision(rs) == 1
    assert {pt.name(p) for p in kube.items("pods", "app=web")} == pods_before


def test_hash_collision_bumps_the_collision_count(kube: Kube, kubelet: FakeKubelet) -> None:
    kube.apply(manifest(extra_spec="paused: true"))
    template = kube.get("deploy", "web")["spec"]["template"]
    taken = pt.template_hash(template)
    squatter = f"""
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: web-{taken}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: other}}}}
  template:
    metadata: {{labels: {{app: other}}}}
    spec: {{containers: [{{name: nginx, image: "nginx:1.25"}}]}}
"""
    kube.apply(squatter)
    kube.kubectl("rollout", "resume", "deploy/web")
    kube.wait_rolled_out()
    d = kube.get("deploy", "web")
    assert d["status"]["collisionCount"] == 1
    (rs,) = kube.replica_sets()
    assert pt.name(rs) == f"web-{pt.template_hash(template, 1)}" != f"web-{taken}"


def test_describe_shows_strategy_new_replica_set_and_events(kube: Kube, kubelet: FakeKubelet) -> None:
    """Check 33."""
    kube.apply(manifest(replicas=3))
    kube.wait_rolled_out()
    (rs,) = kube.replica_sets()
    wait_for(lambda: kube.events("web", "ScalingReplicaSet"))
    text = kube.kubectl("describe", "deploy", "web").stdout
    assert "StrategyType:           RollingUpdate" in text
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in text
    assert f"NewReplicaSet:   {pt.name(rs)} (3/3 replicas created)" in text
    assert "ScalingReplicaSet" in text and f"Scaled up replica set {pt.name(rs)} to 3" in text
    assert "Available      True    MinimumReplicasAvailable" in text
    assert "Progressing    True    NewReplicaSetAvailable" in text


def test_background_and_foreground_deletion_remove_everything(kube: Kube, kubelet: FakeKubelet) -> None:
    """Checks 25 and 26."""
    kube.apply(manifest())
    kube.wait_rolled_out()
    kube.kubectl("delete", "deploy", "web", timeout=60)
    wait_for(lambda: not kube.replica_sets() and not kube.items("pods", "app=web"), what="GC")

    kube.apply(manifest(name="fg"))
    kube.wait_rolled_out("fg")
    kube.kubectl("delete", "deploy", "fg", "--cascade=foreground", "--wait=false")
    wait_for(lambda: "NotFound" in kube.kubectl("get", "deploy", "fg", check=False).stderr, what="owner gone")
    assert not kube.replica_sets("fg") and not kube.items("pods", "app=fg")


# ------------------------------------------------------------------------- the full simulation (kubectl)


def test_sim_apply_roll_out_undo_and_scale(sim: Kube) -> None:
    """Checks 5, 6, 7, 9 and 11 on the full simulation."""
    assert "created" in sim.apply(manifest())
    sim.wait_rolled_out()
    pods = sim.kubectl("get", "pods", "-l", "app=web", "--no-headers").stdout.splitlines()
    assert len(pods) == 2 and all(line.split()[1:3] == ["1/1", "Running"] for line in pods)
    d = sim.get("deploy", "web")
    assert "kubectl.kubernetes.io/last-applied-configuration" in pt.annotations_of(d)
    assert d["metadata"]["generation"] == 1 and d["status"]["observedGeneration"] == 1
    assert d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"
    assert d["spec"]["revisionHistoryLimit"] == 10

    assert "configured" in sim.apply(manifest(image="nginx:1.26"))
    sim.wait_rolled_out()
    d = sim.get("deploy", "web")
    assert d["metadata"]["generation"] == 2
    revisions = sim.rs_by_revision()
    assert sorted(revisions) == [1, 2]
    assert pt.labels_of(revisions[1])["pod-template-hash"] != pt.labels_of(revisions[2])["pod-template-hash"]
    assert pt.replicas(revisions[1]) == 0

    history = sim.kubectl("rollout", "history", "deploy/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "rolled back" in sim.kubectl("rollout", "undo", "deploy/web").stdout
    sim.wait_rolled_out()
    revisions = sim.rs_by_revision()
    assert sorted(revisions) == [2, 3] and pt.replicas(revisions[3]) == 2
    image = sim.get("deploy", "web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "nginx:1.25"

    sim.kubectl("scale", "deploy/web", "--replicas=4")
    sim.wait_rolled_out()

    def ready_four() -> bool:
        row = sim.kubectl("get", "deploy", "web", "--no-headers").stdout.split()
        assert row[1] == "4/4", row
        return True

    wait_for(ready_four, timeout=60)


def test_sim_crash_loop_exceeds_the_progress_deadline_and_undo_recovers(sim: Kube) -> None:
    """Check 10 on the full simulation."""
    sim.apply(manifest(extra_spec="progressDeadlineSeconds: 10"))
    sim.wait_rolled_out()
    sim.kubectl("set", "image", "deploy/web", "nginx=app:crash")
    result = sim.rollout_status()
    assert result.returncode != 0
    assert "exceeded its progress deadline" in result.stderr

    def crash_looping() -> bool:
        rows = sim.kubectl("get", "pods", "-l", "app=web", "--no-headers").stdout.splitlines()
        statuses = [row.split()[2] for row in rows]
        assert "CrashLoopBackOff" in statuses or "Error" in statuses, rows
        assert statuses.count("Running") == 2, rows
        return True

    wait_for(crash_looping, timeout=60)
    d = sim.get("deploy", "web")
    assert d["status"]["availableReplicas"] == 2
    assert sim.kubectl("rollout", "undo", "deploy/web").returncode == 0
    sim.wait_rolled_out()
    d = sim.get("deploy", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"


def test_sim_describe_deployment(sim: Kube) -> None:
    """Check 33 on the full simulation."""
    sim.apply(manifest(replicas=3))
    sim.wait_rolled_out()
    (rs,) = sim.replica_sets()
    wait_for(lambda: sim.events("web", "ScalingReplicaSet"))
    text = sim.kubectl("describe", "deploy", "web").stdout
    assert "StrategyType:           RollingUpdate" in text
    assert f"NewReplicaSet:   {pt.name(rs)} (3/3 replicas created)" in text
    assert f"Scaled up replica set {pt.name(rs)} to 3" in text


def test_sim_delete_deployment_removes_replica_sets_and_pods(sim: Kube) -> None:
    """Check 25 on the full simulation."""
    sim.apply(manifest())
    sim.wait_rolled_out()
    sim.kubectl("delete", "deploy", "web", timeout=60)
    wait_for(lambda: not sim.replica_sets() and not sim.items("pods", "app=web"), timeout=60, what="GC")


def test_sim_recreate_and_pause(sim: Kube) -> None:
    """Recreate and pause/resume against the simulated kubelet's graceful deletion."""
    strategy = "strategy: {type: Recreate}"
    sim.apply(manifest(strategy=strategy))
    sim.wait_rolled_out()
    sim.kubectl("rollout", "pause", "deploy/web")
    sim.apply(manifest(strategy=strategy, image="nginx:1.26"))
    time.sleep(0.5)
    assert len(sim.replica_sets()) == 1
    sim.kubectl("rollout", "resume", "deploy/web")
    sim.wait_rolled_out()
    old, new = sim.replica_sets()
    assert pt.replicas(old) == 0 and pt.replicas(new) == 2
    pods = sim.items("pods", "app=web")
    assert {pt.labels_of(p)["pod-template-hash"] for p in pods} == {pt.labels_of(new)["pod-template-hash"]}
