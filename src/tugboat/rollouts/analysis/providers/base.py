"""The contract between the AnalysisRun reconciler and the metric providers, and what providers share.

Argo Rollouts keeps every data source behind one small interface (run, resume, terminate, garbage-collect)
so that adding one is a module of its own. This module holds our version of that interface, the request
a provider is handed, helpers that build Argo-shaped ``Measurement`` dicts (phases, RFC 3339 times, error
marking with secret redaction), and the HTTP plumbing the HTTP-based providers share (headers, basic and
OAuth2 client-credentials authentication, insecure TLS, whole-request timeouts).

Providers never raise for a failure to measure: they return a measurement in phase ``Error`` with a
message. Only configuration problems found before measuring raise :class:`ProviderError`.
"""

from __future__ import annotations

import base64
import contextlib
import decimal
import logging
import math
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx2 as httpx
import orjson

log = logging.getLogger(__name__)

Measurement = dict[str, Any]
"""Argo's ``Measurement`` JSON: phase, message, startedAt, finishedAt, value, metadata, resumeAt."""

SUCCESSFUL = "Successful"
FAILED = "Failed"
INCONCLUSIVE = "Inconclusive"
ERROR = "Error"
RUNNING = "Running"
COMPLETED_PHASES = frozenset({SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR})
_EVALUATED_PHASES = frozenset({SUCCESSFUL, FAILED, INCONCLUSIVE})

TERMINATED_MESSAGE = "Metric Terminated"
REDACTED = "*****"

# Every key Argo Rollouts accepts under ``metric.provider`` (``MetricProvider`` in analysis_types.go).
ARGO_PROVIDER_KINDS = frozenset(
    {
        "prometheus",
        "kayenta",
        "web",
        "datadog",
        "wavefront",
        "newRelic",
        "job",
        "cloudWatch",
        "graphite",
        "influxdb",
        "skywalking",
        "plugin",
    }
)


class ProviderError(Exception):
    """A metric's provider configuration is unusable; found before any measurement is taken."""


@dataclass(frozen=True)
class MeasureRequest:
    """Everything a provider needs to take (or advance) one measurement of one metric."""

    run: Mapping[str, Any]
    """The AnalysisRun object (metadata.name/namespace/uid name and own Jobs; status counts them)."""
    metric: Mapping[str, Any]
    """The metric spec with ``{{args.*}}`` substituted; may hold secret values (never logged or echoed)."""
    evaluate: Callable[[Any], str]
    """Typed result -> ``Successful``/``Failed``/``Inconclusive``; any exception means phase ``Error``."""
    now: Callable[[], datetime]
    """The current time, timezone-aware."""
    secrets: Collection[str] = field(default=frozenset())
    """Values resolved from secrets: replaced by ``*****`` in measurement messages and metadata."""

    @property
    def metric_name(self) -> str:
        return str(self.metric.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(_mapping(self.run.get("metadata")).get("namespace") or "")


class MetricProvider(Protocol):
    """One kind of data source. ``run`` takes a measurement; asynchronous kinds finish it in ``resume``."""

    kind: str

    async def run(self, request: MeasureRequest) -> Measurement:
        """A finished measurement, or a ``Running`` one (with ``resumeAt``) that ``resume`` advances."""
        ...

    async def resume(self, request: MeasureRequest, measurement: Measurement) -> Measurement:
        """The measurement advanced: still ``Running`` (new ``resumeAt``) or completed."""
        ...

    async def terminate(self, request: MeasureRequest, measurement: Measurement) -> Measurement:
        """End a ``Running`` measurement early (completed measurements come back unchanged)."""
        ...

    async def garbage_collect(self, request: MeasureRequest, limit: int) -> None:
        """Delete what old measurements left behind, keeping the newest ``limit``."""
        ...


def provider_kind(metric: Mapping[str, Any]) -> str:
    """The single key set under ``metric["provider"]``, spelled as Argo does (``web``, ``newRelic``)."""
    name = metric.get("name")
    provider = metric.get("provider")
    if provider is not None and not isinstance(provider, Mapping):
        raise ProviderError(f"metric {name!r}: provider must be an object")
    keys = [key for key, value in (provider or {}).items() if value is not None]
    if not keys:
        raise ProviderError(f"metric {name!r}: no provider specified")
    if len(keys) > 1:
        raise ProviderError(f"metric {name!r}: multiple providers specified ({', '.join(sorted(keys))})")
    kind = str(keys[0])
    if kind not in ARGO_PROVIDER_KINDS:
        known = ", ".join(sorted(ARGO_PROVIDER_KINDS))
        raise ProviderError(
            f"metric {name!r}: unknown metric provider {kind!r} (Argo Rollouts knows {known})"
        )
    return kind


def provider_config(metric: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """``metric.provider.<kind>``, which must be an object."""
    config = _mapping(metric.get("provider")).get(kind)
    if not isinstance(config, Mapping):
        raise ProviderError(f"metric {metric.get('name')!r}: provider.{kind} must be an object")
    return config


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# ---------------------------------------------------------------------------------- measurements


def rfc3339(moment: datetime) -> str:
    """A measurement's time: UTC RFC 3339 with ``Z``, to the millisecond when not on a whole second.

    Argo Rollouts stores whole seconds, which lines every run's next measurement up on the same second
    boundary (``finishedAt`` + interval); the milliseconds keep each run on its own cadence. Go's
    ``metav1.Time`` (and so ``kubectl argo rollouts``) parses fractional seconds.
    """
    utc = moment.astimezone(UTC)
    if utc.microsecond == 0:
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: Any) -> datetime | None:
    """The datetime of an RFC 3339 string, or None when absent or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def started(request: MeasureRequest, *, phase: str | None = None) -> Measurement:
    """A new measurement, started now."""
    measurement: Measurement = {"startedAt": rfc3339(request.now())}
    if phase is not None:
        measurement["phase"] = phase
    return measurement


def finish(measurement: Measurement, request: MeasureRequest, phase: str) -> Measurement:
    """``measurement`` completed with ``phase``, keeping an existing ``finishedAt``."""
    done = dict(measurement)
    done["phase"] = phase
    done.setdefault("finishedAt", rfc3339(request.now()))
    return done


def redact(text: str, request: MeasureRequest) -> str:
    """``text`` with every secret value replaced by ``*****``."""
    for secret in request.secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def mark_error(measurement: Measurement, request: MeasureRequest, message: str) -> Measurement:
    """``measurement`` completed in phase ``Error`` with ``message`` (secrets redacted)."""
    done = finish(measurement, request, ERROR)
    done["message"] = redact(message, request)
    log.info("metric %r measurement error: %s", request.metric_name, done["message"])
    return done


def with_metadata(measurement: Measurement, request: MeasureRequest, metadata: Mapping[str, str]) -> None:
    """Merge ``metadata`` (secrets redacted) into the measurement's ``metadata`` map."""
    if metadata:
        merged = dict(_mapping(measurement.get("metadata")))
        merged.update({key: redact(str(value), request) for key, value in metadata.items()})
        measurement["metadata"] = merged


def evaluated(measurement: Measurement, request: MeasureRequest, result: Any, value: str) -> Measurement:
    """``measurement`` completed with ``value`` and the phase ``request.evaluate`` gives ``result``.

    An exception from the evaluator (or an answer that is not a phase) makes the measurement ``Error``;
    the value is kept so that users can see what the condition was evaluated against.
    """
    measured = dict(measurement)
    if value:
        measured["value"] = redact(value, request)  # an endpoint may echo a secret it was sent
    try:
        phase = request.evaluate(result)
    except Exception as exc:  # the evaluator's contract: any exception is an evaluation error
        return mark_error(measured, request, str(exc) or type(exc).__name__)
    if phase not in _EVALUATED_PHASES:
        return mark_error(measured, request, f"condition evaluation returned an unknown phase {phase!r}")
    return finish(measured, request, phase)


# ------------------------------------------------------------------------------- configuration


def optional_str(config: Mapping[str, Any], key: str, *, where: str) -> str:
    value = config.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProviderError(f"{where}.{key} must be a string")
    return value


def optional_bool(config: Mapping[str, Any], key: str, *, where: str) -> bool:
    value = config.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ProviderError(f"{where}.{key} must be a boolean")


def optional_int(config: Mapping[str, Any], key: str, *, where: str) -> int | None:
    """An integer field; templated fields may arrive as strings of digits."""
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProviderError(f"{where}.{key} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ProviderError(f"{where}.{key} must be an integer, not {value!r}") from None


def header_pairs(config: Mapping[str, Any], *, where: str) -> list[tuple[str, str]]:
    """``headers: [{key, value}]`` as pairs, in order (a later key replaces an earlier one when sent)."""
    raw = config.get("headers")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ProviderError(f"{where}.headers must be a list of {{key, value}} objects")
    pairs: list[tuple[str, str]] = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str) or not item.get("key"):
            raise ProviderError(f"{where}.headers must be a list of {{key, value}} objects with a key")
        value = item.get("value")
        pairs.append((item["key"], "" if value is None else str(value)))
    return pairs


def check_http_url(url: str, *, where: str) -> None:
    """Reject URLs without an http(s) scheme and a host (the text itself is never echoed: it may hold
    credentials)."""
    try:
        parsed = httpx.URL(url)
    except Exception as exc:  # httpx raises InvalidURL and a few ValueErrors for malformed URLs
        raise ProviderError(f"{where} is not a valid URL ({type(exc).__name__})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProviderError(f"{where} must be an http:// or https:// URL with a host")


# ---------------------------------------------------------------------------------- authentication


@dataclass(frozen=True)
class OAuth2:
    """An OAuth2 client-credentials grant (RFC 6749 §4.4), as ``authentication.oauth2`` configures it."""

    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Authentication:
    basic: tuple[str, str] | None = None
    oauth2: OAuth2 | None = None


def authentication(config: Mapping[str, Any], *, where: str, basic_allowed: bool) -> Authentication:
    """Parse ``authentication``: ``basicAuth`` (where the provider has it), ``oauth2``; refuse ``sigv4``."""
    raw = config.get("authentication")
    if raw is None:
        return Authentication()
    if not isinstance(raw, Mapping):
        raise ProviderError(f"{where}.authentication must be an object")
    here = f"{where}.authentication"
    if any(value for value in _mapping(raw.get("sigv4")).values()):
        raise ProviderError(f"{here}.sigv4 (AWS SigV4 signing) is not supported by Tugboat")
    basic = _basic_auth(raw, where=here) if basic_allowed else None
    return Authentication(basic=basic, oauth2=_oauth2(raw, where=here))


def _basic_auth(raw: Mapping[str, Any], *, where: str) -> tuple[str, str] | None:
    basic = _mapping(raw.get("basicAuth"))
    username = optional_str(basic, "username", where=f"{where}.basicAuth")
    password = optional_str(basic, "password", where=f"{where}.basicAuth")
    if not username and not password:
        return None
    if not username:
        raise ProviderError("missing mandatory parameter in metric for basic auth setup: username")
    if not password:
        raise ProviderError("missing mandatory parameter in metric for basic auth setup: password")
    return username, password


def _oauth2(raw: Mapping[str, Any], *, where: str) -> OAuth2 | None:
    oauth = _mapping(raw.get("oauth2"))
    here = f"{where}.oauth2"
    token_url = optional_str(oauth, "tokenUrl", where=here)
    if not token_url:
        return None
    client_id = optional_str(oauth, "clientId", where=here)
    client_secret = optional_str(oauth, "clientSecret", where=here)
    if not client_id or not client_secret:
        raise ProviderError("missing mandatory parameter in metric for OAuth2 setup")
    check_http_url(token_url, where=f"{here}.tokenUrl")
    scopes = oauth.get("scopes") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ProviderError(f"{here}.scopes must be a list of strings")
    return OAuth2(token_url, client_id, client_secret, tuple(scopes))


def basic_authorization(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class TokenError(Exception):
    """The OAuth2 token endpoint did not hand out a token."""


# Tokens by grant, until shortly before they expire: a metric measured every second must not fetch a
# token every second (Go's clientcredentials TokenSource caches the same way).
_TOKENS: dict[OAuth2, tuple[str, float]] = {}
_TOKEN_SLACK = 10.0  # seconds before expiry at which a token is renewed
_TOKEN_CACHE_SIZE = 256


async def oauth2_authorization(http: httpx.AsyncClient, grant: OAuth2, *, timeout: float) -> str:
    """The ``Authorization`` header value for a client-credentials token (cached until near expiry)."""
    cached = _TOKENS.get(grant)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    header, expires_in = await _fetch_token(http, grant, timeout=timeout)
    if expires_in is not None and expires_in > _TOKEN_SLACK:
        if len(_TOKENS) >= _TOKEN_CACHE_SIZE:
            _TOKENS.clear()
        _TOKENS[grant] = (header, time.monotonic() + expires_in - _TOKEN_SLACK)
    return header


async def _fetch_token(http: httpx.AsyncClient, grant: OAuth2, *, timeout: float) -> tuple[str, float | None]:
    """A fresh token and its lifetime in seconds (None when the server does not say).

    Like Go's ``clientcredentials`` with automatic auth style: the client credentials go in an HTTP Basic
    header first and, if the server refuses that, in the form body.
    """
    form = {"grant_type": "client_credentials"}
    if grant.scopes:
        form["scope"] = " ".join(grant.scopes)
    quote = urllib.parse.quote_plus
    in_header = basic_authorization(quote(grant.client_id), quote(grant.client_secret))
    try:
        response = await http.post(
            grant.token_url, data=form, headers={"Authorization": in_header}, timeout=timeout
        )
        if not response.is_success:
            in_body = {**form, "client_id": grant.client_id, "client_secret": grant.client_secret}
            response = await http.post(grant.token_url, data=in_body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TokenError(f"oauth2: cannot fetch token: {describe_http_error(exc)}") from exc
    fields = _token_fields(response)
    if not response.is_success:
        detail = f' "{fields["error"]}"' if fields.get("error") else ""
        raise TokenError(f"oauth2: cannot fetch token: HTTP {response.status_code}{detail}")
    token = fields.get("access_token")
    if not token:
        raise TokenError("oauth2: server response missing access_token")
    try:
        expires_in: float | None = float(fields.get("expires_in") or "")
    except ValueError:
        expires_in = None
    return f"{_token_type(fields.get('token_type') or '')} {token}", expires_in


def _token_fields(response: httpx.Response) -> dict[str, str]:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "text/plain"):
        return dict(urllib.parse.parse_qsl(response.text))
    try:
        parsed = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {key: str(value) for key, value in parsed.items() if isinstance(value, str | int | float)}


def _token_type(kind: str) -> str:
    canonical = {"bearer": "Bearer", "mac": "MAC", "basic": "Basic"}
    return canonical.get(kind.lower(), kind) or "Bearer"


# -------------------------------------------------------------------------------------------- HTTP


@contextlib.asynccontextmanager
async def http_client(
    shared: httpx.AsyncClient | None, *, insecure: bool
) -> AsyncIterator[httpx.AsyncClient]:
    """The shared client when it fits, else a short-lived one (``insecure`` skips TLS verification)."""
    if shared is not None and not insecure:
        yield shared
        return
    async with httpx.AsyncClient(verify=not insecure) as client:
        yield client


async def authorization_headers(
    http: httpx.AsyncClient, auth: Authentication, headers: list[tuple[str, str]], *, timeout: float
) -> httpx.Headers:
    """Request headers: the authentication's ``Authorization``, then the configured headers (which win)."""
    result = httpx.Headers()
    if auth.oauth2 is not None:
        result["Authorization"] = await oauth2_authorization(http, auth.oauth2, timeout=timeout)
    elif auth.basic is not None:
        result["Authorization"] = basic_authorization(*auth.basic)
    for key, value in headers:
        result[key] = value
    return result


def describe_http_error(exc: BaseException) -> str:
    """A short description of a transport failure, without the URL (it may carry credentials)."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def format_float(number: float) -> str:
    """A float as Go's ``strconv.FormatFloat(f, 'f', -1, 64)`` prints it: shortest digits, no exponent,
    ``NaN``, ``+Inf``, ``-Inf`` (how Argo prints Prometheus samples)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return format(decimal.Decimal(repr(number)).normalize(), "f")


def seconds_text(seconds: float) -> str:
    """``30s``, ``1.5s``: how a timeout appears in messages."""
    return f"{int(seconds)}s" if math.isclose(seconds, round(seconds)) else f"{seconds:g}s"
