"""The Job metric provider: a Kubernetes Job per measurement; it passes if the Job completes.

Argo Rollouts' ``job`` provider runs arbitrary checks (a smoke test, a load test) as a ``batch/v1`` Job
from ``provider.job.spec``. It is the one asynchronous provider: ``run`` creates the Job and returns a
``Running`` measurement, ``resume`` looks at the Job (``Complete`` means Successful, ``Failed`` Failed, a
pod stuck pulling its image Inconclusive) and otherwise asks to be resumed later, ``terminate`` deletes
the Job. Jobs carry Argo's names, labels and annotations and are owned by their AnalysisRun, so deleting
the run deletes them, and creating the same measurement twice adopts the first Job instead of failing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx

from tugboat.kube import client as kube_client
from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds, selectors
from tugboat.rollouts import crds
from tugboat.rollouts.analysis.providers import base
from tugboat.util import jsondata

log = logging.getLogger(__name__)

KIND = "job"

# Measurement metadata keys naming the measurement's Job.
JOB_NAME_KEY = "job-name"
JOB_NAMESPACE_KEY = "job-namespace"
# Job labels and annotations that tie it to its AnalysisRun and metric.
RUN_UID_LABEL = "analysisrun.argoproj.io/uid"
RUN_NAME_ANNOTATION = "analysisrun.argoproj.io/name"
RUN_NAMESPACE_ANNOTATION = "analysisrun.argoproj.io/namespace"
METRIC_NAME_ANNOTATION = "analysisrun.argoproj.io/metric-name"

NAME_LIMIT = 63
"""Job names must fit in a label value: the Job controller labels its pods with the Job's name."""

TERMINAL_WAITING_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
"""Container waiting reasons after which a Job pod will never run by itself."""

_WHERE = "provider.job"


def _config(metric: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = base.provider_config(metric, KIND)
    spec = raw.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("template"), Mapping):
        raise base.ProviderError(f"{_WHERE}.spec must be a Job spec with a pod template")
    metadata = raw.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise base.ProviderError(f"{_WHERE}.metadata must be an object")
    for field in ("labels", "annotations"):
        values = (metadata or {}).get(field)
        if values is not None and (
            not isinstance(values, Mapping) or not all(isinstance(v, str) for v in values.values())
        ):
            raise base.ProviderError(f"{_WHERE}.metadata.{field} must map strings to strings")
    return raw


# ---------------------------------------------------------------------------------------- the Job


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def measurement_index(run: Mapping[str, Any], metric_name: str) -> int:
    """The number of the next measurement of ``metric_name``: measurements taken so far (``count`` plus
    ``error`` in the run's status) + 1. It makes Job names stable across retries of one measurement."""
    status = run.get("status")
    results = status.get("metricResults") if isinstance(status, Mapping) else None
    for result in results if isinstance(results, list) else []:
        if isinstance(result, Mapping) and result.get("name") == metric_name:
            return int(result.get("count") or 0) + int(result.get("error") or 0) + 1
    return 1


def job_name(run: Mapping[str, Any], metric_name: str) -> str:
    """``<run uid>.<metric name>.<measurement index>``, the metric name cut short to fit 63 characters."""
    uid = str(_metadata(run).get("uid") or "")
    index = measurement_index(run, metric_name)
    name = f"{uid}.{metric_name}.{index}"
    if len(name) <= NAME_LIMIT:
        return name
    keep = max(0, len(metric_name) - (len(name) - NAME_LIMIT))
    # Unlike upstream, never leave a '-' or '.' before the separator: the name would be invalid.
    return f"{uid}.{metric_name[:keep].rstrip('-.')}.{index}"


def job_manifest(run: Mapping[str, Any], metric: Mapping[str, Any]) -> dict[str, Any]:
    """The Job of the next measurement of ``metric``, owned by ``run`` (its controller)."""
    config = _config(metric)
    meta = _metadata(run)
    run_uid = str(meta.get("uid") or "")
    metric_name = str(metric.get("name") or "")
    extra = config.get("metadata") or {}
    labels = {**(extra.get("labels") or {}), RUN_UID_LABEL: run_uid}
    annotations = {
        **(extra.get("annotations") or {}),
        RUN_NAME_ANNOTATION: str(meta.get("name") or ""),
        RUN_NAMESPACE_ANNOTATION: str(meta.get("namespace") or ""),
        METRIC_NAME_ANNOTATION: metric_name,
    }
    spec = jsondata.clone(dict(config["spec"]))
    template_meta = spec["template"].setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), RUN_UID_LABEL: run_uid}
    owner = {
        "apiVersion": str(run.get("apiVersion") or crds.ANALYSISRUN.api_version),
        "kind": crds.ANALYSISRUN.kind,
        "name": str(meta.get("name") or ""),
        "uid": run_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": kinds.JOB.api_version,
        "kind": kinds.JOB.kind,
        "metadata": {
            "name": job_name(run, metric_name),
            "namespace": str(meta.get("namespace") or ""),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in _metadata(obj).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def job_phase(job: Mapping[str, Any]) -> str | None:
    """``Successful`` for a Complete Job, ``Failed`` for a Failed one, None while it runs."""
    status = job.get("status")
    for condition in (status.get("conditions") if isinstance(status, Mapping) else None) or []:
        if not isinstance(condition, Mapping) or condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return base.SUCCESSFUL
        if condition.get("type") == "Failed":
            return base.FAILED
    return None


def stuck_pod_message(pods: list[dict[str, Any]]) -> str | None:
    """Why a pod of the Job can never run (its image cannot be pulled...), or None."""
    for pod in pods:
        status = pod.get("status") or {}
        for key in ("initContainerStatuses", "containerStatuses"):
            for container in status.get(key) or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in TERMINAL_WAITING_REASONS:
                    return (
                        f"Pod {_metadata(pod).get('name')}, container {container.get('name')} has terminal "
                        f"error ({waiting['reason']}): {waiting.get('message') or ''}"
                    ).rstrip(": ")
    return None


def resume_delay(elapsed: float) -> float:
    """Seconds until the next look at a running Job: grows with the square root of its age."""
    return math.sqrt(2 * max(elapsed, 0.0))


def _ceil_rfc3339(moment: datetime) -> str:
    """RFC 3339 rounded up to the next whole second, so that a resume is never due before ``moment``."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return base.rfc3339(moment)


class _MissingReference(Exception):
    pass


def _job_reference(measurement: base.Measurement, request: base.MeasureRequest) -> tuple[str, str]:
    metadata = measurement.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get(JOB_NAME_KEY):
        raise _MissingReference("job metadata reference missing")
    return str(metadata[JOB_NAME_KEY]), str(metadata.get(JOB_NAMESPACE_KEY) or request.namespace)


# ----------------------------------------------------------------------------------- the provider


class JobProvider:
    """Creates, watches over and cleans up the Jobs of one metric's measurements."""

    kind: str = KIND

    def __init__(
        self,
        metric: Mapping[str, Any],
        *,
        client: kube_client.Client,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        _config(metric)  # configuration errors surface before the first measurement
        self._client = client

    async def run(self, request: base.MeasureRequest) -> base.Measurement:
        measurement = base.started(request, phase=base.RUNNING)
        try:
            manifest = job_manifest(request.run, request.metric)
        except base.ProviderError as exc:
            return base.mark_error(measurement, request, str(exc))
        meta = manifest["metadata"]
        try:
            job = await self._create_or_adopt(manifest, run_uid=meta["ownerReferences"][0]["uid"])
        except kube_errors.KubeError as exc:
            return base.mark_error(measurement, request, _api_message(exc))
        job_meta = _metadata(job)
        measurement["metadata"] = {
            JOB_NAME_KEY: str(job_meta.get("name") or meta["name"]),
            JOB_NAMESPACE_KEY: str(job_meta.get("namespace") or meta["namespace"]),
        }
        measurement["resumeAt"] = measurement["startedAt"]  # look again right away: short Jobs end fast
        log.info("metric %r: job %s/%s created", request.metric_name, meta["namespace"], meta["name"])
        return measurement

    async def _create_or_adopt(self, manifest: dict[str, Any], *, run_uid: str) -> dict[str, Any]:
        """Create the Job; if a retry finds it already made for this run, use it."""
        meta = manifest["metadata"]
        try:
            return await self._client.create(kinds.JOB, manifest)
        except kube_errors.ApiError as exc:
            if not exc.already_exists:
                raise
            existing = await self._client.get_or_none(kinds.JOB, meta["name"], meta["namespace"])
            if existing is None or _controller_uid(existing) != run_uid:
                raise
            return existing

    async def resume(self, request: base.MeasureRequest, measurement: base.Measurement) -> base.Measurement:
        if measurement.get("phase") in base.COMPLETED_PHASES:
            return measurement
        try:
            name, namespace = _job_reference(measurement, request)
            job = await self._client.get(kinds.JOB, name, namespace)
            phase = job_phase(job)
            if phase is not None:
                return base.finish(measurement, request, phase)
            pods = await self._pods(job, namespace)
        except _MissingReference as exc:
            return base.mark_error(measurement, request, str(exc))
        except kube_errors.KubeError as exc:
            return base.mark_error(measurement, request, _api_message(exc))
        stuck = stuck_pod_message(pods)
        if stuck is not None:
            done = base.finish(measurement, request, base.INCONCLUSIVE)
            done["message"] = base.redact(stuck, request)
            return done
        now = request.now()
        started_at = base.parse_time(measurement.get("startedAt")) or now
        delay = resume_delay((now - started_at).total_seconds())
        return {**measurement, "resumeAt": _ceil_rfc3339(now + timedelta(seconds=delay))}

    async def _pods(self, job: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
        selector = _spec_selector(job)
        if selector is None:
            return []
        pods, _ = await self._client.list(kinds.POD, namespace, labels=selectors.selector_string(selector))
        return pods

    async def terminate(
        self, request: base.MeasureRequest, measurement: base.Measurement
    ) -> base.Measurement:
        if measurement.get("phase") in base.COMPLETED_PHASES:
            return measurement
        try:
            name, namespace = _job_reference(measurement, request)
            await self._client.delete(kinds.JOB, name, namespace, propagation="Background")
        except _MissingReference as exc:
            return base.mark_error(measurement, request, str(exc))
        except kube_errors.KubeError as exc:
            return base.mark_error(measurement, request, _api_message(exc))
        log.info("metric %r: job %s/%s terminated", request.metric_name, namespace, name)
        # Cut short, a Job proves nothing either way: Inconclusive (upstream since argo-rollouts#4602).
        done = base.finish(measurement, request, base.INCONCLUSIVE)
        done["message"] = base.TERMINATED_MESSAGE
        return done

    async def garbage_collect(self, request: base.MeasureRequest, limit: int) -> None:
        """Delete this run's Jobs of this metric except the newest ``limit``; failures are only logged."""
        run_uid = str(_metadata(request.run).get("uid") or "")
        namespace = request.namespace
        try:
            jobs, _ = await self._client.list(kinds.JOB, namespace, labels=f"{RUN_UID_LABEL}={run_uid}")
            mine = sorted(
                (
                    job
                    for job in jobs
                    if (_metadata(job).get("annotations") or {}).get(METRIC_NAME_ANNOTATION)
                    == request.metric_name
                    and not _metadata(job).get("deletionTimestamp")
                ),
                key=_age_key,
            )
            for job in mine[: max(0, len(mine) - max(limit, 0))]:
                await self._client.delete(
                    kinds.JOB, str(_metadata(job)["name"]), namespace, propagation="Background"
                )
                log.info(
                    "metric %r: job %s/%s garbage collected",
                    request.metric_name,
                    namespace,
                    _metadata(job)["name"],
                )
        except kube_errors.KubeError as exc:
            log.warning("metric %r: job garbage collection failed: %s", request.metric_name, exc)


def _spec_selector(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = job.get("spec")
    selector = spec.get("selector") if isinstance(spec, Mapping) else None
    return selector if isinstance(selector, Mapping) else None


def _age_key(job: Mapping[str, Any]) -> tuple[str, int, str]:
    """Oldest first: creation time (whole seconds), then the measurement index ending the name."""
    meta = _metadata(job)
    name = str(meta.get("name") or "")
    suffix = name.rsplit(".", 1)[-1]
    return str(meta.get("creationTimestamp") or ""), int(suffix) if suffix.isdigit() else 0, name


def _api_message(exc: kube_errors.KubeError) -> str:
    return exc.message if isinstance(exc, kube_errors.ApiError) and exc.message else str(exc)
