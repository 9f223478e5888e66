"""Parameter overrides kept in Git: ``.argocd-source.yaml`` and ``.argocd-source-<app>.yaml``.

Argo CD merges these files from the application directory into ``spec.source`` before choosing the
tool (``mergeSourceParameters`` in its repo-server): each is a JSON merge patch, the app-specific file
last; ``repoURL``, ``path``, ``targetRevision`` and ``chart`` cannot be changed this way. ``argocd app
set`` writes them in "write-back" setups, and users rely on them to pin image tags from Git.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import manifests, paths
from tugboat.kube import mergepatch

MAX_SIZE = 1024 * 1024
_PROTECTED = ("repoURL", "path", "targetRevision", "chart")


def merge_overrides(root: Path, app_dir: Path, source: Mapping[str, Any], *, app_name: str) -> dict[str, Any]:
    """``source`` with the override files of ``app_dir`` merged in (a new dict; ``source`` is unchanged)."""
    merged: Any = dict(source)
    names = [".argocd-source.yaml"]
    if app_name:
        names.append(f".argocd-source-{app_name}.yaml")
    for name in names:
        path = app_dir / name
        if not path.is_file():
            continue
        shown = paths.display(path, root)
        real = paths.resolve(root, app_dir, name, what="source override file")
        if real.stat().st_size > MAX_SIZE:
            raise RenderError(f"{shown}: larger than {MAX_SIZE // 1024} KiB")
        patch = manifests.load_document(manifests.decode(real.read_bytes(), where=shown), where=shown)
        if patch is None:
            continue
        if not isinstance(patch, dict):
            raise RenderError(f"{shown}: must hold an object (a patch of spec.source)")
        merged = mergepatch.apply(merged, patch)
    for key in _PROTECTED:
        if key in source:
            merged[key] = source[key]
        else:
            merged.pop(key, None)
    return dict(merged)
