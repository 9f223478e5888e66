"""The simulated controllers as a process of their own, next to the API server's process.

Python runs one thread of bytecode at a time per process, so the API server and the simulation in one
process would share one core; a 1,000-pod rollout keeps both busy. ``tugboat cluster serve`` therefore
starts this module as a child process (:class:`ControllersProcess`) and supervises it. The child talks to
the server over loopback like any client, exports its Prometheus text (simulated traffic) on a loopback
port that the server proxies at ``/metrics/<name>``, and exits when its parent goes away (its standard
input closes), even after a ``kill -9`` of the parent.

Run as ``python -m tugboat.localcluster.controllers.process`` with a JSON configuration on the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from typing import Any

import httpx2 as httpx
import orjson

from tugboat.kube.client import Client
from tugboat.localcluster.controllers.base import SimulationOptions
from tugboat.localcluster.controllers.manager import ControllerManager
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

READY_PREFIX = "tugboat-controllers ready metrics-port="


@dataclasses.dataclass
class ProcessConfig:
    """Everything the child needs, passed as one JSON argument."""

    url: str
    token: str | None = None
    ca_file: str | None = None
    ca_pem: str | None = None
    controllers: list[str] | None = None
    simulation: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> ProcessConfig:
        return cls(**orjson.loads(text))


# ------------------------------------------------------------------------------------------ the child


async def _serve_metrics(manager: ControllerManager) -> asyncio.Server:
    providers = manager.metric_providers()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            name = parts[1].rsplit("/", 1)[-1] if len(parts) > 1 else ""
            provider = providers.get(name)
            if provider is None:
                body, status = b"not found\n", "404 Not Found"
            else:
                body, status = provider().encode(), "200 OK"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _parent_gone() -> None:
    """Return when standard input closes: the parent exited (or was killed)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run_child(config: ProcessConfig) -> None:
    client = Client.for_url(
        config.url, field_manager="tugboat-local-controllers", token=config.token, ca_file=config.ca_file
    )
    options = SimulationOptions(**config.simulation)
    manager = ControllerManager(client, options, enabled=config.controllers)
    if config.ca_pem:
        manager.context.shared["ca_pem"] = config.ca_pem.encode()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_parent_gone())
    watcher.add_done_callback(lambda _: stop.set())
    await manager.start()
    metrics = await _serve_metrics(manager)
    port = metrics.sockets[0].getsockname()[1]
    print(f"{READY_PREFIX}{port}", flush=True)
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        metrics.close()
        await manager.stop()


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("TUGBOAT_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP request to our own server is noise; keep the client libraries' warnings only.
    for noisy in ("httpx2", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run_child(ProcessConfig.from_json(sys.argv[1])))


# ----------------------------------------------------------------------------------------- the parent


class ControllersProcess:
    """Starts the child, restarts it with back-off if it dies, and stops it with the server."""

    def __init__(self, config: ProcessConfig, *, start_timeout: float = 60.0) -> None:
        self.config = config
        self.start_timeout = start_timeout
        self.metrics_port: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._http = httpx.AsyncClient(timeout=10)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the child and wait until its informers have synced and its controllers run."""
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="controllers-supervisor")

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tugboat.localcluster.controllers.process",
            self.config.to_json(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        async with asyncio.timeout(self.start_timeout):
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    raise RuntimeError("the simulated controllers exited while starting")
                text = line.decode(errors="replace").strip()
                if text.startswith(READY_PREFIX):
                    self.metrics_port = int(text[len(READY_PREFIX) :])
                    return

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("the simulated controllers exited (%s); restarting in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            try:
                await self._spawn()
                delay = 1.0
            except (RuntimeError, TimeoutError, OSError) as exc:
                log.error("could not restart the simulated controllers: %s", exc)

    async def metrics(self, name: str) -> str | None:
        """The child's Prometheus text for ``name`` (None when it has none or is not running)."""
        if self.metrics_port is None:
            return None
        try:
            response = await self._http.get(f"http://127.0.0.1:{self.metrics_port}/metrics/{name}")
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            await cancel_and_wait([self._supervisor])
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await self._http.aclose()


if __name__ == "__main__":
    main()
