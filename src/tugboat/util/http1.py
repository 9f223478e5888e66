"""A lean HTTP/1.1 client on asyncio streams, for the hot request/response paths of the controllers.

Profiles of the controllers (bench/analysis.py, bench/rollouts.py) spent most of their CPU in the general
HTTP client stack (httpx, httpcore, anyio, h11): about 1 ms of overhead per request, more than the work
the request carries. The controllers' own traffic is simple - small JSON requests to one API server and to
metric endpoints, with keep-alive - so this module does just that: a pool of keep-alive connections per
origin, requests with a body and Content-Length, responses with Content-Length, chunked encoding or
read-to-close. Anything else (streaming watches, TLS client certificates, exec-plugin auth) stays with
httpx. Plain ``http`` and ``https`` (with an ``ssl.SSLContext``) are both supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["HTTPError", "Pool", "Pools", "Response"]

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
IDLE_SECONDS = 4.0  # below uvicorn's 5 s keep-alive: never reuse a connection the server may be closing


class HTTPError(Exception):
    """The request could not be made or its response could not be read."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names (the last value of a repeated header)
    body: bytes

    @property
    def content(self) -> bytes:
        return self.body


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Pool:
    """Keep-alive connections to one origin (``scheme://host:port``)."""

    def __init__(
        self,
        origin: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        max_idle: int = 64,
        default_headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.timeout = timeout
        self.max_idle = max_idle
        default_port = 443 if parts.scheme == "https" else 80
        self.host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        self.default_headers = dict(default_headers or {})
        self._idle: deque[_Connection] = deque()
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def request(
        self, method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Response:
        """Send one request (``target`` is the path and query) and read the whole response."""
        if self._closed:
            raise HTTPError("the connection pool is closed")
        payload = self._encode(method, target, headers or {}, body)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._send(payload, method)
        except TimeoutError as exc:
            raise HTTPError(f"{method} {target}: timed out after {self.timeout:g}s") from exc

    def _encode(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
        if any(c in text for text in (method, target) for c in " \r\n") or not method:
            raise HTTPError(f"bad request line: {method!r} {target!r}")
        # Header names are case-insensitive: a per-request "accept" replaces a default "Accept" (and a
        # caller's Host replaces ours) instead of both going out.
        fields = {"host": ("Host", self.host_header)}
        for name, value in [*self.default_headers.items(), *headers.items()]:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise HTTPError(f"header {name!r} holds a line break")
            fields[name.lower()] = (name, value)
        lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in fields.values())]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError as exc:
            raise HTTPError(f"request line or header is not latin-1 text: {exc}") from exc
        return head + (body or b"")

    async def _send(self, payload: bytes, method: str) -> Response:
        for attempt in range(2):
            conn, reused = await self._connection(fresh=attempt > 0)
            try:
                conn.writer.write(payload)
                await conn.writer.drain()
                response, keep = await self._read(conn.reader, method)
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                conn.close()
                if (
                    reused
                    and attempt == 0
                    and isinstance(exc, (asyncio.IncompleteReadError, ConnectionError))
                ):
                    continue  # the server closed an idle connection just as we used it: once more, fresh
                raise HTTPError(f"connection to {self.host_header} failed: {exc!r}") from exc
            except BaseException:
                conn.close()
                raise
            if keep and len(self._idle) < self.max_idle and not self._closed:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()
            return response
        raise HTTPError(f"connection to {self.host_header} failed")  # pragma: no cover - loop returns

    async def _connection(self, *, fresh: bool) -> tuple[_Connection, bool]:
        now = time.monotonic()
        while self._idle and now - self._idle[0].idle_since >= IDLE_SECONDS:
            self._idle.popleft().close()  # the oldest first: none lingers half-closed after a burst
        while self._idle and not fresh:
            conn = self._idle.pop()
            if now - conn.idle_since < IDLE_SECONDS and not conn.reader.at_eof():
                return conn, True
            conn.close()
        try:
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None,
                limit=MAX_HEADER_BYTES,
            )
        except OSError as exc:  # asyncio words a refusal "Connect call failed": say what happened
            reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
            raise HTTPError(f"cannot connect to {self.host_header}: {reason}") from exc
        return _Connection(reader, writer), False

    async def _read(self, reader: asyncio.StreamReader, method: str) -> tuple[Response, bool]:
        version, status, headers = await _read_head(reader)
        while 100 <= status < 200 and status != 101:  # interim (100 Continue, 103 Early Hints): skip
            version, status, headers = await _read_head(reader)
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if status == 101:
            return Response(status, headers, b""), False  # another protocol follows: never reuse
        if method == "HEAD" or status in (204, 304):
            return Response(status, headers, b""), keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Response(status, headers, await _read_chunked(reader)), keep
        length = headers.get("content-length")
        if length is not None:
            if not length.isdecimal() or int(length) > MAX_BODY_BYTES:
                raise HTTPError(f"bad Content-Length {length!r}")
            return Response(status, headers, await reader.readexactly(int(length))), keep
        chunks: list[bytes] = []  # read to close
        total = 0
        while chunk := await reader.read(64 * 1024):
            total += len(chunk)
            if total > MAX_BODY_BYTES:
                raise HTTPError("response body too large")
            chunks.append(chunk)
        return Response(status, headers, b"".join(chunks)), False


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError as exc:
        raise HTTPError(f"response line longer than {MAX_HEADER_BYTES} bytes") from exc


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, int, dict[str, str]]:
    """The status line and header fields of one response: its HTTP version, status and headers."""
    status_line = await _read_line(reader)
    parts = status_line[:-2].decode("latin-1").split(" ", 2)  # the reason phrase is optional
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdecimal():
        raise HTTPError(f"not an HTTP/1.x response: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    size = 0
    while True:
        line = await _read_line(reader)
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise HTTPError("response headers too large")
        if line == b"\r\n":
            return parts[0], int(parts[1]), headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = await _read_line(reader)
        size_text = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):  # int(_, 16) alone would take "-1", "0x1f" and "1_0"
            raise HTTPError(f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            while await _read_line(reader) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise HTTPError("response body too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


class Pools:
    """One :class:`Pool` per origin, made on first use (for clients that reach several servers)."""

    def __init__(self, *, timeout: float = 30.0, max_idle: int = 64) -> None:
        self.timeout = timeout
        self.max_idle = max_idle
        self._pools: dict[str, Pool] = {}

    def for_url(self, url: str) -> tuple[Pool, str]:
        """The pool for ``url``'s origin and the request target (path and query) to send it."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = Pool(origin, timeout=self.timeout, max_idle=self.max_idle)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return pool, target

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()
