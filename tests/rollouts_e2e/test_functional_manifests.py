"""Argo Rollouts' own functional manifests, run by our rollout controller on the simulated local cluster.

Acceptance data: argo-rollouts' ``examples/rollout-rolling-update.yaml`` and the ``test/e2e/functional/``
manifests that need neither analysis nor experiments (through ``TUGBOAT_EXAMPLES``). Each test drives its
manifest the way upstream's e2e suite drives it (``test/e2e/canary_test.go``, ``functional_test.go``,
``bluegreen_test.go``, ``rollback_window_test.go``) and checks the same observable outcomes: replica and
pod counts per revision at each step, ``scale-down-deadline`` annotations and delayed scale-down, abort
with and without ``abortScaleDownDelaySeconds``, ``dynamicStableScale``, canary and stable Service
selectors, NGINX canary weights, the rollback window, ephemeral metadata, phases and messages.

What differs from upstream's runs, and why:
- ALB traffic routing becomes NGINX routing on the same Ingress (:func:`support.route_with_nginx`): the
  controller does not implement ALB, and the behaviours under test only need traffic routing to exist.
- Long waits are shortened (scale-down delays, a 10 s readiness probe) so that every test stays short.
- The rollback-window manifest's analysis step becomes an indefinite pause: analysis is not in scope
  here, and a pause makes "the steps were skipped" directly observable (a normal update stops there).
- Pods with upstream's ``argoproj.io/e2e-readiness`` readiness gate are marked ready by the test, as
  upstream's ``MarkPodsReady`` does; the simulated kubelet honours readiness gates.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import rollouts_e2e_support as support
from rollouts_e2e_support import RolloutHandle

from clusterproc import ClusterProcess

pytestmark = [
    pytest.mark.skipif(support.EXAMPLES is None, reason="TUGBOAT_EXAMPLES is not set"),
    pytest.mark.usefixtures("kubectl_available"),
]

FUNCTIONAL = "test/e2e/functional"


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    proc = support.start_controller(sim_cluster, tmp_path_factory.mktemp("functional-rollouts"))
    yield proc
    support.stop_controller(proc)


@pytest.fixture
def rollout_cluster(sim_cluster: ClusterProcess, controller: subprocess.Popen[bytes]) -> ClusterProcess:
    """The simulated cluster, with the rollout controller running against it."""
    return sim_cluster


def _counts(ro: support.Obj) -> tuple[int, int, int, int, int]:
    """Desired, current, updated, ready and available replicas (upstream's ``ExpectReplicaCounts``)."""
    status = ro.get("status") or {}
    return (
        int(ro["spec"].get("replicas", 1)),
        int(status.get("replicas", 0)),
        int(status.get("updatedReplicas", 0)),
        int(status.get("readyReplicas", 0)),
        int(status.get("availableReplicas", 0)),
    )


def _canary_stable_pods(ro: RolloutHandle) -> tuple[int, int]:
    """Pods of the desired and of the stable pod hash (upstream's ``ExpectCanaryStablePodCount``)."""
    status = ro.status()
    return ro.pod_count(status["currentPodHash"]), ro.pod_count(status["stableRS"])


def _revision_pods(ro: RolloutHandle, *revisions: int) -> tuple[int, ...]:
    """Live pods of each revision (upstream's ``ExpectRevisionPodCount``)."""
    return tuple(ro.pod_count(support.hash_of(ro.rs(rev))) for rev in revisions)


def _available(replicas: int) -> Callable[[support.Obj], bool]:
    """A check: the controller reports ``replicas`` available replicas for the current generation."""
    return lambda ro: (ro.get("status") or {}).get("availableReplicas") == replicas and support.observed(ro)


def _paused_at(index: int) -> Callable[[support.Obj], bool]:
    """A check: the rollout is Paused at canary step ``index``."""
    return lambda ro: support.phase_is("Paused")(ro) and ro["status"].get("currentStepIndex") == index


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------ rolling update


def test_rolling_update_example_stays_within_max_surge_and_max_unavailable(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """examples/rollout-rolling-update.yaml (no upstream e2e test uses it; its documented behaviour): a
    canary without steps is a Deployment-style rolling update - never more than replicas + maxSurge pods
    (6), never fewer than replicas - maxUnavailable ready (4) - and revisionHistoryLimit 2 keeps two old
    ReplicaSets."""
    ro = RolloutHandle(rollout_cluster, sim_namespace, "rollout-rollingupdate")
    support.apply(
        rollout_cluster, sim_namespace, support.load_manifest("examples/rollout-rolling-update.yaml")
    )
    status = ro.wait_phase("Healthy")["status"]
    first = status["stableRS"]
    assert status["currentPodHash"] == first and status["availableReplicas"] == 5
    assert "currentStepIndex" not in status  # no steps: no step index at all

    ro.set_image("argoproj/rollouts-demo:green")
    phases: set[str] = set()
    deadline = time.monotonic() + 30
    while True:
        ro_now = ro.get()
        phases.add(str((ro_now.get("status") or {}).get("phase")))
        sets = support.replicasets(rollout_cluster, sim_namespace)
        live = ro.pods()
        assert sum(support.spec_replicas(rs) for rs in sets) <= 6, "more than replicas + maxSurge"
        assert len(live) <= 6, f"{len(live)} pods: more than replicas + maxSurge"
        ready = sum(support.is_ready(p) for p in live)
        assert ready >= 4, f"only {ready} ready pods: below replicas - maxUnavailable"
        if support.updated_to_new_template(first, "Healthy")(ro_now):
            break
        assert time.monotonic() < deadline, f"the rolling update did not finish: {ro_now.get('status')}"
        time.sleep(0.05)
    second = ro_now["status"]["currentPodHash"]
    assert "Progressing" in phases
    assert ro_now["status"]["stableRS"] == second and ro_now["status"].get("message", "") == ""
    assert support.spec_replicas(ro.rs_of(second)) == 5 and support.spec_replicas(ro.rs_of(first)) == 0

    # Two more revisions, the second applied while the first is still rolling out: four ReplicaSets, so
    # the first is now beyond revisionHistoryLimit (2) and goes away.
    ro.set_image("argoproj/rollouts-demo:yellow")
    third = ro.wait(
        lambda r: (r.get("status") or {}).get("currentPodHash") not in (None, first, second),
        what="the third revision seen",
    )["status"]["currentPodHash"]
    ro.set_image("argoproj/rollouts-demo:red")
    fourth = ro.wait_update(third, "Healthy")["status"]["currentPodHash"]

    def remaining() -> set[str] | None:
        found = {support.hash_of(rs) for rs in support.replicasets(rollout_cluster, sim_namespace)}
        return found if len(found) == 3 else None

    hashes = support.wait_for(remaining, what="three ReplicaSets left", timeout=10)
    assert hashes == {second, third, fourth}


# ------------------------------------------------------------------------------------ basic canary


def test_basic_rollout_scaled_while_paused_keeps_the_weight(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """rollout-basic.yaml with steps [setWeight 25, pause] (TestRolloutScalingWhenPaused): scaling a
    paused rollout keeps the canary share: 1+1 pods at 1 replica, 2+6 at 8, 1+3 at 4."""
    docs = support.load_manifest(f"{FUNCTIONAL}/rollout-basic.yaml")
    support.canary_of(docs)["steps"] = [{"setWeight": 25}, {"pause": {}}]
    ro = RolloutHandle(rollout_cluster, sim_namespace, "basic")
    support.apply(rollout_cluster, sim_namespace, docs)
    first = ro.wait_phase("Healthy")["status"]["stableRS"]
    ro.touch("v2")
    status = ro.wait_update(first, "Paused", "CanaryPauseStep")["status"]
    assert status["currentStepIndex"] == 1 and status["stableRS"] == first
    support.wait_equal(lambda: _canary_stable_pods(ro), (1, 1), what="1 canary + 1 stable pod")

    for replicas, expected in ((8, (2, 6)), (4, (1, 3))):
        ro.scale(replicas)
        ro.wait(_available(replicas), what=f"{replicas} available replicas")
        support.wait_equal(
            lambda: _canary_stable_pods(ro), expected, what=f"canary/stable pods at {replicas}", timeout=10
        )
        assert ro.status()["phase"] == "Paused"


def test_canary_update_during_a_pause_scales_the_intermediate_revision_down(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """rollout-canary-with-pause.yaml (TestCanaryWithPausedRollout): a third revision applied while the
    second is paused at 20 % replaces it: revision 2 goes to zero pods, revision 3 gets the canary pod,
    and the canary Service follows the new canary while the stable Service stays on revision 1."""
    docs = support.load_manifest(f"{FUNCTIONAL}/rollout-canary-with-pause.yaml")
    probe = support.rollout_doc(docs)["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["initialDelaySeconds"] = 1  # 10 s upstream
    ro = RolloutHandle(rollout_cluster, sim_namespace, "rollout-canary-with-pause")
    support.apply(rollout_cluster, sim_namespace, docs)
    first = ro.wait_phase("Healthy")["status"]["stableRS"]
    ro.touch("v2")
    second = ro.wait_update(first, "Paused", "CanaryPauseStep")["status"]["currentPodHash"]
    ro.touch("v3")
    status = ro.wait_update(second, "Paused", "CanaryPauseStep")["status"]
    third = status["currentPodHash"]
    assert third != first and status["stableRS"] == first and status["currentStepIndex"] == 1
    support.wait_equal(lambda: _revision_pods(ro, 1, 2, 3), (3, 0, 1), what="pods of revisions 1, 2, 3")
    assert support.spec_replicas(ro.rs(2)) == 0
    assert ro.service_hash("rollout-canary-with-pause-canary") == third
    assert ro.service_hash("rollout-canary-with-pause-stable") == first


# ------------------------------------------------------------------------------------ blue-green


def test_blue_green_functional_update_counts_delay_and_events(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """rollout-bluegreen.yaml (TestBlueGreenUpdate): 3 replicas, automatic promotion; the old revision
    keeps its 3 pods through scaleDownDelaySeconds (10 s upstream, 4 s here), then goes."""
    docs = support.load_manifest(f"{FUNCTIONAL}/rollout-bluegreen.yaml")
    support.rollout_doc(docs)["spec"]["strategy"]["blueGreen"]["scaleDownDelaySeconds"] = 4
    ro = RolloutHandle(rollout_cluster, sim_namespace, "bluegreen")
    support.apply(rollout_cluster, sim_namespace, docs)
    healthy = ro.wait_phase("Healthy")
    first = healthy["status"]["stableRS"]
    assert _counts(healthy) == (3, 3, 3, 3, 3)
    assert ro.service_hash("bluegreen") == first

    ro.touch("v2")
    progressing = ro.wait_update(first, "Progressing")
    second = progressing["status"]["currentPodHash"]
    support.wait_equal(lambda: ro.service_hash("bluegreen"), second, what="the active Service on revision 2")
    ro.wait(lambda r: _counts(r) == (3, 6, 3, 3, 3), what="counts 3/6/3/3/3 after the switch", timeout=5)
    healthy = ro.wait_phase("Healthy", pod_hash=second)
    assert _counts(healthy) == (3, 6, 3, 3, 3)  # the old ReplicaSet waits out its delay
    assert (
        healthy["status"]["stableRS"] == second and healthy["status"]["blueGreen"]["activeSelector"] == second
    )
    promoted_at = datetime.now(UTC)
    old = ro.rs_of(first)
    deadline = support.deadline_of(old)
    assert deadline is not None and support.spec_replicas(old) == 3
    assert abs((_parse_time(deadline) - promoted_at).total_seconds() - 4) <= 3

    support.wait_equal(
        lambda: support.spec_replicas(ro.rs_of(first)), 0, what="the old ReplicaSet scaled down"
    )
    assert datetime.now(UTC) >= _parse_time(deadline), "scaled down before its scale-down-deadline"
    ro.wait(lambda r: _counts(r) == (3, 3, 3, 3, 3), what="counts back to 3/3/3/3/3", timeout=10)

    # Upstream's event reasons, each emitted once per occasion (RolloutAddedToInformer aside: it marks a Go
    # informer cache, not the rollout); the delayed scale-down adds a third ScalingReplicaSet.
    expected = {
        "RolloutUpdated": 2,
        "NewReplicaSetCreated": 2,
        "ScalingReplicaSet": 3,
        "RolloutCompleted": 2,
        "SwitchService": 2,
        "RolloutNotCompleted": 1,
    }
    seen: Counter[str] = Counter()
    for reason, _message, count in ro.events():
        seen[reason] += count
    assert dict(seen) == expected, "\n".join(f"{r} x{n}: {m}" for r, m, n in ro.events())


# ------------------------------------------------------------------------------------ scale-down delay


def test_canary_scale_down_delay_revision_limit_and_delayed_scale_down(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """canary-scaledowndelay.yaml (TestCanaryScaleDownDelay, TestCanaryScaleDownDelayWithProgressDeadline):
    with traffic routing the previous stable keeps its pods, annotated with ``scale-down-deadline``;
    scaleDownDelayRevisionLimit 1 scales older ones down at once, without the annotation; going back to a
    ReplicaSet inside its delay takes the annotation off; after the delay (30 s upstream, 6 s here) the old
    stable goes to zero, and the rollout stays Healthy although progressDeadlineSeconds passed meanwhile."""
    docs = support.load_manifest(f"{FUNCTIONAL}/canary-scaledowndelay.yaml")
    support.route_with_nginx(docs)
    spec = support.rollout_doc(docs)["spec"]
    spec["progressDeadlineSeconds"] = 3
    spec["strategy"]["canary"]["scaleDownDelaySeconds"] = 6
    ro = RolloutHandle(rollout_cluster, sim_namespace, "canary-scaledowndelay")
    support.apply(rollout_cluster, sim_namespace, docs)
    previous = ro.wait_phase("Healthy")["status"]["stableRS"]

    def update(rev: str) -> None:
        """A new template; returns once the previous stable has its deadline, and a second later."""
        nonlocal previous
        old_stable = previous
        ro.patch({"spec": {"template": {"metadata": {"annotations": {"rev": rev}}}}})
        previous = ro.wait_update(old_stable, "Healthy")["status"]["currentPodHash"]
        support.wait_for(lambda: support.deadline_of(ro.rs_of(old_stable)), what="the old stable's deadline")
        time.sleep(1)  # what the following reconciles do (upstream's test sleeps too)

    def replicas_and_deadline(revision: int) -> tuple[int, bool]:
        rs = ro.rs(revision)
        return support.spec_replicas(rs), support.deadline_of(rs) is not None

    update("two")
    assert replicas_and_deadline(1) == (1, True), "the previous stable waits out its delay"

    update("three")
    assert replicas_and_deadline(1) == (0, False), "beyond scaleDownDelayRevisionLimit: down at once"
    assert replicas_and_deadline(2) == (1, True)

    update("two")  # revision 2's template again, inside its delay: it becomes revision 4
    assert replicas_and_deadline(1) == (0, False)
    assert replicas_and_deadline(4) == (1, False), "the new stable keeps no scale-down-deadline"
    assert replicas_and_deadline(3) == (1, True)

    # The delay passes: revision 3 goes to zero, not before its deadline, and loses the annotation; the
    # rollout stays Healthy throughout, past progressDeadlineSeconds (3 s).
    deadline = _parse_time(str(support.deadline_of(ro.rs(3))))
    end = time.monotonic() + 15
    while replicas_and_deadline(3)[0] != 0:
        assert ro.status()["phase"] == "Healthy", ro.status()
        assert time.monotonic() < end, "revision 3 was not scaled down after its delay"
        time.sleep(0.2)
    assert datetime.now(UTC) >= deadline, "scaled down before the deadline"
    assert replicas_and_deadline(3) == (0, False), "a scaled-down ReplicaSet keeps no scale-down-deadline"
    support.wait_equal(lambda: ro.pod_count(support.hash_of(ro.rs(3))), 0, what="revision 3's pods gone")
    assert ro.wait_phase("Healthy")["status"]["stableRS"] == support.hash_of(ro.rs(4))


# ------------------------------------------------------------------------------------ abort


def test_canary_abort_scales_the_canary_down_after_the_abort_delay(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """canary-scaledownonabort.yaml (TestCanaryScaleDownOnAbort): with traffic routing and
    abortScaleDownDelaySeconds 1, an abort sends the canary Service back to stable and the canary's pods
    go about a second later."""
    docs = support.load_manifest(f"{FUNCTIONAL}/canary-scaledownonabort.yaml")
    canary_ingress = support.route_with_nginx(docs)
    ro = RolloutHandle(rollout_cluster, sim_namespace, "canary-scaledownd-on-abort")
    support.apply(rollout_cluster, sim_namespace, docs)
    first = ro.wait_phase("Healthy")["status"]["stableRS"]
    ro.touch("v2")
    second = ro.wait_update(first, "Paused", "CanaryPauseStep")["status"]["currentPodHash"]
    support.wait_equal(lambda: _revision_pods(ro, 1, 2), (1, 1), what="setCanaryScale replicas 1")

    ro.abort()
    status = ro.wait_phase("Degraded", "RolloutAborted: Rollout aborted update to revision 2")["status"]
    assert status["abort"] is True and status["stableRS"] == first and status["currentPodHash"] == second
    assert "pauseConditions" not in status and status["currentStepIndex"] == 0
    assert ro.service_hash("canary-scaledowndelay-canary") == first
    assert ro.service_hash("canary-scaledowndelay-stable") == first
    assert ro.ingress_weight(canary_ingress) == "0"
    support.wait_equal(lambda: ro.pod_count(second), 0, what="the aborted canary's pods gone", timeout=6)
    assert ro.pod_count(first) == 1 and ro.status()["phase"] == "Degraded"


def test_basic_canary_abort_scales_the_canary_down(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """canary-scaledownonabortnotrafficrouting.yaml (TestCanaryScaleDownOnAbortNoTrafficRouting): without
    traffic routing an abort rolls back to stable at once (no abort delay, no deadline annotation)."""
    docs = support.load_manifest(f"{FUNCTIONAL}/canary-scaledownonabortnotrafficrouting.yaml")
    ro = RolloutHandle(rollout_cluster, sim_namespace, "canary-scaledownd-on-abort")
    support.apply(rollout_cluster, sim_namespace, docs)
    first = ro.wait_phase("Healthy")["status"]["stableRS"]
    ro.touch("v2")
    second = ro.wait_update(first, "Paused", "CanaryPauseStep")["status"]["currentPodHash"]
    support.wait_equal(lambda: _revision_pods(ro, 1, 2), (1, 1), what="1 canary + 1 stable pod at 50 %")
    assert ro.service_hash("canary-scaledowndelay-canary") == second

    ro.abort()
    ro.wait_phase("Degraded", "RolloutAborted: Rollout aborted update to revision 2")
    assert ro.service_hash("canary-scaledowndelay-canary") == first
    support.wait_equal(lambda: ro.pod_count(second), 0, what="the aborted canary's pods gone", timeout=6)
    assert support.deadline_of(ro.rs_of(second)) is None
    assert ro.pod_count(first) == 1


def test_canary_abort_with_zero_delay_leaves_the_canary_up(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """canary-unscaledownonabort.yaml (TestCanaryUnScaleDownOnAbort): abortScaleDownDelaySeconds 0 leaves
    the aborted canary running, with no scale-down deadline; traffic and the canary Service go back."""
    docs = support.load_manifest(f"{FUNCTIONAL}/canary-unscaledownonabort.yaml")
    canary_ingress = support.route_with_nginx(docs)
    ro = RolloutHandle(rollout_cluster, sim_namespace, "canary-scaledownd-on-abort")
    support.apply(rollout_cluster, sim_namespace, docs)
    first = ro.wait_phase("Healthy")["status"]["stableRS"]
    ro.touch("v2")
    second = ro.wait_update(first, "Paused", "CanaryPauseStep")["status"]["currentPodHash"]
    ro.abort()
    ro.wait_phase("Degraded", "RolloutAborted: Rollout aborted update to revision 2")
    time.sleep(3)
    assert _revision_pods(ro, 1, 2) == (1, 1)
    rs2 = ro.rs(2)
    assert support.hash_of(rs2) == second and support.spec_replicas(rs2) == 1
    assert support.deadline_of(rs2) is None
    assert ro.service_hash("canary-scaledowndelay-canary") == first
    assert ro.ingress_weight(canary_ingress) == "0"
    assert ro.status()["phase"] == "Degraded"


# ------------------------------------------------------------------------------------ dynamicStableScale


def test_dynamic_stable_scale_steps_back_on_abort(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """canary-dynamic-stable-scale.yaml (TestCanaryDynamicStableScale): the stable ReplicaSet shrinks as
    the canary weight grows (3+1 at 25 %, 1+3 at 75 %); on abort the canary shrinks only as stable pods
    become ready, and the canary Service returns to stable once the canary is gone."""
    docs = support.load_manifest(f"{FUNCTIONAL}/canary-dynamic-stable-scale.yaml")
    support.route_with_nginx(docs)
    ro = RolloutHandle(rollout_cluster, sim_namespace, "dynamic-stable-scale")
    support.apply(rollout_cluster, sim_namespace, docs)
    support.wait_for(lambda: ro.status().get("stableRS"), what="revision 1 created")
    first = ro.status()["stableRS"]
    ro.mark_pods_ready(first, 4)
    ro.wait_phase("Healthy")

    ro.touch("v2")
    second = ro.wait(
        lambda r: (r.get("status") or {}).get("currentPodHash") not in (None, first), what="revision 2"
    )["status"]["currentPodHash"]
    ro.mark_pods_ready(second, 1)
    ro.wait_phase("Paused", "CanaryPauseStep", pod_hash=second)
    support.wait_equal(lambda: _revision_pods(ro, 1, 2), (3, 1), what="pods at 25 %", timeout=5)
    time.sleep(1)
    assert _revision_pods(ro, 1, 2) == (3, 1)

    ro.promote()
    ro.mark_pods_ready(second, 2)
    ro.wait(lambda r: (r.get("status") or {}).get("currentStepIndex") == 3, what="step 3")
    support.wait_equal(lambda: _revision_pods(ro, 1, 2), (1, 3), what="pods at 75 %", timeout=5)
    time.sleep(1)
    assert _revision_pods(ro, 1, 2) == (1, 3)

    # Abort: the canary shrinks as the stable's new pods become ready.
    ro.abort()
    ro.mark_pods_ready(first, 2)  # 3 of 4 stable pods ready
    support.wait_equal(lambda: _revision_pods(ro, 1, 2), (4, 1), what="stable 4 pods, canary 1", timeout=10)
    assert ro.service_hash("dynamic-stable-scale-canary") != ro.service_hash("dynamic-stable-scale-stable")
    ro.mark_pods_ready(first, 1)  # 4 of 4
    support.wait_equal(lambda: ro.pod_count(second), 0, what="the canary's pods gone", timeout=10)
    support.wait_equal(
        lambda: ro.service_hash("dynamic-stable-scale-canary"),
        first,
        what="canary Service on stable",
        timeout=5,
    )
    assert _revision_pods(ro, 1) == (4,)


def test_dynamic_stable_scale_abort_with_an_explicit_abort_delay(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """canary-dynamic-stable-scale-abort-delay.yaml (TestCanaryDynamicStableScaleAbortScaleDownDelay,
    #4898): on abort the canary keeps its pods and its 75 % weight while stable cannot serve; the weight
    steps down as stable pods become ready; only at weight 0 does the canary get its deadline
    (abortScaleDownDelaySeconds 10 upstream, 3 here), after which it drains."""
    docs = support.load_manifest(f"{FUNCTIONAL}/canary-dynamic-stable-scale-abort-delay.yaml")
    support.route_with_nginx(docs)
    support.canary_of(docs)["abortScaleDownDelaySeconds"] = 3
    ro = RolloutHandle(rollout_cluster, sim_namespace, "dynamic-stable-scale-abort")
    support.apply(rollout_cluster, sim_namespace, docs)
    support.wait_for(lambda: ro.status().get("stableRS"), what="revision 1 created")
    first = ro.status()["stableRS"]
    ro.mark_pods_ready(first, 4)
    ro.wait_phase("Healthy")

    ro.touch("v2")
    second = ro.wait(
        lambda r: (r.get("status") or {}).get("currentPodHash") not in (None, first), what="revision 2"
    )["status"]["currentPodHash"]
    ro.mark_pods_ready(second, 1)
    ro.wait_phase("Paused", "CanaryPauseStep", pod_hash=second)
    ro.promote()
    ro.mark_pods_ready(second, 2)
    ro.wait(lambda r: (r.get("status") or {}).get("currentStepIndex") == 3, what="step 3")
    support.wait_equal(lambda: _revision_pods(ro, 1, 2), (1, 3), what="pods at 75 %", timeout=5)

    ro.abort()
    time.sleep(2)
    # Stable's new pods are not ready: the canary keeps its pods, its weight, and no deadline.
    assert _revision_pods(ro, 2) == (3,)
    assert support.deadline_of(ro.rs(2)) is None
    assert ro.status()["canary"]["weights"]["canary"]["weight"] == 75

    ro.mark_pods_ready(first, 2)  # 3 of 4 stable pods ready: the weight steps down to 25
    support.wait_equal(lambda: _revision_pods(ro, 1), (4,), what="stable scaled up to 4", timeout=10)
    ro.mark_pods_ready(first, 1)  # 4 of 4
    weights = ro.wait(
        lambda r: (
            ((r.get("status") or {}).get("canary") or {}).get("weights", {}).get("canary", {}).get("weight")
            == 0
        ),
        what="all traffic back on stable",
        timeout=10,
    )["status"]["canary"]["weights"]
    assert weights["stable"]["weight"] == 100
    rs2 = support.wait_for(
        lambda: rs if support.deadline_of(rs := ro.rs(2)) else None, what="the canary's deadline", timeout=5
    )
    assert _revision_pods(ro, 2) == (3,), "the canary keeps its pods through abortScaleDownDelaySeconds"
    assert support.hash_of(rs2) == second
    support.wait_equal(
        lambda: ro.pod_count(second), 0, what="the canary drained after its deadline", timeout=10
    )
    assert _revision_pods(ro, 1) == (4,)
    support.wait_equal(
        lambda: ro.service_hash("dynamic-stable-scale-abort-canary"),
        ro.service_hash("dynamic-stable-scale-abort-stable"),
        what="the canary Service back on stable",
        timeout=5,
    )


# ------------------------------------------------------------------------------------ NGINX


def test_nginx_set_canary_scale_steps(rollout_cluster: ClusterProcess, sim_namespace: str) -> None:
    """nginx-template.yaml (TestCanarySetCanaryScale): setCanaryScale decouples the canary's replicas
    from the NGINX canary weight: weight 25 % of replicas, then a fixed 3, then matchTrafficWeight."""
    name = "set-canary-scale"
    docs = support.load_manifest(f"{FUNCTIONAL}/nginx-template.yaml", replace={"REPLACEME": name})
    support.canary_of(docs)["steps"] = [
        {"pause": {}},
        {"setCanaryScale": {"weight": 25}},
        {"pause": {"duration": "100s"}},
        {"setWeight": 50},
        {"pause": {"duration": "10s"}},
        {"setCanaryScale": {"replicas": 3}},
        {"pause": {}},
        {"setCanaryScale": {"matchTrafficWeight": True}},
        {"pause": {"duration": "5s"}},
    ]
    canary_ingress = f"{name}-{name}-ingress-canary"
    ro = RolloutHandle(rollout_cluster, sim_namespace, name)
    support.apply(rollout_cluster, sim_namespace, docs)
    first = ro.wait_phase("Healthy")["status"]["stableRS"]
    ro.touch("v2")
    ro.wait_update(first, "Paused", "CanaryPauseStep")
    assert ro.status()["currentStepIndex"] == 0
    support.wait_equal(lambda: _canary_stable_pods(ro), (0, 4), what="step 0 pods")
    assert ro.ingress_weight(canary_ingress) == "0"

    for index, pods, weight in ((2, (1, 4), "0"), (4, (1, 4), "50"), (6, (3, 4), "50"), (8, (2, 4), "50")):
        ro.promote()
        ro.wait(_paused_at(index), what=f"paused at step {index}")
        support.wait_equal(lambda: _canary_stable_pods(ro), pods, what=f"step {index} pods", timeout=5)
        support.wait_equal(
            lambda: ro.ingress_weight(canary_ingress), weight, what=f"step {index} weight", timeout=5
        )

    ro.promote()
    status = ro.wait_phase("Healthy", pod_hash=ro.status()["currentPodHash"])["status"]
    assert status["stableRS"] == status["currentPodHash"] and status["currentStepIndex"] == 9
    support.wait_equal(lambda: ro.pod_count(status["currentPodHash"]), 4, what="4 pods of the new revision")
    support.wait_equal(lambda: ro.ingress_weight(canary_ingress), "0", what="weight back to 0", timeout=5)


# ------------------------------------------------------------------------------------ rollback window


def test_rollback_window_skips_the_steps_only_within_the_window(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """rollout-rollback-window.yaml (TestRollbackAnalysisWithinWindow / OutsideWindow), rollbackWindow
    revisions 2: going back to a ReplicaSet with fewer than 2 ReplicaSets created between it and the
    stable one skips the steps; going back further runs them. (The analysis step is a pause here.)"""
    docs = support.load_manifest(f"{FUNCTIONAL}/rollout-rollback-window.yaml")
    steps = support.canary_of(docs)["steps"]
    assert "analysis" in steps[1]
    steps[1] = {"pause": {}}
    ro = RolloutHandle(rollout_cluster, sim_namespace, "window")
    support.apply(rollout_cluster, sim_namespace, docs)
    hashes = {"initial": ro.wait_phase("Healthy")["status"]["stableRS"]}

    def update(rev: str) -> None:
        """Upstream's update: the label ``rev`` on the Rollout and on its pod template."""
        labels = {"labels": {"rev": rev}}
        ro.patch({"metadata": labels, "spec": {"template": {"metadata": labels}}})

    for previous, rev in (("initial", "two"), ("two", "three"), ("three", "four")):  # revisions 2, 3, 4
        update(rev)
        status = ro.wait_update(hashes[previous], "Paused", "CanaryPauseStep")["status"]
        hashes[rev] = status["currentPodHash"]
        ro.promote()
        ro.wait_phase("Healthy", pod_hash=hashes[rev])

    # Back to "initial" (revision 5): "two" and "three" were created between it and the stable "four",
    # so it is outside the window: the steps run and the rollout stops at the pause.
    update("initial")
    status = ro.wait_update(hashes["four"], "Paused", "CanaryPauseStep")["status"]
    assert status["currentPodHash"] == hashes["initial"] and status["currentStepIndex"] == 1
    assert status["stableRS"] == hashes["four"]

    # Back to "two" instead (revision 6): only "three" lies between it and the stable "four": within the
    # window, so the steps are skipped - no pause - and it is promoted as a rollback.
    update("two")
    end = time.monotonic() + 30
    while not support.phase_is("Healthy", pod_hash=hashes["two"])(found := ro.get()):
        status = found.get("status") or {}
        if support.observed(found) and status.get("currentPodHash") == hashes["two"]:
            assert status.get("phase") != "Paused", f"a rollback within the window paused: {status}"
        assert time.monotonic() < end, f"the rollback did not finish: {status}"
        time.sleep(0.05)
    assert found["metadata"]["annotations"][support.REVISION] == "6"
    assert found["status"]["currentStepIndex"] == 2 and found["status"]["stableRS"] == hashes["two"]
    completed = [m for reason, m, _ in ro.events() if reason == "RolloutCompleted"]
    assert f"Rollout completed update to revision 6 ({hashes['two']}): Rollback within window" in completed
    support.wait_equal(lambda: ro.pod_count(hashes["initial"]), 0, what="the abandoned revision scaled down")


# ------------------------------------------------------------------------------------ ephemeral metadata


def test_ephemeral_labels_follow_the_role_of_each_revision(
    rollout_cluster: ClusterProcess, sim_namespace: str
) -> None:
    """ephemeral-labels.yaml (TestEphemeralMetadata): stableMetadata and canaryMetadata labels go onto the
    ReplicaSet templates (recorded in ``rollout.argoproj.io/ephemeral-metadata``) and the running pods,
    are replaced when the metadata changes, and switch when the canary becomes stable."""
    ro = RolloutHandle(rollout_cluster, sim_namespace, "ephemeral-label")
    support.apply(
        rollout_cluster, sim_namespace, support.load_manifest(f"{FUNCTIONAL}/ephemeral-labels.yaml")
    )
    first = ro.wait_phase("Healthy")["status"]["stableRS"]

    def labels_of(pod_hash: str) -> list[dict[str, str]]:
        return [dict(p["metadata"].get("labels") or {}) for p in ro.pods(pod_hash)]

    def roles(pod_hash: str, key: str) -> list[str | None]:
        return [labels.get(key) for labels in labels_of(pod_hash)]

    def template_labels(pod_hash: str) -> dict[str, str]:
        return dict(ro.rs_of(pod_hash)["spec"]["template"]["metadata"].get("labels") or {})

    support.wait_equal(
        lambda: roles(first, "role"), ["stable", "stable"], what="stable pods labelled", timeout=5
    )
    assert template_labels(first)["role"] == "stable"
    assert support.ephemeral_record(ro.rs_of(first)) == {"labels": {"role": "stable"}}

    ro.touch("v2")
    second = ro.wait_update(first, "Paused", "CanaryPauseStep")["status"]["currentPodHash"]
    support.wait_equal(lambda: roles(second, "role"), ["canary"], what="the canary pod labelled", timeout=5)
    assert roles(first, "role") == ["stable"]
    assert template_labels(second)["role"] == "canary"
    assert support.ephemeral_record(ro.rs_of(second)) == {"labels": {"role": "canary"}}

    # New canary metadata: the old label goes, the new one comes, on the ReplicaSet and on the pod.
    ro.patch(
        {"spec": {"strategy": {"canary": {"canaryMetadata": {"labels": {"role": None, "role2": "canary2"}}}}}}
    )
    support.wait_equal(
        lambda: [(labels.get("role"), labels.get("role2")) for labels in labels_of(second)],
        [(None, "canary2")],
        what="the canary pod relabelled",
        timeout=5,
    )
    assert "role" not in template_labels(second) and template_labels(second)["role2"] == "canary2"
    assert support.ephemeral_record(ro.rs_of(second)) == {"labels": {"role2": "canary2"}}

    ro.promote()
    ro.wait_phase("Healthy", pod_hash=second)
    support.wait_equal(
        lambda: sorted((labels.get("role"), labels.get("role2") or "") for labels in labels_of(second)),
        [("stable", ""), ("stable", "")],
        what="the promoted pods labelled stable",
        timeout=5,
    )

    ro.patch(
        {"spec": {"strategy": {"canary": {"stableMetadata": {"labels": {"role": None, "role2": "stable2"}}}}}}
    )
    support.wait_equal(
        lambda: [(labels.get("role"), labels.get("role2")) for labels in labels_of(second)],
        [(None, "stable2"), (None, "stable2")],
        what="the stable pods relabelled",
        timeout=5,
    )
    assert support.ephemeral_record(ro.rs_of(second)) == {"labels": {"role2": "stable2"}}
