"""The metrics listener: ``/metrics`` in the exposition format, ``/healthz``, and the rest refused."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import core, registry

from tugboat.util import metricsserve


async def _request(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def test_serves_metrics_health_and_refuses_the_rest() -> None:
    source = registry.CollectorRegistry()
    core.Gauge("demo_value", "A demo.", registry=source).set(3)
    problem: list[str] = []

    def health() -> str | None:
        return problem[0] if problem else None

    async with metricsserve.serving(source, host="127.0.0.1", port=0, health=health) as server:
        port = server.port
        assert port != 0
        status, body = await _request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200 and b"demo_value 3.0\n" in body
        assert await _request(port, b"HEAD /metrics HTTP/1.1\r\n\r\n") == (200, b"")
        assert await _request(port, b"GET /healthz HTTP/1.1\r\n\r\n") == (200, b"ok\n")
        problem.append("informers not synced")
        assert await _request(port, b"GET /healthz HTTP/1.1\r\n\r\n") == (503, b"informers not synced\n")
        assert (await _request(port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
        assert (await _request(port, b"GET /other HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await _request(port, b"nonsense\r\n\r\n"))[0] == 400
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer listening after the block
