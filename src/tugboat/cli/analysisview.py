"""How ``tugboat analysis …`` shows AnalysisRuns: the ``get`` screen of one run and the ``list`` table.

``kubectl argo rollouts`` has no command for a single AnalysisRun: its users read the run's YAML, or the
one-line summary ``get rollout`` prints (``✔ 4,✖ 4,? 1,⚠ 1``). This screen lays the run out the way
``get rollout`` lays out a Rollout, so it reads the same: a ``%-17s`` header (name, status with its icon,
message, arguments, times, the run summary), then tab-aligned tables of the metrics (phase and
measurement counters) and of their measurements (phase, value, times, message), with upstream's icons
and colours. Everything here is pure, from AnalysisRun dicts in Argo's shape to rich ``Text``, so the
screens are tested without a cluster; :mod:`tugboat.cli.analysiscmd` reads the objects.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text

from tugboat.cli import appview, rolloutview

Run = Mapping[str, Any]

METRIC_HEADERS = (
    "METRIC",
    "STATUS",
    "COUNT",
    "SUCCESSFUL",
    "FAILED",
    "INCONCLUSIVE",
    "ERROR",
    "CONSECUTIVE-ERROR",
    "MESSAGE",
)
MEASUREMENT_HEADERS = ("METRIC", "STATUS", "VALUE", "STARTED", "FINISHED", "MESSAGE")
LIST_HEADERS = ("NAME", "STATUS", "AGE", "INFO")
PENDING = "Pending"  # what a metric without a result yet is shown as


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def phase(run: Run) -> str:
    return appview.text(run, "status", "phase")


def status_text(run: Run) -> Text:
    """``icon phase`` (a run the controller has not picked up yet has neither)."""
    return rolloutview.status_cell(rolloutview.analysis_icon(phase(run)), phase(run))


# ---------------------------------------------------------------------------------------------- header


def arg_text(arg: Mapping[str, Any]) -> str:
    """``name=value``; for an argument taken from elsewhere, where from (a Secret's value is never in the
    run, and is not shown)."""
    name = appview.text(arg, "name")
    if "value" in arg:
        return f"{name}={appview.text(arg, 'value')}"
    secret = appview.field(arg, "valueFrom", "secretKeyRef")
    if isinstance(secret, Mapping):
        return f"{name}=<secret {appview.text(secret, 'name')}/{appview.text(secret, 'key')}>"
    field_path = appview.text(arg, "valueFrom", "fieldRef", "fieldPath")
    if field_path:
        return f"{name}=<field {field_path}>"
    return f"{name}="


def _dry_run_names(run: Run) -> set[str]:
    """Metrics in dry-run mode: named by ``spec.dryRun[].metricName`` (``.*`` for all) or flagged on
    their result."""
    names = {appview.text(entry, "metricName") for entry in appview.items(run, "spec", "dryRun")}
    if ".*" in names:
        names |= {appview.text(m, "name") for m in appview.items(run, "spec", "metrics")}
    names |= {
        appview.text(r, "name") for r in appview.items(run, "status", "metricResults") if r.get("dryRun")
    }
    return names


def metrics_summary(run: Run, *, dry_run: bool = False) -> tuple[int, rolloutview.Counts]:
    """How many metrics the run has and how many of them ended in each outcome (dry-run metrics apart):
    ``status.runSummary`` (``dryRunSummary``) as the controller wrote it, else counted from the results'
    phases."""
    written = appview.field(run, "status", "dryRunSummary" if dry_run else "runSummary")
    if isinstance(written, Mapping) and written:
        counts = rolloutview.Counts(*(_int(written.get(key)) for key in rolloutview.COUNTERS))
        return _int(written.get("count")), counts
    dry = _dry_run_names(run)
    names = [appview.text(m, "name") for m in appview.items(run, "spec", "metrics")]
    phases = {appview.text(r, "name"): appview.text(r, "phase") for r in _results(run)}
    names += [name for name in phases if name not in names]
    chosen = [name for name in names if (name in dry) == dry_run]
    outcomes = [phases.get(name, "") for name in chosen]
    return len(chosen), rolloutview.Counts(*(outcomes.count(p) for p in rolloutview.COUNTED_PHASES))


def _summary_text(total: int, counts: rolloutview.Counts) -> Text:
    noun = "metric" if total == 1 else "metrics"
    done = rolloutview.counts_text(counts)
    if not done.plain:
        return Text(f"none of {total} {noun} completed")
    return done.append(f" of {total} {noun}")


def header(run: Run) -> Text:
    """Name, namespace, status, message, arguments, start and end, and the run summary."""
    lines = [
        rolloutview.key_line("Name:", rolloutview.name_of(run)),
        rolloutview.key_line("Namespace:", appview.text(run, "metadata", "namespace")),
        rolloutview.key_line("Status:", status_text(run)),
    ]
    message = appview.text(run, "status", "message")
    if message:
        lines.append(rolloutview.key_line("Message:", message))
    for i, arg in enumerate(appview.items(run, "spec", "args")):
        lines.append(rolloutview.key_line("Args:" if i == 0 else "", arg_text(arg)))
    for key, path in (("Started:", "startedAt"), ("Completed:", "completedAt")):
        moment = appview.text(run, "status", path)
        if moment:
            lines.append(rolloutview.key_line(key, moment))
    total, counts = metrics_summary(run)
    if total:
        lines.append(rolloutview.key_line("Run Summary:", _summary_text(total, counts)))
    dry_total, dry_counts = metrics_summary(run, dry_run=True)
    if dry_total:
        lines.append(rolloutview.key_line("Dry-Run Summary:", _summary_text(dry_total, dry_counts)))
    return rolloutview.joined(lines, "\n")


# ---------------------------------------------------------------------------------------------- tables


def _results(run: Run) -> list[Mapping[str, Any]]:
    return appview.items(run, "status", "metricResults")


def metric_count(result: Mapping[str, Any]) -> int:
    """How many times the metric was measured without an error: ``count``, else (a result without
    counters) its successful, failed and inconclusive outcomes."""
    if result.get("count") is not None:
        return _int(result.get("count"))
    counts = rolloutview.metric_counts(result)
    return counts.successful + counts.failed + counts.inconclusive


def metric_rows(run: Run) -> list[list[Text]]:
    """One row per metric: its results in the order the controller wrote them, then the metrics of the
    spec that have no result yet (``Pending``, nothing counted)."""
    dry = _dry_run_names(run)
    rows = []
    results = _results(run)
    seen = {appview.text(r, "name") for r in results}
    pending = [
        {"name": appview.text(m, "name"), "phase": PENDING}
        for m in appview.items(run, "spec", "metrics")
        if appview.text(m, "name") not in seen
    ]
    for result in [*results, *pending]:
        name = appview.text(result, "name")
        status = appview.text(result, "phase")
        counts = rolloutview.metric_counts(result)
        cells = [
            Text(f"{name} (dry-run)" if name in dry else name),
            rolloutview.status_cell(rolloutview.analysis_icon(status), status),
            Text(str(metric_count(result))),
            *(Text(str(value)) for value in counts.values()),
            Text(str(_int(result.get("consecutiveError")))),
            Text(appview.text(result, "message")),
        ]
        rows.append(cells)
    return rows


def measurement_rows(run: Run) -> list[list[Text]]:
    """One row per measurement kept in the run, metric by metric, oldest first."""
    rows = []
    for result in _results(run):
        for measurement in appview.items(result, "measurements"):
            status = appview.text(measurement, "phase")
            rows.append(
                [
                    Text(appview.text(result, "name")),
                    rolloutview.status_cell(rolloutview.analysis_icon(status), status),
                    Text(appview.text(measurement, "value")),
                    Text(appview.text(measurement, "startedAt")),
                    Text(appview.text(measurement, "finishedAt")),
                    Text(appview.text(measurement, "message")),
                ]
            )
    return rows


def detail(run: Run) -> Text:
    """Everything ``analysis get`` prints: the header, then the metrics and measurements tables (each
    after a blank line, when there is anything to show)."""
    out = header(run)
    for headers, rows in ((METRIC_HEADERS, metric_rows(run)), (MEASUREMENT_HEADERS, measurement_rows(run))):
        if rows:
            out.append("\n\n").append_text(rolloutview.tabulate([[Text(h) for h in headers], *rows]))
    return out


def list_table(runs: Iterable[Run], now: datetime.datetime, *, all_namespaces: bool = False) -> Text:
    """``analysis list``: name, status, age and the measurement counts of each run (a NAMESPACE column
    first for ``-A``)."""
    headers = ["NAMESPACE", *LIST_HEADERS] if all_namespaces else list(LIST_HEADERS)
    rows: list[list[Text]] = [[Text(h) for h in headers]]
    for run in runs:
        row = [
            Text(rolloutview.name_of(run)),
            status_text(run),
            Text(rolloutview.age(appview.text(run, "metadata", "creationTimestamp"), now)),
            rolloutview.counts_text(rolloutview.analysisrun_counts(run)),
        ]
        if all_namespaces:
            row.insert(0, Text(appview.text(run, "metadata", "namespace")))
        rows.append(row)
    return rolloutview.tabulate(rows)
