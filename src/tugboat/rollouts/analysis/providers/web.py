"""The Web metric provider: one HTTP request per measurement, its JSON (or text) answer as the result.

Argo Rollouts' ``web`` provider lets an analysis ask any HTTP endpoint (a health page, an internal API)
instead of a metrics system. The request is ``method``/``url``/``headers``/``body`` or ``jsonBody``; a
2xx JSON answer is narrowed with ``jsonPath`` (Kubernetes brace syntax, default ``{$}``, first match) and
handed to the condition as parsed JSON; an answer that is not JSON is handed over as text. ``value`` is
printed as Go's ``encoding/json`` would print the result (sorted keys, no spaces), or the text itself.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import orjson

from tugboat.kube import client as kube_client
from tugboat.kube import errors as kube_errors
from tugboat.kube import jsonpath
from tugboat.rollouts.analysis.providers import base
from tugboat.util import http1

KIND = "web"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_JSON_PATH = "{$}"
METHODS = ("GET", "POST", "PUT")

_WHERE = "provider.web"


class _NoJSON(Exception):
    """The body is not JSON (Go's decoder would refuse it), so the text itself is the result."""


@dataclass(frozen=True)
class _Config:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None
    json_body: bool
    timeout: float
    path: jsonpath.Path
    insecure: bool
    auth: base.Authentication


def _config(metric: Mapping[str, Any]) -> _Config:
    raw = base.provider_config(metric, KIND)
    method = (base.optional_str(raw, "method", where=_WHERE) or "GET").upper()
    if method not in METHODS:
        raise base.ProviderError(f"{_WHERE}.method must be one of {', '.join(METHODS)}, not {method!r}")
    url = base.optional_str(raw, "url", where=_WHERE)
    if not url:
        raise base.ProviderError(f"{_WHERE}.url is required")
    base.check_http_url(url, where=f"{_WHERE}.url")
    text_body = base.optional_str(raw, "body", where=_WHERE)
    json_body = raw.get("jsonBody")
    if text_body and json_body is not None:
        raise base.ProviderError("use either Body or JSONBody; both cannot exists for WebMetric payload")
    if (text_body or json_body is not None) and method == "GET":
        raise base.ProviderError("Body/JSONBody can only be used with POST or PUT WebMetric Method types")
    body: bytes | None = text_body.encode() if text_body else None
    if json_body is not None:
        body = orjson.dumps(json_body)
    timeout = base.optional_int(raw, "timeoutSeconds", where=_WHERE)
    expression = base.optional_str(raw, "jsonPath", where=_WHERE) or DEFAULT_JSON_PATH
    try:
        path = jsonpath.compile(expression)
    except kube_errors.JSONPathError as exc:
        raise base.ProviderError(f"{_WHERE}.jsonPath: {exc}") from None
    return _Config(
        method=method,
        url=url,
        headers=base.header_pairs(raw, where=_WHERE),
        body=body,
        json_body=json_body is not None,
        timeout=float(timeout) if timeout and timeout > 0 else DEFAULT_TIMEOUT_SECONDS,
        path=path,
        insecure=base.optional_bool(raw, "insecure", where=_WHERE),
        auth=base.authentication(raw, where=_WHERE, basic_allowed=False),
    )


class WebProvider:
    """Sends one request per measurement; nothing to resume, terminate or collect."""

    kind: str = KIND

    def __init__(
        self,
        metric: Mapping[str, Any],
        *,
        client: kube_client.Client | None = None,
        http: httpx.AsyncClient | None = None,
        lean: http1.Pools | None = None,
    ) -> None:
        _config(metric)  # configuration errors surface before the first measurement
        self._http = http
        self._lean = lean

    async def run(self, request: base.MeasureRequest) -> base.Measurement:
        measurement = base.started(request)
        try:
            config = _config(request.metric)
        except base.ProviderError as exc:
            return base.mark_error(measurement, request, str(exc))
        try:
            async with asyncio.timeout(config.timeout):
                status, content = await self._send(config)
        except (TimeoutError, httpx.TimeoutException):
            message = f"{config.method} request timed out after {base.seconds_text(config.timeout)}"
            return base.mark_error(measurement, request, message)
        except base.TokenError as exc:
            return base.mark_error(measurement, request, str(exc))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            message = f"{config.method} request failed: {base.describe_http_error(exc)}"
            return base.mark_error(measurement, request, message)
        except http1.HTTPError as exc:
            return base.mark_error(measurement, request, f"{config.method} request failed: {exc}")
        if not 200 <= status < 300:
            return base.mark_error(measurement, request, f"received non 2xx response code: {status}")
        text = content.decode("utf-8", errors="replace")
        try:
            document = _parse_json(text)
        except _NoJSON:
            return base.evaluated(measurement, request, text, text)
        found = config.path.find(document)
        if not found:
            return base.mark_error(
                measurement, request, f"Could not find JSONPath in body: {config.path} matched nothing"
            )
        return base.evaluated(measurement, request, found[0], go_json(found[0]))

    async def _send(self, config: _Config) -> tuple[int, bytes]:
        if self._lean is not None and _lean_fits(config):
            # Plain http without an auth flow: the lean pool, unless the answer is a redirect to follow.
            pool, target = self._lean.for_url(config.url)
            plain = dict(config.headers)
            if config.json_body:
                plain["Content-Type"] = "application/json"
            answer = await pool.request(config.method, target, headers=plain, body=config.body)
            if not 300 <= answer.status < 400:
                return answer.status, answer.body
        async with base.http_client(self._http, insecure=config.insecure) as http:
            headers = await base.authorization_headers(
                http, config.auth, config.headers, timeout=config.timeout
            )
            if config.json_body:
                headers["Content-Type"] = "application/json"
            response = await http.request(
                config.method,
                config.url,
                content=config.body,
                headers=headers,
                timeout=config.timeout,
                follow_redirects=True,
            )
            return response.status_code, response.content

    async def resume(self, request: base.MeasureRequest, measurement: base.Measurement) -> base.Measurement:
        return measurement

    async def terminate(
        self, request: base.MeasureRequest, measurement: base.Measurement
    ) -> base.Measurement:
        return measurement

    async def garbage_collect(self, request: base.MeasureRequest, limit: int) -> None:
        return None


def _lean_fits(config: _Config) -> bool:
    """Whether the lean pool sends exactly what httpx would: plain http, a GET (a redirect is then
    safely re-sent through httpx), no auth flow or credentials in the URL, nothing to percent-encode."""
    return (
        config.url.startswith("http://")
        and config.method == "GET"
        and config.auth.oauth2 is None
        and config.auth.basic is None
        and "@" not in config.url.split("/", 3)[2]
        and config.url.isascii()
        and " " not in config.url
        and not any(k.lower() == "host" for k, _ in config.headers)
    )


def _refuse_constant(name: str) -> Any:
    raise _NoJSON(name)


def _parse_json(text: str) -> Any:
    """Strict JSON, as Go decodes it: ``NaN``/``Infinity`` literals and empty bodies are not JSON."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        raise _NoJSON from None


# --------------------------------------------------------------------------------------- printing

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPED = re.compile("[<>&\u2028\u2029]")


def go_json(value: Any) -> str:
    """``value`` encoded as Go's ``json.Marshal`` encodes decoded JSON: map keys sorted, no spaces, HTML
    characters escaped, floats in Go's shortest form (``1e-7``, ``1e+21``, ``100``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_go_string(str(k))}:{go_json(v)}" for k, v in items) + "}"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _go_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    return _GO_ESCAPED.sub(lambda match: _GO_ESCAPES[match.group()], encoded)


def _go_float(number: float) -> str:
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(number))
    return base.format_float(number)
