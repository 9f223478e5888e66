"""The Web metric provider against a real HTTP(S) server in a thread, and the provider registry.

The server answers JSON, text, echoes of what it received, slow and failing responses, and an OAuth2
token endpoint. Conditions are plain Python callables here: the expression evaluator is tested on its own.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tugboat.kube.client import Client
from tugboat.rollouts.analysis import providers
from tugboat.rollouts.analysis.providers import base, web

NOW = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)
LOCALHOST = "127.0.0.1"
RUN = {"metadata": {"name": "run", "namespace": "ns", "uid": "u-1"}}

# --------------------------------------------------------------------------------------- the server


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: bytes | str | Any, content_type: str = "application/json") -> None:
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode() if length else ""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/json":
            self._reply(200, {"data": {"ok": True, "rate": 0.95, "items": [{"v": 1}, {"v": 3}]}, "x": "<&>"})
        elif path == "/text":
            self._reply(200, "It worked!", "text/plain")
        elif path == "/nan":
            self._reply(200, "NaN", "text/plain")
        elif path == "/headers":
            self._reply(200, {k.lower(): v for k, v in self.headers.items()})
        elif path == "/slow":
            time.sleep(1.5)
            self._reply(200, {"late": True})
        elif path.startswith("/status/"):
            self._reply(int(path.rsplit("/", 1)[1]), {"error": "nope"})
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/protected":
            if self.headers.get("Authorization") == "Bearer token-42":
                self._reply(200, {"authorized": True})
            else:
                self._reply(401, {"error": "unauthorized"})
        else:
            self._reply(404, "not found", "text/plain")

    def do_POST(self) -> None:
        if self.path.split("?")[0] == "/token":
            self._token()
            return
        self._echo()

    def do_PUT(self) -> None:
        self._echo()

    def _echo(self) -> None:
        self._reply(
            200,
            {
                "method": self.command,
                "body": self._body(),
                "contentType": self.headers.get("Content-Type"),
            },
        )

    token_requests = 0

    def _token(self) -> None:
        _Handler.token_requests += 1
        form = dict(pair.split("=", 1) for pair in self._body().split("&"))
        # Accept credentials in the form body only, so the client has to fall back from the header style.
        if form.get("client_id") == "me" and form.get("client_secret") == "s3cret":
            assert form["grant_type"] == "client_credentials" and form["scope"] == "read+write"
            self._reply(200, {"access_token": "token-42", "token_type": "bearer", "expires_in": 60})
        else:
            self._reply(401, {"error": "invalid_client"})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that gave up (the timeout test) close their connection early


def _serve(server: _Server) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if isinstance(server.socket, ssl.SSLSocket) else "http"
    yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from _serve(_Server(("127.0.0.1", 0), _Handler))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


# -------------------------------------------------------------------------------------- helpers


def metric(**config: Any) -> dict[str, Any]:
    return {"name": "web-check", "provider": {"web": config}}


def request_for(
    config: dict[str, Any], evaluate: Callable[[Any], str] | None = None, **extra: Any
) -> tuple[base.MeasureRequest, list[Any]]:
    """A request for ``config`` and the list of results its condition is evaluated against."""
    seen: list[Any] = []

    def record(result: Any) -> str:
        seen.append(result)
        return evaluate(result) if evaluate else base.SUCCESSFUL

    return base.MeasureRequest(
        run=RUN, metric=metric(**config), evaluate=record, now=lambda: NOW, **extra
    ), seen


async def measure(config: dict[str, Any], *, http: httpx.AsyncClient | None = None, **extra: Any) -> Any:
    request, seen = request_for(config, **extra)
    provider = web.WebProvider(request.metric, http=http)
    return await provider.run(request), seen


# ---------------------------------------------------------------------------------------- results


async def test_json_path_selects_the_first_match(server: str) -> None:
    measurement, results = await measure({"url": f"{server}/json", "jsonPath": "{$.data.rate}"})
    assert measurement == {
        "phase": "Successful",
        "value": "0.95",
        "startedAt": "2024-05-01T10:00:00Z",
        "finishedAt": "2024-05-01T10:00:00Z",
    }
    assert results == [0.95]
    measurement, results = await measure({"url": f"{server}/json", "jsonPath": "{.data.items[*].v}"})
    assert (measurement["value"], results) == ("1", [1])
    measurement, results = await measure({"url": f"{server}/json", "jsonPath": "{.data.ok}"})
    assert (measurement["value"], results) == ("true", [True])


async def test_default_json_path_is_the_whole_document_printed_like_go(server: str) -> None:
    measurement, results = await measure({"url": f"{server}/json"})
    assert results[0]["data"]["items"] == [{"v": 1}, {"v": 3}]
    # Go's json.Marshal: sorted keys, no spaces, HTML characters escaped.
    assert measurement["value"] == (
        '{"data":{"items":[{"v":1},{"v":3}],"ok":true,"rate":0.95},"x":"\\u003c\\u0026\\u003e"}'
    )


async def test_a_body_that_is_not_json_is_the_raw_string(server: str) -> None:
    def check(result: Any) -> str:
        return base.SUCCESSFUL if result == "It worked!" else base.FAILED

    measurement, results = await measure({"url": f"{server}/text"}, evaluate=check)
    assert (measurement["phase"], measurement["value"], results) == (
        "Successful",
        "It worked!",
        ["It worked!"],
    )
    # Go's decoder refuses NaN, so the text is the result.
    measurement, results = await measure({"url": f"{server}/nan"})
    assert (measurement["value"], results) == ("NaN", ["NaN"])


async def test_condition_outcomes_and_evaluation_errors(server: str) -> None:
    def failing(result: Any) -> str:
        return base.FAILED

    def broken(result: Any) -> str:
        raise ValueError("cannot compare string and float")

    measurement, _ = await measure({"url": f"{server}/json", "jsonPath": "{.data.rate}"}, evaluate=failing)
    assert (measurement["phase"], measurement["value"]) == ("Failed", "0.95")
    measurement, _ = await measure({"url": f"{server}/json", "jsonPath": "{.data.rate}"}, evaluate=broken)
    assert measurement["phase"] == "Error"
    assert measurement["message"] == "cannot compare string and float"
    assert measurement["finishedAt"] == "2024-05-01T10:00:00Z"


async def test_a_path_that_matches_nothing_is_an_error(server: str) -> None:
    measurement, results = await measure({"url": f"{server}/json", "jsonPath": "{.data.missing}"})
    assert measurement["phase"] == "Error" and results == []
    assert measurement["message"] == "Could not find JSONPath in body: {.data.missing} matched nothing"


# -------------------------------------------------------------------------------------- requests


async def test_headers_are_sent(server: str) -> None:
    headers = [{"key": "X-Tenant", "value": "a"}, {"key": "Authorization", "value": "Bearer abc"}]
    measurement, results = await measure({"url": f"{server}/headers", "headers": headers})
    assert measurement["phase"] == "Successful"
    assert results[0]["x-tenant"] == "a" and results[0]["authorization"] == "Bearer abc"


async def test_post_and_put_bodies(server: str) -> None:
    _, results = await measure({"url": f"{server}/echo", "method": "POST", "body": "plain text"})
    assert results[0] == {"method": "POST", "body": "plain text", "contentType": None}
    headers = [{"key": "Content-Type", "value": "text/plain"}]
    _, results = await measure(
        {"url": f"{server}/echo", "method": "PUT", "jsonBody": {"a": [1, 2]}, "headers": headers}
    )
    # A JSON body always goes out as application/json, as upstream does.
    assert results[0] == {"method": "PUT", "body": '{"a":[1,2]}', "contentType": "application/json"}


async def test_redirects_are_followed(server: str) -> None:
    measurement, _ = await measure({"url": f"{server}/redirect", "jsonPath": "{.data.rate}"})
    assert (measurement["phase"], measurement["value"]) == ("Successful", "0.95")


async def test_timeout(server: str) -> None:
    began = time.monotonic()
    measurement, results = await measure({"url": f"{server}/slow", "timeoutSeconds": 1})
    assert time.monotonic() - began < 1.4
    assert measurement["phase"] == "Error" and results == []
    assert measurement["message"] == "GET request timed out after 1s"


@pytest.mark.parametrize("code", [404, 500, 503])
async def test_non_2xx_is_an_error(server: str, code: int) -> None:
    measurement, results = await measure({"url": f"{server}/status/{code}"})
    assert measurement["phase"] == "Error" and results == []
    assert measurement["message"] == f"received non 2xx response code: {code}"
    assert "value" not in measurement


async def test_connection_failure_is_an_error_without_the_url() -> None:
    measurement, _ = await measure({"url": "http://user:pw@127.0.0.1:1/x"})
    assert measurement["phase"] == "Error"
    assert measurement["message"].startswith("GET request failed: ConnectError")
    assert "pw" not in measurement["message"]


async def test_shared_http_client_is_used_and_left_open(server: str) -> None:
    async with httpx.AsyncClient() as http:
        measurement, _ = await measure({"url": f"{server}/json", "jsonPath": "{.data.ok}"}, http=http)
        assert measurement["value"] == "true"
        assert not http.is_closed


async def test_oauth2_client_credentials(server: str) -> None:
    auth = {
        "oauth2": {
            "tokenUrl": f"{server}/token",
            "clientId": "me",
            "clientSecret": "s3cret",
            "scopes": ["read", "write"],
        }
    }
    measurement, results = await measure({"url": f"{server}/protected", "authentication": auth})
    assert (measurement["phase"], results) == ("Successful", [{"authorized": True}])
    auth["oauth2"]["clientSecret"] = "wrong"
    measurement, _ = await measure(
        {"url": f"{server}/protected", "authentication": auth}, secrets=frozenset({"wrong"})
    )
    assert measurement["phase"] == "Error"
    assert measurement["message"] == 'oauth2: cannot fetch token: HTTP 401 "invalid_client"'


async def test_oauth2_token_is_reused_until_near_expiry(server: str) -> None:
    auth = {"oauth2": {"tokenUrl": f"{server}/token?reuse", "clientId": "me", "clientSecret": "s3cret"}}
    auth["oauth2"]["scopes"] = ["read", "write"]
    before = _Handler.token_requests
    for _ in range(3):
        measurement, _ = await measure({"url": f"{server}/protected", "authentication": auth})
        assert measurement["phase"] == "Successful"
    # One fetch (header style refused, then the form body): the token lives 60 s, so it is cached.
    assert _Handler.token_requests - before == 2


async def test_tls_insecure(tls_server: str) -> None:
    measurement, _ = await measure({"url": f"{tls_server}/json", "jsonPath": "{.data.ok}", "insecure": True})
    assert (measurement["phase"], measurement["value"]) == ("Successful", "true")
    measurement, _ = await measure({"url": f"{tls_server}/json"})
    assert measurement["phase"] == "Error"
    assert "CERTIFICATE_VERIFY_FAILED" in measurement["message"]


async def test_secrets_are_redacted_from_messages(server: str) -> None:
    def leaky(result: Any) -> str:
        raise ValueError("token hunter2 rejected")

    measurement, _ = await measure(
        {"url": f"{server}/json", "jsonPath": "{.data.ok}"}, evaluate=leaky, secrets=frozenset({"hunter2"})
    )
    assert measurement["message"] == "token ***** rejected"


# --------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "provider.web.url is required"),
        ({"url": "ftp://host/x"}, "provider.web.url must be an http:// or https:// URL with a host"),
        ({"url": "http://h", "method": "DELETE"}, "provider.web.method must be one of GET, POST, PUT"),
        ({"url": "http://h", "body": "x"}, "Body/JSONBody can only be used with POST or PUT"),
        ({"url": "http://h", "method": "POST", "body": "x", "jsonBody": {}}, "use either Body or JSONBody"),
        ({"url": "http://h", "jsonPath": "{.a[}"}, "provider.web.jsonPath: invalid JSONPath"),
        ({"url": "http://h", "headers": [{"value": "v"}]}, "provider.web.headers must be a list"),
        ({"url": "http://h", "authentication": {"oauth2": {"tokenUrl": "http://t"}}}, "OAuth2 setup"),
    ],
)
def test_configuration_errors_are_raised_before_measuring(config: dict[str, Any], message: str) -> None:
    with pytest.raises(base.ProviderError, match=message.replace("[", r"\[").replace("(", r"\(")):
        web.WebProvider(metric(**config))


async def test_resume_terminate_and_gc_do_nothing(server: str) -> None:
    request, _ = request_for({"url": f"{server}/json"})
    provider = web.WebProvider(request.metric)
    done = {"phase": "Successful", "value": "1"}
    assert await provider.resume(request, done) == done
    assert await provider.terminate(request, done) == done
    assert await provider.garbage_collect(request, 0) is None


def test_go_json_printing() -> None:
    assert web.go_json(1e-7) == "1e-7"
    assert web.go_json(1.5e-10) == "1.5e-10"
    assert web.go_json(1e21) == "1e+21"
    assert web.go_json(1e20) == "100000000000000000000"
    assert web.go_json(0.00001) == "0.00001"
    assert web.go_json(100.0) == "100"
    assert web.go_json(-0.0) == "-0"
    assert web.go_json({"b": None, "a": "é\u2028"}) == '{"a":"é\\u2028","b":null}'
    assert web.go_json("line\nbreak") == '"line\\nbreak"'


# ------------------------------------------------------------------------------------- registry


def client() -> Client:
    return Client(httpx.AsyncClient(base_url="http://127.0.0.1:1"), field_manager="test")


def test_for_metric_picks_the_provider_by_kind() -> None:
    kube = client()
    assert isinstance(providers.for_metric(metric(url="http://h"), client=kube), web.WebProvider)
    prometheus_metric = {"name": "m", "provider": {"prometheus": {"address": "http://p:9090", "query": "up"}}}
    assert providers.for_metric(prometheus_metric, client=kube).kind == "prometheus"
    job_metric = {"name": "m", "provider": {"job": {"spec": {"template": {"spec": {}}}}}}
    assert providers.for_metric(job_metric, client=kube).kind == "job"
    assert providers.supported_kinds() == ["job", "prometheus", "web"]


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (None, "metric 'm': no provider specified"),
        ({}, "metric 'm': no provider specified"),
        ({"web": {"url": "http://h"}, "job": {}}, r"metric 'm': multiple providers specified \(job, web\)"),
        ({"carrierPigeon": {}}, "metric 'm': unknown metric provider 'carrierPigeon' \\(Argo Rollouts knows"),
        ({"datadog": {"query": "x"}}, r"metric 'm': unknown metric provider 'datadog' \(supported: job, "),
    ],
)
def test_for_metric_refuses_bad_or_unsupported_providers(provider: Any, message: str) -> None:
    with pytest.raises(providers.ProviderError, match=message):
        providers.for_metric({"name": "m", "provider": provider}, client=client())


def test_provider_kind_spells_keys_like_argo() -> None:
    assert providers.provider_kind({"provider": {"newRelic": {"query": "q"}}}) == "newRelic"
    assert providers.provider_kind({"provider": {"web": {}, "job": None}}) == "web"
