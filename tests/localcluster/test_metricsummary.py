"""The JSON summary of request counters (``/metrics/<name>/summary``) that lets a Web metric judge a
canary's success rate without a Prometheus."""

from __future__ import annotations

from tugboat.localcluster import metricsummary

TEXT = """# HELP tugboat_sim_http_requests_total Requests.
# TYPE tugboat_sim_http_requests_total counter
tugboat_sim_http_requests_total{code="200",namespace="demo",pod="a",rollouts_pod_template_hash="h1"} 90
tugboat_sim_http_requests_total{code="500",namespace="demo",pod="a",rollouts_pod_template_hash="h1"} 10
tugboat_sim_http_requests_total{code="200",namespace="demo",pod="b",rollouts_pod_template_hash="h2"} 50
tugboat_sim_http_requests_total{code="500",namespace="demo",pod="b",rollouts_pod_template_hash="h2"} 50
tugboat_sim_http_requests_total{code="200",namespace="other",pod="c",rollouts_pod_template_hash="h1"} 7
tugboat_sim_http_request_duration_seconds_bucket{le="0.1",namespace="demo",pod="a"} 100
"""


def test_summary_of_matching_series() -> None:
    summary = metricsummary.summarize(TEXT, {"namespace": "demo", "rollouts_pod_template_hash": "h2"})
    assert summary == {"requests": 100.0, "errors": 50.0, "successRate": 0.5, "series": 2}


def test_summary_over_everything_and_nothing() -> None:
    assert metricsummary.summarize(TEXT, {"namespace": "demo"})["successRate"] == 0.7
    empty = metricsummary.summarize(TEXT, {"namespace": "nowhere"})
    assert empty == {"requests": 0.0, "errors": 0.0, "successRate": None, "series": 0}


def test_escaped_label_values_and_garbage_lines() -> None:
    text = (
        'x_requests_total{code="200",note="a \\"b\\""} 3\nnot a sample\nx_requests_total{code="200"} NaNx\n'
    )
    assert metricsummary.summarize(text, {"note": 'a "b"'})["requests"] == 3.0


def test_escapes_are_undone_left_to_right() -> None:
    text = 'x_requests_total{code="200",path="a\\\\nb"} 2\nx_requests_total{code="200",path="a\\nb"} 5\n'
    assert metricsummary.summarize(text, {"path": "a\\nb"})["requests"] == 2.0  # an escaped backslash, then n
    assert metricsummary.summarize(text, {"path": "a\nb"})["requests"] == 5.0  # a newline
