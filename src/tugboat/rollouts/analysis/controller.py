"""The AnalysisRun controller: every AnalysisRun reconciled from an informer through one work queue.

A run is reconciled when it changes (created by a Rollout or by hand, ``spec.terminate`` set) and again when
its next measurement is due: :meth:`RunReconciler.reconcile` returns that delay and the queue holds the key
until then, so a thousand runs measuring every second cost one timer each and no polling. Jobs made by
the Job provider wake their run when they change, so a finished Job is noticed at once rather than at
the provider's next ``resumeAt``.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from tugboat.kube import controllerloop, events, informers, kinds, workqueue
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds
from tugboat.rollouts.analysis import run as runmod

log = logging.getLogger(__name__)

COMPONENT = "rollouts-controller"
RUN_UID_LABEL = "analysisrun.argoproj.io/uid"


class AnalysisRunController:
    """Reconciles every AnalysisRun the client can see."""

    def __init__(self, client: Client, *, workers: int = 10, install_crds: bool = False) -> None:
        self.client = client
        self.workers = workers
        self.install_crds = install_crds
        self.runs = informers.Informer(client, crds.ANALYSISRUN)
        self.jobs = informers.Informer(client, kinds.JOB, labels=RUN_UID_LABEL)
        self.recorder = events.EventRecorder(client, component=COMPONENT)
        self.reconciler = runmod.RunReconciler(client, record=self.recorder.event)
        self.queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(max_delay=30.0)
        self.loop = controllerloop.Loop(
            name="analysis",
            watched=[self.runs, self.jobs],
            queue=self.queue,
            handler=self._reconcile,
            workers=self.workers,
            recorder=self.recorder,
            on_stop=[self.reconciler.close],
        )
        self.ready = self.loop.ready

    async def run(self) -> None:
        if self.install_crds:
            await crds.install(self.client)
        self.runs.add_handler(self._run_changed)
        self.jobs.add_handler(self._job_changed)
        await self.loop.run("analysis controller: watching AnalysisRuns in all namespaces")

    async def stop(self) -> None:
        await self.loop.stop()

    def _run_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                self.reconciler.writes.forget(old)
            return
        if old is not None and old.get("spec") == new.get("spec") and _phase(old) == _phase(new):
            return  # our own status write (measurements added): the queue already holds the next due time
        self.queue.add(informers.object_key(new))

    def _job_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") == "AnalysisRun":
                self.queue.add(f"{meta.get('namespace')}/{ref.get('name')}")

    async def _reconcile(self, key: str) -> float | None:
        namespace, _, name = key.partition("/")
        run = self.runs.get(name, namespace)
        if run is None or (run.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if self.reconciler.writes.stale(run):
            return 0.05  # the informer has not yet seen our last status write: measuring now would repeat it
        started = time.monotonic()
        delay = await self.reconciler.reconcile(run, now=datetime.now(UTC))
        if delay is None:
            return None
        # The delay counts from the reconcile's start: the time it took is already spent.
        return max(delay - (time.monotonic() - started), 0.0)


def _phase(run: Obj) -> Any:
    return (run.get("status") or {}).get("phase")
