"""Companion processes: programs that run beside the local cluster for as long as it serves.

``tugboat up`` runs the GitOps controller (and later the rollout controller and the UI) as separate
processes, exactly as they run beside a real cluster, but started, restarted and stopped with the local
cluster. The cluster knows nothing about them: a companion is an argument vector in which
``{kubeconfig}`` is replaced by the path of the kubeconfig the server wrote. A companion that exits is
restarted with back-off; on shutdown each gets SIGTERM, then SIGKILL after a grace period, before the
server itself stops. With a log directory each companion's output goes to ``<dir>/<name>.log``
(appended across its restarts; the previous start's log becomes ``<name>.log.1``), so the terminal of
``tugboat up`` stays readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spec:
    """What to run: a name (its log file's) and the argument vector."""

    name: str
    argv: tuple[str, ...]


class Companion:
    """One supervised child process."""

    def __init__(
        self, argv: Sequence[str], *, name: str = "", grace: float = 10.0, log_dir: Path | None = None
    ) -> None:
        if not argv:
            raise ValueError("a companion needs a command")
        self.argv = list(argv)
        self.name = name or Path(self.argv[0]).name
        self.grace = grace
        self.log_path = log_dir / f"{self.name}.log" if log_dir is not None else None
        self.restarts = 0
        self._log: IO[bytes] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, kubeconfig: Path) -> None:
        argv = [arg.replace("{kubeconfig}", str(kubeconfig)) for arg in self.argv]
        await self._spawn(argv)
        self._task = asyncio.create_task(self._supervise(argv), name=f"companion-{self.name}")

    async def _spawn(self, argv: list[str]) -> None:
        if self.log_path is not None and self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.restarts == 0 and self.log_path.exists():
                # Each start begins a fresh log; the previous one is kept as <name>.log.1.
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
            self._log = self.log_path.open("ab")
        # stdin is a pipe that closes when this process dies, so a companion can notice an orphaning.
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT if self._log is not None else None,
        )

    async def _supervise(self, argv: list[str]) -> None:
        delay = 1.0
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            where = f" (log: {self.log_path})" if self.log_path is not None else ""
            log.error("%s exited (%s); restarting in %.0f s%s", self.name, code, delay, where)
            self.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            try:
                await self._spawn(argv)
            except OSError as exc:
                log.error("could not restart %s: %s", self.name, exc)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait([self._task])
        proc = self._proc
        try:
            if proc is None or proc.returncode is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), self.grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
