"""The CronJob controller: create Jobs on schedule, track them, clean up history.

Like kube-controller-manager's ``cronjob`` controller (v2) of Kubernetes 1.32: a Job named
``<cronjob>-<scheduled minutes since the epoch>`` (the name is the lock that prevents creating one twice)
from ``jobTemplate``, owned by the CronJob and annotated with
``batch.kubernetes.io/cronjob-scheduled-timestamp``; ``concurrencyPolicy`` Allow/Forbid/Replace;
``startingDeadlineSeconds``; ``suspend``; ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit``;
``status.active``, ``lastScheduleTime`` and ``lastSuccessfulTime``. It never polls: after each sync the
CronJob is queued again for exactly its next scheduled time.

The decisions (:func:`most_recent_schedule`, :func:`next_sync_in`, :func:`job_name`, :func:`job_for`)
are pure functions of the CronJob and a time, tested without a cluster.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key, split_key
from tugboat.kube.workqueue import WorkQueue, run_workers_and_shutdown
from tugboat.localcluster.controllers import cron
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.workloads import (
    CONTROLLER_INDEX,
    condition_true,
    controlled_by,
    controller_uid,
    creation_time,
    meta,
    now,
    owned_by,
    owner_key,
    owner_reference,
    parse_time,
    rfc3339,
)

log = logging.getLogger(__name__)

COMPONENT = "cronjob-controller"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1  # seconds past the scheduled time, so the schedule has surely arrived
TOO_MANY_MISSED = 100


# ---------------------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class Due:
    """The most recent unmet schedule time of a CronJob, and how many were missed up to now."""

    time: datetime | None
    missed: int


def schedule_of(cronjob: Obj) -> cron.Schedule:
    spec = cronjob.get("spec") or {}
    return cron.parse(str(spec.get("schedule") or ""), time_zone=spec.get("timeZone"))


def earliest_time(cronjob: Obj, at: datetime, *, with_deadline: bool = True) -> datetime:
    """Where to start looking for unmet schedule times: the last one, or creation, or the deadline window."""
    status = cronjob.get("status") or {}
    earliest = parse_time(status.get("lastScheduleTime")) or creation_time(cronjob)
    deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
    if with_deadline and deadline is not None:
        window_start = at.timestamp() - float(deadline)
        if window_start > earliest.timestamp():
            earliest = datetime.fromtimestamp(window_start, at.tzinfo)
    return earliest


def most_recent_schedule(cronjob: Obj, schedule: cron.Schedule, at: datetime) -> Due:
    """The latest schedule time in (earliest, at], if any (``mostRecentScheduleTime``)."""
    earliest = earliest_time(cronjob, at)
    latest = schedule.last_at_or_before(at)
    if latest is None or latest <= earliest:
        return Due(None, 0)
    missed = schedule.count_between(earliest, at, limit=TOO_MANY_MISSED + 1)
    return Due(latest, missed)


def next_sync_in(cronjob: Obj, schedule: cron.Schedule, at: datetime) -> float | None:
    """Seconds from ``at`` until the next schedule time (plus a small delta); None if there is none."""
    following = schedule.next_after(at)
    if following is None:
        return None
    return max(0.0, (following - at).total_seconds()) + NEXT_SCHEDULE_DELTA


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    return f"{meta(cronjob).get('name')}-{int(scheduled.timestamp()) // 60}"


def job_for(cronjob: Obj, scheduled: datetime) -> Obj:
    """The Job a CronJob creates for a schedule time (``getJobFromTemplate2``)."""
    spec = cronjob.get("spec") or {}
    template = copy.deepcopy(spec.get("jobTemplate") or {})
    template_meta = template.get("metadata") or {}
    annotations = dict(template_meta.get("annotations") or {})
    tz = cron.zone(spec.get("timeZone"))
    annotations[SCHEDULED_TIMESTAMP] = scheduled.astimezone(tz).isoformat().replace("+00:00", "Z")
    metadata: dict[str, Any] = {
        "name": job_name(cronjob, scheduled),
        "namespace": meta(cronjob).get("namespace"),
        "annotations": annotations,
        "ownerReferences": [owner_reference(cronjob, kinds.CRONJOB)],
    }
    labels = template_meta.get("labels")
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": kinds.JOB.api_version,
        "kind": kinds.JOB.kind,
        "metadata": metadata,
        "spec": template.get("spec") or {},
    }


def job_reference(job: Obj) -> dict[str, Any]:
    return {
        "apiVersion": kinds.JOB.api_version,
        "kind": kinds.JOB.kind,
        "name": meta(job).get("name"),
        "namespace": meta(job).get("namespace"),
        "resourceVersion": meta(job).get("resourceVersion"),
        "uid": meta(job).get("uid"),
    }


def finished_condition(job: Obj) -> str | None:
    for kind in ("Complete", "Failed"):
        if condition_true(job, kind):
            return kind
    return None


def job_start(job: Obj) -> str:
    status = job.get("status") or {}
    return str(status.get("startTime") or meta(job).get("creationTimestamp") or "")


def rfc1123z(moment: datetime) -> str:
    """Go's ``time.RFC1123Z`` as the controller's messages print times."""
    return format_datetime(moment, usegmt=False).replace("-0000", "+0000")


# ------------------------------------------------------------------------------------------ controller


class CronJobController:
    name = "cronjob"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder(COMPONENT)
        self.cronjobs = ctx.informers.informer(kinds.CRONJOB)
        self.jobs = ctx.informers.informer(kinds.JOB)
        self.jobs.add_index(CONTROLLER_INDEX, controller_uid)
        self.queue: WorkQueue[str] = WorkQueue()
        self.cronjobs.add_handler(self._on_cronjob)
        self.jobs.add_handler(self._on_job)

    def _on_cronjob(self, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        self.queue.add(object_key(obj))

    def _on_job(self, old: Obj | None, new: Obj | None) -> None:
        job = new if new is not None else old
        assert job is not None
        key = owner_key(job, kinds.CRONJOB)
        if key is not None:
            self.queue.add(key)

    async def run(self) -> None:
        await run_workers_and_shutdown(self.queue, self.sync, workers=2, name="cronjob")

    # --------------------------------------------------------------------------------------------- sync

    async def sync(self, key: str) -> float | None:
        namespace, name = split_key(key)
        cached = self.cronjobs.get(name, namespace)
        if cached is None:
            return None
        jobs = owned_by(self.jobs, cached)
        active_uids = {ref.get("uid") for ref in (cached.get("status") or {}).get("active") or []}
        if any(meta(j).get("uid") not in active_uids and finished_condition(j) is None for j in jobs):
            # A running Job missing from status.active: most likely our cache lags our own status write.
            fresh = await self.client.get_or_none(kinds.CRONJOB, name, namespace)
            if fresh is None:
                return None
            cached = fresh
        cronjob = copy.deepcopy(cached)
        status = cronjob.setdefault("status", {})
        original = copy.deepcopy(status)
        await self._reconcile_active(cronjob, jobs)
        again = await self._schedule(cronjob)
        if status != original:
            await self._write_status(cronjob)
        await self._clean_history(cronjob, jobs)
        return again

    async def _reconcile_active(self, cronjob: Obj, jobs: list[Obj]) -> None:
        status = cronjob["status"]
        active: list[dict[str, Any]] = list(status.get("active") or [])
        active_uids = {ref.get("uid") for ref in active}
        children = {meta(j).get("uid") for j in jobs}
        for job in jobs:
            uid = meta(job).get("uid")
            finished = finished_condition(job)
            if uid not in active_uids and finished is None:
                self.recorder.event(
                    cronjob,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {meta(job).get('name')}",
                )
            elif uid in active_uids and finished is not None:
                active = [ref for ref in active if ref.get("uid") != uid]
                self.recorder.event(
                    cronjob,
                    "Normal",
                    "SawCompletedJob",
                    f"Saw completed job: {meta(job).get('name')}, condition: {finished}",
                )
            if finished == "Complete":
                completed = (job.get("status") or {}).get("completionTime")
                last = parse_time(status.get("lastSuccessfulTime"))
                when = parse_time(completed)
                if when is not None and (last is None or when > last):
                    status["lastSuccessfulTime"] = completed
        for ref in list(active):
            if ref.get("uid") in children:
                continue
            found = await self.client.get_or_none(kinds.JOB, str(ref.get("name")), ref.get("namespace"))
            if found is None or meta(found).get("uid") != ref.get("uid"):
                self.recorder.event(
                    cronjob, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}"
                )
                active = [r for r in active if r.get("uid") != ref.get("uid")]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    async def _schedule(self, cronjob: Obj) -> float | None:
        """Start the Job that is due, if any; return when to look again."""
        spec = cronjob.get("spec") or {}
        status = cronjob["status"]
        if meta(cronjob).get("deletionTimestamp") or spec.get("suspend"):
            return None
        try:
            cron.zone(spec.get("timeZone"))
        except cron.CronError as exc:
            self.recorder.event(
                cronjob, "Warning", "UnknownTimeZone", f"invalid timeZone: {spec.get('timeZone')!r}: {exc}"
            )
            return None
        try:
            schedule = schedule_of(cronjob)
        except cron.CronError as exc:
            self.recorder.event(
                cronjob,
                "Warning",
                "UnparseableSchedule",
                f"unparseable schedule: {spec.get('schedule')!r} : {exc}",
            )
            return None
        at = now()
        due = most_recent_schedule(cronjob, schedule, at)
        again = next_sync_in(cronjob, schedule, at)
        if due.time is None:
            return again
        if due.missed > TOO_MANY_MISSED:
            self.recorder.event(
                cronjob,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. "
                "Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            )
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and due.time.timestamp() + float(deadline) < at.timestamp():
            self.recorder.event(
                cronjob,
                "Warning",
                "MissSchedule",
                f"Missed scheduled time to start a job: {rfc1123z(due.time)}",
            )
            return again
        name = job_name(cronjob, due.time)
        active = list(status.get("active") or [])
        if (
            any(ref.get("name") == name for ref in active)
            or parse_time(status.get("lastScheduleTime")) == due.time
        ):
            return again
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.recorder.event(
                cronjob,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return again
        if policy == "Replace":
            for ref in active:
                await self._delete_job(cronjob, str(ref.get("name")), ref.get("namespace"))
            status.pop("active", None)
        job = await self._create_job(cronjob, due.time)
        if job is None:
            return again
        active = list(status.get("active") or [])
        if not any(ref.get("uid") == meta(job).get("uid") for ref in active):
            active.append(job_reference(job))
        status["active"] = active
        status["lastScheduleTime"] = rfc3339(due.time)
        return again

    async def _create_job(self, cronjob: Obj, scheduled: datetime) -> Obj | None:
        body = job_for(cronjob, scheduled)
        try:
            job = await self.client.create(kinds.JOB, body)
        except errors.ApiError as exc:
            if not exc.already_exists:
                self.recorder.event(cronjob, "Warning", "FailedCreate", f"Error creating job: {exc.message}")
                raise
            existing = await self.client.get_or_none(
                kinds.JOB, str(body["metadata"]["name"]), meta(cronjob).get("namespace")
            )
            if existing is None or not controlled_by(existing, cronjob):
                return None
            return existing
        self.recorder.event(cronjob, "Normal", "SuccessfulCreate", f"Created job {meta(job).get('name')}")
        return job

    async def _delete_job(self, cronjob: Obj, name: str, namespace: str | None) -> None:
        await self.client.delete(kinds.JOB, name, namespace, propagation="Background")
        self.recorder.event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {name}")

    async def _write_status(self, cronjob: Obj) -> None:
        status = dict(cronjob.get("status") or {})
        patch: dict[str, Any] = {
            "active": status.get("active"),
            "lastScheduleTime": status.get("lastScheduleTime"),
            "lastSuccessfulTime": status.get("lastSuccessfulTime"),
        }
        await self.client.patch_status(
            kinds.CRONJOB, str(meta(cronjob).get("name")), patch, namespace=meta(cronjob).get("namespace")
        )

    async def _clean_history(self, cronjob: Obj, jobs: list[Obj]) -> None:
        """Keep the newest ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` finished Jobs."""
        spec = cronjob.get("spec") or {}
        limits = {
            "Complete": spec.get("successfulJobsHistoryLimit"),
            "Failed": spec.get("failedJobsHistoryLimit"),
        }
        for kind, limit in limits.items():
            if limit is None:
                continue
            finished = [
                j for j in jobs if finished_condition(j) == kind and not meta(j).get("deletionTimestamp")
            ]
            finished.sort(key=job_start)
            for job in finished[: max(0, len(finished) - int(limit))]:
                await self._delete_job(cronjob, str(meta(job).get("name")), meta(job).get("namespace"))
