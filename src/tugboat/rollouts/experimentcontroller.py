"""The Experiment controller: every Experiment reconciled from informers through one work queue.

An Experiment is reconciled when it changes (created, ``spec.terminate`` set, its status cleared by
``retry``, and after each of our own status writes, which is how an ending experiment goes on to scale
down, as upstream), when the replica counts of one of its ReplicaSets move, when one of its Services
comes or goes, when one of its AnalysisRuns changes phase, and when the reconcile asked for it (the end
of ``duration``, a progress deadline, a scale-down deadline). Like the other controllers of the process it
only reads caches; what it owns is found through an owner-uid index.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import controllerloop, events, informers, kinds, workqueue
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, experiments
from tugboat.rollouts import replicasets as rsutil

log = logging.getLogger(__name__)

COMPONENT = "rollouts-controller"


def _owner_experiment(obj: Obj) -> str | None:
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "Experiment" and ref.get("controller"):
            return f"{meta.get('namespace')}/{ref.get('name')}"
    return None


def _counts(rs: Obj) -> tuple[Any, ...]:
    status = rs.get("status") or {}
    return (
        rsutil.spec_replicas(rs),
        status.get("replicas"),
        status.get("readyReplicas"),
        status.get("availableReplicas"),
    )


def _run_state(run: Obj) -> tuple[Any, Any]:
    status = run.get("status") or {}
    return status.get("phase"), status.get("message")


class ExperimentController:
    """Reconciles every Experiment the client can see."""

    def __init__(self, client: Client, *, workers: int = 10, install_crds: bool = False) -> None:
        self.client = client
        self.workers = workers
        self.install_crds = install_crds
        self.experiments = informers.Informer(client, crds.EXPERIMENT)
        self.replicasets = informers.Informer(client, kinds.REPLICASET, labels=rsutil.HASH_LABEL)
        self.services = informers.Informer(client, kinds.SERVICE)
        self.analysisruns = informers.Informer(client, crds.ANALYSISRUN)
        for informer in (self.replicasets, self.services, self.analysisruns):
            informer.add_index("owner", informers.by_owner_uid)
        self.recorder = events.EventRecorder(client, component=COMPONENT)
        self.reconciler = experiments.ExperimentReconciler(client, record=self.recorder.event)
        self.queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(max_delay=30.0)
        self.loop = controllerloop.Loop(
            name="experiment",
            watched=self._informers(),
            queue=self.queue,
            handler=self._reconcile,
            workers=self.workers,
            recorder=self.recorder,
        )
        self.ready = self.loop.ready

    def _informers(self) -> tuple[informers.Informer, ...]:
        return (self.experiments, self.replicasets, self.services, self.analysisruns)

    async def run(self) -> None:
        if self.install_crds:
            await crds.install(self.client)
        self.experiments.add_handler(self._experiment_changed)
        self.replicasets.add_handler(self._replicaset_changed)
        self.services.add_handler(self._service_changed)
        self.analysisruns.add_handler(self._analysisrun_changed)
        await self.loop.run("experiment controller: watching Experiments in all namespaces")

    async def stop(self) -> None:
        await self.loop.stop()

    def _experiment_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                self.reconciler.forget(old)
            return
        self.queue.add(informers.object_key(new))

    def _replicaset_changed(self, old: Obj | None, new: Obj | None) -> None:
        """Only what the experiment reads of its ReplicaSets matters: the replica counts."""
        if old is not None and new is not None and _counts(old) == _counts(new):
            return
        obj = new if new is not None else old
        assert obj is not None
        key = _owner_experiment(obj)
        if key is not None:
            self.queue.add(key)

    def _service_changed(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None:
            return  # a Service's content is not reconciled, only its existence
        obj = new if new is not None else old
        assert obj is not None
        key = _owner_experiment(obj)
        if key is not None:
            self.queue.add(key)

    def _analysisrun_changed(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and _run_state(old) == _run_state(new):
            return
        obj = new if new is not None else old
        assert obj is not None
        key = _owner_experiment(obj)
        if key is not None:
            self.queue.add(key)

    # ------------------------------------------------------------------------------------ reconcile

    async def _reconcile(self, key: str) -> float | None:
        namespace, _, name = key.partition("/")
        ex = self.experiments.get(name, namespace)
        if ex is None or (ex.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if self.reconciler.stale(ex):
            return 0.05  # the informer has not delivered our last status write yet
        uid = str(ex["metadata"].get("uid", ""))
        return await self.reconciler.reconcile(
            ex,
            self.replicasets.by_index("owner", uid),
            self.services.by_index("owner", uid),
            self.analysisruns.by_index("owner", uid),
            now=datetime.now(UTC),
        )
