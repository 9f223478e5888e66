"""``jqPathExpressions`` of ``ignoreDifferences``, evaluated with a time limit that really stops them.

Argo CD deletes the fields a jq path expression selects (``del(<expr>)``, evaluated by gojq with a 1 s
timeout). We use the ``jq`` package (libjq), which holds the GIL while it runs and cannot be interrupted,
so a runaway expression (``del(.a) | last(range(1e12))``) evaluated in-process would hang the controller.
Expressions therefore run in one long-lived helper process, spoken to over pipes with one JSON line per
request; when a request overruns its deadline the helper is killed (and restarted on the next request).
The helper runs with an empty environment (jq's ``$ENV`` and ``env`` see nothing) and a memory cap.

Compiling is quick and safe, so :func:`check` compiles in-process to reject malformed expressions early.
"""

from __future__ import annotations

import atexit
import os
import selectors
import subprocess
import sys
import threading
import time
from typing import Any

import jq
import orjson

from tugboat.gitops.errors import IgnoreDifferencesError

DEFAULT_TIMEOUT = 1.0
_MEMORY_LIMIT = 1 << 30

_WORKER_SOURCE = r"""
import sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
except Exception:
    pass
import jq, orjson
compiled = {}
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    try:
        request = orjson.loads(line)
        program = compiled.get(request["p"])
        if program is None:
            if len(compiled) > 256:
                compiled.clear()
            program = compiled[request["p"]] = jq.compile(request["p"])
        reply = {"ok": program.input_value(request["i"]).all()}
    except MemoryError:
        reply = {"err": "out of memory"}
    except Exception as exc:
        reply = {"err": str(exc)[:500]}
    try:
        data = orjson.dumps(reply)
    except Exception as exc:
        data = orjson.dumps({"err": "result is not JSON: " + str(exc)[:200]})
    out.write(data + b"\n")
    out.flush()
"""


class JqEvaluationError(Exception):
    """A jq program failed, overran its time limit or did not return exactly one value."""


def deletion_program(expression: str) -> str:
    """The program Argo CD runs for a path expression."""
    return f"del({expression})"


def check(expression: str) -> None:
    """Raise :class:`IgnoreDifferencesError` unless ``expression`` is a compilable jq path expression."""
    if not isinstance(expression, str) or not expression.strip():
        raise IgnoreDifferencesError("a jqPathExpressions entry must be a non-empty string")
    try:
        jq.compile(deletion_program(expression))
    except ValueError as exc:
        raise IgnoreDifferencesError(f"invalid jq path expression {expression!r}: {exc}") from exc


class _Helper:
    """The helper process; one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-I", "-c", _WORKER_SOURCE, str(_MEMORY_LIMIT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            close_fds=True,
        )

    def stop(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._kill()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()

    def run(self, program: str, value: Any, timeout: float) -> list[Any]:
        request = orjson.dumps({"p": program, "i": value}) + b"\n"
        with self._lock:
            if self._owner != os.getpid():
                # A forked copy of this process: the helper and its pipes belong to the parent.
                self._proc, self._owner = None, os.getpid()
            deadline = time.monotonic() + timeout
            for attempt in (1, 2):
                if self._proc is None or self._proc.poll() is not None:
                    self._kill()
                    self._proc = self._start()
                try:
                    line = self._exchange(self._proc, request, deadline)
                except BrokenPipeError:
                    self._kill()
                    if attempt == 2:
                        raise JqEvaluationError("the jq helper process exited") from None
                    continue
                if line is None:
                    self._kill()
                    raise JqEvaluationError(f"jq did not finish within {timeout:g}s and was stopped")
                reply = orjson.loads(line)
                if "err" in reply:
                    raise JqEvaluationError(f"jq failed: {reply['err']}")
                result: list[Any] = reply["ok"]
                return result
        raise JqEvaluationError("the jq helper process exited")  # pragma: no cover

    @staticmethod
    def _exchange(proc: subprocess.Popen[bytes], request: bytes, deadline: float) -> bytes | None:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(request)
        proc.stdin.flush()
        fd = proc.stdout.fileno()
        chunks: list[bytes] = []
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise BrokenPipeError("jq helper closed its output")
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    return b"".join(chunks)


_HELPER = _Helper()
atexit.register(_HELPER.stop)


def delete(value: Any, expression: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """``value`` with what ``expression`` selects deleted (``del(<expression>)``), like Argo CD.

    Raises :class:`JqEvaluationError` when jq fails, runs out of time or returns anything but exactly one
    value.
    """
    results = _HELPER.run(deletion_program(expression), value, timeout)
    if not results:
        raise JqEvaluationError("JQ patch did not return any data")
    if len(results) > 1:
        raise JqEvaluationError("JQ patch returned multiple objects")
    return results[0]


def paths(value: Any, expression: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[list[str | int]]:
    """The paths (lists of keys and indexes) that ``expression`` selects in ``value`` (jq's ``path()``).

    Raises :class:`JqEvaluationError` like :func:`delete`.
    """
    results = _HELPER.run(f"[path({expression})]", value, timeout)
    if len(results) != 1 or not isinstance(results[0], list):
        raise JqEvaluationError("JQ path expression did not return a list of paths")
    return [p for p in results[0] if isinstance(p, list)]
