"""Repositories: URL forms and their normalisation, credentials, and a cache of bare mirrors.

Applications name a repository by URL and a revision (branch, tag, SHA or ``HEAD``). The controller needs
that revision as a commit SHA, cheaply and often, and then the tree at that commit as a directory to
render. This module provides:

- :func:`parse_repo_url` / :func:`normalize_url`: https://, ssh:// and scp-like ``git@host:org/repo``,
  file:// and plain local paths, normalised with Argo CD's rule (lower-case scheme and host, no
  ``.git`` suffix or trailing slash) so that spellings of one repository match;
- :func:`credentials_for`: Argo CD's declarative repository Secrets (``repository`` beats ``repo-creds``
  templates; among templates the longest URL prefix wins) turned into :class:`Credentials`;
- :func:`git_auth`: those credentials as git environment (an askpass helper, ``http.extraHeader``
  through ``GIT_CONFIG_*`` variables, an ssh key file) that never puts a secret on a command line;
- :class:`RepoCache`: one bare mirror per normalised URL, revisions resolved with ``ls-remote`` and
  fetched only when the commit is missing, read-only checkouts per commit with LRU eviction, and
  per-repository locks so that concurrent reconciles share work.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import os
import re
import secrets as _secrets
import shutil
import stat
import tempfile
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from tugboat.gitops.git import (
    DEFAULT_PROTOCOLS,
    DEFAULT_TIMEOUT,
    Git,
    GitError,
    InvalidRepoURL,
    default_ssh_command,
    redact,
    url_protocol,
)

log = logging.getLogger(__name__)

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
SHORT_SHA = re.compile(r"[0-9a-fA-F]{4,39}")
_MAX_REVISION = 1024


class RepoUnreachable(GitError):
    """The repository cannot be read (no such path, network or authentication failure, timeout)."""


class RevisionNotFound(GitError):
    """The repository was read, but the revision names no commit in it."""


# --- URLs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to one repository (Argo CD's repository Secret fields). ``repr`` hides secrets."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    tls_client_cert_data: str | None = field(default=None, repr=False)
    tls_client_cert_key: str | None = field(default=None, repr=False)
    insecure: bool = False
    force_http_basic_auth: bool = False
    proxy: str | None = field(default=None, repr=False)
    no_proxy: str | None = None
    type: str = "git"
    source: str = ""

    @property
    def has_credentials(self) -> bool:
        return any(
            (
                self.username,
                self.password,
                self.bearer_token,
                self.ssh_private_key,
                self.tls_client_cert_data,
                self.tls_client_cert_key,
            )
        )

    def secret_values(self) -> list[str]:
        """Every value that must never be shown (for :func:`tugboat.gitops.git.redact`)."""
        values = [self.password, self.bearer_token, self.ssh_private_key, self.tls_client_cert_key]
        values.append(self.proxy)
        if self.password:
            basic = f"{self.username or ''}:{self.password}".encode()
            values.append(base64.b64encode(basic).decode())
        return [v for v in values if v]


@dataclass(frozen=True)
class RepoLocation:
    """A parsed repository URL. ``fetch_url`` is what git is given (credential-free; an absolute path for
    local repositories); ``url`` is the caller's URL with credentials redacted, for messages."""

    url: str
    protocol: str
    fetch_url: str
    normalized: str
    local_path: Path | None = None
    url_credentials: Credentials | None = field(default=None, repr=False)

    @property
    def is_local(self) -> bool:
        return self.local_path is not None


def _strip_repo_path(path: str) -> str:
    path = path.rstrip("/")
    path = path.removesuffix(".git")
    return path.rstrip("/")


def _host_port(parts: urllib.parse.SplitResult, url: str) -> str:
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise InvalidRepoURL(f"invalid port in repository URL {redact(url)!r}") from exc
    if not host:
        raise InvalidRepoURL(f"repository URL {redact(url)!r} has no host")
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port is not None else host


def _local_location(raw: str, display: str, base_dir: Path | None) -> RepoLocation:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    resolved = Path(os.path.realpath(path))
    if resolved.name == ".git":
        resolved = resolved.parent
    return RepoLocation(
        url=display,
        protocol="file",
        fetch_url=str(resolved),
        normalized=f"file://{resolved}",
        local_path=resolved,
    )


def parse_repo_url(url: str, *, base_dir: Path | None = None) -> RepoLocation:
    """Parse any supported repository URL form; relative local paths resolve against ``base_dir`` (default:
    the working directory). User and password embedded in an http(s) URL become ``url_credentials`` and
    are removed from ``fetch_url``. Raises :class:`InvalidRepoURL` (or its subclass
    ``ProtocolNotAllowed`` for ``ext::`` and other remote helpers)."""
    url = url.strip()
    protocol = url_protocol(url)
    display = redact(url)
    if protocol == "file":
        if url.lower().startswith("file://"):
            parts = urllib.parse.urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                raise InvalidRepoURL(f"file URL {display!r} names a remote host")
            return _local_location(urllib.parse.unquote(parts.path), display, base_dir)
        return _local_location(url, display, base_dir)

    if "://" not in url:  # scp-like ``[user@]host:path``
        at_index = url.split("/", 1)[0].rfind("@")
        user, at = (url[:at_index], "@") if at_index >= 0 else ("", "")
        host, _, path = url[at_index + 1 :].partition(":")
        if ":" in user:
            raise InvalidRepoURL("scp-like repository URLs cannot carry a password")
        if not host or not path:
            raise InvalidRepoURL(f"repository URL {display!r} has no host or path")
        prefix = f"{user}@" if at else ""
        normalized = f"ssh://{prefix}{host.lower()}/{_strip_repo_path(path).lstrip('/')}"
        return RepoLocation(url=display, protocol="ssh", fetch_url=url, normalized=normalized)

    parts = urllib.parse.urlsplit(url)
    hostport = _host_port(parts, url)
    path = _strip_repo_path(parts.path)
    username = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    if protocol == "ssh":
        prefix = f"{parts.username}@" if parts.username else ""
        fetch_url = urllib.parse.urlunsplit(("ssh", prefix + hostport, parts.path, "", ""))
        return RepoLocation(
            url=display, protocol="ssh", fetch_url=fetch_url, normalized=f"ssh://{prefix}{hostport}{path}"
        )
    creds = None
    if username or password:
        creds = Credentials(username=username, password=password, source="url")
    fetch_url = urllib.parse.urlunsplit((protocol, hostport, parts.path, parts.query, ""))
    return RepoLocation(
        url=display,
        protocol=protocol,
        fetch_url=fetch_url,
        normalized=f"{protocol}://{hostport}{path}",
        url_credentials=creds,
    )


def normalize_url(url: str, *, base_dir: Path | None = None) -> str:
    """The form of ``url`` used to match repositories: scheme and host lower-cased, credentials dropped,
    no ``.git`` suffix or trailing slash; scp-like URLs as ``ssh://user@host/path``; local paths as
    ``file://`` plus the resolved absolute path (case kept: file systems are case-sensitive)."""
    return parse_repo_url(url, base_dir=base_dir).normalized


# --- credentials from Secrets ----------------------------------------------------------------------------

_SECRET_FIELDS = {
    "username": "username",
    "password": "password",
    "bearerToken": "bearer_token",
    "sshPrivateKey": "ssh_private_key",
    "tlsClientCertData": "tls_client_cert_data",
    "tlsClientCertKey": "tls_client_cert_key",
    "proxy": "proxy",
    "noProxy": "no_proxy",
}
_CREDENTIAL_FIELDS = (
    "username",
    "password",
    "bearer_token",
    "ssh_private_key",
    "tls_client_cert_data",
    "tls_client_cert_key",
)


def _secret_fields(secret: Mapping[str, Any]) -> dict[str, str]:
    """The decoded string fields of a Secret (``data`` is base64; ``stringData`` wins, as on write)."""
    fields: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        if value is None:
            continue
        fields[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
    for key, value in (secret.get("stringData") or {}).items():
        if value is not None:
            fields[str(key)] = str(value)
    return fields


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


@dataclass(frozen=True)
class _Candidate:
    kind: str
    normalized: str
    project_scoped: bool
    creds: Credentials


def _candidates(secrets: Iterable[Mapping[str, Any]], *, project: str | None, type: str) -> list[_Candidate]:
    found: list[_Candidate] = []

    def order(secret: Mapping[str, Any]) -> tuple[str, str]:
        meta = secret.get("metadata") or {}
        return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    for secret in sorted(secrets, key=order):
        meta = secret.get("metadata") or {}
        kind = (meta.get("labels") or {}).get(SECRET_TYPE_LABEL)
        if kind not in ("repository", "repo-creds"):
            continue
        name = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
        try:
            fields = _secret_fields(secret)
        except (binascii.Error, UnicodeDecodeError, ValueError, AttributeError):
            log.warning("ignoring %s Secret %s: its data is not valid base64 text", kind, name)
            continue
        url = fields.get("url")
        if not url or (fields.get("type") or "git") != type:
            continue
        scope = fields.get("project") or ""
        if scope and scope != project:
            continue
        try:
            normalized = normalize_url(url).lower()
        except InvalidRepoURL:
            log.warning("ignoring %s Secret %s: its url is not a valid repository URL", kind, name)
            continue
        values = {attr: fields[key] for key, attr in _SECRET_FIELDS.items() if fields.get(key)}
        creds = Credentials(
            **values,
            insecure=_truthy(fields.get("insecure")),
            force_http_basic_auth=_truthy(fields.get("forceHttpBasicAuth")),
            type=type,
            source=f"{kind} {name}",
        )
        found.append(_Candidate(kind, normalized, bool(scope), creds))
    return found


def credentials_for(
    url: str,
    secrets: Iterable[Mapping[str, Any]],
    *,
    project: str | None = None,
    type: str = "git",
) -> Credentials | None:
    """The credentials Argo CD would use for ``url``, from Secrets in its declarative format.

    ``secrets`` are Secret objects (as read from the API: ``data`` base64-encoded) labelled
    ``argocd.argoproj.io/secret-type: repository`` (matched on the normalised ``url`` field) or
    ``repo-creds`` (templates matched by URL prefix; the longest prefix wins). A matching repository
    Secret wins; if it carries no credentials itself, those of the best template are used with its other
    settings. URLs are compared case-insensitively, as Argo CD does. Secrets scoped to a ``project`` apply
    only to that project and are preferred there; Secrets of another ``type`` (helm, oci) are skipped.
    Malformed Secrets are skipped with a warning naming them (never their contents).
    """
    target = normalize_url(url).lower()
    candidates = _candidates(secrets, project=project, type=type)
    repositories = [c for c in candidates if c.kind == "repository" and c.normalized == target]
    repositories.sort(key=lambda c: not c.project_scoped)  # stable: scoped first, then Secret order
    templates = [c for c in candidates if c.kind == "repo-creds" and target.startswith(c.normalized)]
    templates.sort(key=lambda c: (-len(c.normalized), not c.project_scoped))
    template = templates[0].creds if templates else None
    if repositories:
        repo = repositories[0].creds
        if repo.has_credentials or template is None:
            return repo
        copied = {attr: getattr(template, attr) for attr in _CREDENTIAL_FIELDS}
        return replace(repo, **copied, insecure=repo.insecure or template.insecure)
    return template


# --- credentials as git environment ----------------------------------------------------------------------

_ASKPASS_SCRIPT = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$TUGBOAT_GIT_USERNAME" ;;
  *) printf '%s\\n' "$TUGBOAT_GIT_PASSWORD" ;;
esac
"""


@dataclass(frozen=True)
class GitAuth:
    """Environment variables and environment-passed configuration that authenticate one git command."""

    env: dict[str, str] = field(default_factory=dict, repr=False)
    config: dict[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


def _write_private(path: Path, content: str, *, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return path


@contextlib.contextmanager
def git_auth(creds: Credentials | None, *, protocol: str, home: Path) -> Iterator[GitAuth]:
    """Turn ``creds`` into git environment for a repository reached over ``protocol``.

    HTTPS: username/password through a temporary ``GIT_ASKPASS`` helper that reads them from the
    environment; a bearer token (or ``forceHttpBasicAuth``) as ``http.extraHeader``; client certificates
    as 0600 files; ``insecure`` as ``http.sslVerify=false``. SSH: the private key as a 0600 file used
    through ``GIT_SSH_COMMAND`` (``StrictHostKeyChecking=accept-new``, or ``no`` when insecure). Secrets go
    in environment variables and files only, never in argv. The files live in a private directory under
    ``home`` that is removed when the context exits.
    """
    if creds is None or protocol == "file":
        yield GitAuth()
        return
    workdir = Path(tempfile.mkdtemp(prefix="auth-", dir=home))
    try:
        env: dict[str, str] = {}
        config: dict[str, str] = {}
        if protocol == "ssh":
            key_file = None
            if creds.ssh_private_key:
                key = creds.ssh_private_key.rstrip("\n") + "\n"  # OpenSSH insists on the final newline
                key_file = _write_private(workdir / "id", key)
            if key_file is not None or creds.insecure:
                env["GIT_SSH_COMMAND"] = default_ssh_command(home, key_file=key_file, insecure=creds.insecure)
        else:
            if creds.bearer_token:
                config["http.extraHeader"] = f"Authorization: Bearer {creds.bearer_token}"
            elif creds.password is not None and creds.force_http_basic_auth:
                basic = base64.b64encode(f"{creds.username or ''}:{creds.password}".encode()).decode()
                config["http.extraHeader"] = f"Authorization: Basic {basic}"
            elif creds.username or creds.password:
                env["GIT_ASKPASS"] = str(_write_private(workdir / "askpass", _ASKPASS_SCRIPT, mode=0o700))
                env["TUGBOAT_GIT_USERNAME"] = creds.username or ""
                env["TUGBOAT_GIT_PASSWORD"] = creds.password or ""
            if creds.tls_client_cert_data and creds.tls_client_cert_key:
                cert = _write_private(workdir / "client.crt", creds.tls_client_cert_data)
                config["http.sslCert"] = str(cert)
                config["http.sslKey"] = str(_write_private(workdir / "client.key", creds.tls_client_cert_key))
            if creds.insecure:
                config["http.sslVerify"] = "false"
            if creds.proxy:
                config["http.proxy"] = creds.proxy
            if creds.no_proxy:
                env["no_proxy"] = env["NO_PROXY"] = creds.no_proxy
        yield GitAuth(env=env, config=config, secrets=tuple(creds.secret_values()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- local repositories ----------------------------------------------------------------------------------


def find_git_dir(path: Path) -> tuple[Path, Path] | None:
    """``(git_dir, common_dir)`` of the repository at ``path`` (a work tree, a linked worktree, or a bare
    repository), read from the file system without running git; ``None`` if there is none."""
    try:
        dotgit = path / ".git"
        if dotgit.is_dir():
            git_dir = dotgit
        elif dotgit.is_file():
            line = dotgit.read_text(encoding="utf-8").strip()
            if not line.startswith("gitdir:"):
                return None
            git_dir = (path / line.removeprefix("gitdir:").strip()).resolve()
        elif (path / "HEAD").is_file() and (path / "objects").is_dir():
            git_dir = path
        else:
            return None
        common_dir = git_dir
        commondir_file = git_dir / "commondir"
        if commondir_file.is_file():
            common_dir = (git_dir / commondir_file.read_text(encoding="utf-8").strip()).resolve()
        if not (git_dir / "HEAD").exists():
            return None
        return git_dir, common_dir
    except OSError:
        return None


def _stat_key(path: str, st: os.stat_result) -> tuple[str, int, int, int]:
    return (path, st.st_ino, st.st_mtime_ns, st.st_size)


def _walk_stats(directory: str, out: list[tuple[str, int, int, int]]) -> None:
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                out.append(_stat_key(entry.path, st))
                if stat.S_ISDIR(st.st_mode):
                    _walk_stats(entry.path, out)
    except OSError:
        return


def ref_signature(path: Path) -> tuple[tuple[str, int, int, int], ...] | None:
    """A cheap fingerprint of a local repository's refs: inode, mtime and size of ``HEAD``,
    ``packed-refs`` and everything under ``refs/`` (and ``reftable/``). Git replaces a ref file by
    renaming a new one over it, so any ref update changes the fingerprint. Only ``stat`` calls; no git.
    ``None`` when ``path`` holds no repository."""
    found = find_git_dir(path)
    if found is None:
        return None
    git_dir, common_dir = found
    entries: list[tuple[str, int, int, int]] = []
    for file in (git_dir / "HEAD", common_dir / "packed-refs"):
        try:
            entries.append(_stat_key(str(file), os.stat(file, follow_symlinks=False)))
        except OSError:
            entries.append((str(file), 0, 0, -1))
    for directory in (common_dir / "refs", common_dir / "reftable"):
        _walk_stats(str(directory), entries)
    entries.sort()
    return tuple(entries)


# --- refs and commits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteRefs:
    """A repository's refs as ``git ls-remote`` lists them; tags are peeled to what they point at."""

    head: str | None
    head_ref: str | None
    refs: Mapping[str, str]

    @classmethod
    def parse(cls, text: str) -> RemoteRefs:
        refs: dict[str, str] = {}
        peeled: dict[str, str] = {}
        head: str | None = None
        head_ref: str | None = None
        for line in text.splitlines():
            value, _, name = line.partition("\t")
            if value.startswith("ref: "):
                if name == "HEAD":
                    head_ref = value.removeprefix("ref: ").strip()
                continue
            if not FULL_SHA.fullmatch(value):
                continue
            if name == "HEAD":
                head = value
            elif name.endswith("^{}"):
                peeled[name.removesuffix("^{}")] = value
            else:
                refs[name] = value
        refs.update(peeled)
        return cls(head=head, head_ref=head_ref, refs=refs)

    def branches(self) -> dict[str, str]:
        return {k.removeprefix("refs/heads/"): v for k, v in self.refs.items() if k.startswith("refs/heads/")}

    def tags(self) -> dict[str, str]:
        return {k.removeprefix("refs/tags/"): v for k, v in self.refs.items() if k.startswith("refs/tags/")}

    def lookup(self, revision: str) -> tuple[str, str] | None:
        """``(ref name, SHA)`` for ``HEAD``, a full ref name, a branch or a tag (branches first)."""
        if revision in ("", "HEAD"):
            return ("HEAD", self.head) if self.head else None
        for name in (revision, f"refs/heads/{revision}", f"refs/tags/{revision}"):
            if name.startswith("refs/") and name in self.refs:
                return name, self.refs[name]
        return None


class CommitInfo(NamedTuple):
    """Revision metadata as Argo CD shows it."""

    author: str
    date: datetime
    message: str


def _check_revision(revision: str) -> str:
    rev = (revision or "").strip()
    if len(rev) > _MAX_REVISION or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in rev):
        raise RevisionNotFound(f"invalid revision {rev[:80]!r}")
    if rev.startswith("-"):
        raise RevisionNotFound(f"invalid revision {rev[:80]!r}: must not start with '-'")
    return rev


# --- the cache -------------------------------------------------------------------------------------------


@dataclass
class _RepoState:
    mirror: Path
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refs: RemoteRefs | None = None
    refs_started_at: float = float("-inf")
    signature: object = None
    present: set[str] = field(default_factory=set)


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o222)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    os.chmod(root, 0o555)


def _remove_tree(root: Path) -> None:
    if not root.exists() and not root.is_symlink():
        return
    with contextlib.suppress(OSError):
        os.chmod(root, 0o755)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o755)
    shutil.rmtree(root, ignore_errors=True)


class RepoCache:
    """Bare mirrors of repositories under ``root`` (one per normalised URL, named by a hash) and
    read-only checkouts of commits under ``root/checkouts``.

    Resolving a symbolic revision lists the repository's refs (``git ls-remote``) and fetches only when
    the commit is not in the mirror yet; the listing is reused for ``min_fetch_interval`` seconds (remote
    repositories), or as long as the refs' :func:`ref_signature` is unchanged (local repositories, whose
    refs are read with ``stat`` calls only). Callers that asked while a listing was in flight share it.
    A full SHA already in the mirror needs no git at all after the first check. Checkouts are keyed by
    commit SHA and kept up to ``max_checkouts``, least recently used first out; use :meth:`checked_out`
    to keep one from being evicted while it is read. ``creds`` default to a user and password given in
    the URL itself.
    """

    def __init__(
        self,
        root: Path,
        *,
        git: Git | None = None,
        min_fetch_interval: float = 0.0,
        max_checkouts: int = 64,
        base_dir: Path | None = None,
        protocols: Iterable[str] = DEFAULT_PROTOCOLS,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min_fetch_interval < 0 or max_checkouts < 1:
            raise ValueError("min_fetch_interval must be >= 0 and max_checkouts >= 1")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.git = git or Git(home=self.root / "home", allowed_protocols=tuple(protocols), timeout=timeout)
        self.min_fetch_interval = min_fetch_interval
        self.max_checkouts = max_checkouts
        self.base_dir = base_dir
        self._clock = clock
        self._mirrors = self.root / "mirrors"
        self._checkout_dir = self.root / "checkouts"
        self._scratch = self.root / "tmp"
        for directory in (self._mirrors, self._checkout_dir, self._scratch):
            directory.mkdir(exist_ok=True)
        self._states: dict[str, _RepoState] = {}
        self._checkouts: OrderedDict[str, Path] = OrderedDict()
        self._pins: dict[str, int] = {}
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self._adopt_checkouts()

    # -- public API --

    def location(self, url: str) -> RepoLocation:
        """Parse ``url`` and check its protocol against the allow-list."""
        loc = parse_repo_url(url, base_dir=self.base_dir)
        self.git.check_url(loc.fetch_url)
        return loc

    def mirror_path(self, url: str) -> Path:
        """Where the bare mirror of ``url`` lives (whether or not it exists yet)."""
        return self._mirror_for(self.location(url).normalized)

    async def ls_remote(self, url: str, *, creds: Credentials | None = None) -> RemoteRefs:
        """The repository's current refs (shared with concurrent callers; see the class docstring)."""
        requested_at = self._clock()
        loc = self.location(url)
        state = self._state(loc)
        creds = creds or loc.url_credentials
        return await self._refs(loc, state, creds, requested_at=requested_at, force=True)

    async def resolve(
        self, url: str, revision: str = "HEAD", *, creds: Credentials | None = None, force: bool = False
    ) -> str:
        """The 40-hex commit SHA that ``revision`` (``HEAD``/empty, branch, tag, full ref name, full or
        short SHA) names in ``url``, fetched into the mirror. ``force`` ignores ``min_fetch_interval``
        (a hard refresh). Raises :class:`RepoUnreachable` or :class:`RevisionNotFound`."""
        requested_at = self._clock()
        loc = self.location(url)
        rev = _check_revision(revision)
        creds = creds or loc.url_credentials
        state = self._state(loc)
        await self._ensure_mirror(loc, state)
        if FULL_SHA.fullmatch(rev):
            return await self._ensure_sha(loc, state, creds, rev.lower())
        for attempt in range(2):
            refs = await self._refs(loc, state, creds, requested_at=requested_at, force=force or attempt > 0)
            found = refs.lookup(rev)
            if found is None:
                break
            refname, sha = found
            if await self._ensure_tip(loc, state, creds, sha, refname):
                return sha
            requested_at = self._clock()  # the ref moved between listing and fetching: list again
        if found is not None:
            raise RevisionNotFound(f"revision {rev!r} of repository {loc.url} could not be fetched")
        if rev in ("", "HEAD"):
            raise RevisionNotFound(f"repository {loc.url} has no HEAD commit (is it empty?)")
        if SHORT_SHA.fullmatch(rev):
            commit = await self._peel(state, rev)
            if commit is None:
                await self._fetch_unless(loc, state, creds, rev)
                commit = await self._peel(state, rev)
            if commit is not None:
                return commit
        raise RevisionNotFound(f"revision {rev!r} not found in repository {loc.url}")

    async def checkout(self, url: str, sha: str, *, creds: Credentials | None = None) -> Path:
        """A read-only directory holding the tree of commit ``sha`` (a full SHA, as :meth:`resolve`
        returns), made once and reused while cached. Concurrent callers share one checkout."""
        if not FULL_SHA.fullmatch(sha or ""):
            raise RevisionNotFound(f"checkout needs a full 40-hex commit SHA, got {str(sha)[:80]!r}")
        sha = sha.lower()
        existing = self._checkouts.get(sha)
        if existing is not None and existing.is_dir():
            self._checkouts.move_to_end(sha)
            return existing
        future = self._inflight.get(sha)
        if future is None:
            future = asyncio.ensure_future(self._materialise(url, sha, creds))
            self._inflight[sha] = future
            future.add_done_callback(self._checkout_done(sha))
        return await asyncio.shield(future)

    @contextlib.asynccontextmanager
    async def checked_out(
        self, url: str, sha: str, *, creds: Credentials | None = None
    ) -> AsyncIterator[Path]:
        """:meth:`checkout`, with the directory protected from eviction until the block exits."""
        key = (sha or "").lower()
        self._pins[key] = self._pins.get(key, 0) + 1
        try:
            yield await self.checkout(url, sha, creds=creds)
        finally:
            self._pins[key] -= 1
            if not self._pins[key]:
                del self._pins[key]
            await self._evict()

    async def commit_info(self, url: str, sha: str, *, creds: Credentials | None = None) -> CommitInfo:
        """Author (``Name <email>``), author date and full message of a commit."""
        commit = await self.resolve(url, sha, creds=creds)
        state = self._state(self.location(url))
        result = await self.git.run(
            ["log", "-1", "--no-show-signature", "--format=%an <%ae>%x00%aI%x00%B", commit, "--"],
            git_dir=state.mirror,
        )
        author, _, rest = result.text.partition("\0")
        date, _, message = rest.partition("\0")
        when = datetime.fromisoformat(date.strip())
        return CommitInfo(author=author, date=when, message=message.rstrip("\n"))

    # -- repositories --

    def _mirror_for(self, normalized: str) -> Path:
        digest = hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:32]
        return self._mirrors / f"{digest}.git"

    def _state(self, loc: RepoLocation) -> _RepoState:
        state = self._states.get(loc.normalized)
        if state is None:
            state = _RepoState(mirror=self._mirror_for(loc.normalized))
            self._states[loc.normalized] = state
        return state

    async def _ensure_mirror(self, loc: RepoLocation, state: _RepoState) -> None:
        if (state.mirror / "HEAD").exists():
            return
        async with state.lock:
            if (state.mirror / "HEAD").exists():
                return
            staging = self._scratch / f"mirror-{_secrets.token_hex(8)}"
            try:
                await self.git.run(["init", "--bare", "--quiet", "--template=", "--", str(staging)])
                (staging / "tugboat-url").write_text(loc.normalized + "\n", encoding="utf-8")
                os.rename(staging, state.mirror)
            finally:
                _remove_tree(staging)

    async def _ls_remote(self, loc: RepoLocation, creds: Credentials | None) -> RemoteRefs:
        if loc.local_path is not None and find_git_dir(loc.local_path) is None:
            reason = "path does not exist" if not loc.local_path.exists() else "not a git repository"
            raise RepoUnreachable(f"repository {loc.url} is unreachable: {reason}")
        with git_auth(creds, protocol=loc.protocol, home=self.git.home) as auth:
            try:
                result = await self.git.run(
                    ["ls-remote", "--symref", "--", loc.fetch_url],
                    env=auth.env,
                    config=auth.config,
                    secrets=(*auth.secrets, *self._url_secrets(loc)),
                )
            except GitError as exc:
                raise self._unreachable(loc, exc) from exc
        return RemoteRefs.parse(result.text)

    async def _refs(
        self,
        loc: RepoLocation,
        state: _RepoState,
        creds: Credentials | None,
        *,
        requested_at: float,
        force: bool,
    ) -> RemoteRefs:
        async with state.lock:
            cached = state.refs
            if cached is not None:
                if state.refs_started_at >= requested_at:
                    return cached  # listed after this caller asked: fresh enough for it
                if loc.local_path is not None:
                    unchanged = (
                        state.signature is not None and ref_signature(loc.local_path) == state.signature
                    )
                    if unchanged and not force:
                        return cached
                elif not force and self._clock() - state.refs_started_at < self.min_fetch_interval:
                    return cached
            signature = ref_signature(loc.local_path) if loc.local_path is not None else None
            started_at = self._clock()
            refs = await self._ls_remote(loc, creds)
            state.refs, state.refs_started_at, state.signature = refs, started_at, signature
            return refs

    async def _fetch(
        self, loc: RepoLocation, state: _RepoState, creds: Credentials | None, extra: Iterable[str] = ()
    ) -> None:
        """``git fetch --prune`` of all branches and tags (plus ``extra`` refspecs) into the mirror."""
        if loc.local_path is not None and find_git_dir(loc.local_path) is None:
            raise RepoUnreachable(f"repository {loc.url} is unreachable: no git repository at that path")
        refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", *extra]
        with git_auth(creds, protocol=loc.protocol, home=self.git.home) as auth:
            try:
                await self.git.run(
                    [
                        "fetch",
                        "--prune",
                        "--no-tags",
                        "--quiet",
                        "--no-write-fetch-head",
                        "--no-recurse-submodules",
                        "--",
                        loc.fetch_url,
                        *refspecs,
                    ],
                    git_dir=state.mirror,
                    env=auth.env,
                    config=auth.config,
                    secrets=(*auth.secrets, *self._url_secrets(loc)),
                )
            except GitError as exc:
                raise self._unreachable(loc, exc) from exc

    async def _peel(self, state: _RepoState, rev: str) -> str | None:
        """The commit SHA ``rev`` (hex only) names in the mirror, or ``None``."""
        if rev in state.present:
            return rev
        result = await self.git.run(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
            git_dir=state.mirror,
            check=False,
        )
        if "ambiguous" in result.stderr:
            raise RevisionNotFound(f"short SHA {rev!r} is ambiguous")
        sha = result.text.strip()
        if result.returncode != 0 or not FULL_SHA.fullmatch(sha):
            return None
        if sha == rev:
            state.present.add(sha)
        return sha

    async def _fetch_unless(
        self,
        loc: RepoLocation,
        state: _RepoState,
        creds: Credentials | None,
        rev: str,
        extra: Iterable[str] = (),
    ) -> None:
        """Fetch, unless ``rev`` became available while this caller waited for the lock."""
        async with state.lock:
            if await self._peel(state, rev) is None:
                await self._fetch(loc, state, creds, extra)

    async def _ensure_tip(
        self, loc: RepoLocation, state: _RepoState, creds: Credentials | None, sha: str, refname: str
    ) -> bool:
        if await self._peel(state, sha) is not None:
            return True
        extra = []
        if not refname.startswith(("refs/heads/", "refs/tags/")):
            extra.append(f"+{refname}:refs/tugboat/fetched/{refname.removeprefix('refs/')}")
        await self._fetch_unless(loc, state, creds, sha, extra)
        return await self._peel(state, sha) is not None

    async def _ensure_sha(
        self, loc: RepoLocation, state: _RepoState, creds: Credentials | None, sha: str
    ) -> str:
        commit = await self._peel(state, sha)
        if commit is not None:
            return commit
        await self._fetch_unless(loc, state, creds, sha)
        commit = await self._peel(state, sha)
        if commit is None:
            # Not the tip of any branch or tag: ask for the object itself (most servers allow reachable SHAs).
            with contextlib.suppress(RepoUnreachable):
                await self._fetch_unless(loc, state, creds, sha, [f"+{sha}:refs/tugboat/sha/{sha}"])
            commit = await self._peel(state, sha)
        if commit is None:
            raise RevisionNotFound(f"commit {sha} not found in repository {loc.url}")
        return commit

    def _url_secrets(self, loc: RepoLocation) -> list[str]:
        return loc.url_credentials.secret_values() if loc.url_credentials else []

    @staticmethod
    def _unreachable(loc: RepoLocation, exc: GitError) -> RepoUnreachable:
        detail = exc.stderr or str(exc)
        return RepoUnreachable(
            f"repository {loc.url} is unreachable: {detail}",
            command=exc.command,
            returncode=exc.returncode,
            stderr=exc.stderr,
        )

    # -- checkouts --

    def _checkout_done(self, sha: str) -> Callable[[asyncio.Future[Path]], None]:
        def done(future: asyncio.Future[Path]) -> None:
            if self._inflight.get(sha) is future:
                del self._inflight[sha]
            if not future.cancelled():
                future.exception()  # retrieved: waiters may all have been cancelled

        return done

    async def _materialise(self, url: str, sha: str, creds: Credentials | None) -> Path:
        loc = self.location(url)
        state = self._state(loc)
        await self._ensure_mirror(loc, state)
        commit = await self._ensure_sha(loc, state, creds or loc.url_credentials, sha)
        token = _secrets.token_hex(6)
        staging = self._checkout_dir / f".tmp-{sha}-{token}"
        index = self._scratch / f"index-{token}"
        final = self._checkout_dir / sha
        try:
            staging.mkdir()
            await self.git.run(
                ["read-tree", "--reset", "-u", commit],
                git_dir=state.mirror,
                env={"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(staging)},
            )
            await asyncio.to_thread(_make_read_only, staging)
            if final.exists():
                await asyncio.to_thread(_remove_tree, final)
            os.rename(staging, final)
        finally:
            index.unlink(missing_ok=True)
            if staging.exists():
                await asyncio.to_thread(_remove_tree, staging)
        self._checkouts[sha] = final
        self._checkouts.move_to_end(sha)
        await self._evict()
        return final

    async def _evict(self) -> None:
        while len(self._checkouts) > self.max_checkouts:
            victim = next((sha for sha in self._checkouts if not self._pins.get(sha)), None)
            if victim is None:
                return
            path = self._checkouts.pop(victim)
            trash = self._checkout_dir / f".trash-{victim}-{_secrets.token_hex(6)}"
            try:
                os.rename(path, trash)
            except OSError:
                continue
            await asyncio.to_thread(_remove_tree, trash)

    def _adopt_checkouts(self) -> None:
        """Take over the checkouts a previous process left (oldest first); drop half-made ones."""
        found: list[tuple[float, str, Path]] = []
        for entry in self._checkout_dir.iterdir():
            if entry.name.startswith((".tmp-", ".trash-")):
                _remove_tree(entry)
            elif FULL_SHA.fullmatch(entry.name) and entry.is_dir():
                found.append((entry.stat().st_mtime, entry.name, entry))
        for _, sha, path in sorted(found):
            self._checkouts[sha] = path
        while len(self._checkouts) > self.max_checkouts:
            _, path = self._checkouts.popitem(last=False)
            _remove_tree(path)
        for entry in self._scratch.iterdir():
            if entry.is_dir():
                _remove_tree(entry)
            else:
                entry.unlink(missing_ok=True)
