"""The Job controller: run pods to completion, count them, finish the Job.

It behaves like kube-controller-manager's ``job`` controller of Kubernetes 1.32, because ``kubectl wait
--for=condition=Complete``, ``kubectl get jobs`` (STATUS, COMPLETIONS, DURATION) and ``describe`` read
what it writes:

* up to ``parallelism`` active pods until ``completions`` pods succeeded (``NonIndexed``; ``Indexed`` pods
  carry their completion index as annotation, label, hostname and ``JOB_COMPLETION_INDEX``);
* pods are counted through the ``batch.kubernetes.io/job-tracking`` finalizer: a finished pod's uid goes
  into ``status.uncountedTerminatedPods``, its finalizer is removed, then the uid moves into
  ``succeeded``/``failed`` (so a crash between the steps neither loses nor double-counts a pod);
* failed pods are replaced after an exponential back-off (10 s, doubling, at most 6 min) until
  ``failed > backoffLimit`` (``BackoffLimitExceeded``) or ``activeDeadlineSeconds`` passes
  (``DeadlineExceeded``): first the ``FailureTarget`` condition, active pods deleted, and once none is
  left terminating, ``Failed``; success writes ``SuccessCriteriaMet`` then ``Complete``
  (``CompletionsReached``) and ``completionTime``;
* ``suspend`` deletes the active pods (not counted as failures) and sets ``Suspended``; resuming resets
  ``startTime``; ``ttlSecondsAfterFinished`` deletes the finished Job (the ttl-after-finished controller).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key, split_key
from tugboat.kube.selectors import from_label_selector
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.workloads import (
    CONTROLLER_INDEX,
    ORPHAN_INDEX,
    PendingPods,
    condition,
    condition_true,
    controller_ref,
    controller_uid,
    is_active,
    is_ready,
    is_terminal,
    is_terminating,
    meta,
    now,
    orphan_namespace,
    owned_by,
    owner_reference,
    parse_time,
    phase,
    queue_pod_owner,
    rfc3339,
)

log = logging.getLogger(__name__)

COMPONENT = "job-controller"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0
MAX_UNCOUNTED = 500
MAX_CREATE_PER_SYNC = 500
RETRY_STALE = 0.1

BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")


# ---------------------------------------------------------------------------------------- pure helpers


def is_finished(job: Obj) -> bool:
    return condition_true(job, "Complete") or condition_true(job, "Failed")


def finish_time(job: Obj) -> datetime | None:
    for kind in ("Complete", "Failed"):
        found = condition(job, kind)
        if found is not None and found.get("status") == "True":
            return parse_time(found.get("lastTransitionTime"))
    return None


def is_indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def completion_index(pod: Obj) -> int | None:
    text = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    if text is None:
        text = (meta(pod).get("labels") or {}).get(COMPLETION_INDEX)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def parse_indexes(text: str | None) -> set[int]:
    """``"0-2,5"`` → ``{0, 1, 2, 5}`` (``status.completedIndexes``)."""
    result: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            result.update(range(int(first), int(last or first) + 1))
        except ValueError:
            continue
    return result


def format_indexes(indexes: set[int]) -> str:
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def pod_failed(pod: Obj) -> bool:
    """``isPodFailed`` for the default ``podReplacementPolicy`` (TerminatingOrFailed)."""
    if phase(pod) == "Failed":
        return True
    return is_terminating(pod) and phase(pod) != "Succeeded"


def pod_finish_time(pod: Obj) -> datetime:
    """When a pod finished: its containers' ``finishedAt``, else Ready=False, else deletion, else creation."""
    finished: list[datetime] = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        moment = parse_time(((status.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if moment is not None:
            finished.append(moment)
    if finished:
        return max(finished)
    ready = condition(pod, "Ready")
    if ready is not None and ready.get("status") == "False":
        moment = parse_time(ready.get("lastTransitionTime"))
        if moment is not None:
            return moment
    deleted = parse_time(meta(pod).get("deletionTimestamp"))
    if deleted is not None:
        return deleted - timedelta(seconds=int(meta(pod).get("deletionGracePeriodSeconds") or 0))
    return parse_time(meta(pod).get("creationTimestamp")) or now()


def backoff_delay(failures: int) -> float:
    if failures <= 0:
        return 0.0
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1))


def restarts_exceed_limit(job: Obj, pods: list[Obj]) -> bool:
    """``pastBackoffLimitOnFailure``: with restartPolicy OnFailure, container restarts count as failures."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if phase(pod) in ("Running", "Pending"):
            status = pod.get("status") or {}
            for item in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
                restarts += int(item.get("restartCount") or 0)
    limit = int(spec.get("backoffLimit", 6))
    return restarts > 0 if limit == 0 else restarts >= limit


def new_condition(kind: str, reason: str, message: str, at: datetime, status: str = "True") -> dict[str, Any]:
    stamp = rfc3339(at)
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def set_condition(job: Obj, kind: str, status: str, reason: str, message: str, at: datetime) -> bool:
    """Ensure a condition of ``kind`` with this status (``ensureJobConditionStatus``); True if it changed."""
    conditions: list[dict[str, Any]] = job.setdefault("status", {}).get("conditions") or []
    for item in conditions:
        if item.get("type") != kind:
            continue
        if item.get("status") == status and item.get("reason") == reason and item.get("message") == message:
            return False
        if item.get("status") != status:
            item["lastTransitionTime"] = rfc3339(at)
        item.update({"status": status, "reason": reason, "message": message, "lastProbeTime": rfc3339(at)})
        return True
    if status != "True":
        return False  # a missing condition already reads as not true
    job["status"]["conditions"] = [*conditions, new_condition(kind, reason, message, at, status)]
    return True


def pod_from_template(job: Obj, index: int | None) -> Obj:
    """A pod for ``job`` (for ``index`` when the Job is Indexed)."""
    template = copy.deepcopy(((job.get("spec") or {}).get("template")) or {})
    metadata = template.get("metadata") or {}
    spec = template.get("spec") or {}
    name = str(meta(job).get("name"))
    pod_meta: dict[str, Any] = {
        "generateName": f"{name}-",
        "namespace": meta(job).get("namespace"),
        "labels": dict(metadata.get("labels") or {}),
        "annotations": dict(metadata.get("annotations") or {}),
        "finalizers": [*list(metadata.get("finalizers") or []), TRACKING_FINALIZER],
        "ownerReferences": [owner_reference(job, kinds.JOB)],
    }
    pod_meta["finalizers"] = list(dict.fromkeys(pod_meta["finalizers"]))
    if index is not None:
        pod_meta["generateName"] = f"{name}-{index}-"
        pod_meta["annotations"][COMPLETION_INDEX] = str(index)
        pod_meta["labels"][COMPLETION_INDEX] = str(index)
        spec["hostname"] = f"{name}-{index}"
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            env = container.setdefault("env", [])
            if not any(item.get("name") == "JOB_COMPLETION_INDEX" for item in env):
                env.append(
                    {
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {
                            "fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}
                        },
                    }
                )
    if not pod_meta["annotations"]:
        del pod_meta["annotations"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


@dataclass
class _Backoff:
    failures_after_success: int = 0
    last_failure: datetime | None = None


@dataclass
class _Sync:
    """What one sync of a Job knows and decides."""

    job: Obj
    pods: list[Obj]
    active: list[Obj]
    terminating: int
    succeeded: int
    failed: int
    backoff: _Backoff
    finished: dict[str, Any] | None = None  # the terminal condition to reach (FailureTarget/SuccessCriteria)
    succeeded_indexes: set[int] | None = None


class JobController:
    name = "job"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder(COMPONENT)
        self.jobs = ctx.informers.informer(kinds.JOB)
        self.pods = ctx.informers.informer(kinds.POD)
        self.pods.add_index(CONTROLLER_INDEX, controller_uid)
        self.pods.add_index(ORPHAN_INDEX, orphan_namespace)
        self.queue: WorkQueue[str] = WorkQueue()
        self.orphans: WorkQueue[str] = WorkQueue()
        self.pending = PendingPods()
        self.finalizers_removed: set[str] = set()  # pod uids whose finalizer we removed, until seen gone
        self.backoffs: dict[str, _Backoff] = {}
        self.jobs.add_handler(self._on_job)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------------------------------ events

    def _on_job(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        self.queue.add(object_key(obj))
        if new is None or (is_finished(new) and (old is None or not is_finished(old))):
            # Pods left with our finalizer (the Job is gone, or finished) must be released.
            for pod in self.pods.by_index(CONTROLLER_INDEX, str(meta(obj).get("uid"))):
                if TRACKING_FINALIZER in (meta(pod).get("finalizers") or []):
                    self.orphans.add(object_key(pod))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        uid = str(meta(pod).get("uid"))
        if new is None or TRACKING_FINALIZER not in (meta(new).get("finalizers") or []):
            self.finalizers_removed.discard(uid)
        queue_pod_owner(self.queue, self.pending, kinds.JOB, old, new)
        if new is not None and TRACKING_FINALIZER in (meta(new).get("finalizers") or []):
            job = self._job_for(new)
            if job is None or is_finished(job):
                self.orphans.add(object_key(new))

    def _job_for(self, pod: Obj) -> Obj | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        job = self.jobs.get(str(ref.get("name")), meta(pod).get("namespace"))
        if job is None or meta(job).get("uid") != ref.get("uid"):
            return None
        return job

    async def run(self) -> None:
        try:
            await asyncio.gather(
                run_workers(self.queue, self.sync, workers=4, name="job"),
                run_workers(self.orphans, self.sync_orphan, workers=1, name="job-orphans"),
            )
        finally:
            self.queue.shutdown()
            self.orphans.shutdown()

    # ------------------------------------------------------------------------------------------ orphans

    async def sync_orphan(self, key: str) -> float | None:
        """Remove the tracking finalizer from a pod whose Job is gone or finished."""
        namespace, name = split_key(key)
        pod = self.pods.get(name, namespace)
        if pod is None or TRACKING_FINALIZER not in (meta(pod).get("finalizers") or []):
            return None
        job = self._job_for(pod)
        if job is not None and not is_finished(job):
            return None
        await self._remove_finalizer(pod)
        return None

    async def _remove_finalizer(self, pod: Obj) -> None:
        """Drop our finalizer from a pod (a strategic merge patch: no conflict with other writers)."""
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
        try:
            await self.client.patch(
                kinds.POD,
                str(meta(pod).get("name")),
                patch,
                namespace=meta(pod).get("namespace"),
                patch_type="strategic",
            )
        except errors.ApiError as exc:
            if not exc.not_found:
                raise
        self.finalizers_removed.add(str(meta(pod).get("uid")))

    # --------------------------------------------------------------------------------------------- sync

    async def sync(self, key: str) -> float | None:
        namespace, name = split_key(key)
        cached = self.jobs.get(name, namespace)
        if cached is None:
            self.pending.forget(key)
            self.backoffs.pop(key, None)
            return None
        job = copy.deepcopy(cached)
        if (job.get("spec") or {}).get("managedBy") not in (None, "kubernetes.io/job-controller"):
            return None
        if is_finished(job):
            self.backoffs.pop(key, None)
            return await self._expire(job)
        try:
            return await self._sync_active(key, job)
        except errors.ApiError as exc:
            if exc.conflict:
                return RETRY_STALE  # our cache is behind our own last write; look again once it caught up
            if exc.not_found and await self.client.get_or_none(kinds.JOB, name, namespace) is None:
                return None  # deleted meanwhile; its DELETED event brings us back for the pods
            raise

    def _pods_of(self, key: str, job: Obj) -> list[Obj]:
        return self.pending.overlay(key, owned_by(self.pods, job))

    async def _sync_active(self, key: str, job: Obj) -> float | None:
        at = now()
        spec = job.get("spec") or {}
        status = job.setdefault("status", {})
        original = copy.deepcopy(status)
        status.setdefault("uncountedTerminatedPods", {})
        pods = self._pods_of(key, job)
        pods = await self._adopt_orphans(key, job, pods)
        uncounted = status["uncountedTerminatedPods"]
        uncounted_succeeded = set(uncounted.get("succeeded") or [])
        uncounted_failed = set(uncounted.get("failed") or [])
        tracked = [p for p in pods if self._tracked(p)]
        new_succeeded = [
            p
            for p in tracked
            if phase(p) == "Succeeded" and str(meta(p).get("uid")) not in uncounted_succeeded
        ]
        new_failed = [
            p
            for p in tracked
            if pod_failed(p) and phase(p) != "Succeeded" and str(meta(p).get("uid")) not in uncounted_failed
        ]
        state = _Sync(
            job=job,
            pods=pods,
            active=[p for p in pods if is_active(p)],
            terminating=sum(1 for p in pods if is_terminating(p) and not is_terminal(p)),
            succeeded=int(status.get("succeeded") or 0) + len(new_succeeded) + len(uncounted_succeeded),
            failed=int(status.get("failed") or 0) + len(new_failed) + len(uncounted_failed),
            backoff=self._next_backoff(key, new_succeeded, new_failed),
        )
        suspended = bool(spec.get("suspend"))
        if status.get("startTime") is None and not suspended:
            status["startTime"] = rfc3339(at)
        again: list[float] = []
        self._decide_finish(state, at, again)
        if is_indexed(job):
            state.succeeded_indexes = self._succeeded_indexes(job, pods)
            state.succeeded = len(state.succeeded_indexes)
        suspend_changed = False
        if state.finished is not None:
            deleted = await self._delete_active(key, job, state.active, keep_finalizers=True)
            if len(deleted) != len(state.active) or self.pending.has_pending(key):
                state.finished = None
            state.terminating += len(deleted)
            state.active = _without(state.active, deleted)
        else:
            if meta(job).get("deletionTimestamp") is None:
                wait = await self._manage(key, job, state, at)
                if wait is not None:
                    again.append(wait)
            completions = spec.get("completions")
            active_count = len(state.active)
            if completions is None:
                complete = state.succeeded > 0 and active_count == 0
            else:
                complete = state.succeeded >= int(completions) and active_count == 0
            if complete:
                state.finished = new_condition("SuccessCriteriaMet", *COMPLETIONS_REACHED, at)
            else:
                suspend_changed = self._suspend_condition(job, suspended, at)
        status["active"] = len(state.active)
        status["ready"] = sum(1 for p in state.active if is_ready(p))
        status["terminating"] = state.terminating
        await self._track(key, state, original, force=suspend_changed)
        return min(again) if again else None

    def _tracked(self, pod: Obj) -> bool:
        return TRACKING_FINALIZER in (meta(pod).get("finalizers") or []) and (
            str(meta(pod).get("uid")) not in self.finalizers_removed
        )

    async def _adopt_orphans(self, key: str, job: Obj, pods: list[Obj]) -> list[Obj]:
        """Adopt pods matching the Job's selector that no controller owns (adding the tracking finalizer)."""
        if meta(job).get("deletionTimestamp") or not (job.get("spec") or {}).get("selector"):
            return pods
        selector = from_label_selector((job.get("spec") or {}).get("selector"))
        if selector.empty:
            return pods
        adopted: list[Obj] = []
        for pod in self.pods.by_index(ORPHAN_INDEX, str(meta(job).get("namespace"))):
            if is_terminating(pod):
                continue
            if not selector.matches(meta(pod).get("labels") or {}):
                continue
            refs = [*list(meta(pod).get("ownerReferences") or []), owner_reference(job, kinds.JOB)]
            finalizers = list(dict.fromkeys([*list(meta(pod).get("finalizers") or []), TRACKING_FINALIZER]))
            patch = {
                "metadata": {
                    "ownerReferences": refs,
                    "finalizers": finalizers,
                    "resourceVersion": meta(pod).get("resourceVersion"),
                }
            }
            try:
                adopted.append(
                    await self.client.patch(
                        kinds.POD, str(meta(pod).get("name")), patch, namespace=meta(pod).get("namespace")
                    )
                )
            except errors.ApiError as exc:
                if not (exc.not_found or exc.conflict):
                    raise
        return pods + adopted

    def _next_backoff(self, key: str, succeeded: list[Obj], failed: list[Obj]) -> _Backoff:
        """The pod-failure back-off once this sync's newly finished pods are counted (stored on flush)."""
        old = self.backoffs.get(key) or _Backoff()
        record = _Backoff(old.failures_after_success, old.last_failure)
        if not succeeded and not failed:
            return record
        failures = sorted(pod_finish_time(p) for p in failed)
        if succeeded:
            last_success = max(pod_finish_time(p) for p in succeeded)
            failures = [f for f in failures if f > last_success]
            record = _Backoff()
        record.failures_after_success += len(failures)
        if failures:
            record.last_failure = failures[-1]
        return record

    @staticmethod
    def _remaining_backoff(record: _Backoff, at: datetime) -> float:
        if record.failures_after_success == 0 or record.last_failure is None:
            return 0.0
        elapsed = (at - record.last_failure).total_seconds()
        return max(0.0, backoff_delay(record.failures_after_success) - elapsed)

    def _decide_finish(self, state: _Sync, at: datetime, again: list[float]) -> None:
        job = state.job
        spec = job.get("spec") or {}
        target = condition(job, "FailureTarget")
        if condition_true(job, "SuccessCriteriaMet"):
            state.finished = condition(job, "SuccessCriteriaMet")
            return
        if target is not None and target.get("status") == "True":
            state.finished = target
            return
        suspended = bool(spec.get("suspend"))
        if state.failed > int(spec.get("backoffLimit", 6)) or restarts_exceed_limit(job, state.pods):
            state.finished = new_condition("FailureTarget", *BACKOFF_LIMIT_EXCEEDED, at)
            return
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_time((job.get("status") or {}).get("startTime"))
        if deadline is not None and started is not None and not suspended:
            remaining = float(deadline) - (at - started).total_seconds()
            if remaining <= 0:
                state.finished = new_condition("FailureTarget", *DEADLINE_EXCEEDED, at)
            else:
                again.append(remaining)

    def _succeeded_indexes(self, job: Obj, pods: list[Obj]) -> set[int]:
        completions = int((job.get("spec") or {}).get("completions") or 0)
        indexes = {
            i for i in parse_indexes((job.get("status") or {}).get("completedIndexes")) if i < completions
        }
        for pod in pods:
            index = completion_index(pod)
            if (
                phase(pod) == "Succeeded"
                and index is not None
                and 0 <= index < completions
                and self._tracked(pod)
            ):
                indexes.add(index)
        return indexes

    def _suspend_condition(self, job: Obj, suspended: bool, at: datetime) -> bool:
        if suspended:
            changed = set_condition(job, "Suspended", "True", "JobSuspended", "Job suspended", at)
            if changed:
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
            return changed
        changed = set_condition(job, "Suspended", "False", "JobResumed", "Job resumed", at)
        if changed:
            self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            job["status"]["startTime"] = rfc3339(at)
        return changed

    # ---------------------------------------------------------------------------------- pods: manage

    async def _manage(self, key: str, job: Obj, state: _Sync, at: datetime) -> float | None:
        """Create or delete pods towards the wanted number of active ones; maybe a time to look again."""
        spec = job.get("spec") or {}
        active = state.active
        if spec.get("suspend"):
            deleted = await self._delete_active(key, job, active, keep_finalizers=False)
            state.terminating += len(deleted)
            state.active = _without(active, deleted)
            return None
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            want = len(active) if state.succeeded > 0 else parallelism
        else:
            want = max(0, min(parallelism, int(completions) - state.succeeded))
        if len(active) > want:
            victims = self._removal_order(active)[: len(active) - want]
            deleted = await self._delete_active(key, job, victims, keep_finalizers=False)
            state.terminating += len(deleted)
            state.active = _without(active, deleted)
            return None
        missing = min(want - len(active), MAX_CREATE_PER_SYNC)
        if missing <= 0:
            return None
        wait = self._remaining_backoff(state.backoff, at)
        if wait > 0:
            return wait
        indexes: list[int | None] = [None] * missing
        if is_indexed(job):
            indexes = list(self._pending_indexes(job, state, missing))
        created = await self._create_pods(key, job, indexes)
        state.active = active + created
        return None

    @staticmethod
    def _removal_order(pods: list[Obj]) -> list[Obj]:
        """Pods to delete first: unscheduled, pending, not ready, then the newest (``ActivePods`` order)."""

        def rank(pod: Obj) -> tuple[int, int, int]:
            scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
            phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(pod), 0)
            return (scheduled, phase_rank, 1 if is_ready(pod) else 0)

        newest_first = sorted(pods, key=lambda p: str(meta(p).get("creationTimestamp") or ""), reverse=True)
        return sorted(newest_first, key=rank)

    def _pending_indexes(self, job: Obj, state: _Sync, count: int) -> list[int]:
        completions = int((job.get("spec") or {}).get("completions") or 0)
        taken = set(state.succeeded_indexes or set())
        taken.update(i for i in (completion_index(p) for p in state.active) if i is not None)
        return [i for i in range(completions) if i not in taken][:count]

    async def _create_pods(self, key: str, job: Obj, indexes: list[int | None]) -> list[Obj]:
        created: list[Obj] = []
        for index in indexes:
            pod = pod_from_template(job, index)
            try:
                result = await self.client.create(kinds.POD, pod)
            except errors.ApiError as exc:
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {exc.message}")
                raise
            self.pending.created(key, result)
            created.append(result)
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {meta(result).get('name')}")
        return created

    async def _delete_active(
        self, key: str, job: Obj, pods: list[Obj], *, keep_finalizers: bool
    ) -> list[Obj]:
        """Delete pods (first removing their finalizer, unless they are to be counted as failed)."""
        deleted: list[Obj] = []
        for pod in pods:
            name = str(meta(pod).get("name"))
            try:
                if not keep_finalizers and TRACKING_FINALIZER in (meta(pod).get("finalizers") or []):
                    await self._remove_finalizer(pod)
                await self.client.delete(kinds.POD, name, meta(pod).get("namespace"))
            except errors.ApiError as exc:
                if not exc.not_found:
                    log.warning("job %s: deleting pod %s failed: %s", key, name, exc)
                    continue
            self.pending.deleted(key, pod)
            deleted.append(pod)
            self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return deleted

    # ------------------------------------------------------------------------------ status: counting

    async def _track(self, key: str, state: _Sync, original: dict[str, Any], *, force: bool) -> None:
        """Count finished pods through ``uncountedTerminatedPods``, remove finalizers, write the status."""
        job = state.job
        status = job["status"]
        with_finalizer = {str(meta(p).get("uid")) for p in state.pods if self._tracked(p)}
        self._clean_uncounted(status, with_finalizer)
        succeeded_uids: list[str] = list(status["uncountedTerminatedPods"].get("succeeded") or [])
        failed_uids: list[str] = list(status["uncountedTerminatedPods"].get("failed") or [])
        finishing = state.finished is not None and state.finished.get("type") != "SuccessCriteriaMet"
        to_release: list[Obj] = []
        for pod in state.pods:
            if not self._tracked(pod):
                continue
            uid = str(meta(pod).get("uid"))
            failed = pod_failed(pod)
            removable = (
                meta(job).get("deletionTimestamp") is not None
                or state.finished is not None
                or phase(pod) == "Succeeded"
                or failed
            )
            if not removable:
                continue
            to_release.append(pod)
            if phase(pod) == "Succeeded" and uid not in failed_uids:
                if not is_indexed(job) and uid not in succeeded_uids:
                    succeeded_uids.append(uid)
            elif (failed or finishing) and uid not in failed_uids:
                failed_uids.append(uid)
            if len(succeeded_uids) + len(failed_uids) >= MAX_UNCOUNTED:
                break
        status["uncountedTerminatedPods"] = _uncounted(succeeded_uids, failed_uids)
        if is_indexed(job) and state.succeeded_indexes is not None:
            status["completedIndexes"] = format_indexes(state.succeeded_indexes)
            status["succeeded"] = len(state.succeeded_indexes)
        final: dict[str, Any] | None = None
        if state.finished is not None:
            final = self._stage_terminal(job, state.finished)
        if force or to_release or _status_differs(original, status):
            job = await self._write_status(job)
        self.backoffs[key] = state.backoff
        if to_release:
            for pod in to_release:
                await self._remove_finalizer(pod)
                with_finalizer.discard(str(meta(pod).get("uid")))
        changed = self._clean_uncounted(job["status"], with_finalizer)
        finished = final is not None and self._enact_finish(job, state, final)
        if changed or finished:
            job = await self._write_status(job)
        if finished and final is not None:
            self._record_finish(job, final)

    @staticmethod
    def _clean_uncounted(status: dict[str, Any], with_finalizer: set[str]) -> bool:
        """Move uids whose finalizer is gone from ``uncountedTerminatedPods`` into the counters."""
        uncounted = status.get("uncountedTerminatedPods") or {}
        changed = False
        for field, counter in (("succeeded", "succeeded"), ("failed", "failed")):
            uids = list(uncounted.get(field) or [])
            keep = [u for u in uids if u in with_finalizer]
            if len(keep) != len(uids):
                changed = True
                status[counter] = int(status.get(counter) or 0) + len(uids) - len(keep)
                uncounted[field] = keep
        status["uncountedTerminatedPods"] = _uncounted(
            uncounted.get("succeeded") or [], uncounted.get("failed") or []
        )
        return changed

    @staticmethod
    def _stage_terminal(job: Obj, finished: dict[str, Any]) -> dict[str, Any]:
        """Add the interim condition (FailureTarget, SuccessCriteriaMet); return the final one, for later."""
        conditions: list[dict[str, Any]] = job["status"].setdefault("conditions", [])
        kind = str(finished.get("type"))
        if not any(c.get("type") == kind and c.get("status") == "True" for c in conditions):
            conditions[:] = [c for c in conditions if c.get("type") != kind]
            conditions.append(dict(finished))
        final_kind = "Complete" if kind == "SuccessCriteriaMet" else "Failed"
        return new_condition(final_kind, str(finished.get("reason")), str(finished.get("message")), now())

    @staticmethod
    def _enact_finish(job: Obj, state: _Sync, final: dict[str, Any]) -> bool:
        status = job["status"]
        uncounted = status.get("uncountedTerminatedPods") or {}
        if uncounted.get("succeeded") or uncounted.get("failed") or state.terminating > 0:
            return False
        at = now()
        set_condition(job, str(final["type"]), "True", str(final["reason"]), str(final["message"]), at)
        if final["type"] == "Complete":
            status["completionTime"] = rfc3339(at)
        return True

    def _record_finish(self, job: Obj, final: dict[str, Any]) -> None:
        if final["type"] == "Complete":
            completions = (job.get("spec") or {}).get("completions")
            if completions is not None and int(job["status"].get("succeeded") or 0) > int(completions):
                self.recorder.event(
                    job,
                    "Warning",
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                )
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", str(final["reason"]), str(final["message"]))

    async def _write_status(self, job: Obj) -> Obj:
        status = dict(job.get("status") or {})
        for field in ("active", "succeeded", "failed"):
            if not status.get(field):
                status.pop(field, None)
        body = {
            "apiVersion": kinds.JOB.api_version,
            "kind": kinds.JOB.kind,
            "metadata": {
                "name": meta(job).get("name"),
                "namespace": meta(job).get("namespace"),
                "resourceVersion": meta(job).get("resourceVersion"),
            },
            "status": status,
        }
        result = await self.client.replace_status(kinds.JOB, body)
        result.setdefault("status", {}).setdefault("uncountedTerminatedPods", {})
        return result

    # --------------------------------------------------------------------------------------------- ttl

    async def _expire(self, job: Obj) -> float | None:
        """ttl-after-finished: delete a finished Job once ``ttlSecondsAfterFinished`` has passed."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None or meta(job).get("deletionTimestamp"):
            return None
        finished = finish_time(job)
        if finished is None:
            return None
        remaining = float(ttl) - (now() - finished).total_seconds()
        if remaining > 0:
            return remaining + 0.05
        try:
            await self.client.delete(
                kinds.JOB,
                str(meta(job).get("name")),
                meta(job).get("namespace"),
                propagation="Foreground",
                preconditions={"resourceVersion": meta(job).get("resourceVersion")},
            )
        except errors.ApiError as exc:
            if not exc.conflict:
                raise
            return 0.5
        return None


def _without(pods: list[Obj], removed: list[Obj]) -> list[Obj]:
    gone = {meta(p).get("uid") for p in removed}
    return [p for p in pods if meta(p).get("uid") not in gone]


def _uncounted(succeeded: list[str], failed: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if succeeded:
        result["succeeded"] = list(succeeded)
    if failed:
        result["failed"] = list(failed)
    return result


def _status_differs(before: dict[str, Any], after: dict[str, Any]) -> bool:
    def normal(status: dict[str, Any]) -> dict[str, Any]:
        result = {k: v for k, v in status.items() if v not in (None, 0, {}, [], "")}
        return result

    return normal(before) != normal(after)
