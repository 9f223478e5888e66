"""The pure rules of AnalysisRun metrics (tugboat.rollouts.analysis.metrics) against Argo Rollouts'.

Row by row of research/rollouts.md §1.5 ("Metric fields", "Measurement outcome", "Metric phase", "Run
phase"): validation and its messages (upstream's ValidateMetrics), when a measurement is due (first one,
``initialDelay``, ``interval``, the 10 s retry after an error, ``count``, indefinite runs, in-flight
measurements and ``resumeAt``, terminating runs), how a measurement is counted, a metric's phase from
its counters (upstream's assessMetricStatus tables), the phase order and which runs are terminating,
and how ``dryRun`` / ``measurementRetention`` rules match metric names. The reconciler that puts these
together is tested in ``test_analysis_run.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tugboat.rollouts.analysis import metrics, templates

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]
JOB: Obj = {"job": {"spec": {}}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def metric(name: str = "m", **fields: Any) -> Obj:
    return {"name": name, "provider": JOB, **fields}


def done(phase: str, seconds: float = 0, **extra: Any) -> Obj:
    """A completed measurement that finished ``seconds`` after T0."""
    return {"phase": phase, "startedAt": stamp(seconds), "finishedAt": stamp(seconds), **extra}


def running(seconds: float = 0, **extra: Any) -> Obj:
    return {"phase": "Running", "startedAt": stamp(seconds), **extra}


def status(*results: Obj, started: float = 0) -> Obj:
    return {"startedAt": stamp(started), "metricResults": list(results)}


def result(name: str = "m", *measurements: Obj, phase: str = "Running", **counters: int) -> Obj:
    return {"name": name, "phase": phase, "measurements": list(measurements), **counters}


def invalid(*metric_list: Obj) -> str:
    with pytest.raises(templates.AnalysisSpecError) as caught:
        metrics.validate(list(metric_list))
    return str(caught.value)


# ------------------------------------------------------------------------------------ metric fields


def test_int_or_string_fields_accept_numbers_and_numeric_text() -> None:
    assert metrics.int_field(3) == 3
    assert metrics.int_field("3") == 3
    assert metrics.int_field(" -1 ") == -1
    assert metrics.int_field(None, default=4) == 4
    assert metrics.int_field("", default=0) == 0
    for bad in ("three", True, "1.5"):
        with pytest.raises(templates.AnalysisSpecError, match="expected an integer"):
            metrics.int_field(bad)


def test_durations_are_go_durations() -> None:
    assert metrics.duration("60s", "interval") == 60
    assert metrics.duration("1m30s", "interval") == 90
    assert metrics.duration("500ms", "interval") == 0.5
    assert metrics.duration(None, "interval") is None
    assert metrics.duration("", "interval") is None
    with pytest.raises(templates.AnalysisSpecError, match=r"^invalid interval string: "):
        metrics.duration("60s-typo", "interval")


def test_effective_count() -> None:
    # Without interval or count there is one measurement; with only an interval the metric runs
    # indefinitely; count (IntOrString, so templated counts arrive as text) wins.
    assert metrics.effective_count(metric()) == 1
    assert metrics.effective_count(metric(interval="1m")) is None
    assert metrics.effective_count(metric(interval="1m", count=0)) is None
    assert metrics.effective_count(metric(interval="1m", count=5)) == 5
    assert metrics.effective_count(metric(interval="1m", count="5")) == 5
    assert metrics.effective_count(metric(count=1)) == 1


# ------------------------------------------------------------------------------------ validation


def test_a_valid_metric_passes() -> None:
    metrics.validate([metric(count=5, interval="60s", failureLimit=2, initialDelay="30s")])
    metrics.validate([metric(count="5", interval="60s", failureLimit="2")])
    metrics.validate([metric(failureLimit=-1, consecutiveSuccessLimit=3, interval="1m")])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"count": 1, "failureLimit": 2},
            "metrics[0]: count (1) must be >= failureLimit + consecutiveSuccessLimit (2 + 0) if both >= 0",
        ),
        (
            {"count": 3, "interval": "1m", "failureLimit": 1, "consecutiveSuccessLimit": 3},
            "metrics[0]: count (3) must be >= failureLimit + consecutiveSuccessLimit (1 + 3) if both >= 0",
        ),
        (
            {"count": 2, "interval": "1m", "failureLimit": -1, "consecutiveSuccessLimit": 3},
            "metrics[0]: count must be >= consecutiveSuccessLimit",
        ),
        ({"count": 1, "inconclusiveLimit": 2}, "metrics[0]: count must be >= inconclusiveLimit"),
        ({"count": 2}, "metrics[0]: interval must be specified when count > 1"),
        ({"failureLimit": -2}, "metrics[0]: failureLimit must be >= 0, or -1 to be disabled"),
        ({"inconclusiveLimit": -1}, "metrics[0]: inconclusiveLimit must be >= 0"),
        ({"consecutiveErrorLimit": -1}, "metrics[0]: consecutiveErrorLimit must be >= 0"),
        ({"consecutiveSuccessLimit": -1}, "metrics[0]: consecutiveSuccessLimit must be >= 0"),
        (
            {"consecutiveSuccessLimit": 0, "failureLimit": -1},
            "metrics[0]: failureLimit and consecutiveSuccessLimit cannot both be disabled",
        ),
        (
            {"failureLimit": -1},
            "metrics[0]: failureLimit and consecutiveSuccessLimit cannot both be disabled",
        ),
        ({"provider": {}}, "metrics[0]: no provider specified"),
        ({"provider": None}, "metrics[0]: no provider specified"),
        ({"provider": {"job": {}, "web": {"url": "http://x"}}}, "metrics[0]: multiple providers specified"),
    ],
)
def test_validation_messages_are_upstreams(fields: Obj, message: str) -> None:
    assert invalid(metric(**fields)) == message


def test_validation_of_durations_and_names() -> None:
    assert invalid() == "no metrics specified"
    assert invalid(metric("a"), metric("b"), metric("a")) == "metrics[2]: duplicate name 'a'"
    assert (
        invalid(metric("a"), metric("b", count=2)) == "metrics[1]: interval must be specified when count > 1"
    )
    assert invalid(metric(interval="60s-typo")).startswith("metrics[0]: invalid interval string: ")
    assert invalid(metric(initialDelay="5")).startswith("metrics[0]: invalid startDelay string: ")


def test_count_checks_only_apply_to_a_positive_count() -> None:
    # count 0 (or unset) is "no count": the limits are not compared with it.
    metrics.validate([metric(count=0, failureLimit=3, inconclusiveLimit=2)])


# ------------------------------------------------------------------------------------ dryRun / retention


def test_dry_run_rules_match_names_by_regular_expression() -> None:
    listed: list[Mapping[str, Any]] = [metric("success-rate"), metric("error-rate"), metric("latency")]
    assert set(metrics.matching_rules([{"metricName": "latency"}], listed, "dryRun")) == {"latency"}
    assert set(metrics.matching_rules([{"metricName": ".*"}], listed, "dryRun")) == {
        "success-rate",
        "error-rate",
        "latency",
    }
    # Go's regexp.MatchString: unanchored.
    assert set(metrics.matching_rules([{"metricName": "rate"}], listed, "dryRun")) == {
        "success-rate",
        "error-rate",
    }
    assert metrics.matching_rules([], listed, "dryRun") == {}


def test_a_rule_that_matches_nothing_is_an_error() -> None:
    listed: list[Mapping[str, Any]] = [metric("success-rate")]
    with pytest.raises(templates.AnalysisSpecError) as caught:
        metrics.matching_rules([{"metricName": "error-rate"}], listed, "dryRun")
    assert str(caught.value) == "dryRun[0]: Rule didn't match any metric name(s)"
    rules = [{"metricName": "success-rate", "limit": 5}, {"metricName": "nope", "limit": 2}]
    with pytest.raises(templates.AnalysisSpecError) as caught:
        metrics.matching_rules(rules, listed, "measurementRetention")
    assert str(caught.value) == "measurementRetention[1]: Rule didn't match any metric name(s)"


def test_the_last_matching_retention_rule_wins() -> None:
    listed: list[Mapping[str, Any]] = [metric("success-rate"), metric("latency")]
    rules = [{"metricName": ".*", "limit": 5}, {"metricName": "latency", "limit": 2}]
    matched = metrics.matching_rules(rules, listed, "measurementRetention")
    assert matched["success-rate"]["limit"] == 5
    assert matched["latency"]["limit"] == 2


# ------------------------------------------------------------------------------------ due times


def due(
    m: Obj, st: Obj, now: float, *, terminating: bool = False
) -> tuple[bool, Obj | None, datetime | None]:
    return metrics.due(m, st, now=at(now), terminating=terminating)


def test_the_first_measurement_is_due_at_once() -> None:
    assert due(metric(interval="1m"), status(), 0) == (True, None, None)
    assert due(metric(), {}, 0) == (True, None, None)


def test_initial_delay_postpones_the_first_measurement_from_started_at() -> None:
    m = metric(interval="1m", initialDelay="30s")
    assert due(m, status(started=0), 10) == (False, None, at(30))
    assert due(m, status(started=0), 30) == (True, None, None)
    assert due(m, status(started=0), 45) == (True, None, None)
    # A run not started yet starts now: the delay counts from now.
    assert due(m, {}, 100) == (False, None, at(130))


def test_initial_delay_only_delays_the_first_measurement() -> None:
    m = metric(interval="10s", initialDelay="30s")
    st = status(result("m", done("Successful", 30), successful=1, count=1))
    assert due(m, st, 35) == (False, None, at(40))
    assert due(m, st, 40) == (True, None, None)


def test_the_next_measurement_is_due_an_interval_after_the_last_finished() -> None:
    m = metric(interval="60s")
    st = status(result("m", done("Successful", 0), done("Successful", 60), successful=2, count=2))
    assert due(m, st, 90) == (False, None, at(120))
    assert due(m, st, 120) == (True, None, None)
    assert due(m, st, 500) == (True, None, None)


def test_an_errored_measurement_is_retried_after_ten_seconds() -> None:
    assert metrics.ERROR_RETRY_SECONDS == 10
    for m in (metric(interval="5m"), metric(), metric(count=3, interval="1h")):
        st = status(result("m", done("Error", 0, message="boom"), error=1, consecutiveError=1))
        assert due(m, st, 5) == (False, None, at(10))
        assert due(m, st, 10) == (True, None, None)


def test_one_measurement_without_interval_or_count() -> None:
    for phase in ("Successful", "Failed", "Inconclusive"):
        st = status(result("m", done(phase, 0), count=1))
        assert due(metric(), st, 3600) == (False, None, None)


def test_count_stops_measuring() -> None:
    m = metric(count=3, interval="10s")
    st = status(result("m", *(done("Successful", s) for s in (0, 10)), successful=2, count=2))
    assert due(m, st, 20) == (True, None, None)
    st = status(result("m", *(done("Successful", s) for s in (0, 10, 20)), successful=3, count=3))
    assert due(m, st, 30) == (False, None, None)
    # Errors do not count toward count.
    st = status(result("m", done("Successful", 0), done("Error", 10), successful=1, count=1, error=1))
    assert due(m, st, 20) == (True, None, None)
    # A templated count arrives as text.
    st = status(result("m", done("Successful", 0), successful=1, count=1))
    assert due(metric(count="1", interval="10s"), st, 10) == (False, None, None)


def test_an_interval_without_count_measures_indefinitely() -> None:
    m = metric(interval="10s")
    measured = [done("Successful", 10 * i) for i in range(200)]
    st = status(result("m", *measured[-10:], successful=200, count=200))
    assert due(m, st, 10 * 200) == (True, None, None)
    assert metrics.metric_phase(m, st["metricResults"][0], terminating=False) == "Running"


def test_in_flight_measurements_are_resumed_at_resume_at() -> None:
    m = metric(interval="1m")
    later = running(0, resumeAt=stamp(30))
    st = status(result("m", later))
    assert due(m, st, 10) == (False, None, at(30))
    assert due(m, st, 30) == (True, later, None)
    # Without resumeAt the measurement is looked at on every reconcile.
    plain = running(0)
    assert due(m, status(result("m", plain)), 10) == (True, plain, None)


def test_a_terminating_run_takes_no_new_measurement_but_ends_in_flight_ones() -> None:
    m = metric(interval="10s")
    st = status(result("m", done("Successful", 0), successful=1, count=1))
    assert due(m, st, 100, terminating=True) == (False, None, None)
    assert due(m, status(), 0, terminating=True) == (False, None, None)
    flight = running(0, resumeAt=stamp(300))
    assert due(m, status(result("m", flight)), 10, terminating=True) == (True, flight, None)


def test_a_completed_metric_is_never_due() -> None:
    for phase in ("Successful", "Failed", "Error", "Inconclusive"):
        st = status(result("m", done("Successful", 0), phase=phase, count=1))
        assert due(metric(interval="1s"), st, 100) == (False, None, None)


# ------------------------------------------------------------------------------------ counting


def count_after(*phases: str, **start: int) -> Obj:
    counted: Obj = {"name": "m", **start}
    for phase in phases:
        metrics.record(counted, {"phase": phase})
    counted.pop("name")
    return counted


def test_recording_measurements_counts_like_upstream() -> None:
    assert count_after("Successful", "Successful") == {
        "successful": 2,
        "count": 2,
        "consecutiveError": 0,
        "consecutiveSuccess": 2,
    }
    assert count_after("Successful", "Failed", "Inconclusive") == {
        "successful": 1,
        "failed": 1,
        "inconclusive": 1,
        "count": 3,
        "consecutiveError": 0,
        "consecutiveSuccess": 0,
    }
    # Errors are counted apart: not in count, and they break a run of successes.
    assert count_after("Successful", "Error", "Error") == {
        "successful": 1,
        "count": 1,
        "error": 2,
        "consecutiveError": 2,
        "consecutiveSuccess": 0,
    }
    # Any measured result ends a run of errors (upstream's TestRunMeasurementsResetConsecutiveErrorCounter).
    for phase in ("Successful", "Failed", "Inconclusive"):
        after = count_after(phase, consecutiveError=4, error=4, count=4)
        assert (after["consecutiveError"], after["error"], after["count"]) == (0, 4, 5)
    after = count_after("Error", consecutiveError=4, error=4, count=4)
    assert (after["consecutiveError"], after["error"], after["count"]) == (5, 5, 4)
    # A measurement still running counts for nothing.
    assert count_after("Running") == {}


# ------------------------------------------------------------------------------------ metric phase


def phases(m: Obj, r: Obj) -> tuple[str, str]:
    """The metric's phase (not terminating, terminating)."""
    return metrics.metric_phase(m, r, terminating=False), metrics.metric_phase(m, r, terminating=True)


def test_no_measurement_is_pending_or_successful_when_terminating() -> None:
    assert phases(metric(), result("m")) == ("Pending", "Successful")


def test_an_in_flight_measurement_is_running_even_when_terminating() -> None:
    r = result("m", done("Successful", 0), running(60), successful=1, count=1)
    assert phases(metric(), r) == ("Running", "Running")


def test_failure_limit() -> None:
    r = result("m", done("Failed"), failed=3, count=3)
    assert phases(metric(interval="60s", failureLimit=2), r) == ("Failed", "Failed")
    assert phases(metric(interval="60s", failureLimit=3), r) == ("Running", "Successful")
    # failureLimit defaults to 0: the first failure fails the metric.
    assert phases(metric(interval="60s"), result("m", done("Failed"), failed=1, count=1)) == (
        "Failed",
        "Failed",
    )
    # -1 disables it.
    m = metric(interval="60s", failureLimit=-1, consecutiveSuccessLimit=3)
    assert phases(m, result("m", done("Failed"), failed=50, count=50)) == ("Running", "Successful")


def test_consecutive_success_limit() -> None:
    r = result("m", done("Failed"), failed=3, successful=4, consecutiveSuccess=3, count=7)
    m = metric(interval="60s", failureLimit=-1, consecutiveSuccessLimit=3)
    assert phases(m, r) == ("Successful", "Successful")
    m["consecutiveSuccessLimit"] = 5
    assert phases(m, r) == ("Running", "Successful")
    # With a count that is reached: the limit not reached fails the metric (failureLimit disabled).
    m["count"] = 7
    assert phases(m, r) == ("Failed", "Failed")
    m["consecutiveSuccessLimit"] = 3
    assert phases(m, r) == ("Successful", "Successful")
    # With a count not reached yet.
    m["count"] = 9
    assert phases(m, r) == ("Successful", "Successful")
    m["consecutiveSuccessLimit"] = 5
    assert phases(m, r) == ("Running", "Successful")


@pytest.mark.parametrize(
    ("count", "counters", "expected"),
    [
        # indefinite
        (None, (3, 4, 7, 3), ("Running", "Successful")),
        (None, (5, 9, 9, 0), ("Failed", "Failed")),
        (None, (3, 5, 8, 4), ("Successful", "Successful")),
        (None, (5, 5, 10, 4), ("Failed", "Failed")),
        # count reached
        (10, (4, 6, 10, 3), ("Inconclusive", "Inconclusive")),
        (10, (5, 5, 10, 3), ("Failed", "Failed")),
        (10, (4, 6, 10, 4), ("Successful", "Successful")),
        (10, (5, 5, 10, 4), ("Failed", "Failed")),
        # count not reached
        (10, (3, 5, 8, 3), ("Running", "Successful")),
        (10, (5, 3, 8, 3), ("Failed", "Failed")),
        (10, (3, 5, 8, 4), ("Successful", "Successful")),
        (10, (5, 4, 9, 4), ("Failed", "Failed")),
    ],
)
def test_failure_limit_and_consecutive_success_limit(
    count: int | None, counters: tuple[int, int, int, int], expected: tuple[str, str]
) -> None:
    m = metric(interval="60s", failureLimit=4, consecutiveSuccessLimit=4)
    if count is not None:
        m["count"] = count
    failed, successful, total, in_a_row = counters
    r = result(
        "m", done("Failed"), failed=failed, successful=successful, count=total, consecutiveSuccess=in_a_row
    )
    assert phases(m, r) == expected


def test_inconclusive_limit() -> None:
    r = result("m", done("Inconclusive"), inconclusive=3, count=3)
    assert phases(metric(interval="60s", inconclusiveLimit=2), r) == ("Inconclusive", "Inconclusive")
    assert phases(metric(interval="60s", inconclusiveLimit=3), r) == ("Running", "Successful")
    # The default limit is 0.
    r = result("m", done("Inconclusive"), inconclusive=1, count=1)
    assert phases(metric(interval="60s"), r) == ("Inconclusive", "Inconclusive")


def test_consecutive_error_limit_defaults_to_four() -> None:
    assert metrics.DEFAULT_CONSECUTIVE_ERROR_LIMIT == 4
    r = result("m", done("Error"), consecutiveError=5, error=5, count=5)
    assert phases(metric(interval="60s"), r) == ("Error", "Error")
    r["consecutiveError"] = 4
    assert phases(metric(interval="60s"), r) == ("Running", "Successful")
    # A limit of 0: the first error ends the metric.
    r = result("m", done("Error"), consecutiveError=1, error=1)
    assert phases(metric(interval="60s", consecutiveErrorLimit=0), r) == ("Error", "Error")
    assert phases(metric(interval="60s", consecutiveErrorLimit="2"), r) == ("Running", "Successful")


def test_count_reached_is_successful_unless_a_limit_says_otherwise() -> None:
    r = result("m", done("Successful"), successful=10, count=10)
    assert phases(metric(count=10, interval="1s"), r) == ("Successful", "Successful")
    r.update(successful=5, inconclusive=5)
    assert phases(metric(count=10, interval="1s"), r)[0] == "Inconclusive"
    # Failures within failureLimit do not fail a metric that reached its count.
    r = result("m", done("Failed"), successful=8, failed=2, count=10)
    assert phases(metric(count=10, interval="1s", failureLimit=2), r) == ("Successful", "Successful")


def test_one_measurement_metrics_end_with_their_measurement() -> None:
    assert phases(metric(), result("m", done("Successful"), successful=1, count=1))[0] == "Successful"
    assert phases(metric(), result("m", done("Failed"), failed=1, count=1))[0] == "Failed"
    assert phases(metric(), result("m", done("Inconclusive"), inconclusive=1, count=1))[0] == "Inconclusive"
    # An error is retried (up to the consecutive error limit), so the metric is still running.
    assert phases(metric(), result("m", done("Error"), error=1, consecutiveError=1))[0] == "Running"


def test_a_completed_metric_keeps_its_phase() -> None:
    r = result("m", done("Successful"), phase="Failed", successful=1, count=1)
    assert phases(metric(interval="1m"), r) == ("Failed", "Failed")


def test_failure_phase_says_why() -> None:
    fp = metrics.failure_phase
    assert fp(metric(failureLimit=1), {"failed": 2}) == ("Failed", "failed (2) > failureLimit (1)")
    assert fp(metric(), {"failed": 1}) == ("Failed", "failed (1) > failureLimit (0)")
    assert fp(metric(failureLimit=-1, consecutiveSuccessLimit=1), {"failed": 9}) == ("", "")
    assert fp(metric(inconclusiveLimit=1), {"inconclusive": 2}) == (
        "Inconclusive",
        "inconclusive (2) > inconclusiveLimit (1)",
    )
    assert fp(metric(), {"consecutiveError": 5}) == (
        "Error",
        "consecutiveErrors (5) > consecutiveErrorLimit (4)",
    )
    assert fp(metric(), {"failed": 0, "error": 3, "consecutiveError": 3}) == ("", "")
    # When several limits are exceeded, Error beats Inconclusive beats Failed (upstream's check order).
    everything = {"failed": 3, "inconclusive": 3, "consecutiveError": 5}
    assert fp(metric(), everything)[0] == "Error"
    assert fp(metric(), {"failed": 3, "inconclusive": 3})[0] == "Inconclusive"


# ------------------------------------------------------------------------------------ run phase helpers


def test_phase_order_successful_running_pending_inconclusive_error_failed() -> None:
    order = ["Successful", "Running", "Pending", "Inconclusive", "Error", "Failed"]
    for i, better in enumerate(order):
        for worse in order[i + 1 :]:
            assert metrics.is_worse(better, worse)
            assert not metrics.is_worse(worse, better)
        assert not metrics.is_worse(better, better)


def test_terminating_runs() -> None:
    assert metrics.is_terminating({"terminate": True}, {}, {})
    assert not metrics.is_terminating({}, {}, {})
    for phase in ("Failed", "Error", "Inconclusive"):
        st = {"metricResults": [{"name": "a", "phase": "Running"}, {"name": "b", "phase": phase}]}
        assert metrics.is_terminating({}, st, {})
        # A dry-run metric's result never ends the run.
        assert not metrics.is_terminating({}, st, {"b": {"metricName": "b"}})
    for phase in ("Successful", "Running", "Pending"):
        assert not metrics.is_terminating({}, {"metricResults": [{"name": "a", "phase": phase}]}, {})


def test_summary_keys() -> None:
    assert [metrics.summary_key(p) for p in ("Failed", "Error", "Inconclusive", "Successful", "")] == [
        "failed",
        "error",
        "inconclusive",
        "successful",
        "successful",
    ]


def test_results_and_last_measurements() -> None:
    st = status(result("a", done("Successful", 0), done("Failed", 10)), result("b"))
    found = metrics.result_of(st, "a")
    assert found is not None and found["name"] == "a"
    assert metrics.result_of(st, "c") is None
    assert metrics.last_measurement(found) == done("Failed", 10)
    assert metrics.last_measurement(metrics.result_of(st, "b")) is None
    assert metrics.last_measurement(None) is None
    assert metrics.parse_time(stamp(5)) == at(5)
    assert metrics.parse_time("garbage") is None
    assert metrics.parse_time(None) is None
