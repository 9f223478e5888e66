"""The rollout controller: Rollouts reconciled from informers through one work queue.

It watches Rollouts, the ReplicaSets they own (label ``rollouts-pod-template-hash``) and Services, and
knows nothing about Git (DESIGN.md §1): everything it does is driven by what is in the cluster. Each
Rollout is reconciled by :class:`~tugboat.rollouts.reconciler.Reconciler` when it, one of its
ReplicaSets or one of its Services changes, and again when the reconcile asked for it (a pause that
ends, a scale-down deadline, the progress deadline).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tugboat.kube import controllerloop, events, informers, kinds, workqueue
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, reconciler
from tugboat.rollouts import replicasets as rsutil

log = logging.getLogger(__name__)

COMPONENT = "rollouts-controller"


def _owner_rollout(obj: Obj) -> str | None:
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "Rollout" and ref.get("controller"):
            return f"{meta.get('namespace')}/{ref.get('name')}"
    return None


def _services_of(ro: Obj) -> set[str]:
    strategy = (ro.get("spec") or {}).get("strategy") or {}
    names = set()
    for part, fields in (
        ("blueGreen", ("activeService", "previewService")),
        ("canary", ("canaryService", "stableService")),
    ):
        for name in fields:
            value = (strategy.get(part) or {}).get(name)
            if value:
                names.add(str(value))
    return names


class RolloutController:
    """Reconciles every Rollout the client can see."""

    def __init__(self, client: Client, *, workers: int = 10, install_crds: bool = True) -> None:
        self.client = client
        self.workers = workers
        self.install_crds = install_crds
        self.rollouts = informers.Informer(client, crds.ROLLOUT)
        self.replicasets = informers.Informer(client, kinds.REPLICASET, labels=rsutil.HASH_LABEL)
        self.services = informers.Informer(client, kinds.SERVICE)
        self.deployments = informers.Informer(client, kinds.DEPLOYMENT)
        self.analysisruns = informers.Informer(client, crds.ANALYSISRUN)
        self.experiments = informers.Informer(client, crds.EXPERIMENT)
        self.experiments.add_index("owner", informers.by_owner_uid)
        self.replicasets.add_index("owner", informers.by_owner_uid)
        self.analysisruns.add_index("owner", informers.by_owner_uid)
        self.recorder = events.EventRecorder(client, component=COMPONENT)
        self.reconciler = reconciler.Reconciler(client, record=self.recorder.event)
        self.queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(max_delay=30.0)
        self.loop = controllerloop.Loop(
            name="rollout",
            watched=self._informers(),
            queue=self.queue,
            handler=self._reconcile,
            workers=self.workers,
            recorder=self.recorder,
        )
        self.ready = self.loop.ready

    async def run(self) -> None:
        if self.install_crds:
            await crds.install(self.client)
        self.rollouts.add_handler(self._rollout_changed)
        self.replicasets.add_handler(self._replicaset_changed)
        self.services.add_handler(self._service_changed)
        self.deployments.add_handler(self._deployment_changed)
        self.analysisruns.add_handler(self._analysisrun_changed)
        self.experiments.add_handler(self._analysisrun_changed)  # same rule: a phase change matters
        await self.loop.run("rollouts controller: watching Rollouts in all namespaces")

    async def stop(self) -> None:
        await self.loop.stop()

    def _informers(self) -> tuple[informers.Informer, ...]:
        return (
            self.rollouts,
            self.replicasets,
            self.services,
            self.deployments,
            self.analysisruns,
            self.experiments,
        )

    def _analysisrun_changed(self, old: Obj | None, new: Obj | None) -> None:
        """A run's phase (or message) changed: its Rollout may promote, pause or abort."""
        obj = new if new is not None else old
        assert obj is not None
        if old is not None and new is not None:
            before, after = old.get("status") or {}, new.get("status") or {}
            if (before.get("phase"), before.get("message")) == (after.get("phase"), after.get("message")):
                return
        key = _owner_rollout(obj)
        if key is not None:
            self.queue.add(key)

    def _rollout_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        if new is None:
            self.reconciler.forget(obj)
        if (
            new is not None
            and old is not None
            and old.get("status") != new.get("status")
            and old.get("spec") == new.get("spec")
            and (old.get("metadata") or {}).get("generation") == (new.get("metadata") or {}).get("generation")
        ):
            # A status-only change: ours (ignored) or a client's request (abort, retry, promote).
            wanted = ("abort", "promoteFull", "pauseConditions")
            if all((old.get("status") or {}).get(k) == (new.get("status") or {}).get(k) for k in wanted):
                return
        self.queue.add(informers.object_key(obj))

    def _replicaset_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = _owner_rollout(obj)
        if key is not None:
            self.queue.add(key)

    def _service_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        namespace = (obj.get("metadata") or {}).get("namespace")
        name = (obj.get("metadata") or {}).get("name")
        for ro in self.rollouts.objects(namespace):
            if name in _services_of(ro):
                self.queue.add(informers.object_key(ro))

    def _deployment_changed(self, old: Obj | None, new: Obj | None) -> None:
        """A Deployment named by a Rollout's ``workloadRef`` changed: its template may have."""
        obj = new if new is not None else old
        assert obj is not None
        meta = obj.get("metadata") or {}
        if old is not None and new is not None and old.get("spec") == new.get("spec"):
            return
        for ro in self.rollouts.objects(meta.get("namespace")):
            ref = (ro.get("spec") or {}).get("workloadRef") or {}
            if ref.get("kind") == "Deployment" and ref.get("name") == meta.get("name"):
                self.queue.add(informers.object_key(ro))

    async def _reconcile(self, key: str) -> float | None:
        namespace, _, name = key.partition("/")
        ro = self.rollouts.get(name, namespace)
        if ro is None or (ro.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if self.reconciler.stale(ro):
            return 0.05  # the informer has not delivered our last write yet
        uid = ro["metadata"].get("uid", "")
        owned = self.replicasets.by_index("owner", uid)

        def service(svc_name: str) -> Obj | None:
            return self.services.get(svc_name, namespace) if svc_name else None

        runs = self.analysisruns.by_index("owner", uid)
        experiments = self.experiments.by_index("owner", uid)
        return await self.reconciler.reconcile(
            ro, owned, service, now=datetime.now(UTC), analysis_runs=runs, experiments=experiments
        )
