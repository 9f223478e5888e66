"""The rollout Reconciler driven step by step against the bare local cluster (research/rollouts.md §2).

There are no controllers in the bare cluster, so the test plays the ReplicaSet controller: it patches
ReplicaSet status through ``/status`` (``make_available``) and hands the objects it reads back from the
API to ``Reconciler.reconcile`` with a controlled clock, so pause durations, scale-down deadlines and the
progress deadline are tested without sleeping. Blue-green, abort/retry/undo, the phase order, the
progress deadline, InvalidSpec and history trimming are here; the canary step machine is in
``test_reconciler_canary.py``, which shares this harness.

Tests marked ``xfail(strict=True)`` pin a divergence from Argo Rollouts: they state upstream's behaviour
and start passing (and so fail as XPASS) once the Reconciler is fixed.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, reconciler
from tugboat.rollouts import replicasets as rsutil

HASH = rsutil.HASH_LABEL
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
_installed: set[str] = set()


def at(seconds: float) -> datetime:
    """The test clock: ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def template(image: str) -> Obj:
    return {
        "metadata": {"labels": {"app": "demo"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def blue_green_spec(*, replicas: int = 3, spec: Obj | None = None, **blue_green: Any) -> Obj:
    """A blue-green Rollout spec: keywords go into the strategy, ``spec`` into the spec."""
    strategy = {"activeService": "active", "previewService": "preview", **blue_green}
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": template("demo:1"),
        "strategy": {"blueGreen": strategy},
        **(spec or {}),
    }


def canary_spec(
    *, replicas: int = 10, steps: list[Obj] | None = None, canary: Obj | None = None, **spec: Any
) -> Obj:
    """A canary Rollout spec: ``canary`` goes into the strategy, other keywords into the spec."""
    strategy: Obj = dict(canary or {})
    if steps is not None:
        strategy["steps"] = steps
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": template("demo:1"),
        "strategy": {"canary": strategy},
        **spec,
    }


class Harness:
    """One Rollout in one namespace, reconciled by hand; the test is the ReplicaSet controller."""

    def __init__(self, client: Client, namespace: str, *, name: str = "demo") -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.events: list[tuple[str, str, str]] = []
        self.reconciler = reconciler.Reconciler(client, record=self._record)

    def _record(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]

    # ---------------------------------------------------------------------------------- setup

    async def create(self, spec: Obj, *, services: tuple[str, ...] = ()) -> Obj:
        for svc in services:
            await self.client.create(
                kinds.SERVICE,
                {
                    "metadata": {"name": svc, "namespace": self.namespace},
                    "spec": {"selector": {"app": "demo"}, "ports": [{"port": 80, "targetPort": 8080}]},
                },
            )
        body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
        return await self.client.create(crds.ROLLOUT, body)

    # ---------------------------------------------------------------------------------- reads

    async def rollout(self) -> Obj:
        return await self.client.get(crds.ROLLOUT, self.name, self.namespace)

    async def status(self) -> Obj:
        result: Obj = (await self.rollout()).get("status") or {}
        return result

    async def replicasets(self) -> dict[str, Obj]:
        """The Rollout's ReplicaSets by pod template hash."""
        ro = await self.rollout()
        items, _ = await self.client.list(kinds.REPLICASET, self.namespace)
        uid = ro["metadata"]["uid"]
        return {
            rsutil.hash_of(rs): rs
            for rs in items
            if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])
        }

    async def rs(self, pod_hash: str) -> Obj:
        return (await self.replicasets())[pod_hash]

    async def replicas(self) -> dict[str, int]:
        """``spec.replicas`` of every ReplicaSet by hash."""
        return {h: rsutil.spec_replicas(rs) for h, rs in (await self.replicasets()).items()}

    async def services(self) -> dict[str, Obj]:
        items, _ = await self.client.list(kinds.SERVICE, self.namespace)
        return {svc["metadata"]["name"]: svc for svc in items}

    async def selector(self, service: str) -> str | None:
        svc = (await self.services())[service]
        value = (svc["spec"].get("selector") or {}).get(HASH)
        return None if value is None else str(value)

    # ---------------------------------------------------------------------------------- actions

    async def step(self, now: datetime) -> float | None:
        """One reconcile with the objects as the API has them now."""
        ro = await self.rollout()
        owned = list((await self.replicasets()).values())
        services = await self.services()
        return await self.reconciler.reconcile(ro, owned, services.get, now=now)

    async def make_available(
        self, pod_hash: str, count: int | None = None, *, available: int | None = None
    ) -> None:
        """The ReplicaSet controller and kubelets: ``count`` (default spec.replicas) pods, of which
        ``available`` (default all) are ready and available."""
        rs = await self.rs(pod_hash)
        n = rsutil.spec_replicas(rs) if count is None else count
        up = n if available is None else available
        status = {"replicas": n, "readyReplicas": up, "availableReplicas": up, "fullyLabeledReplicas": n}
        await self.client.patch_status(
            kinds.REPLICASET, rs["metadata"]["name"], status, namespace=self.namespace
        )

    async def make_all_available(self) -> None:
        for pod_hash, rs in (await self.replicasets()).items():
            if rsutil.current(rs) != rsutil.spec_replicas(rs) or rsutil.available(rs) != rsutil.spec_replicas(
                rs
            ):
                await self.make_available(pod_hash)

    async def converge(self, now: datetime, *, rounds: int = 20) -> None:
        """Reconcile and let every ReplicaSet reach its spec until nothing changes any more."""
        previous: Any = None
        for _ in range(rounds):
            await self.step(now)
            await self.make_all_available()
            ro = await self.rollout()
            snapshot = (ro.get("status"), await self.replicas())
            if snapshot == previous:
                return
            previous = copy.deepcopy(snapshot)
        raise AssertionError(f"no steady state after {rounds} reconciles: {previous}")

    async def request(self, status: Obj) -> None:
        """A client's request through /status (promote, abort, retry), as kubectl argo rollouts does."""
        await self.client.patch_status(crds.ROLLOUT, self.name, status, namespace=self.namespace)

    async def patch_spec(self, spec: Obj) -> None:
        await self.client.patch(crds.ROLLOUT, self.name, {"spec": spec}, namespace=self.namespace)

    async def set_image(self, image: str) -> None:
        await self.patch_spec({"template": template(image)})


@pytest.fixture
async def client(cluster: ClusterProcess) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test-reconciler") as c:
        if cluster.url not in _installed:
            await crds.install(c)
            _installed.add(cluster.url)
        yield c


@pytest.fixture
def h(client: Client, namespace: str) -> Harness:
    return Harness(client, namespace)


def condition(status: Obj, kind: str) -> Obj:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


# ------------------------------------------------------------------------------------ blue-green


async def bg_deployed(h: Harness, **blue_green: Any) -> str:
    """A blue-green Rollout at revision 1, Healthy; returns its hash."""
    await h.create(blue_green_spec(**blue_green), services=("active", "preview"))
    await h.converge(at(0))
    status = await h.status()
    assert status["phase"] == "Healthy", status
    return str(status["stableRS"])


async def test_blue_green_initial_deploy(h: Harness) -> None:
    await h.create(blue_green_spec(autoPromotionEnabled=False), services=("active", "preview"))
    await h.step(at(0))
    status = await h.status()
    (rev1,) = (await h.replicasets()).keys()
    assert status["currentPodHash"] == rev1
    assert status["phase"] == "Progressing"
    assert (await h.rs(rev1))["metadata"]["name"] == f"demo-{rev1}"
    assert await h.replicas() == {rev1: 3}
    assert await h.selector("preview") == rev1
    await h.make_available(rev1)
    await h.step(at(1))
    status = await h.status()
    # The first deploy never pauses, even with autoPromotionEnabled false.
    assert "pauseConditions" not in status
    assert await h.selector("active") == rev1
    assert status["stableRS"] == rev1
    await h.step(at(2))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Healthy", "")
    assert status["blueGreen"]["activeSelector"] == rev1
    assert status["observedGeneration"] == "1"
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (3, 3, 3)
    assert condition(status, "Healthy")["status"] == "True"
    assert condition(status, "Completed")["status"] == "True"
    assert condition(status, "Available")["status"] == "True"
    assert condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    ro = await h.rollout()
    assert ro["metadata"]["annotations"][rsutil.REVISION] == "1"
    active = (await h.services())["active"]
    assert active["metadata"]["annotations"][reconciler.MANAGED_BY] == "demo"
    assert "NewReplicaSetCreated" in h.reasons() and "SwitchService" in h.reasons()


async def bg_update_to_pause(h: Harness, now: float, *, image: str = "demo:2") -> str:
    """Update the template and let the new ReplicaSet come up until the BlueGreenPause; returns its hash."""
    await h.set_image(image)
    await h.step(at(now))
    status = await h.status()
    new = str(status["currentPodHash"])
    await h.converge(at(now + 1))
    return new


async def test_blue_green_update_pause_promote_and_scale_down(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionEnabled=False, previewReplicaCount=1, scaleDownDelaySeconds=30)
    await h.set_image("demo:2")
    await h.step(at(10))
    status = await h.status()
    rev2 = status["currentPodHash"]
    assert rev2 != rev1 and status["stableRS"] == rev1
    # The preview Service follows the new ReplicaSet at once; the active one stays on stable.
    assert await h.selector("preview") == rev2
    assert await h.selector("active") == rev1
    assert (await h.rs(rev2))["metadata"]["annotations"][rsutil.REVISION] == "2"
    await h.step(at(11))
    assert await h.replicas() == {rev1: 3, rev2: 1}  # previewReplicaCount
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Progressing", "more replicas need to be updated")
    await h.make_available(rev2)
    await h.step(at(12))
    status = await h.status()
    assert [p["reason"] for p in status["pauseConditions"]] == ["BlueGreenPause"]
    assert status["pauseConditions"][0]["startTime"] == "2026-03-01T12:00:12Z"
    assert status["controllerPause"] is True
    assert (status["phase"], status["message"]) == ("Paused", "BlueGreenPause")
    assert ("Normal", "RolloutPaused", "Rollout is paused (BlueGreenPause)") in h.events
    # No auto-promotion: still paused much later, and the pause is not a lack of progress.
    await h.step(at(5000))
    status = await h.status()
    assert status["phase"] == "Paused" and await h.selector("active") == rev1
    # promote: a client clears the pause conditions.
    await h.request({"pauseConditions": None})
    await h.step(at(5001))
    status = await h.status()
    assert status["blueGreen"]["scaleUpPreviewCheckPoint"] is True
    await h.step(at(5001.5))  # upstream scales up in the reconcile after the checkpoint
    assert await h.replicas() == {rev1: 3, rev2: 3}
    assert await h.selector("active") == rev1  # not before the new ReplicaSet is saturated
    await h.make_available(rev2)
    await h.step(at(5002))
    assert await h.selector("active") == rev2
    status = await h.status()
    assert status["stableRS"] == rev2
    assert "pauseConditions" not in status and not status.get("controllerPause")
    requeue = await h.step(at(5003))
    old = await h.rs(rev1)
    # 30 s after the promotion (upstream annotates in the reconcile after it)
    assert old["metadata"]["annotations"][rsutil.SCALE_DOWN_DEADLINE] in (
        "2026-03-01T13:23:52Z",
        "2026-03-01T13:23:53Z",
    )
    assert rsutil.spec_replicas(old) == 3
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Healthy", "")
    assert status["blueGreen"]["activeSelector"] == rev2
    assert requeue is not None and requeue <= 30
    await h.step(at(5031))
    assert (await h.replicas())[rev1] == 3
    await h.step(at(5033))
    assert await h.replicas() == {rev1: 0, rev2: 3}
    assert (
        "Normal",
        "ScalingReplicaSet",
        f"Scaled down ReplicaSet demo-{rev1} (revision 1) from 3 to 0",
    ) in h.events
    assert "RolloutCompleted" in h.reasons()


async def test_blue_green_auto_promotion_seconds(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionSeconds=60)
    rev2 = await bg_update_to_pause(h, 10)
    status = await h.status()
    assert [p["reason"] for p in status["pauseConditions"]] == ["BlueGreenPause"]
    start = datetime.fromisoformat(status["pauseConditions"][0]["startTime"])
    requeue = await h.step(start + timedelta(seconds=30))
    assert requeue is not None and 29 <= requeue <= 31
    assert await h.selector("active") == rev1
    await h.step(start + timedelta(seconds=61))
    assert await h.selector("active") == rev2
    await h.step(start + timedelta(seconds=62))
    status = await h.status()
    assert status["stableRS"] == rev2 and "pauseConditions" not in status
    assert status["phase"] == "Healthy"


async def test_blue_green_without_pause_promotes_when_ready(h: Harness) -> None:
    rev1 = await bg_deployed(h)
    await h.set_image("demo:2")
    await h.step(at(10))
    rev2 = (await h.status())["currentPodHash"]
    await h.step(at(11))
    assert await h.selector("active") == rev1  # not ready yet
    await h.make_available(rev2)
    await h.converge(at(12))
    status = await h.status()
    assert await h.selector("active") == rev2
    assert status["stableRS"] == rev2 and status["phase"] == "Healthy"
    assert "pauseConditions" not in status


async def test_blue_green_abort_then_scale_down_and_retry(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionEnabled=False, abortScaleDownDelaySeconds=40)
    rev2 = await bg_update_to_pause(h, 10)
    assert (await h.status())["phase"] == "Paused"
    await h.request({"abort": True})
    await h.step(at(100))
    status = await h.status()
    assert await h.selector("active") == rev1
    assert await h.selector("preview") == rev2  # the preview keeps the aborted version
    assert (status["phase"], status["message"]) == (
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 2",
    )
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "RolloutAborted")
    assert status["abort"] is True and status["abortedAt"] == "2026-03-01T12:01:40Z"
    assert "pauseConditions" not in status and not status.get("controllerPause")
    assert status["stableRS"] == rev1 and status["currentPodHash"] == rev2
    assert ("Warning", "RolloutAborted", "Rollout aborted update to revision 2") in h.events
    preview_rs = await h.rs(rev2)
    assert preview_rs["metadata"]["annotations"][rsutil.SCALE_DOWN_DEADLINE] == "2026-03-01T12:02:20Z"
    await h.step(at(139))
    assert await h.replicas() == {rev1: 3, rev2: 3}
    await h.step(at(141))
    assert await h.replicas() == {rev1: 3, rev2: 0}
    await h.make_all_available()
    await h.step(at(142))
    status = await h.status()
    assert status["phase"] == "Degraded" and status["abortedAt"] == "2026-03-01T12:01:40Z"
    # retry: the client sets abort to false; the update starts again and pauses again.
    await h.request({"abort": False})
    await h.step(at(200))
    status = await h.status()
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "Unknown",
        "RolloutRetry",
        "Retrying Rollout after abort",
    )
    assert "abortedAt" not in status and not status.get("abort")
    assert status["phase"] != "Degraded"
    assert (await h.replicas())[rev2] == 3
    assert rsutil.SCALE_DOWN_DEADLINE not in ((await h.rs(rev2))["metadata"].get("annotations") or {})
    await h.converge(at(201))
    status = await h.status()
    assert [p["reason"] for p in status["pauseConditions"]] == ["BlueGreenPause"]
    assert (status["phase"], status["message"]) == ("Paused", "BlueGreenPause")
    assert await h.selector("active") == rev1


async def test_blue_green_abort_scale_down_waits_for_stable_and_zero_means_never(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionEnabled=False, abortScaleDownDelaySeconds=0)
    rev2 = await bg_update_to_pause(h, 10)
    await h.request({"abort": True})
    await h.step(at(100))
    await h.step(at(10_000))
    assert await h.replicas() == {rev1: 3, rev2: 3}
    assert rsutil.SCALE_DOWN_DEADLINE not in (await h.rs(rev2))["metadata"]["annotations"]


async def test_blue_green_abort_deadline_only_once_stable_is_available(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionEnabled=False)
    rev2 = await bg_update_to_pause(h, 10)
    await h.make_available(rev1, 1)  # the stable ReplicaSet lost pods
    await h.request({"abort": True})
    await h.step(at(100))
    assert rsutil.SCALE_DOWN_DEADLINE not in (await h.rs(rev2))["metadata"]["annotations"]
    await h.make_available(rev1)
    await h.step(at(110))
    deadline = (await h.rs(rev2))["metadata"]["annotations"][rsutil.SCALE_DOWN_DEADLINE]
    assert deadline == "2026-03-01T12:02:20Z"  # default abortScaleDownDelaySeconds: 30


async def test_blue_green_promote_full_skips_pause_and_preview_count(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionEnabled=False, previewReplicaCount=1)
    rev2 = await bg_update_to_pause(h, 10)
    assert await h.replicas() == {rev1: 3, rev2: 1}
    await h.request({"promoteFull": True})
    await h.converge(at(100))
    status = await h.status()
    assert await h.selector("active") == rev2
    assert status["stableRS"] == rev2 and status["phase"] == "Healthy"
    assert "promoteFull" not in status or status["promoteFull"] is False
    assert "pauseConditions" not in status


async def test_blue_green_promote_full_while_aborted_promotes(h: Harness) -> None:
    await bg_deployed(h, autoPromotionEnabled=False)
    rev2 = await bg_update_to_pause(h, 10)
    await h.request({"abort": True})
    await h.step(at(100))
    await h.request({"promoteFull": True})
    await h.converge(at(200))
    status = await h.status()
    assert not status.get("abort") and status["stableRS"] == rev2
    assert await h.selector("active") == rev2 and status["phase"] == "Healthy"


async def test_blue_green_new_template_while_aborted_clears_abort(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionEnabled=False)
    rev2 = await bg_update_to_pause(h, 10)
    await h.request({"abort": True})
    await h.step(at(100))
    await h.set_image("demo:3")
    await h.step(at(110))
    status = await h.status()
    rev3 = status["currentPodHash"]
    assert rev3 not in (rev1, rev2)
    assert not status.get("abort") and "abortedAt" not in status
    assert status["phase"] != "Degraded"
    assert all(c.get("reason") != "RolloutAborted" for c in status["conditions"])
    await h.converge(at(111))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Paused", "BlueGreenPause")
    assert await h.selector("preview") == rev3 and await h.selector("active") == rev1


async def test_blue_green_back_to_stable_while_aborted_is_healthy(h: Harness) -> None:
    rev1 = await bg_deployed(h, autoPromotionEnabled=False)
    await bg_update_to_pause(h, 10)
    await h.request({"abort": True})
    await h.step(at(100))
    await h.set_image("demo:1")
    await h.converge(at(110))
    status = await h.status()
    assert status["currentPodHash"] == rev1 == status["stableRS"]
    assert (status["phase"], status["message"]) == ("Healthy", "")
    assert not status.get("abort")
    assert await h.selector("active") == rev1 and await h.selector("preview") == rev1


async def test_blue_green_spec_paused(h: Harness) -> None:
    rev1 = await bg_deployed(h)
    await h.patch_spec({"paused": True, "template": template("demo:2")})
    await h.step(at(10))
    await h.step(at(11))
    status = await h.status()
    rev2 = status["currentPodHash"]
    assert (status["phase"], status["message"]) == ("Paused", "manually paused")
    await h.make_all_available()
    await h.step(at(12))
    assert await h.selector("active") == rev1
    await h.patch_spec({"paused": False})
    await h.converge(at(20))
    status = await h.status()
    assert await h.selector("active") == rev2 and status["phase"] == "Healthy"


async def test_blue_green_spec_paused_scales_but_does_not_switch_preview(h: Harness) -> None:
    rev1 = await bg_deployed(h)
    await h.patch_spec({"paused": True, "template": template("demo:2")})
    await h.step(at(10))
    await h.step(at(11))
    rev2 = (await h.status())["currentPodHash"]
    assert await h.selector("preview") == rev1
    assert (await h.replicas())[rev2] == 3


async def test_blue_green_status_follows_the_switch_in_the_same_reconcile(h: Harness) -> None:
    await bg_deployed(h, autoPromotionEnabled=False)
    rev2 = await bg_update_to_pause(h, 10)
    await h.request({"pauseConditions": None})
    await h.step(at(20))
    assert await h.selector("active") == rev2
    status = await h.status()
    assert status["blueGreen"]["activeSelector"] == rev2
    assert status["selector"] == f"app=demo,{HASH}={rev2}"
    assert (status["phase"], status["message"]) == ("Healthy", "")


async def test_blue_green_initial_deploy_sets_stable_at_once(h: Harness) -> None:
    await h.create(blue_green_spec(), services=("active", "preview"))
    await h.step(at(0))
    await h.step(at(1))  # nothing available yet
    status = await h.status()
    assert status.get("stableRS") == status["currentPodHash"]


async def test_blue_green_progress_deadline_abort(h: Harness) -> None:
    rev1 = await bg_deployed(h, spec={"progressDeadlineSeconds": 60, "progressDeadlineAbort": True})
    await h.set_image("demo:2")
    await h.step(at(10))
    rev2 = (await h.status())["currentPodHash"]
    await h.step(at(11))
    await h.make_available(rev2, available=0)  # pods that never become ready
    await h.step(at(12))
    await h.step(at(60))
    assert (await h.status())["phase"] == "Progressing"
    await h.step(at(200))
    status = await h.status()
    timed_out = f'ReplicaSet "demo-{rev2}" has timed out progressing.'
    assert status["abort"] is True
    assert (status["phase"], status["message"]) == (
        "Degraded",
        f"RolloutAborted: Rollout aborted update to revision 2: {timed_out}",
    )
    assert await h.selector("active") == rev1 and await h.selector("preview") == rev2
    await h.step(at(201))
    await h.step(at(232))
    assert await h.replicas() == {rev1: 3, rev2: 0}


async def test_completed_rollout_losing_pods_times_out_without_abort(h: Harness) -> None:
    rev1 = await bg_deployed(h, spec={"progressDeadlineSeconds": 60, "progressDeadlineAbort": True})
    await h.make_available(rev1, available=1)
    await h.step(at(100))
    progressing = condition(await h.status(), "Progressing")
    assert (progressing["reason"], progressing["message"]) == (
        "ReplicaSetNotAvailable",
        "Rollout does not have minimum availability",
    )
    await h.step(at(200))
    status = await h.status()
    assert status["phase"] == "Degraded" and status["message"].startswith("ProgressDeadlineExceeded: ")
    assert not status.get("abort")


# ---------------------------------------------------------------------------------- InvalidSpec, phase order


async def test_invalid_spec_then_fixed(h: Harness) -> None:
    await h.create(blue_green_spec(previewService="active"), services=("active", "preview"))
    requeue = await h.step(at(0))
    assert requeue == 20
    status = await h.status()
    invalid = condition(status, "InvalidSpec")
    assert (invalid["status"], invalid["reason"]) == ("True", "InvalidSpec")
    assert invalid["message"].startswith('The Rollout "demo" is invalid: ')
    assert (status["phase"], status["message"]) == ("Degraded", f"InvalidSpec: {invalid['message']}")
    assert await h.replicasets() == {}
    await h.patch_spec({"strategy": {"blueGreen": {"previewService": "preview"}}})
    await h.converge(at(1))
    status = await h.status()
    assert all(c["type"] != "InvalidSpec" for c in status["conditions"])
    assert status["phase"] == "Healthy"


@pytest.mark.parametrize("problem", ["missing", "managed"])
async def test_invalid_service_messages(h: Harness, problem: str) -> None:
    await h.create(
        blue_green_spec(), services=("preview",) if problem == "missing" else ("active", "preview")
    )
    if problem == "managed":
        patch = {"metadata": {"annotations": {reconciler.MANAGED_BY: "other"}}}
        await h.client.patch(kinds.SERVICE, "active", patch, namespace=h.namespace)
        detail = 'Service "active" is managed by another Rollout'
    else:
        detail = 'service "active" not found'
    await h.step(at(0))
    path = 'spec.strategy.blueGreen.activeService: Invalid value: "active"'
    assert condition(await h.status(), "InvalidSpec")["message"] == (
        f'The Rollout "demo" is invalid: {path}: {detail}'
    )


async def test_phase_order_degraded_before_paused(h: Harness) -> None:
    await bg_deployed(h, autoPromotionEnabled=False)
    await bg_update_to_pause(h, 10)
    await h.request({"abort": True})
    await h.patch_spec({"paused": True})
    await h.step(at(20))
    status = await h.status()
    assert (status["phase"], status["message"]) == (
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 2",
    )
    # Upstream returns the first matching condition in list order, and a new condition is appended: the
    # RolloutAborted condition, older than the InvalidSpec one, keeps the message.
    await h.patch_spec({"strategy": {"blueGreen": {"previewService": "active"}}})
    await h.step(at(21))
    status = await h.status()
    assert condition(status, "InvalidSpec")["status"] == "True"
    assert (status["phase"], status["message"]) == (
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 2",
    )


async def test_phase_order_manual_pause_before_pause_condition(h: Harness) -> None:
    await bg_deployed(h, autoPromotionEnabled=False)
    await bg_update_to_pause(h, 10)
    await h.patch_spec({"paused": True})
    await h.step(at(20))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Paused", "manually paused")
    assert [p["reason"] for p in status["pauseConditions"]] == ["BlueGreenPause"]
