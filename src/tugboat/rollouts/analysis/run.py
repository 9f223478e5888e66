"""One reconcile of one AnalysisRun: take the measurements that are due, assess, write status once.

Argo Rollouts' analysis controller, in the shape of research/rollouts.md §1.5: the run's metrics (args
substituted; Secret-backed args read now, kept out of the run's status and redacted from messages and
values - though a Job metric's spec that uses one carries it into the Job, as upstream), the
measurements each one needs now - a
first one after ``initialDelay``, the next one ``interval`` after the last, an errored one again after
10 s, an in-flight one (a Job) resumed or, once the run is terminating, terminated - taken concurrently
through the metric providers, then every metric's phase and the run's phase, message and summaries, the
measurement history trimmed to ``measurementRetention`` (10 by default), and the time to look again.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2 as httpx

from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds, mergepatch, writes
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds
from tugboat.rollouts import replicasets as rsutil
from tugboat.rollouts.analysis import evaluate, metrics, providers, templates
from tugboat.rollouts.analysis.providers import base as provider_base
from tugboat.util import http1

log = logging.getLogger(__name__)

EventFunc = Callable[[Obj, str, str, str], None]
ProviderFactory = Callable[[Mapping[str, Any]], provider_base.MetricProvider]


@dataclass
class _Task:
    metric: Obj  # resolved (args substituted, secrets included)
    in_flight: Obj | None


class RunReconciler:
    """Reconciles AnalysisRuns with ``client``; ``record`` writes Kubernetes Events."""

    def __init__(
        self,
        client: Client,
        *,
        provider_for: ProviderFactory | None = None,
        record: EventFunc | None = None,
    ) -> None:
        self.client = client
        self.record = record
        self.writes = writes.WriteTracker()  # a run from a cache older than our last write waits
        self.http: httpx.AsyncClient | None = None  # one pool (and TLS context) for all HTTP metrics
        self.lean = http1.Pools(timeout=60.0)  # keep-alive pools for plain-http metric endpoints
        self.provider_for = provider_for or self._provider

    def _provider(self, metric: Mapping[str, Any]) -> provider_base.MetricProvider:
        if self.http is None:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            self.http = httpx.AsyncClient(limits=limits)
        return providers.for_metric(metric, client=self.client, http=self.http, lean=self.lean)

    async def close(self) -> None:
        await self.lean.close()
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    async def reconcile(self, run: Obj, *, now: datetime) -> float | None:
        """Advance ``run``; returns seconds until it wants to look again (None: nothing scheduled)."""
        original = run.get("status") or {}
        if original.get("phase") in metrics.COMPLETED:
            return None
        status = copy.deepcopy(original)
        status.setdefault("metricResults", [])
        events: list[tuple[str, str, str]] = []
        spec = run.get("spec") or {}
        try:
            shapes = templates.arg_variables(spec.get("args") or [])
            resolved = [templates.substitute(m, shapes) for m in spec.get("metrics") or []]
        except templates.AnalysisSpecError as exc:
            self._fail(status, f"Unable to resolve metric arguments: {exc}", now, events)
            await self._write(run, original, status, events)
            return None
        try:
            metrics.validate(resolved)
            dry_run = metrics.matching_rules(spec.get("dryRun") or [], resolved, "dryRun")
            retention = metrics.matching_rules(
                spec.get("measurementRetention") or [], resolved, "measurementRetention"
            )
        except templates.AnalysisSpecError as exc:
            self._fail(status, f"Analysis spec invalid: {exc}", now, events)
            await self._write(run, original, status, events)
            return None
        status.setdefault("startedAt", rsutil.stamp(now))
        terminating = metrics.is_terminating(spec, status, dry_run)
        wake: datetime | None = None
        due: list[tuple[int, Obj | None]] = []
        for index, metric in enumerate(resolved):
            take, in_flight, later = metrics.due(metric, status, now=now, terminating=terminating)
            if take:
                due.append((index, in_flight))
            elif later is not None:
                wake = later if wake is None else min(wake, later)
        if due:
            try:
                secrets = await self._secrets(run)
                variables = templates.arg_variables(spec.get("args") or [], secrets=secrets)
                tasks = [
                    _Task(templates.substitute(spec["metrics"][i], variables), in_flight)
                    for i, in_flight in due
                ]
            except (templates.AnalysisSpecError, LookupError) as exc:
                self._fail(status, f"Unable to resolve metric arguments: {exc}", now, events)
                await self._write(run, original, status, events)
                return None
            secret_values = frozenset(v for v in secrets.values() if v)
            measured = await asyncio.gather(
                *(self._measure(run, status, t, now, terminating, secret_values) for t in tasks)
            )
            for task, measurement in zip(tasks, measured, strict=True):
                self._store(status, task, measurement, dry_run)
        self._assess(run, status, resolved, dry_run, now, events)
        await self._trim(run, status, resolved, retention, now)
        if status.get("phase") not in metrics.COMPLETED:
            for metric in resolved:
                take, in_flight, later = metrics.due(metric, status, now=now, terminating=False)
                if take and in_flight is not None:  # an in-flight measurement whose resumeAt has come
                    later = metrics.parse_time(in_flight.get("resumeAt"))
                if later is not None:
                    wake = later if wake is None else min(wake, later)
        await self._write(run, original, status, events)
        if status.get("phase") in metrics.COMPLETED:
            return None
        if metrics.is_terminating(spec, status, dry_run) and not terminating:
            return 0.0  # a metric failed in this pass: the next one stops the others and ends the run
        if wake is None:
            return None
        return max((wake - now).total_seconds(), 0.0)

    # ------------------------------------------------------------------------------------ measuring

    async def _secrets(self, run: Obj) -> dict[str, str]:
        """Values of the args that come from Secrets, read now (never written anywhere)."""
        namespace = run["metadata"]["namespace"]
        out: dict[str, str] = {}
        for arg in (run.get("spec") or {}).get("args") or []:
            ref = (arg.get("valueFrom") or {}).get("secretKeyRef")
            if not ref:
                continue
            name, key = str(ref.get("name")), str(ref.get("key"))
            try:
                secret = await self.client.get(kinds.SECRET, name, namespace)
            except kube_errors.ApiError as exc:
                if exc.not_found:
                    raise LookupError(f'secrets "{name}" not found') from exc
                raise
            data = secret.get("data") or {}
            if key not in data:
                raise LookupError(f"key '{key}' does not exist in secret '{name}'")
            try:
                out[str(arg.get("name"))] = base64.b64decode(data[key], validate=True).decode(
                    "utf-8", "replace"
                )
            except ValueError as exc:  # binascii.Error is a ValueError
                raise LookupError(f"key '{key}' of secret '{name}' is not base64") from exc
        return out

    async def _measure(
        self,
        run: Obj,
        status: Obj,
        task: _Task,
        now: datetime,
        terminating: bool,
        secrets: frozenset[str],
    ) -> Obj:
        metric = task.metric

        def judge(result: Any) -> str:
            return evaluate.measurement_phase(
                result, success=metric.get("successCondition"), failure=metric.get("failureCondition")
            )

        view = {**run, "status": status}
        request = provider_base.MeasureRequest(
            run=view, metric=metric, evaluate=judge, now=lambda: now, secrets=secrets
        )
        try:
            provider = self.provider_for(metric)
            if task.in_flight is None:
                measurement = await provider.run(request)
            elif terminating:
                measurement = await provider.terminate(request, dict(task.in_flight))
                if measurement.get("phase") in (metrics.SUCCESSFUL, metrics.INCONCLUSIVE):
                    measurement["message"] = "Metric Terminated"
            else:
                measurement = await provider.resume(request, dict(task.in_flight))
        except provider_base.ProviderError as exc:
            measurement = dict(task.in_flight or {"startedAt": provider_base.rfc3339(now)})
            measurement.update(phase=metrics.ERROR, message=str(exc))
        except Exception as exc:  # a provider bug must not stop the run: the measurement errs
            log.exception("metric %s of %s: provider failed", metric.get("name"), run["metadata"]["name"])
            measurement = dict(task.in_flight or {"startedAt": provider_base.rfc3339(now)})
            measurement.update(phase=metrics.ERROR, message=f"provider failed: {type(exc).__name__}")
        if measurement.get("phase") in metrics.COMPLETED and not measurement.get("finishedAt"):
            measurement["finishedAt"] = provider_base.rfc3339(now)
        message = measurement.get("message")
        if isinstance(message, str):
            for secret in secrets:
                message = message.replace(secret, provider_base.REDACTED)
            measurement["message"] = message
        return measurement

    def _store(self, status: Obj, task: _Task, measurement: Obj, dry_run: Mapping[str, Any]) -> None:
        name = str(task.metric.get("name"))
        results: list[Obj] = status["metricResults"]
        result = next((r for r in results if r.get("name") == name), None)
        if result is None:
            result = {"name": name, "phase": metrics.RUNNING}
            if name in dry_run:
                result["dryRun"] = True
            results.append(result)
        measurements = result.setdefault("measurements", [])
        if task.in_flight is None:
            measurements.append(measurement)
        else:
            measurements[-1] = measurement
        metrics.record(result, measurement)

    # ------------------------------------------------------------------------------------ assessing

    def _assess(
        self,
        run: Obj,
        status: Obj,
        resolved: list[Obj],
        dry_run: Mapping[str, Any],
        now: datetime,
        events: list[tuple[str, str, str]],
    ) -> None:
        spec = run.get("spec") or {}
        terminating = metrics.is_terminating(spec, status, dry_run)
        worst, worst_message = "", "Run Terminated" if spec.get("terminate") else ""
        everything_completed = True
        summary = {"count": 0, "successful": 0, "failed": 0, "inconclusive": 0, "error": 0}
        dry_summary = dict(summary)
        for metric in resolved:
            name = str(metric.get("name"))
            dry = name in dry_run
            (dry_summary if dry else summary)["count"] += 1
            result = next((r for r in status["metricResults"] if r.get("name") == name), None)
            if result is None:
                everything_completed = False
                continue
            phase = metrics.metric_phase(metric, result, terminating=terminating)
            if result.get("phase") != phase:
                if phase in metrics.COMPLETED:
                    kind = "Warning" if phase in (metrics.ERROR, metrics.FAILED) else "Normal"
                    events.append((kind, f"Metric{phase}", f"Metric '{name}' Completed. Result: {phase}"))
                last = metrics.last_measurement(result)
                if last is not None and last.get("message"):
                    result["message"] = last["message"]
                result["phase"] = phase
            if phase not in metrics.COMPLETED:
                everything_completed = False
                continue
            limit_phase, why = metrics.failure_phase(metric, result)
            if dry:
                if not worst:
                    worst = metrics.SUCCESSFUL
                if why:
                    result["message"] = f"Metric assessed {phase} due to {why}"
                dry_summary[metrics.summary_key(limit_phase)] += 1
                continue
            if not worst or metrics.is_worse(worst, phase):
                worst = phase
                if why:
                    worst_message = f'Metric "{name}" assessed {phase} due to {why}'
                    if result.get("message"):
                        worst_message += f': "Error Message: {result["message"]}"'
            summary[metrics.summary_key(limit_phase)] += 1
        status["runSummary"] = summary
        status["dryRunSummary"] = dry_summary
        if terminating:
            phase, message = worst or metrics.SUCCESSFUL, worst_message.strip()
        elif not everything_completed or not worst:
            phase, message = metrics.RUNNING, ""
        else:
            phase, message = worst, worst_message.strip()
        if phase != status.get("phase"):
            status["phase"] = phase
            if message:
                status["message"] = message
            else:
                status.pop("message", None)
            if phase in metrics.COMPLETED:
                kind = "Warning" if phase in (metrics.ERROR, metrics.FAILED) else "Normal"
                events.append((kind, f"AnalysisRun{phase}", f"Analysis Completed. Result: {phase}"))
                status.setdefault("completedAt", rsutil.stamp(now))

    async def _trim(
        self,
        run: Obj,
        status: Obj,
        resolved: list[Obj],
        retention: Mapping[str, Mapping[str, Any]],
        now: datetime,
    ) -> None:
        by_name = {str(m.get("name")): m for m in resolved}
        for result in status["metricResults"]:
            measurements = result.get("measurements") or []
            rule = retention.get(str(result.get("name"))) or {}
            limit = metrics.int_field(rule.get("limit"), default=0) or metrics.DEFAULT_MEASUREMENT_HISTORY
            if len(measurements) <= limit:
                continue
            metric = by_name.get(str(result.get("name")))
            if metric is not None:
                request = provider_base.MeasureRequest(
                    run={**run, "status": status},
                    metric=metric,
                    evaluate=lambda _result: metrics.SUCCESSFUL,
                    now=lambda: now,
                )
                try:
                    await self.provider_for(metric).garbage_collect(request, limit)
                except provider_base.ProviderError:
                    pass
                except Exception:
                    log.exception("garbage collection of metric %s failed", result.get("name"))
            result["measurements"] = measurements[-limit:]

    # ------------------------------------------------------------------------------------ writing

    def _fail(self, status: Obj, message: str, now: datetime, events: list[tuple[str, str, str]]) -> None:
        status["phase"] = metrics.ERROR
        status["message"] = message
        status.setdefault("startedAt", rsutil.stamp(now))
        status.setdefault("completedAt", rsutil.stamp(now))
        events.append(("Warning", "AnalysisRunError", "Analysis Completed. Result: Error"))

    async def _write(self, run: Obj, original: Obj, status: Obj, events: list[tuple[str, str, str]]) -> None:
        patch = mergepatch.create(original, status)
        if patch:
            try:
                written = await self.client.patch(
                    crds.ANALYSISRUN,
                    run["metadata"]["name"],
                    {"status": patch},
                    namespace=run["metadata"]["namespace"],
                )  # AnalysisRuns have no status subresource (as upstream's CRD): status is patched in place
            except kube_errors.ApiError as exc:
                if not exc.not_found:
                    raise
                return
            self.writes.wrote(written)
        if self.record is not None:
            for kind, reason, message in events:
                self.record(run, kind, reason, message)
