"""The Prometheus metric provider against a fake Prometheus HTTP API in a thread (and, when the
``prometheus`` binary is installed, against a real one).

The fake answers by query text: each query names the answer it wants (a scalar, a vector, an error...).
It records what it received so that tests can check the form, the headers and the endpoint.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tugboat.rollouts.analysis.providers import base, prometheus

NOW = dt.datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=dt.UTC)
RUN = {"metadata": {"name": "run", "namespace": "ns", "uid": "u-1"}}


def _vector(*values: str) -> dict[str, Any]:
    samples = [{"metric": {"pod": f"p{i}"}, "value": [1714557600, v]} for i, v in enumerate(values)]
    return {"resultType": "vector", "result": samples}


ANSWERS: dict[str, tuple[int, Any]] = {
    "scalar": (200, {"status": "success", "data": {"resultType": "scalar", "result": [1714557600, "0.95"]}}),
    "vector": (200, {"status": "success", "data": _vector("0.95", "1")}),
    "empty": (200, {"status": "success", "data": _vector()}),
    "special": (200, {"status": "success", "data": _vector("NaN", "+Inf", "-Inf", "1e-7", "1e21")}),
    "matrix": (
        200,
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [
                    {"metric": {"a": "1"}, "values": [[1, "1"], [2, "2.5"]]},
                    {"metric": {"a": "2"}, "values": [[1, "3"]]},
                ],
            },
        },
    ),
    "string": (200, {"status": "success", "data": {"resultType": "string", "result": [1, "hello"]}}),
    "warned": (
        200,
        {"status": "success", "data": _vector("1"), "warnings": ["too many series", "partial data"]},
    ),
    "bad(": (400, {"status": "error", "errorType": "bad_data", "error": '1:4: parse error: unclosed "("'}),
    "unavailable": (503, "Service Unavailable"),
    "overloaded": (503, {"status": "error", "errorType": "unavailable", "error": "too many queries"}),
    "notjson": (200, "<html>"),
    "leak": (400, {"status": "error", "errorType": "bad_data", "error": "unknown token s3cr3t"}),
    "inconsistent": (422, {"status": "success", "data": _vector("1")}),
}


class _Prometheus(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    get_only_prefix = "/get-only"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, form: dict[str, str]) -> None:
        path = urllib.parse.urlsplit(self.path).path
        self.received.append(
            {"method": self.command, "path": path, "form": form, "headers": dict(self.headers.items())}
        )
        if path.startswith("/missing") or not path.endswith(("/api/v1/query", "/api/v1/query_range")):
            code, body = 404, "404 page not found"
        elif form.get("query") == "slow":
            time.sleep(1.5)
            code, body = ANSWERS["scalar"]
        else:
            code, body = ANSWERS.get(form.get("query", ""), ANSWERS["vector"])
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if self.path.startswith(self.get_only_prefix):
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._answer(form)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that gave up (the timeout test) close their connection early


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = _Server(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def received() -> list[dict[str, Any]]:
    _Prometheus.received.clear()
    return _Prometheus.received


def metric(**config: Any) -> dict[str, Any]:
    return {"name": "success-rate", "provider": {"prometheus": config}}


async def measure(
    config: dict[str, Any], *, evaluate: Any = None, secrets: frozenset[str] = frozenset()
) -> tuple[base.Measurement, list[Any]]:
    seen: list[Any] = []

    def record(result: Any) -> str:
        seen.append(result)
        return evaluate(result) if evaluate else base.SUCCESSFUL

    request = base.MeasureRequest(
        run=RUN, metric=metric(**config), evaluate=record, now=lambda: NOW, secrets=secrets
    )
    measurement = await prometheus.PrometheusProvider(request.metric).run(request)
    return measurement, seen


# ---------------------------------------------------------------------------------------- results


async def test_scalar_is_a_float(server: str, received: list[dict[str, Any]]) -> None:
    measurement, seen = await measure({"address": server, "query": "scalar"})
    assert measurement == {
        "phase": "Successful",
        "value": "0.95",
        "startedAt": "2024-05-01T10:00:00.500Z",
        "finishedAt": "2024-05-01T10:00:00.500Z",
    }
    assert seen == [0.95]
    assert received[0]["method"] == "POST" and received[0]["path"] == "/api/v1/query"
    assert received[0]["form"] == {"query": "scalar", "time": "1714557600.5"}


async def test_vector_is_a_list_of_floats(server: str) -> None:
    measurement, seen = await measure({"address": server, "query": "vector"})
    assert (measurement["value"], seen) == ("[0.95,1]", [[0.95, 1.0]])
    measurement, seen = await measure({"address": server, "query": "empty"})
    assert (measurement["value"], seen) == ("[]", [[]])


async def test_special_values_print_like_go(server: str) -> None:
    measurement, seen = await measure({"address": server, "query": "special"})
    assert measurement["value"] == "[NaN,+Inf,-Inf,0.0000001,1000000000000000000000]"
    values = seen[0]
    assert values[0] != values[0] and values[1] == float("inf") and values[2] == float("-inf")


async def test_range_query_flattens_the_matrix(server: str, received: list[dict[str, Any]]) -> None:
    span = {"start": 'now() - duration("1h30m")', "end": "now()", "step": "1m"}
    measurement, seen = await measure({"address": server, "query": "matrix", "rangeQuery": span})
    assert (measurement["value"], seen) == ("[1,2.5,3]", [[1.0, 2.5, 3.0]])
    assert received[0]["path"] == "/api/v1/query_range"
    assert received[0]["form"] == {
        "query": "matrix",
        "start": "1714552200.5",
        "end": "1714557600.5",
        "step": "60",
    }


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ({"start": "yesterday", "end": "now()", "step": "1m"}, "failed to parse rangeQuery.start as time"),
        ({"start": "now()", "end": 'duration("5m")', "step": "1m"}, "failed to parse rangeQuery.end as time"),
        ({"start": "now()", "end": "now()", "step": "60"}, "failed to parse rangeQuery.step as duration"),
    ],
)
async def test_range_query_errors(server: str, span: dict[str, str], message: str) -> None:
    measurement, seen = await measure({"address": server, "query": "matrix", "rangeQuery": span})
    assert measurement["phase"] == "Error" and seen == []
    assert measurement["message"].startswith(message)


def test_time_expressions() -> None:
    now = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert prometheus.eval_time("now()", now=now) == now
    assert prometheus.eval_time("now()-duration('10m') + duration(`1s`)", now=now) == now - dt.timedelta(
        seconds=599
    )
    with pytest.raises(ValueError, match="expected a time"):
        prometheus.eval_time("now() - now()", now=now)


async def test_condition_phases_and_evaluation_errors(server: str) -> None:
    def failed(result: Any) -> str:
        return base.FAILED

    def broken(result: Any) -> str:
        raise TypeError("invalid operation: []float64 >= float64")

    measurement, _ = await measure({"address": server, "query": "vector"}, evaluate=failed)
    assert measurement["phase"] == "Failed"
    measurement, _ = await measure({"address": server, "query": "vector"}, evaluate=broken)
    assert measurement["phase"] == "Error"
    assert measurement["message"] == "invalid operation: []float64 >= float64"


async def test_warnings_go_to_metadata(server: str) -> None:
    measurement, _ = await measure({"address": server, "query": "warned"})
    assert measurement["metadata"] == {"warnings": '"too many series", "partial data"'}


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bad(", 'bad_data: 1:4: parse error: unclosed "("'),
        ("unavailable", "server_error: server error: 503"),
        ("overloaded", "unavailable: too many queries"),
        ("string", "Prometheus metric type not supported"),
        ("inconsistent", "bad_response: inconsistent body for response code"),
    ],
)
async def test_prometheus_errors_are_error_measurements(server: str, query: str, message: str) -> None:
    measurement, seen = await measure({"address": server, "query": query})
    assert measurement["phase"] == "Error" and seen == []
    assert measurement["message"] == message
    assert measurement["finishedAt"] == "2024-05-01T10:00:00.500Z"


async def test_unparsable_answer(server: str) -> None:
    measurement, _ = await measure({"address": server, "query": "notjson"})
    assert measurement["phase"] == "Error" and measurement["message"].startswith("bad_response: ")


async def test_wrong_path_is_a_client_error(server: str) -> None:
    measurement, _ = await measure({"address": f"{server}/missing", "query": "scalar"})
    assert measurement["message"] == "client_error: client error: 404"


async def test_timeout(server: str) -> None:
    began = time.monotonic()
    measurement, _ = await measure({"address": server, "query": "slow", "timeout": 1})
    assert time.monotonic() - began < 1.4
    assert (measurement["phase"], measurement["message"]) == ("Error", "prometheus query timed out after 1s")


async def test_unreachable_server_without_leaking_the_address() -> None:
    measurement, _ = await measure({"address": "http://admin:hunter2@127.0.0.1:1", "query": "up"})
    assert measurement["phase"] == "Error"
    assert measurement["message"].startswith("prometheus query failed: ConnectError")
    assert "hunter2" not in measurement["message"]


async def test_secrets_are_redacted(server: str) -> None:
    measurement, _ = await measure({"address": server, "query": "leak"}, secrets=frozenset({"s3cr3t"}))
    assert measurement["message"] == "bad_data: unknown token *****"


# -------------------------------------------------------------------------------------- requests


@pytest.mark.parametrize("suffix", ["", "/", "/prefix", "/prefix/"])
async def test_address_with_or_without_trailing_slash(
    server: str, received: list[dict[str, Any]], suffix: str
) -> None:
    measurement, _ = await measure({"address": server + suffix, "query": "scalar"})
    assert measurement["phase"] == "Successful"
    prefix = suffix.rstrip("/")
    assert received[0]["path"] == f"{prefix}/api/v1/query"


async def test_falls_back_to_get_when_post_is_refused(server: str, received: list[dict[str, Any]]) -> None:
    measurement, _ = await measure({"address": f"{server}/get-only", "query": "scalar"})
    assert measurement["value"] == "0.95"
    assert [r["method"] for r in received] == ["GET"]  # the refused POST is not recorded
    assert received[0]["form"]["query"] == "scalar"


async def test_headers_and_basic_auth(server: str, received: list[dict[str, Any]]) -> None:
    config = {
        "address": server,
        "query": "scalar",
        "headers": [{"key": "X-Scope-OrgID", "value": "tenant_a"}],
        "authentication": {"basicAuth": {"username": "grafana", "password": "token"}},
    }
    await measure(config)
    headers = received[0]["headers"]
    assert headers["X-Scope-OrgID"] == "tenant_a"
    assert headers["Authorization"] == "Basic Z3JhZmFuYTp0b2tlbg=="
    # A configured Authorization header wins over the authentication block, as upstream.
    config["headers"] = [{"key": "Authorization", "value": "Bearer mine"}]
    await measure(config)
    assert received[1]["headers"]["Authorization"] == "Bearer mine"


async def test_shared_client(server: str) -> None:
    async with httpx.AsyncClient() as http:
        request = base.MeasureRequest(
            run=RUN,
            metric=metric(address=server, query="scalar"),
            evaluate=lambda result: base.SUCCESSFUL,
            now=lambda: NOW,
        )
        measurement = await prometheus.PrometheusProvider(request.metric, http=http).run(request)
        assert measurement["value"] == "0.95" and not http.is_closed


# --------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"query": "up"}, "prometheus address is not configured"),
        ({"address": "prometheus:9090", "query": "up"}, "must be an http:// or https:// URL"),
        ({"address": "http://p", "timeout": -1}, "prometheus timeout should not be negative"),
        ({"address": "http://p", "timeout": "soon"}, "provider.prometheus.timeout must be an integer"),
        (
            {"address": "http://p", "authentication": {"basicAuth": {"username": "u"}}},
            "missing mandatory parameter in metric for basic auth setup: password",
        ),
        (
            {"address": "http://p", "authentication": {"oauth2": {"tokenUrl": "http://t", "clientId": "c"}}},
            "missing mandatory parameter in metric for OAuth2 setup",
        ),
        (
            {"address": "http://p", "authentication": {"sigv4": {"region": "eu-west-1"}}},
            "sigv4 \\(AWS SigV4 signing\\) is not supported",
        ),
    ],
)
def test_configuration_errors(config: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(prometheus.ADDRESS_ENV, raising=False)
    with pytest.raises(base.ProviderError, match=message):
        prometheus.PrometheusProvider(metric(**config))


async def test_address_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prometheus.ADDRESS_ENV, server)
    measurement, _ = await measure({"query": "scalar"})
    assert measurement["value"] == "0.95"


# ------------------------------------------------------------------------------- real Prometheus


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def real_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not on the PATH")
    directory: Path = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1m}\n")
    address = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{address}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip("prometheus did not start")
            time.sleep(0.1)
        yield f"http://{address}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _real(address: str, **config: Any) -> tuple[base.Measurement, list[Any]]:
    seen: list[Any] = []

    def record(result: Any) -> str:
        seen.append(result)
        return base.SUCCESSFUL

    request = base.MeasureRequest(
        run=RUN,
        metric=metric(address=address, **config),
        evaluate=record,
        now=lambda: dt.datetime.now(dt.UTC),
    )
    return await prometheus.PrometheusProvider(request.metric).run(request), seen


async def test_real_prometheus(real_prometheus: str) -> None:
    measurement, seen = await _real(real_prometheus, query="vector(0.95)")
    assert (measurement["phase"], measurement["value"], seen) == ("Successful", "[0.95]", [[0.95]])
    measurement, seen = await _real(real_prometheus, query="scalar(vector(2))")
    assert (measurement["value"], seen) == ("2", [2.0])
    measurement, seen = await _real(real_prometheus, query='absent_over_time(nothing{a="b"}[1m]) == 0')
    assert (measurement["value"], seen) == ("[]", [[]])
    span = {"start": 'now() - duration("2m")', "end": "now()", "step": "1m"}
    measurement, seen = await _real(real_prometheus, query="vector(1)", rangeQuery=span)
    assert measurement["phase"] == "Successful" and seen[0] and set(seen[0]) == {1.0}
    measurement, _ = await _real(real_prometheus, query="sum(")
    assert measurement["phase"] == "Error" and measurement["message"].startswith("bad_data: ")
