"""Totals of request counters from Prometheus text, filtered by labels: analysis without a Prometheus.

The local cluster exports its simulated traffic in Prometheus text format (``/metrics/simulated``); a real
Prometheus scraping it is the faithful way to analyse a canary. For a laptop without one, the same counters
are summed here for the series whose labels match a query (``?namespace=demo&rollouts_pod_template_hash=…``)
and served as JSON at ``/metrics/<name>/summary``, which the Web metric provider can judge:
``{"requests": 812, "errors": 397, "successRate": 0.511, "series": 4}``. Counters are totals since each pod
started, so the rate is over the pods' lives, not a recent window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
COUNTER_SUFFIX = "_requests_total"


def summarize(text: str, wanted: Mapping[str, str]) -> dict[str, Any]:
    """Sum every ``*_requests_total`` series whose labels include ``wanted``; 5xx codes are errors."""
    requests = errors = 0.0
    series = 0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or not match.group("name").endswith(COUNTER_SUFFIX):
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(match.group("labels") or "")}
        if any(labels.get(key) != value for key, value in wanted.items()):
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        series += 1
        requests += value
        if labels.get("code", "").startswith("5"):
            errors += value
    rate = None if requests == 0 else round((requests - errors) / requests, 4)
    return {"requests": round(requests, 3), "errors": round(errors, 3), "successRate": rate, "series": series}


_ESCAPE = re.compile(r"\\(.)")
_ESCAPED = {"n": "\n", '"': '"', "\\": "\\"}


def _unescape(value: str) -> str:
    """Prometheus label escapes (``\\\\``, ``\\"``, ``\\n``) undone in one pass, left to right."""
    return _ESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(0)), value)
