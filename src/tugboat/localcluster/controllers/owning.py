"""The work-queue plumbing the ReplicaSet and Deployment controllers share.

Both reconcile keys of their own kind from a work queue, write events through a recorder started when they
run, retry a key shortly when a write hits a 409 or 404 (their cache lagged behind the server), and look at
owners again when an object they own by controller reference changes: its old and new owner, or, for an
orphan, every owner whose selector may adopt it.
"""

from __future__ import annotations

from tugboat.kube import errors
from tugboat.kube.client import Obj
from tugboat.kube.events import EventRecorder
from tugboat.kube.workqueue import WorkQueue, run_workers_and_shutdown
from tugboat.localcluster.controllers import podtemplates as pt
from tugboat.localcluster.controllers.base import Context

CONFLICT_RETRY = 0.2  # seconds before a key whose write conflicted with a newer object is synced again


class OwningController:
    """Base of a controller whose objects own others; subclasses give :meth:`sync` and the owner lookups."""

    name: str
    component: str
    workers = 4

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue: WorkQueue[str] = WorkQueue()
        self._recorder: EventRecorder | None = None

    @property
    def recorder(self) -> EventRecorder:
        if self._recorder is None:
            self._recorder = self.ctx.recorder(self.component)
        return self._recorder

    async def run(self) -> None:
        _ = self.recorder
        await run_workers_and_shutdown(self.queue, self._handle, workers=self.workers, name=self.name)

    async def _handle(self, key: str) -> float | None:
        try:
            return await self.sync(key)
        except errors.ApiError as exc:
            if exc.conflict or exc.not_found:
                return CONFLICT_RETRY
            raise

    async def sync(self, key: str) -> float | None:
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- event handlers

    def _owner_key(self, obj: Obj) -> str | None:
        """The key of the cached object of ours that controls ``obj``, if any."""
        raise NotImplementedError

    def _matching_keys(self, obj: Obj) -> list[str]:
        """Keys of our objects whose selector matches the orphan ``obj`` (candidates to adopt it)."""
        raise NotImplementedError

    def _queue_adopters(self, obj: Obj) -> None:
        for candidate in self._matching_keys(obj):
            self.queue.add(candidate)

    def _owned_changed(self, old: Obj, new: Obj, *, labels_changed: bool) -> None:
        """Queue the owners an update of an owned object concerns: the old one if the controller reference
        changed, the new one, or (for an orphan whose labels or reference changed) those that may adopt it.
        """
        old_ref, new_ref = pt.controller_ref(old), pt.controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed:
            old_key = self._owner_key(old)
            if old_key is not None:
                self.queue.add(old_key)
        key = self._owner_key(new)
        if key is not None:
            self.queue.add(key)
        elif new_ref is None and (labels_changed or ref_changed):
            self._queue_adopters(new)
