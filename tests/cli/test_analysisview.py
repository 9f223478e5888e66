"""``tugboat analysis`` screens from hand-built AnalysisRun dicts in Argo's status shape.

The header uses the ``%-17s`` key column of ``kubectl argo rollouts get rollout``; the metric and
measurement tables are tab-aligned with two spaces between columns, like its tree.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tugboat.cli import analysisview

NOW = datetime.datetime(2026, 8, 8, 10, 0, 0, tzinfo=datetime.UTC)


def measured(phase: str, second: int, *, value: str = "", message: str = "") -> dict[str, Any]:
    started = f"2026-08-08T09:58:{second:02d}Z"
    found: dict[str, Any] = {"phase": phase, "startedAt": started}
    if phase != "Running":
        found["finishedAt"] = f"2026-08-08T09:58:{second + 1:02d}Z"
    if value:
        found["value"] = value
    if message:
        found["message"] = message
    return found


def analysis_run(
    name: str = "web-6f646bf7b7-2",
    *,
    metrics: list[str] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    run: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": "demo", "creationTimestamp": "2026-08-08T09:58:00Z"},
        "spec": {
            "metrics": [{"name": m, "provider": {"web": {"url": "http://x"}}} for m in metrics or []],
            **spec,
        },
    }
    if status is not None:
        run["status"] = status
    return run


def lines(view: Any) -> list[str]:
    return [line.rstrip() for line in view.plain.splitlines()]


FAILED_RUN = analysis_run(
    metrics=["error-rate", "latency", "smoke"],
    args=[
        {"name": "service-name", "value": "web-canary"},
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ],
    status={
        "phase": "Failed",
        "message": 'Metric "error-rate" assessed Failed due to failed (3) > failureLimit (2)',
        "startedAt": "2026-08-08T09:58:00Z",
        "completedAt": "2026-08-08T10:00:00Z",
        "runSummary": {"count": 3, "successful": 1, "failed": 1, "error": 1},
        "metricResults": [
            {
                "name": "error-rate",
                "phase": "Failed",
                "count": 5,
                "successful": 2,
                "failed": 3,
                "measurements": [
                    measured("Successful", 0, value="[0.01]"),
                    measured("Failed", 30, value="[0.2]"),
                ],
            },
            {
                "name": "latency",
                "phase": "Successful",
                "count": 1,
                "successful": 1,
                "measurements": [measured("Successful", 0, value="120")],
            },
            {
                "name": "smoke",
                "phase": "Error",
                "error": 2,
                "consecutiveError": 2,
                "message": "connection refused",
                "measurements": [measured("Error", 10, message="connection refused")],
            },
        ],
    },
)


def test_failed_run() -> None:
    assert lines(analysisview.detail(FAILED_RUN)) == [
        "Name:            web-6f646bf7b7-2",
        "Namespace:       demo",
        "Status:          ✖ Failed",
        'Message:         Metric "error-rate" assessed Failed due to failed (3) > failureLimit (2)',
        "Args:            service-name=web-canary",
        "                 token=<secret creds/token>",
        "Started:         2026-08-08T09:58:00Z",
        "Completed:       2026-08-08T10:00:00Z",
        "Run Summary:     ✔ 1,✖ 1,⚠ 1 of 3 metrics",
        "",
        "METRIC      STATUS        COUNT  SUCCESSFUL  FAILED  INCONCLUSIVE  ERROR  "
        "CONSECUTIVE-ERROR  MESSAGE",
        "error-rate  ✖ Failed      5      2           3       0             0      0",
        "latency     ✔ Successful  1      1           0       0             0      0",
        "smoke       ⚠ Error       0      0           0       0             2      2                  "
        "connection refused",
        "",
        "METRIC      STATUS        VALUE   STARTED               FINISHED              MESSAGE",
        "error-rate  ✔ Successful  [0.01]  2026-08-08T09:58:00Z  2026-08-08T09:58:01Z",
        "error-rate  ✖ Failed      [0.2]   2026-08-08T09:58:30Z  2026-08-08T09:58:31Z",
        "latency     ✔ Successful  120     2026-08-08T09:58:00Z  2026-08-08T09:58:01Z",
        "smoke       ⚠ Error               2026-08-08T09:58:10Z  2026-08-08T09:58:11Z  connection refused",
    ]


def test_run_not_started_yet() -> None:
    """No status: a blank status, every metric of the spec pending, no measurements table."""
    assert lines(analysisview.detail(analysis_run(metrics=["error-rate", "latency"]))) == [
        "Name:            web-6f646bf7b7-2",
        "Namespace:       demo",
        "Status:",
        "Run Summary:     none of 2 metrics completed",
        "",
        "METRIC      STATUS     COUNT  SUCCESSFUL  FAILED  INCONCLUSIVE  ERROR  CONSECUTIVE-ERROR  MESSAGE",
        "error-rate  ◷ Pending  0      0           0       0             0      0",
        "latency     ◷ Pending  0      0           0       0             0      0",
    ]


def test_running_run_counted_from_results_with_a_dry_run_metric() -> None:
    """Without ``runSummary`` the summary counts the results' phases; a dry-run metric is labelled and
    summed apart; a result without counters is counted from its measurements."""
    run = analysis_run(
        metrics=["success", "canary-check"],
        dryRun=[{"metricName": "canary-check"}],
        status={
            "phase": "Running",
            "startedAt": "2026-08-08T09:58:00Z",
            "metricResults": [
                {
                    "name": "success",
                    "phase": "Running",
                    "measurements": [measured("Successful", 0, value="1"), measured("Running", 20)],
                },
                {
                    "name": "canary-check",
                    "phase": "Failed",
                    "dryRun": True,
                    "count": 1,
                    "failed": 1,
                    "measurements": [measured("Failed", 5, value="0")],
                },
            ],
        },
    )
    assert lines(analysisview.detail(run)) == [
        "Name:            web-6f646bf7b7-2",
        "Namespace:       demo",
        "Status:          ◌ Running",
        "Started:         2026-08-08T09:58:00Z",
        "Run Summary:     none of 1 metric completed",
        "Dry-Run Summary: ✖ 1 of 1 metric",
        "",
        "METRIC                  STATUS     COUNT  SUCCESSFUL  FAILED  INCONCLUSIVE  ERROR  "
        "CONSECUTIVE-ERROR  MESSAGE",
        "success                 ◌ Running  1      1           0       0             0      0",
        "canary-check (dry-run)  ✖ Failed   1      0           1       0             0      0",
        "",
        "METRIC        STATUS        VALUE  STARTED               FINISHED              MESSAGE",
        "success       ✔ Successful  1      2026-08-08T09:58:00Z  2026-08-08T09:58:01Z",
        "success       ◌ Running            2026-08-08T09:58:20Z",
        "canary-check  ✖ Failed      0      2026-08-08T09:58:05Z  2026-08-08T09:58:06Z",
    ]


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ({"name": "port", "value": "8080"}, "port=8080"),
        ({"name": "empty", "value": ""}, "empty="),
        ({"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}, "token=<secret s/k>"),
        (
            {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            "app=<field metadata.labels['app']>",
        ),
        ({"name": "unset"}, "unset="),
    ],
)
def test_arguments(arg: dict[str, Any], expected: str) -> None:
    assert analysisview.arg_text(arg) == expected


def test_icons_are_coloured_like_rollout_get() -> None:
    view = analysisview.detail(FAILED_RUN)
    styles = {view.plain[span.start : span.end]: str(span.style) for span in view.spans}
    assert styles["✖"] == "red" and styles["✔"] == "green" and styles["⚠"] == "red"
    assert "Failed" not in styles  # only icons are coloured


def test_list_table() -> None:
    pending = analysis_run("web-1", metrics=["a"])
    pending["metadata"]["creationTimestamp"] = "2026-08-01T10:00:00Z"
    other = analysis_run("api-3", status={"phase": "Successful", "metricResults": []})
    other["metadata"]["namespace"] = "prod"
    runs = [pending, FAILED_RUN, other]
    assert lines(analysisview.list_table(runs, NOW)) == [
        "NAME              STATUS        AGE  INFO",
        "web-1                           7d",
        "web-6f646bf7b7-2  ✖ Failed      2m   ✔ 3,✖ 3,⚠ 2",
        "api-3             ✔ Successful  2m",
    ]
    wide = lines(analysisview.list_table([other], NOW, all_namespaces=True))
    assert wide == ["NAMESPACE  NAME   STATUS        AGE  INFO", "prod       api-3  ✔ Successful  2m"]
