"""Running an external rendering tool (``kustomize``, ``kubectl kustomize``, ``helm``) safely.

Each tool runs without a shell, in a new session (so it and anything it starts form one process group),
with no standard input, a timeout and a cap on its output. On timeout, output overflow or cancellation
the whole process group is killed with SIGKILL, so a hanging ``kustomize`` plugin or ``helm`` subprocess
cannot outlive the render. A failing tool's error output is returned in the ``RenderError`` (trimmed, with
the temporary and checkout directories replaced by ``.``), never its command line, whose ``--set``
values may be secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence

from tugboat.gitops.errors import RenderError

MAX_OUTPUT = 256 * 1024 * 1024
_MAX_STDERR = 64 * 1024
_STDERR_IN_MESSAGE = 4000
_CHUNK = 1024 * 1024
_CONCURRENCY = max(2, os.cpu_count() or 2)

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


class _TooMuchOutput(Exception):
    pass


async def run(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    timeout: float,
    what: str,
    redact: Sequence[str] = (),
    max_output: int = MAX_OUTPUT,
) -> bytes:
    """The standard output of ``argv``; ``RenderError`` if it fails, times out or prints too much.

    ``what`` names the step in messages ("kustomize build"); every string in ``redact`` (temporary or
    checkout directories) is replaced by ``.`` in the error output we quote.
    """
    async with _slot():
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise RenderError(
                f"{what}: could not start {os.path.basename(argv[0])}: {exc.strerror}"
            ) from None
        try:
            stdout, stderr = await asyncio.wait_for(_collect(process, max_output), timeout)
        except TimeoutError:
            await _kill(process)
            raise RenderError(f"{what} timed out after {timeout:g}s") from None
        except _TooMuchOutput:
            await _kill(process)
            raise RenderError(f"{what} printed more than {max_output // (1024 * 1024)} MiB") from None
        except BaseException:
            await _kill(process)
            raise
    if process.returncode != 0:
        message = _describe(stderr, redact) or f"exit code {process.returncode}"
        raise RenderError(f"{what} failed: {message}")
    return stdout


async def _collect(process: asyncio.subprocess.Process, max_output: int) -> tuple[bytes, bytes]:
    assert process.stdout is not None and process.stderr is not None
    stdout_task = asyncio.ensure_future(_read(process.stdout, max_output, overflow_is_error=True))
    stderr_task = asyncio.ensure_future(_read(process.stderr, _MAX_STDERR, overflow_is_error=False))
    try:
        stdout, stderr = await asyncio.gather(stdout_task, stderr_task)
    finally:
        for task in (stdout_task, stderr_task):
            task.cancel()
    await process.wait()
    return stdout, stderr


async def _read(stream: asyncio.StreamReader, limit: int, *, overflow_is_error: bool) -> bytes:
    """Everything ``stream`` gives; past ``limit`` bytes, an error or (for stderr) the tail only."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_CHUNK):
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            if overflow_is_error:
                raise _TooMuchOutput
            joined = b"".join(chunks)[-limit:]
            chunks, size = [joined], len(joined)
    return b"".join(chunks)


async def _kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the tool's whole process group, then reap the tool."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    # Drain the pipes while reaping: asyncio stops reading a pipe whose buffer is full, and ``wait()`` also
    # waits for the pipes to close, so unread output would make it hang for ever.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            asyncio.gather(_drain(process.stdout), _drain(process.stderr), asyncio.shield(process.wait())), 10
        )


async def _drain(stream: asyncio.StreamReader | None) -> None:
    if stream is None:
        return
    with contextlib.suppress(Exception):
        while await stream.read(_CHUNK):
            pass


def _describe(stderr: bytes, redact: Sequence[str]) -> str:
    text = stderr.decode("utf-8", "replace")
    for path in sorted(redact, key=len, reverse=True):
        if path:
            text = text.replace(path, ".")
    text = text.strip()
    if len(text) > _STDERR_IN_MESSAGE:
        text = "…" + text[-_STDERR_IN_MESSAGE:]
    return text


@contextlib.asynccontextmanager
async def _slot() -> AsyncIterator[None]:
    """Bound how many tools run at once (per event loop), so a burst of refreshes cannot fork-bomb."""
    loop = asyncio.get_running_loop()
    semaphore = _slots.get(loop)
    if semaphore is None:
        semaphore = _slots.setdefault(loop, asyncio.Semaphore(_CONCURRENCY))
    async with semaphore:
        yield
