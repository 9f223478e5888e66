"""``POST /api/webhook``: Git providers tell us about a push, and the Applications it concerns refresh now.

Without webhooks a commit reaches the cluster at the next poll (up to about three minutes). Like Argo CD's
webhook handler, this one verifies the sender with the provider's secret from ``argocd-secret`` (read on
each request, so a rotated secret takes effect at once), reads at most ``webhook.maxPayloadSizeMB`` of
body, and then asks the GitOps controller to refresh every Application in the server's namespace that
has a source in the pushed repository at a revision the push moved: it sets the
``argocd.argoproj.io/refresh`` annotation, the same request a user's refresh makes. Applications with
``argocd.argoproj.io/manifest-generate-paths`` refresh only when the push changed a file under one of
those paths. Provider differences live in :mod:`tugboat.server.webhookpayloads`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import json
import logging
import posixpath
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tugboat.gitops import comparison, crds, git, repos
from tugboat.gitops import settings as gitops_settings
from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.server import applications, auth, context, webhookpayloads
from tugboat.server.problems import Problem
from tugboat.server.webhookpayloads import Push

log = logging.getLogger(__name__)

MAX_PAYLOAD_KEY = "webhook.maxPayloadSizeMB"
DEFAULT_MAX_PAYLOAD_MB = 50
MANIFEST_PATHS_ANNOTATION = "argocd.argoproj.io/manifest-generate-paths"

# --- matching ------------------------------------------------------------------------------------------


def repo_key(url: str) -> str | None:
    """What two spellings of one repository have in common, or ``None`` for a URL that is not one.

    Remote repositories become ``host/path``: scheme, user and port dropped (a push names the https
    URL, an Application may use ``git@host:owner/repo`` or ``ssh://git@host:2222/owner/repo``), no
    ``.git`` suffix or trailing slash, and lower-cased, as Argo CD matches webhook URLs case-insensitively.
    Local repositories (``file://`` URLs and paths) become ``file://`` plus the resolved path, case kept.
    """
    try:
        location = repos.parse_repo_url(url)
    except (git.InvalidRepoURL, ValueError):
        return None
    if location.is_local:
        return location.normalized
    _, _, rest = location.normalized.partition("://")
    authority, _, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    host = host[: host.find("]") + 1] if host.startswith("[") else host.partition(":")[0]
    path = path.strip("/")
    if not host or not path:
        return None
    return f"{host}/{path}".lower()


def revision_matches(target: object, push: Push) -> bool:
    """Whether a source at ``targetRevision`` ``target`` follows a ref the push moved.

    ``HEAD`` (or nothing) follows the default branch when the payload names it, else any branch; a
    branch or tag name follows that ref (``refs/heads/x`` and ``refs/tags/x`` only that kind); a full
    commit SHA never moves.
    """
    target = str(target).strip() if target is not None else ""
    if target in ("", "HEAD"):
        return any(
            ref.kind != webhookpayloads.TAG and push.default_branch in (None, ref.name) for ref in push.refs
        )
    if repos.FULL_SHA.fullmatch(target):
        return False
    wanted = webhookpayloads.parse_ref(target)
    return any(
        ref.name == wanted.name and (not wanted.kind or not ref.kind or ref.kind == wanted.kind)
        for ref in push.refs
    )


def _parts(path: str) -> tuple[str, ...]:
    return tuple(part for part in posixpath.normpath("/" + path).split("/") if part)


def refresh_paths(annotation: str, *, source_path: str) -> list[tuple[str, ...]]:
    """The ``;``-separated paths of a manifest-generate-paths annotation, as path parts from the
    repository root: relative ones (``.`` included) under ``source_path``, ``/x`` from the root."""
    paths = []
    for item in annotation.split(";"):
        item = item.strip()
        if item:
            paths.append(_parts(item if item.startswith("/") else posixpath.join(source_path or "", item)))
    return paths


def _under(file: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """``file`` is ``path`` or inside it; each part of ``path`` may be a glob (``*``, ``?``, ``[ab]``)."""
    return len(file) >= len(path) and all(fnmatch.fnmatchcase(f, p) for f, p in zip(file, path, strict=False))


def files_touch(paths: Iterable[tuple[str, ...]], files: Iterable[str]) -> bool:
    """Whether any of ``files`` (repository-relative) is under any of ``paths``."""
    wanted = list(paths)
    return any(_under(_parts(file), path) for file in files for path in wanted)


def _source_wants(source: Mapping[str, Any], push: Push, keys: Collection[str], annotation: str) -> bool:
    key = repo_key(str(source.get("repoURL") or ""))
    if key is None or key not in keys or not revision_matches(source.get("targetRevision"), push):
        return False
    if push.changed_files is None:
        return True  # the payload does not say which files changed: refresh to be safe
    paths = refresh_paths(annotation, source_path=str(source.get("path") or ""))
    return not paths or files_touch(paths, push.changed_files)


def push_keys(push: Push) -> frozenset[str]:
    """The :func:`repo_key` of every URL the payload gives for the pushed repository."""
    return frozenset(key for url in push.urls if (key := repo_key(url)) is not None)


def app_wants_refresh(app: Mapping[str, Any], push: Push, *, keys: Collection[str] | None = None) -> bool:
    """Whether any source of ``app`` is in the pushed repository, at a moved revision, and (when the app
    lists manifest-generate-paths and the payload lists files) under a changed path. ``keys`` are
    :func:`push_keys` of ``push``, when already computed."""
    keys = push_keys(push) if keys is None else keys
    annotations = (app.get("metadata") or {}).get("annotations") or {}
    annotation = str(annotations.get(MANIFEST_PATHS_ANNOTATION) or "")
    sources, _ = comparison.app_sources(app)
    return any(_source_wants(source, push, keys, annotation) for source in sources)


# --- settings ------------------------------------------------------------------------------------------


async def payload_limit(client: Client, namespace: str) -> int:
    """The largest body accepted, in bytes: ``webhook.maxPayloadSizeMB`` of ``argocd-cm`` (default 50)."""
    configmap = await client.get_or_none(kinds.CONFIGMAP, gitops_settings.CONFIGMAP_NAME, namespace)
    raw = str(((configmap or {}).get("data") or {}).get(MAX_PAYLOAD_KEY) or "").strip()
    if not raw:
        return DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024
    megabytes = int(raw) if raw.isascii() and raw.isdigit() else 0
    if megabytes <= 0:
        log.warning("argocd-cm %s=%r is not a positive integer: using the default", MAX_PAYLOAD_KEY, raw)
        megabytes = DEFAULT_MAX_PAYLOAD_MB
    return megabytes * 1024 * 1024


async def webhook_secrets(client: Client, namespace: str) -> dict[str, str]:
    """The ``webhook.*`` keys of ``argocd-secret``, decoded (none when the Secret does not exist)."""
    secret = await client.get_or_none(kinds.SECRET, auth.SETTINGS_SECRET, namespace)
    values: dict[str, str] = {}
    for key, value in ((secret or {}).get("data") or {}).items():
        if str(key).startswith("webhook.") and isinstance(value, str):
            try:
                values[str(key)] = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise Problem(500, f"{auth.SETTINGS_SECRET} key {key} is not valid base64 text") from exc
    return values


# --- refresh -------------------------------------------------------------------------------------------


async def _refresh(client: Client, namespace: str, app: Mapping[str, Any]) -> bool:
    name = str(app["metadata"]["name"])
    annotations = app["metadata"].get("annotations") or {}
    if annotations.get(applications.REFRESH_ANNOTATION) == "hard":
        return True  # a pending hard refresh already does more than a normal one: keep it
    patch = {"metadata": {"annotations": {applications.REFRESH_ANNOTATION: "normal"}}}
    try:
        await client.patch(crds.APPLICATION, name, patch, namespace=namespace)
    except errors.ApiError as exc:
        if exc.not_found:
            return False  # deleted since it was listed
        raise
    return True


async def refresh_matching(client: Client, namespace: str, push: Push) -> list[str]:
    """Ask for a normal refresh of every Application in ``namespace`` the push concerns; their names."""
    try:
        apps, _ = await client.list(crds.APPLICATION, namespace)
    except errors.ApiError as exc:
        if exc.not_found:
            return []  # no Application type served: nothing to refresh
        raise
    wanted = sorted(
        (app for app in apps if app_wants_refresh(app, push)), key=lambda app: app["metadata"]["name"]
    )
    done = await asyncio.gather(*(_refresh(client, namespace, app) for app in wanted))
    return [str(app["metadata"]["name"]) for app, refreshed in zip(wanted, done, strict=True) if refreshed]


# --- the handler ---------------------------------------------------------------------------------------


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes: from
    Content-Length before reading, else while streaming (an oversized body is never held whole)."""
    too_large = Problem(
        413, f"webhook payload is larger than {limit // (1024 * 1024)} MB ({MAX_PAYLOAD_KEY})"
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise Problem(400, f"invalid Content-Length {declared!r}") from None
        if length > limit:
            raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _payload(body: bytes) -> Obj:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise Problem(400, f"webhook payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise Problem(400, "webhook payload must be a JSON object")
    return payload


async def receive(request: Request) -> Response:
    """Verify, parse and act on one webhook request; answer ``{}`` whatever was refreshed (the route is
    public: it must not tell a caller which Applications use a repository; the log says)."""
    provider = webhookpayloads.detect(request.headers)
    if provider is None:
        raise Problem(400, "unknown webhook: no GitHub, GitLab, Gitea, Gogs or Bitbucket event header")
    state = context.settings(request)
    limit, secrets = await asyncio.gather(
        payload_limit(state.client, state.namespace), webhook_secrets(state.client, state.namespace)
    )
    body = await read_body(request, limit=limit)
    try:
        provider.verify(request.headers, body, secrets)
    except webhookpayloads.VerificationFailed as exc:
        log.warning("rejected %s webhook: %s", provider.name, exc)
        raise Problem(401, f"{provider.name} webhook verification failed: {exc}") from exc
    if not provider.is_push(request.headers):
        log.debug("ignoring %s webhook event %r", provider.name, provider.event(request.headers))
        return JSONResponse({})
    try:
        push = provider.parse(_payload(body))
    except webhookpayloads.PayloadError as exc:
        raise Problem(400, f"{provider.name} webhook: {exc}") from exc
    refreshed = await refresh_matching(state.client, state.namespace, push)
    log.info(
        "%s push to %s (%s): refreshed %s",
        provider.name,
        ", ".join(push.urls) or "?",
        ", ".join(ref.name for ref in push.refs) or "?",
        ", ".join(refreshed) or "nothing",
    )
    return JSONResponse({})


def routes() -> list[BaseRoute]:
    return [Route("/api/webhook", context.guarded(receive, public=True), methods=["POST"])]
