"""Private, writable copies of an application directory, so a checkout is never modified.

Argo CD applies Kustomize overrides with ``kustomize edit`` and builds Helm dependencies inside its
checkout. We render from a shared, read-only checkout instead, so those steps happen in a *shadow tree*
under a temporary directory: the application directory is copied, and every other entry along the path
from the repository root is a symlink to the real one. Relative references (``../base``, a sibling
component) therefore still resolve into the checkout, Kustomize's file-loading restrictions see the
same real directories as before, and the copy costs only the application directory itself, not the
whole repository (symlinks inside the copy are copied as links; the repository has already been checked
for links that leave it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path


class Workspace:
    """A temporary directory holding a shadow of the repository with a private copy of one app."""

    def __init__(self, base: Path, root: Path, app_dir: Path) -> None:
        self.base = base
        self.root = base / "repo"
        self.app_dir = self.root / app_dir.relative_to(root)
        self._real_root = root
        self._real_app_dir = app_dir

    def build(self) -> None:
        """Create the shadow tree (blocking file operations; call it in a thread)."""
        self.root.mkdir()
        real, shadow = self._real_root, self.root
        for part in self._real_app_dir.relative_to(self._real_root).parts:
            for entry in os.scandir(real):
                if entry.name != part and entry.name != ".git":
                    os.symlink(entry.path, shadow / entry.name)
            real, shadow = real / part, shadow / part
            shadow.mkdir()
        for entry in os.scandir(real):
            target = shadow / entry.name
            if entry.name == ".git":
                continue
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                shutil.copytree(entry.path, target, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            else:
                shutil.copy2(entry.path, target)


@contextlib.asynccontextmanager
async def shadow(root: Path, app_dir: Path) -> AsyncIterator[Workspace]:
    """A shadow tree of ``root`` with a private copy of ``app_dir``, removed on exit."""
    base = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="tugboat-render-"))
    try:
        workspace = Workspace(base, root, app_dir)
        await asyncio.to_thread(workspace.build)
        yield workspace
    finally:
        await asyncio.to_thread(shutil.rmtree, base, True)


@contextlib.asynccontextmanager
async def scratch() -> AsyncIterator[Path]:
    """An empty private temporary directory (mode 0700), removed on exit."""
    base = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="tugboat-render-"))
    try:
        yield base
    finally:
        await asyncio.to_thread(shutil.rmtree, base, True)
