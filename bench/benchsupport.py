"""Measuring a controller process from outside: CPU and memory from /proc, quiet periods, py-spy profiles.

Shared by the benchmarks (``gitops.py``, ``rollouts.py``), which run the real processes and read what the
kernel says they used - nothing is measured from inside the process being measured.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children_cpu_seconds(pid: int) -> float:
    """CPU time of the process's children that have exited (e.g. git processes)."""
    fields = stat_fields(pid)
    return (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process itself (its threads, not its child processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its live child processes (the cluster and its simulation process)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(tree_cpu_seconds(int(child)) for child in children)


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A ``/proc/<pid>/status`` memory figure (VmRSS: now, VmHWM: the peak) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


async def settle(pid: int, *, window: float = 1.0, quiet: float = 0.05, limit: float = 60.0) -> float:
    """Wait until the process uses less than ``quiet`` of a core over ``window`` seconds; the time taken."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if cpu_seconds(pid) - before < quiet * window:
            break
    return time.perf_counter() - started


class Profiler:
    """``py-spy record`` attached to a process, writing collapsed stacks (``--format raw``)."""

    def __init__(self, pid: int, output: Path) -> None:
        self.output = output
        py_spy = Path(sys.executable).with_name("py-spy")
        self.proc = subprocess.Popen(
            [
                str(py_spy),
                *("record", "--pid", str(pid), "--format", "raw", "--rate", "100", "--nonblocking"),
                *("--output", str(output)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """Profile ``pid`` into ``output`` for the duration of the block (nothing when ``output`` is None)."""
    profiler = Profiler(pid, output) if output is not None else None
    try:
        yield
    finally:
        if profiler is not None:
            profiler.stop()


def _frame_file(frame: str) -> str:
    match = re.search(r"\(([^()]*)\)$", frame)
    return match.group(1) if match else frame


def _package(frame: str) -> str:
    parts = _frame_file(frame).split("/")
    return "/".join(parts[:2]) if parts[0] == "tugboat" and len(parts) > 2 else parts[0]


def hot_spots(collapsed: Path, *, top: int = 12) -> list[str]:
    """Where a py-spy profile (collapsed stacks) spent its samples: own time by package and by function,
    and time including callees for the controller's own functions (CLI entry frames left out)."""
    by_package: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [re.sub(r":\d+\)$", ")", frame.strip()) for frame in stack.split(";")]
        own[frames[-1]] += count
        by_package[_package(frames[-1])] += count
        for frame in set(frames):
            path = _frame_file(frame)
            if path.startswith("tugboat/") and not path.startswith("tugboat/cli/"):
                ours[frame] += count
    if not samples:
        return ["(no samples)"]

    def share(counter: collections.Counter[str], limit: int) -> list[str]:
        return [f"  {100 * n / samples:5.1f} %  {name}" for name, n in counter.most_common(limit)]

    return [
        f"{samples} samples at 100 a second (idle threads left out); own time by package:",
        *share(by_package, 10),
        "own time by function:",
        *share(own, top),
        "time including callees, our functions:",
        *share(ours, top + 6),
    ]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


async def in_parallel(jobs: Sequence[Callable[[], Awaitable[object]]], *, concurrency: int = 16) -> None:
    """Run ``jobs`` with ``concurrency`` of them in flight at a time (API writes as a client would)."""
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            await job()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@dataclasses.dataclass
class ControllerProcess:
    """A controller started by a benchmark, its output in ``log_path``."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def problems(self) -> list[str]:
        """Log lines at WARNING or above, and the exception line of each traceback."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        found = [line for line in lines if re.search(r" (WARNING|ERROR|CRITICAL) ", line)]
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                raised = next((text for text in lines[i + 1 :] if text and not text[0].isspace()), "")
                found.append(f"Traceback: {raised}")
        return found


def start_controller(
    command: Sequence[str], *, log_path: Path, ready_line: str, timeout: float = 60.0
) -> ControllerProcess:
    """Start ``command`` (output to ``log_path``); returned once its log shows ``ready_line``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        controller = ControllerProcess(
            subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT), log_path
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if controller.proc.poll() is not None:
            raise RuntimeError(f"the controller exited:\n{log_path.read_text(errors='replace')}")
        if ready_line in log_path.read_text(errors="replace"):
            return controller
        time.sleep(0.1)
    controller.stop()
    raise RuntimeError(f"the controller did not start:\n{log_path.read_text(errors='replace')}")
