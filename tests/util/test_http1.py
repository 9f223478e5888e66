"""The lean HTTP/1.1 client against real servers on the loopback interface.

Most servers here are scripted byte by byte with ``asyncio.start_server``, so each test says exactly what
goes over the wire (framings, broken responses, connections closed at awkward moments); one test runs a
real uvicorn + Starlette app to show the client and a production server agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tugboat.util import http1

LOOPBACK = "127.0.0.1"

# ------------------------------------------------------------------------------------ scripted servers


@dataclass
class Request:
    """One request as the server read it."""

    line: str
    fields: list[tuple[str, str]]  # in wire order, names as sent
    body: bytes
    raw: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.fields}

    @property
    def target(self) -> str:
        return self.line.split(" ")[1]


@dataclass
class Conn:
    """The server's end of one accepted connection, for a handler to script."""

    server: Server
    index: int  # 0 for the first connection the server accepted
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def request(self) -> Request | None:
        """The next request on this connection, or None once the client has closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        line, *rest = head.decode("latin-1").split("\r\n")
        fields = [(name, value.strip()) for name, _, value in (f.partition(":") for f in rest if f)]
        length = int(dict((n.lower(), v) for n, v in fields).get("content-length", "0"))
        body = await self.reader.readexactly(length)
        request = Request(line, fields, body, head + body)
        self.server.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def client_closed(self) -> None:
        """Wait until the client closes its end (reading and dropping anything it still sends)."""
        while await self.reader.read(65536):
            pass


Handler = Callable[[Conn], Awaitable[None]]


@dataclass
class Server:
    handler: Handler
    port: int = 0
    accepted: int = 0
    open: int = 0  # connections whose handler has not finished
    requests: list[Request] = field(default_factory=list)
    got_request: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(self, self.accepted, reader, writer)
        self.accepted += 1
        self.open += 1
        try:
            await self.handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up: that is what some tests are about
        finally:
            self.open -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server._accept, LOOPBACK, 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await listener.wait_closed()


def reply(body: bytes = b"", *, status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    """A response with a Content-Length body (unless ``headers`` name their own framing)."""
    framed = any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in headers)
    lines = [f"HTTP/1.1 {status}", *headers, *([] if framed else [f"Content-Length: {len(body)}"])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def answer_all(conn: Conn) -> None:
    """Keep-alive: answer every request with its own target as the body."""
    while (request := await conn.request()) is not None:
        conn.server.got_request.set()
        await conn.send(reply(request.target.encode()))


async def eventually(check: Callable[[], bool], *, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def pool_for(
    origin: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
    max_idle: int = 64,
    default_headers: dict[str, str] | None = None,
) -> AsyncIterator[http1.Pool]:
    pool = http1.Pool(
        origin, ssl_context=ssl_context, timeout=timeout, max_idle=max_idle, default_headers=default_headers
    )
    try:
        yield pool
    finally:
        await pool.close()


# -------------------------------------------------------------------------------------------- framing


async def test_content_length_bodies_on_one_kept_alive_connection() -> None:
    async with serving(answer_all) as server, pool_for(server.origin) as pool:
        for path in ("/a", "/bb", "/ccc?x=1"):
            response = await pool.request("GET", path)
            assert (response.status, response.body, response.content) == (200, path.encode(), path.encode())
            assert response.headers["content-length"] == str(len(path))
    assert server.accepted == 1
    assert len(server.requests) == 3


async def test_chunked_bodies_with_extensions_and_trailers() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
        b"5\r\nhello\r\n"
        b"1;ext=value;flag\r\n,\r\n"
        b"B\r\n 0123456789\r\n"  # upper-case hex: 11 bytes (the leading blank belongs to the data)
        b"0;last=1\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )

    async def handler(conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.send(chunked[:40])  # in pieces: the reader must not depend on write boundaries
            await conn.send(chunked[40:])

    async with serving(handler) as server, pool_for(server.origin) as pool:
        first = await pool.request("GET", "/one")
        second = await pool.request("GET", "/two")  # the trailers were consumed: the connection is in sync
    assert first.body == second.body == b"hello, 0123456789"
    assert first.headers["content-type"] == "text/plain"
    assert server.accepted == 1


async def test_an_empty_chunked_body() -> None:
    async def handler(conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

    async with serving(handler) as server, pool_for(server.origin) as pool:
        assert (await pool.request("GET", "/")).body == b""
        assert (await pool.request("GET", "/")).body == b""
    assert server.accepted == 1


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
    ],
    ids=["http-1.0", "connection-close"],
)
async def test_a_body_without_length_is_read_to_close(head: bytes) -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(head + b"part one, ")
        await asyncio.sleep(0.01)  # a second segment: the body is everything until the close
        await conn.send(b"part two")

    async with serving(handler) as server, pool_for(server.origin) as pool:
        assert (await pool.request("GET", "/a")).body == b"part one, part two"
        assert (await pool.request("GET", "/b")).body == b"part one, part two"
    assert server.accepted == 2  # a connection read to its close is not reused


async def test_connection_close_with_a_length_is_not_reused() -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(reply(b"bye", headers=("Connection: close",)))
        await conn.client_closed()  # the client closes it, not this server

    async with serving(handler) as server, pool_for(server.origin) as pool:
        assert (await pool.request("GET", "/")).body == b"bye"
        assert (await pool.request("GET", "/")).body == b"bye"
    assert server.accepted == 2


@pytest.mark.parametrize(
    ("method", "response"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: application/json\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("DELETE", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: "x"\r\n\r\n'),
    ],
    ids=["head", "head-chunked", "204", "304"],
)
async def test_responses_without_a_body(method: str, response: bytes) -> None:
    async def handler(conn: Conn) -> None:
        request = await conn.request()
        while request is not None:
            await conn.send(response if request.target == "/empty" else reply(b"next"))
            request = await conn.request()

    async with serving(handler) as server, pool_for(server.origin) as pool:
        empty = await pool.request(method, "/empty")
        assert empty.body == b""
        assert empty.status == int(response.split(b" ")[1])
        # The client did not wait for a body that never comes, and the connection is still in sync.
        assert (await pool.request("GET", "/next")).body == b"next"
    assert server.accepted == 1


async def test_interim_responses_are_skipped() -> None:
    async def handler(conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
            await conn.send(reply(b"final", status="201 Created"))

    async with serving(handler) as server, pool_for(server.origin) as pool:
        for _ in range(2):
            response = await pool.request("POST", "/things", body=b"{}")
            assert (response.status, response.body) == (201, b"final")
            assert "link" not in response.headers
    assert server.accepted == 1


async def test_a_status_line_without_a_reason_phrase() -> None:
    async def handler(conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.send(b"HTTP/1.1 202\r\nContent-Length: 2\r\n\r\nok")

    async with serving(handler) as server, pool_for(server.origin) as pool:
        for _ in range(2):
            assert (await pool.request("GET", "/")).status == 202
    assert server.accepted == 1


async def test_repeated_header_keeps_the_last_value_under_a_lower_case_name() -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(reply(b"x", headers=("X-Thing: one", "x-THING:two  ", "Empty:")))

    async with serving(handler) as server, pool_for(server.origin) as pool:
        response = await pool.request("GET", "/")
    assert response.headers["x-thing"] == "two"
    assert response.headers["empty"] == ""


# ---------------------------------------------------------------------------------------- keep-alive


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    closed = asyncio.Event()

    async def handler(conn: Conn) -> None:
        if conn.index == 0:
            await conn.request()
            await conn.send(reply(b"first"))
            conn.writer.close()  # an idle timeout on the server side
            closed.set()
            return
        await answer_all(conn)

    async with serving(handler) as server, pool_for(server.origin) as pool:
        assert (await pool.request("GET", "/")).body == b"first"
        await closed.wait()
        assert (await pool.request("GET", "/second")).body == b"/second"
    assert server.accepted == 2


async def test_a_request_racing_the_servers_idle_close_is_retried_once_on_a_fresh_connection() -> None:
    async def handler(conn: Conn) -> None:
        if conn.index < 2:
            # Answer one request; then close when the next arrives (the server's idle timeout firing just
            # as the client reuses the connection: the client cannot see it coming).
            await conn.request()
            await conn.send(reply(b"ok"))
            await conn.request()
            return
        await answer_all(conn)

    async with serving(handler) as server, pool_for(server.origin) as pool:
        # Two connections in the pool, both about to go bad.
        assert [r.body for r in await asyncio.gather(*(pool.request("GET", "/") for _ in range(2)))] == [
            b"ok",
            b"ok",
        ]
        assert server.accepted == 2
        response = await pool.request("GET", "/retried")
        assert response.body == b"/retried"
    # The retry went to a new connection, not to the other (as stale) idle one.
    assert server.accepted == 3
    assert [r.target for r in server.requests] == ["/", "/", "/retried", "/retried"]


async def test_a_retry_happens_only_once() -> None:
    async def handler(conn: Conn) -> None:
        if conn.index == 0:
            await conn.request()
            await conn.send(reply(b"ok"))
        await conn.request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")  # then the close

    async with serving(handler) as server, pool_for(server.origin) as pool:
        assert (await pool.request("GET", "/")).body == b"ok"
        with pytest.raises(http1.HTTPError, match="failed"):
            await pool.request("GET", "/again")
    assert server.accepted == 2


async def test_idle_connections_are_not_reused_after_the_idle_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "IDLE_SECONDS", 0.05)
    async with serving(answer_all) as server, pool_for(server.origin) as pool:
        await pool.request("GET", "/")
        await asyncio.sleep(0.06)
        await pool.request("GET", "/")
        await eventually(lambda: server.open == 1)  # the old connection was closed by the client
    assert server.accepted == 2


async def test_fifty_concurrent_requests_and_the_idle_limit() -> None:
    async def handler(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            await asyncio.sleep(0.005 * (conn.index % 4))  # answers finish out of order
            await conn.send(reply(request.target.encode()))

    async with serving(handler) as server, pool_for(server.origin, max_idle=8) as pool:
        paths = [f"/item/{i}" for i in range(50)]
        responses = await asyncio.gather(*(pool.request("GET", path) for path in paths))
        assert [r.body.decode() for r in responses] == paths  # each caller got its own answer
        assert server.accepted == 50
        await eventually(lambda: server.open == 8)  # the pool closed what it could not keep
        responses = await asyncio.gather(*(pool.request("GET", f"/again/{i}") for i in range(8)))
        assert all(r.status == 200 for r in responses)
        assert server.accepted == 50  # served by the eight kept-alive connections
        await pool.close()
        await eventually(lambda: server.open == 0)


async def test_close_closes_idle_connections_and_refuses_new_requests() -> None:
    release = asyncio.Event()

    async def handler(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            if request.target == "/slow":
                await release.wait()
            await conn.send(reply(b"ok"))

    async with serving(handler) as server:
        pool = http1.Pool(server.origin)
        await asyncio.gather(pool.request("GET", "/"), pool.request("GET", "/"))
        slow = asyncio.create_task(pool.request("GET", "/slow"))  # takes one idle connection
        await eventually(lambda: len(server.requests) == 3)
        await pool.close()
        await eventually(lambda: server.open == 1)  # the idle one is closed; the busy one still works
        release.set()
        assert (await slow).body == b"ok"
        await eventually(lambda: server.open == 0)  # and is closed, not pooled, once it is done
        with pytest.raises(http1.HTTPError, match="closed"):
            await pool.request("GET", "/")
        await pool.close()  # twice is fine


# -------------------------------------------------------------------------------------------- failures


async def test_a_server_closing_mid_response_is_an_error_not_a_hang() -> None:
    async def handler(conn: Conn) -> None:
        request = await conn.request()
        assert request is not None
        partial = {
            "/length": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some",
            "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            "/headers": b"HTTP/1.1 200 OK\r\nContent-Len",
            "/nothing": b"",
        }[request.target]
        await conn.send(partial)

    async with serving(handler) as server, pool_for(server.origin, timeout=5) as pool:
        for target in ("/length", "/chunked", "/headers", "/nothing"):
            with pytest.raises(http1.HTTPError, match=f"connection to 127.0.0.1:{server.port} failed"):
                await pool.request("GET", target)
    assert server.accepted == 4  # a fresh connection is not retried


async def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    async with pool_for(f"http://{LOOPBACK}:{port}") as pool:
        with pytest.raises(http1.HTTPError, match=f"cannot connect to 127.0.0.1:{port}: connection refused$"):
            await pool.request("GET", "/")


async def test_a_timeout_is_an_error_and_drops_the_connection() -> None:
    gave_up = asyncio.Event()

    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.client_closed()  # never answers
        gave_up.set()

    async with serving(handler) as server, pool_for(server.origin, timeout=0.2) as pool:
        started = time.monotonic()
        with pytest.raises(http1.HTTPError, match=r"GET /stuck: timed out after 0\.2s"):
            await pool.request("GET", "/stuck")
        assert time.monotonic() - started < 1.5
        async with asyncio.timeout(2):
            await gave_up.wait()


async def test_cancelling_a_request_closes_its_connection() -> None:
    hung_up = asyncio.Event()

    async def handler(conn: Conn) -> None:
        if conn.index == 0:
            await conn.request()
            conn.server.got_request.set()
            await conn.client_closed()
            hung_up.set()
            return
        await answer_all(conn)

    async with serving(handler) as server, pool_for(server.origin) as pool:
        task = asyncio.create_task(pool.request("GET", "/slow"))
        await server.got_request.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(2):
            await hung_up.wait()
        # Half a response must never be read as the next answer: a new connection serves the next one.
        assert (await pool.request("GET", "/next")).body == b"/next"
    assert server.accepted == 2


@pytest.mark.parametrize(
    "status_line",
    [b"HELLO\r\n", b"HTTP/1.1 abc OK\r\n", b"HTTP/2 200\r\n", b"HTTP/1.1\r\n", b"HTTP/1.1 \xb2\xb3 OK\r\n"],
    ids=["not-http", "text-status", "http2", "no-status", "superscript-digits"],
)
async def test_a_bad_status_line(status_line: bytes) -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(status_line + b"Content-Length: 0\r\n\r\n")
        await conn.client_closed()

    async with serving(handler) as server, pool_for(server.origin) as pool:
        with pytest.raises(http1.HTTPError, match=r"not an HTTP/1\.x response"):
            await pool.request("GET", "/")
        await eventually(lambda: server.open == 0)  # the connection was dropped, not pooled


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length '-1'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size b'zz'"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "bad chunk size b'-1'"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n", "bad chunk size"),
    ],
    ids=["negative-length", "float-length", "huge-length", "chunk-not-hex", "chunk-negative", "chunk-0x"],
)
async def test_bad_body_framing(head: bytes, message: str) -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(head)
        await conn.client_closed()

    async with serving(handler) as server, pool_for(server.origin) as pool:
        with pytest.raises(http1.HTTPError, match=message):
            await pool.request("GET", "/")


@pytest.mark.parametrize(
    "headers",
    [
        [f"X-Filler-{i}: {'v' * 100}" for i in range(700)],  # many lines, 70 KiB in all
        [f"X-Huge: {'v' * 70_000}"],  # one line longer than the limit
    ],
    ids=["many-lines", "one-long-line"],
)
async def test_oversized_response_headers(headers: list[str]) -> None:
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(reply(b"x", headers=tuple(headers)))
        await conn.client_closed()

    async with serving(handler) as server, pool_for(server.origin) as pool:
        with pytest.raises(http1.HTTPError, match=r"too large|longer than"):
            await pool.request("GET", "/")


async def test_response_headers_just_under_the_limit_are_fine() -> None:
    filler = tuple(f"X-Filler-{i}: {'v' * 100}" for i in range(500))  # about 56 KiB

    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.send(reply(b"ok", headers=filler))

    async with serving(handler) as server, pool_for(server.origin) as pool:
        response = await pool.request("GET", "/")
    assert response.body == b"ok"
    assert len(response.headers) == 501


# --------------------------------------------------------------------------------------- the request


async def test_the_request_on_the_wire() -> None:
    async with serving(answer_all) as server, pool_for(server.origin) as pool:
        await pool.request("GET", "/api/v1/pods?limit=5", headers={"Accept": "application/json"})
    assert (
        server.requests[0].raw
        == (
            f"GET /api/v1/pods?limit=5 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
    )


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://example.test", "example.test"),
        ("http://example.test:80", "example.test"),
        ("http://example.test:8080", "example.test:8080"),
        ("https://example.test", "example.test"),
        ("https://example.test:443/", "example.test"),
        ("https://example.test:80", "example.test:80"),
        ("http://LOCALHOST:8080", "localhost:8080"),
    ],
)
def test_host_header_leaves_out_the_default_port(origin: str, host: str) -> None:
    assert http1.Pool(origin).host_header == host


async def test_host_header_names_the_name_the_pool_was_given() -> None:
    async with serving(answer_all) as server, pool_for(f"http://localhost:{server.port}") as pool:
        await pool.request("GET", "/")
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"


@pytest.mark.parametrize("origin", ["ftp://example.test", "http://", "example.test:80", "/relative"])
def test_not_an_http_origin(origin: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        http1.Pool(origin)


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [
        ("GET", None, None),
        ("DELETE", None, None),
        ("POST", None, "0"),
        ("PUT", None, "0"),
        ("PATCH", None, "0"),
        ("POST", b'{"a": 1}', "8"),
        ("PATCH", b"[]", "2"),
        ("DELETE", b'{"x":1}', "7"),
        ("GET", b"", "0"),
    ],
)
async def test_content_length(method: str, body: bytes | None, length: str | None) -> None:
    async with serving(answer_all) as server, pool_for(server.origin) as pool:
        await pool.request(method, "/x", body=body)
    request = server.requests[0]
    assert request.line == f"{method} /x HTTP/1.1"
    assert request.headers.get("content-length") == length
    assert request.body == (body or b"")


async def test_default_headers_merge_with_per_request_headers() -> None:
    defaults = {"User-Agent": "tugboat-test", "Accept": "application/json", "X-Default": "d"}
    async with serving(answer_all) as server, pool_for(server.origin, default_headers=defaults) as pool:
        await pool.request("GET", "/one")
        await pool.request("GET", "/two", headers={"accept": "text/plain", "X-Request": "r"})
        await pool.request("GET", "/three", headers={"Host": "virtual.test"})
    one, two, three = server.requests
    assert one.headers == {
        "host": f"127.0.0.1:{server.port}",
        "user-agent": "tugboat-test",
        "accept": "application/json",
        "x-default": "d",
    }
    # Names are case-insensitive: the per-request value replaces the default, and goes out once.
    assert two.headers["accept"] == "text/plain"
    assert [name for name, _ in two.fields if name.lower() == "accept"] == ["accept"]
    assert two.headers["x-request"] == "r"
    assert two.headers["user-agent"] == "tugboat-test"
    assert three.fields[0] == ("Host", "virtual.test")
    assert [name.lower() for name, _ in three.fields].count("host") == 1
    assert defaults == {"User-Agent": "tugboat-test", "Accept": "application/json", "X-Default": "d"}


@pytest.mark.parametrize(
    ("method", "target", "headers", "defaults"),
    [
        ("GET", "/", {"X-A": "a\r\nX-Evil: 1"}, {}),
        ("GET", "/", {"X-A": "a\nb"}, {}),
        ("GET", "/", {"X-A": "a\rb"}, {}),
        ("GET", "/", {"X\r\nEvil": "1"}, {}),
        ("GET", "/", {}, {"X-Default": "d\r\n\r\nGET /smuggled HTTP/1.1"}),
        ("GET", "/a HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /b", {}, {}),
        ("GET", "/a b", {}, {}),
        ("GET /x", "/", {}, {}),
        ("GET", "/", {"X-Snow": "\u2603"}, {}),
    ],
    ids=[
        "crlf-value",
        "lf-value",
        "cr-value",
        "crlf-name",
        "crlf-default",
        "crlf-target",
        "space-target",
        "space-method",
        "not-latin-1",
    ],
)
async def test_injection_is_refused_before_anything_is_sent(
    method: str, target: str, headers: dict[str, str], defaults: dict[str, str]
) -> None:
    async with serving(answer_all) as server:
        async with pool_for(server.origin, default_headers=defaults) as pool:
            with pytest.raises(http1.HTTPError, match=r"line break|bad request line|not latin-1"):
                await pool.request(method, target, headers=headers)
        async with pool_for(server.origin) as pool:
            assert (await pool.request("GET", "/fine")).body == b"/fine"
    assert [r.raw for r in server.requests] == [
        f"GET /fine HTTP/1.1\r\nHost: {LOOPBACK}:{server.port}\r\n\r\n".encode()
    ]


async def test_a_large_request_body() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: more than the socket buffers take at once

    async def handler(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            await conn.send(reply(str(len(request.body)).encode() + b" " + request.body[-4:]))

    async with serving(handler) as server, pool_for(server.origin) as pool:
        response = await pool.request("PUT", "/blob", body=body)
    assert response.body == b"1048576 " + body[-4:]


# -------------------------------------------------------------------------------------------- https


def _self_signed(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (key beside it); returns the certificate's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tugboat test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "tls.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path


async def test_https_with_a_context_that_trusts_a_self_signed_certificate(tmp_path: Path) -> None:
    cert = _self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, tmp_path / "tls.key")
    client_context = ssl.create_default_context(cafile=str(cert))

    async with serving(answer_all, tls=server_context) as server:
        origin = f"https://{LOOPBACK}:{server.port}"
        async with pool_for(origin, ssl_context=client_context) as pool:
            for path in ("/secure", "/again"):
                response = await pool.request("POST", path, body=b"payload")
                assert (response.status, response.body) == (200, path.encode())
            assert server.accepted == 1  # TLS connections are kept alive too
        assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"

        async with pool_for(origin) as untrusting:  # the system's trust store does not know the cert
            with pytest.raises(http1.HTTPError, match=r"cannot connect.*CERTIFICATE_VERIFY_FAILED"):
                await untrusting.request("GET", "/")


# ------------------------------------------------------------------------------------ a real server


def _starlette_app() -> Starlette:
    def client_port(request: StarletteRequest) -> int:
        assert request.client is not None
        return request.client.port

    async def info(request: StarletteRequest) -> Response:
        return JSONResponse({"port": client_port(request), "query": request.url.query})

    async def echo(request: StarletteRequest) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "port": client_port(request),
                "method": request.method,
                "body": body.decode(),
                "type": request.headers.get("content-type"),
                "agent": request.headers.get("user-agent"),
            }
        )

    async def stream(request: StarletteRequest) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"part {i};".encode()
                await asyncio.sleep(0)

        return StreamingResponse(
            parts(), media_type="text/plain", headers={"X-Port": str(client_port(request))}
        )

    async def nothing(request: StarletteRequest) -> Response:
        return Response(status_code=204, headers={"X-Port": str(client_port(request))})

    return Starlette(
        routes=[
            Route("/info", info),
            Route("/echo", echo, methods=["POST", "PUT", "PATCH", "DELETE"]),
            Route("/stream", stream),
            Route("/nothing", nothing, methods=["DELETE"]),
        ]
    )


@contextlib.asynccontextmanager
async def uvicorn_serving() -> AsyncIterator[str]:
    config = uvicorn.Config(
        _starlette_app(), host=LOOPBACK, port=0, log_config=None, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), within=10)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await task


async def test_against_uvicorn_and_starlette() -> None:
    async with (
        uvicorn_serving() as origin,
        pool_for(origin, default_headers={"User-Agent": "tugboat-test"}) as pool,
    ):
        info = await pool.request("GET", "/info?a=1&b=2")
        assert info.status == 200
        assert info.headers["content-type"] == "application/json"
        port = json.loads(info.body)["port"]
        assert json.loads(info.body)["query"] == "a=1&b=2"

        echo = json.loads(
            (
                await pool.request(
                    "PATCH",
                    "/echo",
                    headers={"Content-Type": "application/merge-patch+json"},
                    body=b'{"a":1}',
                )
            ).body
        )
        assert echo == {
            "port": port,
            "method": "PATCH",
            "body": '{"a":1}',
            "type": "application/merge-patch+json",
            "agent": "tugboat-test",
        }
        assert json.loads((await pool.request("POST", "/echo")).body)["body"] == ""

        streamed = await pool.request("GET", "/stream")
        assert streamed.headers["transfer-encoding"] == "chunked"
        assert streamed.body == b"part 0;part 1;part 2;part 3;part 4;"

        head = await pool.request("HEAD", "/info")
        assert (head.status, head.body) == (200, b"")
        nothing = await pool.request("DELETE", "/nothing")
        assert (nothing.status, nothing.body) == (204, b"")
        missing = await pool.request("GET", "/missing")
        assert missing.status == 404

        last = await pool.request("GET", "/info")
        # One connection served all of it: the client port never changed.
        assert {streamed.headers["x-port"], nothing.headers["x-port"]} == {str(port)}
        assert json.loads(last.body)["port"] == port


async def test_pools_make_one_pool_per_origin() -> None:
    async with serving(answer_all) as one, serving(answer_all) as two:
        pools = http1.Pools(timeout=5, max_idle=2)
        try:
            pool_a, target = pools.for_url(f"{one.origin}/path?q=1")
            assert target == "/path?q=1"
            assert pools.for_url(f"{one.origin}")[1] == "/"
            assert pools.for_url(f"{one.origin}/other")[0] is pool_a
            pool_b, _ = pools.for_url(f"{two.origin}/x")
            assert pool_b is not pool_a
            assert (pool_a.timeout, pool_a.max_idle) == (5, 2)
            assert (await pool_a.request("GET", target)).body == b"/path?q=1"
            assert (await pool_b.request("GET", "/x")).body == b"/x"
        finally:
            await pools.close()
        with pytest.raises(http1.HTTPError, match="closed"):
            await pool_a.request("GET", "/")
        await eventually(lambda: one.open == two.open == 0)
