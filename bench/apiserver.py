"""Benchmark of the local cluster's API server; prints its figures.

Starts ``tugboat cluster serve`` on a free port in a fresh state directory, then measures:

1. acknowledged writes/s and p50/p99 latency with 8 concurrent clients (ConfigMap creates);
2. the time to LIST 10,000 ConfigMaps (median of 5);
3. with 100 concurrent watchers, the time until every watcher has seen all of 1,000 writes.

The load generator speaks HTTP/1.1 over raw asyncio streams with keep-alive, so that the client's own
overhead stays small next to the server's on a 2-core machine. Run: ``.venv/bin/python bench/apiserver.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from clusterproc import start_cluster


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                if size == 0:
                    await self.reader.readline()
                    break
                data += await self.reader.readexactly(size)
                await self.reader.readline()
            return status, data
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()


def configmap(name: str) -> bytes:
    return json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"key": "x" * 200}}
    ).encode()


async def write_load(host: str, port: int, ns: str, *, clients: int, total: int, prefix: str) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        conn = await Connection(host, port).open()
        for i in counter:
            started = time.perf_counter()
            status, body = await conn.request(
                "POST", f"/api/v1/namespaces/{ns}/configmaps", configmap(f"{prefix}{i}")
            )
            latencies.append(time.perf_counter() - started)
            if status != 201:
                raise RuntimeError(f"write failed: {status} {body[:200]!r}")
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


async def watcher(host: str, port: int, ns: str, rv: str, expected: int, done: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv} HTTP/1.1\r\n"
        f"Host: {host}\r\n\r\n".encode()
    )
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    seen = 0
    buffer = b""
    while seen < expected:
        size_line = await reader.readline()
        size = int(size_line.strip(), 16)
        chunk = await reader.readexactly(size)
        await reader.readline()
        buffer += chunk
        seen += buffer.count(b"\n")
        buffer = buffer[buffer.rfind(b"\n") + 1 :]
    done.append(time.perf_counter())
    writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(url: str, pid: int, args: argparse.Namespace) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    port_no = int(port)
    conn = await Connection(host, port_no).open()
    for ns in ("bench-writes", "bench-list", "bench-watch"):
        await conn.request("POST", "/api/v1/namespaces", json.dumps({"metadata": {"name": ns}}).encode())

    # 1. writes
    await write_load(host, port_no, "bench-writes", clients=8, total=500, prefix="warm")
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    latencies = await write_load(host, port_no, "bench-writes", clients=8, total=args.writes, prefix="w")
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(pid) - cpu_before
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"writes: {args.writes} creates by 8 clients in {elapsed:.2f} s = "
        f"{args.writes / elapsed:,.0f} writes/s; "
        f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"server CPU {server_cpu / args.writes * 1e6:.0f} µs per write "
        f"(= {args.writes / server_cpu:,.0f} writes/s per core)"
    )

    # 2. LIST 10,000
    await write_load(host, port_no, "bench-list", clients=8, total=args.list_size, prefix="l")
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        status, body = await conn.request("GET", "/api/v1/namespaces/bench-list/configmaps")
        timings.append(time.perf_counter() - started)
        assert status == 200, status
        items = len(json.loads(body)["items"])
        assert items == args.list_size, items
    print(
        f"list: {args.list_size} ConfigMaps ({len(body) / 1e6:.1f} MB) in median "
        f"{statistics.median(timings) * 1000:.0f} ms "
        f"(min {min(timings) * 1000:.0f} ms)"
    )

    # 3. watch fan-out
    status, body = await conn.request("GET", "/api/v1/namespaces/bench-watch/configmaps")
    rv = json.loads(body)["metadata"]["resourceVersion"]
    done: list[float] = []
    watchers = [
        asyncio.create_task(watcher(host, port_no, "bench-watch", rv, args.fanout_writes, done))
        for _ in range(args.watchers)
    ]
    await asyncio.sleep(1.0)
    started = time.perf_counter()
    await write_load(host, port_no, "bench-watch", clients=8, total=args.fanout_writes, prefix="f")
    writes_done = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*watchers), timeout=120)
    print(
        f"watch: {args.watchers} watchers all saw {args.fanout_writes} writes "
        f"{max(done) - started:.2f} s after the "
        f"first write (writes took {writes_done - started:.2f} s)"
    )
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--list-size", type=int, default=10_000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--fanout-writes", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(Path(tmp) / "state")
        try:
            asyncio.run(run(cluster.url, cluster.proc.pid, args))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
