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


def blue_green_spec(*, replicas: int = 3, **blue_green: Any) -> Obj:
    strategy = {"activeService": "active", "previewService": "preview", **blue_green}
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": template("demo:1"),
        "strategy": {"blueGreen": strategy},
    }


def canary_spec(*, replicas: int = 10, steps: list[Obj] | None = None, **canary: Any) -> Obj:
    strategy: Obj = dict(canary)
    if steps is not None:
        strategy["steps"] = steps
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": template("demo:1"),
        "strategy": {"canary": strategy},
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

    async def make_available(self, pod_hash: str, count: int | None = None) -> None:
        """The ReplicaSet controller and kubelets: ``count`` (default spec.replicas) pods, all available."""
        rs = await self.rs(pod_hash)
        n = rsutil.spec_replicas(rs) if count is None else count
        status = {"replicas": n, "readyReplicas": n, "availableReplicas": n, "fullyLabeledReplicas": n}
        await self.client.patch_status(kinds.REPLICASET, rs["metadata"]["name"], status, namespace=self.namespace)

    async def make_all_available(self) -> None:
        for pod_hash, rs in (await self.replicasets()).items():
            if rsutil.current(rs) != rsutil.spec_replicas(rs) or rsutil.available(rs) != rsutil.spec_replicas(rs):
                await self.make_available(pod_hash)

    async def converge(self, now: datetime, *, rounds: int = 12) -> None:
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
    assert status["blueGreen"]["activeSelector"] == rev1
    await h.step(at(2))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Healthy", "")
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
