"""What each Git provider's push webhook says, and how each proves it was sent by that provider.

Every provider names its event in its own header, signs (or tokens) the request its own way and shapes
its push payload differently. This module turns those differences into one :class:`Provider` table and
one :class:`Push` record (repository URLs, pushed refs, default branch, changed files), so that
:mod:`tugboat.server.webhooks` matches Applications without knowing any provider. The header names,
secret keys of ``argocd-secret`` and payload fields are the ones Argo CD's webhook handler reads.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tugboat.util import jsondata

BRANCH = "branch"
TAG = "tag"

_HEADS = "refs/heads/"
_TAGS = "refs/tags/"


class PayloadError(Exception):
    """The body is JSON but not the push payload its event header announces."""


class VerificationFailed(Exception):
    """The request does not carry the proof (signature, token, hook UUID) its provider's setting asks for."""


@dataclass(frozen=True)
class Ref:
    """One pushed ref: ``kind`` is :data:`BRANCH`, :data:`TAG` or ``""`` when the payload does not say."""

    kind: str
    name: str


def parse_ref(ref: str, *, kind: str = "") -> Ref:
    """``refs/heads/x`` as branch ``x``, ``refs/tags/v1`` as tag ``v1``; other names keep ``kind``."""
    if ref.startswith(_HEADS):
        return Ref(BRANCH, ref.removeprefix(_HEADS))
    if ref.startswith(_TAGS):
        return Ref(TAG, ref.removeprefix(_TAGS))
    return Ref(kind, ref)


@dataclass(frozen=True)
class Push:
    """A push, whatever the provider. ``changed_files`` is ``None`` when the payload lists no commits
    (Bitbucket never does; a tag push often has none), which means "unknown", not "nothing changed"."""

    provider: str
    urls: tuple[str, ...]
    refs: tuple[Ref, ...]
    default_branch: str | None = None
    changed_files: frozenset[str] | None = None


# --- payload fields ----------------------------------------------------------------------------------


_get = jsondata.dig


def _text(value: Any, *path: str) -> str | None:
    found = _get(value, *path)
    return found if isinstance(found, str) and found else None


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"push payload has no {what} object")
    return value


def _urls(obj: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    return [url for key in keys if (url := _text(obj, key))]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _commit_files(commits: Any) -> frozenset[str] | None:
    """Every path added, modified or removed by the listed commits (``None`` without a commit list)."""
    if not isinstance(commits, list) or not commits:
        return None
    files: set[str] = set()
    for commit in commits:
        for key in ("added", "modified", "removed"):
            files.update(path for path in _list(_get(commit, key)) if isinstance(path, str) and path)
    return frozenset(files)


def _ref_of(payload: Mapping[str, Any]) -> Ref:
    ref = _text(payload, "ref")
    if ref is None:
        raise PayloadError("push payload has no ref")
    return parse_ref(ref)


def _deduplicated(urls: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(urls))


def parse_github(payload: Mapping[str, Any]) -> Push:
    """GitHub's ``push`` event; Gitea and Gogs send the same shape."""
    repo = _mapping(payload.get("repository"), "repository")
    return Push(
        provider="github",
        urls=_deduplicated(_urls(repo, ("html_url", "clone_url", "ssh_url", "git_url"))),
        refs=(_ref_of(payload),),
        default_branch=_text(repo, "default_branch"),
        changed_files=_commit_files(payload.get("commits")),
    )


def parse_gitlab(payload: Mapping[str, Any]) -> Push:
    """GitLab's ``Push Hook`` and ``Tag Push Hook``: URLs under ``project`` and the older ``repository``."""
    project = _mapping(payload.get("project"), "project")
    repo = _get(payload, "repository")
    repo = repo if isinstance(repo, Mapping) else {}
    urls = [
        *_urls(project, ("web_url", "git_http_url", "git_ssh_url", "http_url", "ssh_url")),
        *_urls(repo, ("homepage", "url", "git_http_url", "git_ssh_url")),
    ]
    return Push(
        provider="gitlab",
        urls=_deduplicated(urls),
        refs=(_ref_of(payload),),
        default_branch=_text(project, "default_branch"),
        changed_files=_commit_files(payload.get("commits")),
    )


def _bitbucket_cloud_ref(change: Any) -> Ref | None:
    new = _get(change, "new")
    name = _text(new, "name")
    if name is None:
        return None  # a deleted branch or tag
    kind = str(_get(new, "type") or "")
    return Ref(TAG if kind in ("tag", "annotated_tag") else BRANCH if kind == "branch" else "", name)


def parse_bitbucket(payload: Mapping[str, Any]) -> Push:
    """Bitbucket Cloud's ``repo:push``: the web URL under ``links.html`` and refs under ``push.changes``."""
    repo = _mapping(payload.get("repository"), "repository")
    urls = [href for href in (_text(repo, "links", "html", "href"),) if href]
    urls += [href for link in _list(_get(repo, "links", "clone")) if (href := _text(link, "href"))]
    refs = [
        ref for change in _list(_get(payload, "push", "changes")) if (ref := _bitbucket_cloud_ref(change))
    ]
    return Push(
        provider="bitbucket",
        urls=_deduplicated(urls),
        refs=tuple(refs),
        default_branch=_text(repo, "mainbranch", "name"),
    )


def _bitbucket_server_ref(change: Any) -> Ref | None:
    ref = _get(change, "ref")
    ref_id = _text(ref, "id") or _text(change, "refId")
    kind = {"BRANCH": BRANCH, "TAG": TAG}.get(str(_get(ref, "type") or ""), "")
    if ref_id is not None:
        return parse_ref(ref_id, kind=kind)
    name = _text(ref, "displayId")
    return Ref(kind, name) if name else None


def parse_bitbucket_server(payload: Mapping[str, Any]) -> Push:
    """Bitbucket Server's (Data Center's) ``repo:refs_changed``: clone URLs under ``links.clone``."""
    repo = _mapping(payload.get("repository"), "repository")
    urls = [href for link in _list(_get(repo, "links", "clone")) if (href := _text(link, "href"))]
    refs = [ref for change in _list(payload.get("changes")) if (ref := _bitbucket_server_ref(change))]
    return Push(provider="bitbucketserver", urls=_deduplicated(urls), refs=tuple(refs))


# --- verification --------------------------------------------------------------------------------------


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _check_prefixed_hmac(header: str) -> Callable[[Mapping[str, str], bytes, str], None]:
    """``<header>: sha256=<hex HMAC-SHA256 of the body>`` (GitHub, Bitbucket Server)."""

    def check(headers: Mapping[str, str], body: bytes, secret: str) -> None:
        given = headers.get(header)
        if not given:
            raise VerificationFailed(f"a secret is configured but the request has no {header} signature")
        if not _same(given.strip().lower(), "sha256=" + _hmac_hex(secret, body)):
            raise VerificationFailed(
                f"{header} does not match the configured secret (HMAC verification failed)"
            )

    return check


def _check_plain_hmac(*header_names: str) -> Callable[[Mapping[str, str], bytes, str], None]:
    """The first of ``header_names`` present holds the bare hex HMAC-SHA256 of the body (Gitea, Gogs)."""

    def check(headers: Mapping[str, str], body: bytes, secret: str) -> None:
        header = next((name for name in header_names if headers.get(name)), None)
        if header is None:
            raise VerificationFailed(
                f"a secret is configured but the request has no {header_names[0]} signature"
            )
        if not _same(headers[header].strip().lower(), _hmac_hex(secret, body)):
            raise VerificationFailed(
                f"{header} does not match the configured secret (HMAC verification failed)"
            )

    return check


def _check_token(
    header: str, *, what: str, uuid: bool = False
) -> Callable[[Mapping[str, str], bytes, str], None]:
    """``<header>`` carries the configured value itself (GitLab's token, Bitbucket Cloud's hook UUID)."""
    canonical = _uuid if uuid else str.strip

    def check(headers: Mapping[str, str], body: bytes, secret: str) -> None:
        given = headers.get(header)
        if not given:
            raise VerificationFailed(f"a {what} is configured but the request has no {header} header")
        if not _same(canonical(given), canonical(secret)):
            raise VerificationFailed(f"{header} does not match the configured {what}")

    return check


def _uuid(value: str) -> str:
    """A UUID with or without its braces, in any case (``{ABC-…}`` is ``abc-…``)."""
    return value.strip().removeprefix("{").removesuffix("}").lower()


# --- providers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """One webhook sender: the header naming its event, the events that are pushes, the ``argocd-secret``
    keys holding its secret (the first one set counts), how a request proves itself, how to read a push."""

    name: str
    event_header: str
    push_events: frozenset[str]
    secret_keys: tuple[str, ...]
    check: Callable[[Mapping[str, str], bytes, str], None] = field(repr=False)
    parse: Callable[[Mapping[str, Any]], Push] = field(repr=False)

    def secret(self, settings: Mapping[str, str]) -> str | None:
        """The configured secret (``None``: unsigned events are accepted, as Argo CD does)."""
        return next((settings[key] for key in self.secret_keys if settings.get(key)), None)

    def verify(self, headers: Mapping[str, str], body: bytes, settings: Mapping[str, str]) -> None:
        """Raise :class:`VerificationFailed` unless the request proves itself with the configured secret.
        Without one there is nothing to check a signature against, so any request passes."""
        secret = self.secret(settings)
        if secret is not None:
            self.check(headers, body, secret)

    def event(self, headers: Mapping[str, str]) -> str:
        return headers.get(self.event_header, "").strip()

    def is_push(self, headers: Mapping[str, str]) -> bool:
        return self.event(headers) in self.push_events


def _gitea_like(payload: Mapping[str, Any], name: str) -> Push:
    push = parse_github(payload)
    return Push(name, push.urls, push.refs, push.default_branch, push.changed_files)


GITHUB = Provider(
    "github",
    "X-GitHub-Event",
    frozenset({"push"}),
    ("webhook.github.secret",),
    _check_prefixed_hmac("X-Hub-Signature-256"),
    parse_github,
)
GITLAB = Provider(
    "gitlab",
    "X-Gitlab-Event",
    frozenset({"Push Hook", "Tag Push Hook"}),
    ("webhook.gitlab.secret",),
    _check_token("X-Gitlab-Token", what="secret token"),
    parse_gitlab,
)
GITEA = Provider(
    "gitea",
    "X-Gitea-Event",
    frozenset({"push"}),
    ("webhook.gitea.secret", "webhook.gogs.secret"),
    _check_plain_hmac("X-Gitea-Signature", "X-Gogs-Signature"),
    lambda payload: _gitea_like(payload, "gitea"),
)
GOGS = Provider(
    "gogs",
    "X-Gogs-Event",
    frozenset({"push"}),
    ("webhook.gogs.secret",),
    _check_plain_hmac("X-Gogs-Signature"),
    lambda payload: _gitea_like(payload, "gogs"),
)
BITBUCKET = Provider(
    "bitbucket",
    "X-Event-Key",
    frozenset({"repo:push"}),
    ("webhook.bitbucket.uuid",),
    _check_token("X-Hook-UUID", what="hook UUID", uuid=True),
    parse_bitbucket,
)
BITBUCKET_SERVER = Provider(
    "bitbucketserver",
    "X-Event-Key",
    frozenset({"repo:refs_changed"}),
    ("webhook.bitbucketserver.secret",),
    _check_prefixed_hmac("X-Hub-Signature"),
    parse_bitbucket_server,
)

PROVIDERS = (GITEA, GOGS, GITHUB, GITLAB, BITBUCKET, BITBUCKET_SERVER)


def detect(headers: Mapping[str, str]) -> Provider | None:
    """The provider that sent a request, from its headers. Gitea also sends Gogs' and GitHub's event
    headers, so it is tried first; Bitbucket Cloud and Server share ``X-Event-Key`` and are told apart by
    the event (``repo:push`` is Cloud's, ``repo:refs_changed`` Server's) or else Cloud's ``X-Hook-UUID``."""
    for provider in (GITEA, GOGS, GITHUB, GITLAB):
        if headers.get(provider.event_header):
            return provider
    key = headers.get("X-Event-Key", "").strip()
    if not key:
        return None
    if key in BITBUCKET.push_events:
        return BITBUCKET
    if key in BITBUCKET_SERVER.push_events:
        return BITBUCKET_SERVER
    return BITBUCKET if headers.get("X-Hook-UUID") else BITBUCKET_SERVER
