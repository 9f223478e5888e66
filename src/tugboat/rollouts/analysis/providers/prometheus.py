"""The Prometheus metric provider: one PromQL query over Prometheus' HTTP API per measurement.

Most Argo Rollouts analyses ask Prometheus ("success rate of the canary over the last 5 minutes"), so
this is the provider users meet first. It speaks ``/api/v1/query`` (or ``/api/v1/query_range`` for
``rangeQuery``) directly, the way Go's client_golang does: a form POST that falls back to GET, errors
reported as ``<errorType>: <error>``. A scalar result is handed to the condition as a float; a vector or
a matrix as a list of floats. ``value`` is printed as Argo prints it (``0.95``, ``[0.95,1]``, ``NaN``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import orjson

from tugboat.kube import client as kube_client
from tugboat.rollouts import defaults
from tugboat.rollouts.analysis.providers import base

KIND = "prometheus"
DEFAULT_TIMEOUT_SECONDS = 30.0
ADDRESS_ENV = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS"
"""Like Argo Rollouts, a controller-wide default for metrics that set no ``address``."""

_WHERE = "provider.prometheus"


class _QueryError(Exception):
    """Prometheus answered, but not with a usable result."""


@dataclass(frozen=True)
class _Range:
    start: str
    end: str
    step: str


@dataclass(frozen=True)
class _Config:
    address: str
    query: str
    timeout: float
    insecure: bool
    headers: list[tuple[str, str]]
    auth: base.Authentication
    range_query: _Range | None


def _config(metric: Mapping[str, Any]) -> _Config:
    raw = base.provider_config(metric, KIND)
    address = base.optional_str(raw, "address", where=_WHERE) or os.environ.get(ADDRESS_ENV, "")
    if not address:
        raise base.ProviderError("prometheus address is not configured")
    base.check_http_url(address, where=f"{_WHERE}.address")
    timeout = base.optional_int(raw, "timeout", where=_WHERE)
    if timeout is not None and timeout < 0:
        raise base.ProviderError("prometheus timeout should not be negative")
    return _Config(
        address=address,
        query=base.optional_str(raw, "query", where=_WHERE),
        timeout=float(timeout) if timeout else DEFAULT_TIMEOUT_SECONDS,
        insecure=base.optional_bool(raw, "insecure", where=_WHERE),
        headers=base.header_pairs(raw, where=_WHERE),
        auth=base.authentication(raw, where=_WHERE, basic_allowed=True),
        range_query=_range(raw.get("rangeQuery")),
    )


def _range(raw: Any) -> _Range | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise base.ProviderError(f"{_WHERE}.rangeQuery must be an object")
    where = f"{_WHERE}.rangeQuery"
    return _Range(
        start=base.optional_str(raw, "start", where=where),
        end=base.optional_str(raw, "end", where=where),
        step=base.optional_str(raw, "step", where=where),
    )


class PrometheusProvider:
    """Queries Prometheus once per measurement; nothing to resume, terminate or collect."""

    kind: str = KIND

    def __init__(
        self,
        metric: Mapping[str, Any],
        *,
        client: kube_client.Client | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        _config(metric)  # configuration errors surface before the first measurement
        self._http = http

    async def run(self, request: base.MeasureRequest) -> base.Measurement:
        measurement = base.started(request)
        try:
            config = _config(request.metric)
            url, form = _request_for(config, request.now())
        except (base.ProviderError, _QueryError) as exc:
            return base.mark_error(measurement, request, str(exc))
        try:
            async with asyncio.timeout(config.timeout):
                response = await self._send(config, url, form)
        except (TimeoutError, httpx.TimeoutException):
            return base.mark_error(
                measurement, request, f"prometheus query timed out after {base.seconds_text(config.timeout)}"
            )
        except base.TokenError as exc:
            return base.mark_error(measurement, request, str(exc))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return base.mark_error(
                measurement, request, f"prometheus query failed: {base.describe_http_error(exc)}"
            )
        try:
            data, warnings = _api_data(response)
            result, value = _result(data)
        except _QueryError as exc:
            return base.mark_error(measurement, request, str(exc))
        if warnings:
            base.with_metadata(measurement, request, {"warnings": ", ".join(f'"{w}"' for w in warnings)})
        return base.evaluated(measurement, request, result, value)

    async def _send(self, config: _Config, url: httpx.URL, form: dict[str, str]) -> httpx.Response:
        """POST the form; like client_golang, retry as a GET when the server does not allow POST."""
        async with base.http_client(self._http, insecure=config.insecure) as http:
            headers = await base.authorization_headers(
                http, config.auth, config.headers, timeout=config.timeout
            )
            response = await http.post(
                url, data=form, headers=headers, timeout=config.timeout, follow_redirects=True
            )
            if response.status_code in (405, 501):
                response = await http.get(
                    url, params=form, headers=headers, timeout=config.timeout, follow_redirects=True
                )
            return response

    async def resume(self, request: base.MeasureRequest, measurement: base.Measurement) -> base.Measurement:
        return measurement

    async def terminate(
        self, request: base.MeasureRequest, measurement: base.Measurement
    ) -> base.Measurement:
        return measurement

    async def garbage_collect(self, request: base.MeasureRequest, limit: int) -> None:
        return None


# ------------------------------------------------------------------------------------- the request


def _request_for(config: _Config, now: datetime) -> tuple[httpx.URL, dict[str, str]]:
    """The endpoint URL and the form of an instant query at ``now``, or of the configured range query."""
    address = httpx.URL(config.address)
    prefix = address.path.rstrip("/")
    if config.range_query is None:
        return address.copy_with(path=f"{prefix}/api/v1/query"), {
            "query": config.query,
            "time": base.format_float(now.timestamp()),
        }
    span = config.range_query
    start = _time_or_error(span.start, "start", now)
    end = _time_or_error(span.end, "end", now)
    try:
        step = defaults.parse_go_duration(span.step)
    except ValueError as exc:
        raise _QueryError(f"failed to parse rangeQuery.step as duration: {exc}") from None
    return address.copy_with(path=f"{prefix}/api/v1/query_range"), {
        "query": config.query,
        "start": base.format_float(start.timestamp()),
        "end": base.format_float(end.timestamp()),
        "step": base.format_float(step),
    }


def _time_or_error(expression: str, field: str, now: datetime) -> datetime:
    try:
        return eval_time(expression, now=now)
    except ValueError as exc:
        raise _QueryError(f"failed to parse rangeQuery.{field} as time: {exc}") from None


_TERM = re.compile(
    r"""\s*(?:(?P<now>now\s*\(\s*\))|duration\s*\(\s*(?P<quote>["'`])(?P<duration>.*?)(?P=quote)\s*\))\s*"""
)
_OPERATOR = re.compile(r"\s*([+-])\s*")


def eval_time(expression: str, *, now: datetime) -> datetime:
    """Evaluate a ``rangeQuery`` time: ``now()`` plus or minus ``duration("5m")`` terms (the expr-lang
    forms Argo documents). Raises ``ValueError`` for anything else or for a result that is no time."""
    values: list[datetime | timedelta] = []
    operators: list[str] = []
    pos = 0
    while True:
        term = _TERM.match(expression, pos)
        if term is None:
            raise ValueError(
                f'unsupported time expression {expression!r}: use now() and duration("<Go duration>") '
                "joined by + or -"
            )
        if term.group("now"):
            values.append(now)
        else:
            values.append(timedelta(seconds=defaults.parse_go_duration(term.group("duration"))))
        pos = term.end()
        if pos == len(expression):
            break
        operator = _OPERATOR.match(expression, pos)
        if operator is None:
            raise ValueError(f"unexpected {expression[pos:]!r} in time expression {expression!r}")
        operators.append(operator.group(1))
        pos = operator.end()
    total: Any = values[0]
    for operator_text, value in zip(operators, values[1:], strict=True):
        try:
            total = total + value if operator_text == "+" else total - value
        except TypeError:
            raise ValueError(f"cannot combine the terms of time expression {expression!r}") from None
    if not isinstance(total, datetime):
        raise ValueError(f"expected a time, but {expression!r} is a duration")
    return total


# ------------------------------------------------------------------------------------ the response


def _api_data(response: httpx.Response) -> tuple[Any, list[str]]:
    """The ``data`` of a Prometheus API answer and its warnings; errors read like client_golang's."""
    code = response.status_code
    api_error = code in (400, 422)  # Prometheus' own error codes carry an error body
    body: Any = {}
    if code != 204:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            if code // 100 != 2 and not api_error:
                raise _QueryError(_status_error(code)) from None
            raise _QueryError(f"bad_response: {exc}") from None
    if not isinstance(body, dict):
        raise _QueryError("bad_response: the answer is not a JSON object")
    if body.get("status") == "error":
        raise _QueryError(f"{body.get('errorType') or 'unknown'}: {body.get('error') or ''}")
    if code // 100 != 2 and not api_error:
        raise _QueryError(_status_error(code))
    if api_error:
        raise _QueryError("bad_response: inconsistent body for response code")
    warnings = body.get("warnings") or []
    return body.get("data"), [str(w) for w in warnings] if isinstance(warnings, list) else []


def _status_error(code: int) -> str:
    if code // 100 == 4:
        return f"client_error: client error: {code}"
    if code // 100 == 5:
        return f"server_error: server error: {code}"
    return f"bad_response: bad response code {code}"


def _result(data: Any) -> tuple[float | list[float], str]:
    """The condition's ``result`` and the printed ``value`` of a query's ``data``."""
    if not isinstance(data, dict):
        raise _QueryError("bad_response: the answer has no data")
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        number = _sample(result)
        return number, base.format_float(number)
    if kind == "vector":
        samples = [_sample(item.get("value")) for item in _series(result) if "value" in item]
    elif kind == "matrix":
        samples = [_sample(pair) for item in _series(result) for pair in _list(item.get("values"))]
    else:
        raise _QueryError("Prometheus metric type not supported")
    return samples, "[" + ",".join(base.format_float(s) for s in samples) + "]"


def _series(result: Any) -> list[dict[str, Any]]:
    return [item for item in _list(result) if isinstance(item, dict)]


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _QueryError("bad_response: malformed result")
    return value


def _sample(pair: Any) -> float:
    """The number of a ``[timestamp, "value"]`` pair (``"NaN"``, ``"+Inf"`` included)."""
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise _QueryError("bad_response: malformed sample")
    try:
        return float(pair[1])
    except ValueError:
        raise _QueryError(f"bad_response: malformed sample value {pair[1]!r}") from None
