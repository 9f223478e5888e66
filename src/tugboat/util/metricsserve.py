"""Serve a ``prometheus_client`` registry on ``/metrics``, plus ``/healthz``, from the controller's own loop.

Each controller process exposes its metrics to Prometheus the way Argo's controllers do. A scrape is rare
and tiny, so a whole web stack (and a thread for ``prometheus_client``'s own server) would be more than
the job needs: this is a minimal HTTP/1.1 responder on ``asyncio.start_server`` that answers one request
per connection. The registry's collectors run inside the event loop, so they may read the controller's
caches without locking. It knows nothing about Argo or Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from prometheus_client import exposition, registry

__all__ = ["MetricsServer", "serve", "serving"]

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024
READ_TIMEOUT = 10.0

# ``health()`` returns None when healthy, else the reason it is not (answered with 503).
HealthCheck = Callable[[], str | None]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Unavailable"}


class MetricsServer:
    """An HTTP listener answering ``GET /metrics`` (text exposition format) and ``GET /healthz``."""

    def __init__(
        self,
        source: registry.CollectorRegistry,
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        health: HealthCheck | None = None,
    ) -> None:
        self.registry = source
        self.host = host
        self.requested_port = port
        self.health = health
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when started with port 0)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        log.info("metrics: serving /metrics and /healthz on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        try:
            status, content_type, body = self._respond(head)
            send_body = not head.startswith(b"HEAD ")
            header = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(header + body if send_body else header)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _respond(self, head: bytes) -> tuple[int, str, bytes]:
        if len(head) > MAX_HEAD_BYTES:
            return 400, "text/plain", b"request too large\n"
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3:
            return 400, "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if target == b"/metrics":
            return 200, exposition.CONTENT_TYPE_LATEST, exposition.generate_latest(self.registry)
        if target == b"/healthz":
            problem = self.health() if self.health is not None else None
            if problem is None:
                return 200, "text/plain", b"ok\n"
            return 503, "text/plain", f"{problem}\n".encode()
        return 404, "text/plain", b"not found\n"


async def serve(
    source: registry.CollectorRegistry,
    *,
    host: str = "0.0.0.0",
    port: int,
    health: HealthCheck | None = None,
) -> None:
    """Serve ``source`` until cancelled."""
    async with serving(source, host=host, port=port, health=health):
        await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def serving(
    source: registry.CollectorRegistry,
    *,
    host: str = "0.0.0.0",
    port: int,
    health: HealthCheck | None = None,
) -> AsyncIterator[MetricsServer]:
    """Serve ``source`` for the duration of the ``async with`` block (port 0: a free port is chosen)."""
    server = MetricsServer(source, host=host, port=port, health=health)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
