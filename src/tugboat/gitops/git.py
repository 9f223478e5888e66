"""A hardened, asynchronous wrapper around the ``git`` command line.

Git is the one program the GitOps controller runs on input that users control (repository URLs,
revisions, the repositories themselves), so every call goes through here and gets the same protection:

- argv lists only, never a shell; callers put ``--`` before positional arguments that come from users,
  and :func:`check_transport_url` rejects URLs that start with ``-`` or name a remote helper (``ext::``);
- a protocol allow-list (``GIT_ALLOW_PROTOCOL`` plus ``protocol.allow=never``), no terminal prompts, no
  system or user configuration (``GIT_CONFIG_NOSYSTEM``, a private ``HOME`` and ``GIT_CONFIG_GLOBAL``), no
  hooks, no credential helpers, and an environment built from scratch rather than inherited;
- configuration that carries secrets travels in ``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n`` environment
  variables, never on the command line where ``ps`` would show it;
- a timeout on every command that kills the whole process group (git, ssh, remote helpers), the same on
  cancellation, and a cap on how much output is read;
- errors (:class:`GitError`) that carry git's stderr with credentials redacted (:func:`redact`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tugboat.gitops.errors import GitOpsError

log = logging.getLogger(__name__)

DEFAULT_PROTOCOLS: tuple[str, ...] = ("https", "ssh", "file")
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024
_STDERR_KEEP = 16 * 1024
_READ_CHUNK = 64 * 1024

# Configuration given on every command line (nothing secret): the protocol allow-list's default policy,
# and everything through which a repository or an inherited setting could make git run a program.
_HARDENING_CONFIG: tuple[tuple[str, str], ...] = (
    ("protocol.allow", "never"),
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("credential.helper", ""),
    ("submodule.recurse", "false"),
    ("gc.autoDetach", "false"),
    ("advice.detachedHead", "false"),
)

# Variables worth inheriting from the controller's own environment: where programs are, scratch space,
# proxies and CA bundles. Everything else (GIT_*, SSH_ASKPASS, SSH_AUTH_SOCK, XDG_CONFIG_HOME, …) is not.
_INHERITED_ENV = (
    "PATH",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
)


class GitError(GitOpsError):
    """A git command failed. ``stderr`` and ``command`` are already redacted."""

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr = stderr


class GitTimeout(GitError):
    """A git command ran longer than its timeout; its whole process group was killed."""


class GitOutputTooLarge(GitError):
    """A git command wrote more output than allowed; its whole process group was killed."""


class InvalidRepoURL(GitError):
    """A repository URL is malformed or could be mistaken for an option."""


class ProtocolNotAllowed(InvalidRepoURL):
    """A repository URL uses a transport outside the allow-list (``ext::``, ``fd::``, ``git://``, …)."""


@dataclass(frozen=True)
class GitResult:
    """What a finished git command produced (stderr redacted)."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


# --- redaction -------------------------------------------------------------------------------------------

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
_TOKEN_PATTERNS = (
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{16,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{16,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{16,}"),
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S),
)
_AUTH_HEADER = re.compile(r"(?i)\b(authorization:\s*(?:basic|bearer|token)?\s*)[^\s'\"]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_MIN_LITERAL_SECRET = 4
REDACTED = "***"


def _redact_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    user, sep, _password = userinfo.partition(":")
    if sep:
        return f"{scheme}{user}:{REDACTED}@"
    if scheme.lower() == "ssh://":
        return match.group(0)  # ``ssh://git@host``: the ssh login name, not a secret
    return f"{scheme}{REDACTED}@"  # ``https://TOKEN@host``: a lone user part is often a token


def redact(text: str, *, secrets: Iterable[str] = ()) -> str:
    """``text`` with credentials removed: URL passwords, well-known token shapes, Authorization headers,
    private keys, and every literal in ``secrets`` (also percent-encoded) of at least 4 characters."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_LITERAL_SECRET}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
        encoded = urllib.parse.quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, REDACTED)
    text = _URL_USERINFO.sub(_redact_userinfo, text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


# --- URL checks ------------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_HELPER = re.compile(r"^(?P<helper>[A-Za-z0-9][A-Za-z0-9+.-]*)::")
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>\[[^\]/]+\]|[^:/\[]+):(?!//)")


def url_protocol(url: str) -> str:
    """The protocol git would use for ``url``: a URL scheme, ``ssh`` for ``host:path``, ``file`` for a
    path. Raises :class:`InvalidRepoURL` for an empty URL, one that starts with ``-`` or contains control
    characters, and :class:`ProtocolNotAllowed` for remote helpers (``ext::cmd``, ``fd::0``)."""
    if not url or not url.strip():
        raise InvalidRepoURL("repository URL is empty")
    if url.lstrip().startswith("-"):
        raise InvalidRepoURL("repository URL must not start with '-'")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidRepoURL("repository URL contains control characters")
    helper = _HELPER.match(url)
    if helper:
        raise ProtocolNotAllowed(f"git remote helper transport {helper['helper']!r}:: is not allowed")
    scheme = _SCHEME.match(url)
    if scheme:
        return scheme["scheme"].lower()
    if _SCP_LIKE.match(url):
        return "ssh"
    return "file"


def check_transport_url(url: str, *, allowed: Iterable[str] = DEFAULT_PROTOCOLS) -> str:
    """Validate ``url`` for git and return its protocol; raises when the protocol is not ``allowed``."""
    protocol = url_protocol(url)
    permitted = {p.lower() for p in allowed}
    if protocol not in permitted:
        raise ProtocolNotAllowed(
            f"repository protocol {protocol!r} is not allowed (allowed: {', '.join(sorted(permitted))})"
        )
    return protocol


# --- the wrapper -----------------------------------------------------------------------------------------


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _drain(stream: asyncio.StreamReader | None) -> None:
    if stream is not None:
        while await stream.read(_READ_CHUNK):
            pass


async def _reap(proc: asyncio.subprocess.Process, *, grace: float = 5.0) -> None:
    """Wait for a killed process. Its pipes are drained first: asyncio's ``wait`` also waits for them to
    close, which never happens while reading is paused on a full buffer."""
    try:
        async with asyncio.timeout(grace):
            await asyncio.gather(_drain(proc.stdout), _drain(proc.stderr))
            await proc.wait()
    except TimeoutError:
        log.warning("git process %d did not go away after SIGKILL", proc.pid)


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Read ``stream`` to its end; raise ``OverflowError`` as soon as more than ``limit`` bytes came."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise OverflowError(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_tail(stream: asyncio.StreamReader, keep: int) -> bytes:
    """Read ``stream`` to its end, keeping only its first and last bytes (stderr can be chatty)."""
    head = b""
    tail = b""
    truncated = False
    while chunk := await stream.read(_READ_CHUNK):
        if len(head) < keep // 4:
            take = keep // 4 - len(head)
            head += chunk[:take]
            chunk = chunk[take:]
        tail += chunk
        if len(tail) > keep:
            tail = tail[-keep:]
            truncated = True
    return head + (b"\n[...]\n" if truncated else b"") + tail


class Git:
    """Runs git commands with the hardening described in the module docstring.

    ``home`` is a private directory (created 0700) used as ``HOME`` and for the global configuration file;
    without one, a temporary directory is made on first use. ``allowed_protocols`` feeds
    ``GIT_ALLOW_PROTOCOL``; ``timeout`` (seconds) and ``max_output`` (bytes of stdout) are the defaults
    for :meth:`run`.
    """

    def __init__(
        self,
        *,
        home: Path | None = None,
        allowed_protocols: Sequence[str] = DEFAULT_PROTOCOLS,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
        binary: str = "git",
    ) -> None:
        bad = [p for p in allowed_protocols if not re.fullmatch(r"[a-z][a-z0-9+.-]*", p)]
        if bad:
            raise ValueError(f"invalid protocol names: {bad}")
        if timeout <= 0 or max_output <= 0:
            raise ValueError("timeout and max_output must be positive")
        self._home = home
        self._home_ready = False
        self.allowed_protocols = tuple(allowed_protocols)
        self.timeout = timeout
        self.max_output = max_output
        self.binary = binary

    @property
    def home(self) -> Path:
        """The private ``HOME`` (created on first use, mode 0700)."""
        if self._home is None:
            self._home = Path(tempfile.mkdtemp(prefix="tugboat-git-home-"))
        if not self._home_ready or not self._home.is_dir():
            self._home.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(self._home, 0o700)
            (self._home / "gitconfig").touch(mode=0o600)
            self._home_ready = True
        return self._home

    def check_url(self, url: str) -> str:
        """:func:`check_transport_url` with this wrapper's allow-list."""
        return check_transport_url(url, allowed=self.allowed_protocols)

    def command(self, args: Sequence[str], *, git_dir: Path | None = None) -> list[str]:
        """The argv :meth:`run` executes: the binary, the hardening ``-c`` options, ``--git-dir``, args."""
        if not args:
            raise ValueError("a git subcommand is required")
        argv = [self.binary]
        for key, value in _HARDENING_CONFIG:
            argv += ["-c", f"{key}={value}"]
        if git_dir is not None:
            argv.append(f"--git-dir={git_dir}")
        argv.extend(args)
        return argv

    def environment(
        self, *, env: Mapping[str, str] | None = None, config: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The complete environment of a git process: a few inherited variables, the isolation settings,
        ``config`` as ``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``, then ``env`` (which wins)."""
        home = self.home
        result = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
        result.setdefault("PATH", os.defpath)
        result.update(
            {
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_ALLOW_PROTOCOL": ":".join(self.allowed_protocols),
                "GIT_PROTOCOL_FROM_USER": "0",
                "GIT_NO_REPLACE_OBJECTS": "1",
                "GIT_OPTIONAL_LOCKS": "0",
                "GIT_CEILING_DIRECTORIES": str(home.parent),
                "GIT_SSH_COMMAND": default_ssh_command(home),
                "LC_ALL": "C",
                "LANG": "C",
            }
        )
        if config:
            result["GIT_CONFIG_COUNT"] = str(len(config))
            for index, (key, value) in enumerate(config.items()):
                result[f"GIT_CONFIG_KEY_{index}"] = key
                result[f"GIT_CONFIG_VALUE_{index}"] = value
        if env:
            result.update(env)
        return result

    async def run(
        self,
        args: Sequence[str],
        *,
        git_dir: Path | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, str] | None = None,
        input: bytes | None = None,
        timeout: float | None = None,
        max_output: int | None = None,
        secrets: Iterable[str] = (),
        check: bool = True,
    ) -> GitResult:
        """Run ``git <args>`` and return its output.

        ``config`` is passed through the environment (use it for anything secret); ``env`` adds or
        overrides variables; ``secrets`` are literals to redact from errors besides the built-in
        patterns (pass every secret that ``env`` or ``config`` carries). With ``check`` (the default) a
        non-zero exit raises :class:`GitError`.
        """
        secrets = tuple(secrets)
        argv = self.command(args, git_dir=git_dir)
        shown = [redact(part, secrets=secrets) for part in argv[2 * len(_HARDENING_CONFIG) + 1 :]]
        limit = self.max_output if max_output is None else max_output
        deadline = self.timeout if timeout is None else timeout
        environment = self.environment(env=env, config=config)
        log.debug("git %s", shlex.join(shown))
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(cwd or self.home),
                env=environment,
                start_new_session=True,
            )
        except OSError as exc:
            raise GitError(f"cannot run {self.binary}: {exc.strerror}", command=shown) from exc
        try:
            async with asyncio.timeout(deadline):
                stdout, stderr_raw = await self._communicate(proc, input, limit)
                returncode = await proc.wait()
        except TimeoutError as exc:
            raise GitTimeout(
                f"git {_subcommand(shown)} timed out after {deadline:g}s", command=shown
            ) from exc
        except OverflowError as exc:
            raise GitOutputTooLarge(
                f"git {_subcommand(shown)} wrote more than {limit} bytes of output", command=shown
            ) from exc
        finally:
            if proc.returncode is None:
                _kill_group(proc)
                await _reap(proc)
        stderr = redact(stderr_raw.decode("utf-8", errors="replace"), secrets=secrets).strip()
        if check and returncode != 0:
            detail = f": {stderr}" if stderr else ""
            raise GitError(
                f"git {_subcommand(shown)} failed (exit {returncode}){detail}",
                command=shown,
                returncode=returncode,
                stderr=stderr,
            )
        return GitResult(returncode=returncode, stdout=stdout, stderr=stderr)

    @staticmethod
    async def _communicate(
        proc: asyncio.subprocess.Process, input: bytes | None, limit: int
    ) -> tuple[bytes, bytes]:
        assert proc.stdout is not None and proc.stderr is not None
        if input is not None:
            assert proc.stdin is not None
            proc.stdin.write(input)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await proc.stdin.drain()
            proc.stdin.close()
        stderr_task = asyncio.ensure_future(_read_tail(proc.stderr, _STDERR_KEEP))
        try:
            stdout = await _read_capped(proc.stdout, limit)
        except BaseException:
            stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stderr_task
            raise
        return stdout, await stderr_task


def default_ssh_command(home: Path, *, key_file: Path | None = None, insecure: bool = False) -> str:
    """A ``GIT_SSH_COMMAND`` that never prompts, ignores the user's ssh configuration and keeps its own
    known-hosts file in ``home`` (new hosts are accepted, changed keys refused). With ``key_file`` only
    that key is offered; with ``insecure`` host keys are not checked at all."""
    parts = ["ssh", "-F", os.devnull, "-o", "BatchMode=yes"]
    if key_file is not None:
        parts += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
    if insecure:
        parts += ["-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}"]
    else:
        known_hosts = home / "known_hosts"
        parts += ["-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts}"]
    return shlex.join(parts)


def _subcommand(shown: Sequence[str]) -> str:
    for part in shown:
        if not part.startswith("-"):
            return part
    return "command"
