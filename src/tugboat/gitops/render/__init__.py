"""Rendering an Application source into Kubernetes manifests, as Argo CD's repo-server does.

``render`` takes a checked-out repository tree (read-only: nothing in it is ever written) and an Argo
CD ``spec.source``, picks the tool (``detect``), and returns the manifests with the ``status.sourceType``
Argo CD would report. Plain directories (``directory``, with ``jsonnet``), Kustomize (``kustomize``) and
Helm (``helm``) are supported; Config Management Plugins are not yet. Every path stays inside the
repository (``paths``); external tools run under a timeout in their own process group (``process``);
parsing and Jsonnet run in a small worker pool (``pool``), so a large or hostile repository cannot stall
the controller. Any problem - a malformed manifest in any file, a tool failure, a path escape - raises
``RenderError`` and returns nothing, so the controller never applies part of an app.

``render_cached`` puts a ``ManifestCache`` in front (keyed by repository, commit, path and parameters).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import (
    buildenv,
    detect,
    directory,
    fields,
    helm,
    kustomize,
    paths,
    pool,
    result,
    sourcefiles,
)
from tugboat.gitops.render.cache import CacheKey, ManifestCache, key_for
from tugboat.gitops.render.result import RenderResult

__all__ = ["CacheKey", "ManifestCache", "RenderError", "RenderResult", "key_for", "render", "render_cached"]

# Symlink checks per (repository root, commit), done or running; a checkout of a commit does not change.
_SYMLINK_CHECKS: dict[tuple[str, str], asyncio.Future[str | None]] = {}
_SYMLINK_CHECKS_MAX = 4096


async def render(
    root: Path,
    source: Mapping[str, Any],
    *,
    app_name: str,
    app_namespace: str,
    revision: str,
    repo_url: str,
    project: str = "default",
    kube_version: str = "1.32",
    api_versions: Sequence[str] | None = None,
    timeout: float = 60,
) -> RenderResult:
    """Render ``source`` from the checkout ``root`` of ``revision``.

    ``app_namespace`` is the Application's *destination* namespace (``ARGOCD_APP_NAMESPACE``, Helm's
    default ``--namespace``). ``kube_version`` and ``api_versions`` describe the target cluster (Helm's
    ``--kube-version``/``--api-versions``, ``KUBE_VERSION``/``KUBE_API_VERSIONS``). ``timeout`` bounds
    each step - one tool run, or one parse in the worker pool - from the moment it starts.
    """
    if not isinstance(source, Mapping):
        raise RenderError("spec.source must be an object")
    if source.get("chart"):
        raise RenderError("Helm repository charts (spec.source.chart) are not supported yet")
    real_root = paths.repo_root(root)
    source_path = fields.string(source, "path", "spec.source")
    app_dir = paths.app_dir(real_root, source_path or ".")
    await _check_symlinks(real_root, revision, timeout=timeout)
    merged = sourcefiles.merge_overrides(real_root, app_dir, source, app_name=app_name)
    env = buildenv.BuildEnv(
        app_name=app_name,
        app_namespace=app_namespace,
        project=project,
        revision=revision,
        repo_url=repo_url,
        source_path=source_path,
        target_revision=fields.string(merged, "targetRevision", "spec.source"),
        kube_version=buildenv.normalize_kube_version(kube_version),
        api_versions=tuple(api_versions or ()),
    )
    source_type = detect.source_type(app_dir, merged)
    if source_type == result.DIRECTORY:
        found, warnings = await directory.render(
            real_root, app_dir, merged.get("directory"), env=env, timeout=timeout
        )
    elif source_type == result.KUSTOMIZE:
        found, warnings = await kustomize.render(
            real_root, app_dir, merged.get("kustomize"), env=env, timeout=timeout
        )
    elif source_type == result.HELM:
        found, warnings = await helm.render(real_root, app_dir, merged.get("helm"), env=env, timeout=timeout)
    else:
        raise RenderError(
            "Config Management Plugins (spec.source.plugin) are not supported yet: "
            "render the manifests into the repository, or use Helm, Kustomize, Jsonnet or plain YAML"
        )
    return RenderResult(manifests=found, source_type=source_type, warnings=warnings)


async def render_cached(
    cache: ManifestCache,
    root: Path,
    source: Mapping[str, Any],
    *,
    app_name: str,
    app_namespace: str,
    revision: str,
    repo_url: str,
    project: str = "default",
    kube_version: str = "1.32",
    api_versions: Sequence[str] | None = None,
    timeout: float = 60,
    refresh: bool = False,
) -> RenderResult:
    """``render`` through ``cache``; ``refresh=True`` (a hard refresh) renders again even if cached.

    ``revision`` must be the resolved commit SHA, as it is part of the cache key.
    """
    key = key_for(
        source if isinstance(source, Mapping) else {},
        repo_url=repo_url,
        revision=revision,
        app_name=app_name,
        app_namespace=app_namespace,
        project=project,
        kube_version=kube_version,
        api_versions=api_versions or (),
    )
    if refresh:
        cache.discard(key)

    async def fresh() -> RenderResult:
        return await render(
            root,
            source,
            app_name=app_name,
            app_namespace=app_namespace,
            revision=revision,
            repo_url=repo_url,
            project=project,
            kube_version=kube_version,
            api_versions=api_versions,
            timeout=timeout,
        )

    return await cache.get_or_render(key, fresh)


async def _check_symlinks(root: Path, revision: str, *, timeout: float) -> None:
    """Refuse a repository that holds a symlink leaving it (checked once per checkout and commit).

    Renders of many Applications from one commit share one check, even while it runs.
    """
    key = (str(root), revision)
    if not revision:
        offender = await _find_symlink(root, timeout=timeout)
    else:
        check = _SYMLINK_CHECKS.get(key)
        loop = asyncio.get_running_loop()
        if check is None or check.get_loop() is not loop:
            if len(_SYMLINK_CHECKS) >= _SYMLINK_CHECKS_MAX:
                _SYMLINK_CHECKS.clear()
            check = _SYMLINK_CHECKS[key] = asyncio.ensure_future(_find_symlink(root, timeout=timeout))
        try:
            offender = await asyncio.shield(check)
        except RenderError:
            if _SYMLINK_CHECKS.get(key) is check:
                del _SYMLINK_CHECKS[key]  # a timeout, say: try again next time
            raise
    if offender is not None:
        raise RenderError(
            f"the repository contains a symlink that points outside it: {offender} "
            "(absolute symlinks and symlinks leaving the repository are not allowed)"
        )


async def _find_symlink(root: Path, *, timeout: float) -> str | None:
    return await pool.run(
        paths.find_out_of_bounds_symlink, str(root), timeout=timeout, what="checking the repository symlinks"
    )
