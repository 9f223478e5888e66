"""Keeping every path a source names inside its repository.

An Application names paths in Git: ``spec.source.path``, Helm value files and ``--set-file`` files,
Jsonnet library directories, Kustomize components and patch files, and the files a directory app reads.
None of them may reach outside the checked-out repository, whether through ``..``, an absolute path or a
symbolic link; otherwise anyone who can push to a repository could read the controller's files. Checks
use real paths (symlinks resolved), and errors quote the path as the user wrote it, never a path on the
controller's disk.

As in Argo CD, a repository holding *any* symlink that is absolute or climbs out of the repository is
refused outright (``find_out_of_bounds_symlink``), which also keeps the tools we run from following one.
"""

from __future__ import annotations

import os
from pathlib import Path

from tugboat.gitops.errors import RenderError


def repo_root(root: Path | str) -> Path:
    """The real path of the checked-out repository ``root``, which must be a directory."""
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise RenderError("the repository checkout to render from does not exist")
    return real


def is_inside(path: Path | str, root: Path | str, *, allow_root: bool = True) -> bool:
    """Whether the real path ``path`` is ``root`` itself (if allowed) or below it."""
    path_s, root_s = os.fspath(path), os.fspath(root)
    if path_s == root_s:
        return allow_root
    return path_s.startswith(root_s.rstrip(os.sep) + os.sep)


def display(path: Path | str, root: Path | str) -> str:
    """``path`` relative to the repository root, for messages (``.`` for the root itself)."""
    relative = os.path.relpath(path, root)
    return "." if relative == "." else relative.replace(os.sep, "/")


def app_dir(root: Path, path: str) -> Path:
    """The directory of ``spec.source.path`` inside the real repository root ``root``.

    Like Argo CD, an absolute path is refused, and so is one that is missing, not a directory, or that
    resolves (through ``..`` or a symlink) to outside the repository.
    """
    if "\x00" in path:
        raise RenderError("spec.source.path contains a NUL character")
    if os.path.isabs(path):
        raise RenderError(
            f"spec.source.path {path!r} is absolute: give a path relative to the repository root"
        )
    real = Path(os.path.realpath(root / path))
    if not is_inside(real, root):
        raise RenderError(f"spec.source.path {path!r} resolves to outside the repository")
    if not real.exists():
        raise RenderError(f"spec.source.path {path!r}: app path does not exist")
    if not real.is_dir():
        raise RenderError(f"spec.source.path {path!r}: app path is not a directory")
    return real


def resolve(
    root: Path,
    base: Path,
    value: str,
    *,
    what: str,
    absolute_from_root: bool = False,
    allow_root: bool = False,
) -> Path:
    """The real path of ``value`` (relative to ``base``), which must stay inside the repository ``root``.

    ``absolute_from_root`` follows Argo CD for Helm value files and Jsonnet libraries: a leading ``/``
    means "from the repository root". Otherwise an absolute ``value`` is refused. The path need not exist;
    callers check that themselves when it matters.
    """
    if "\x00" in value:
        raise RenderError(f"{what} {value!r} contains a NUL character")
    if not value:
        raise RenderError(f"{what} is empty")
    if os.path.isabs(value):
        if not absolute_from_root:
            raise RenderError(f"{what} {value!r} is absolute: give a path relative to the repository")
        joined = os.path.join(root, value.lstrip("/"))
    else:
        joined = os.path.join(base, value)
    real = Path(os.path.realpath(joined))
    if not is_inside(real, root, allow_root=allow_root):
        if real == root:
            raise RenderError(f"{what} {value!r} resolves to the repository root, which is not allowed")
        raise RenderError(f"{what} {value!r} resolves to outside the repository")
    return real


def find_out_of_bounds_symlink(root: str) -> str | None:
    """The repository-relative path of the first symlink under ``root`` that is absolute or leaves it.

    Follows Argo CD's check: the link target is walked part by part from the link's directory, and must
    never climb above ``root``. ``.git`` is skipped. Runs in the worker pool (it walks the whole tree).
    """
    base = os.path.abspath(root)
    for directory, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(name for name in dirnames if not (directory == base and name == ".git"))
        for name in [*dirnames, *sorted(filenames)]:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if os.path.isabs(target) or _climbs_out(base, directory, target):
                return display(path, base)
    return None


def _climbs_out(base: str, directory: str, target: str) -> bool:
    current = directory
    for part in target.split(os.sep):
        current = os.path.normpath(os.path.join(current, part))
        if not is_inside(current, base):
            return True
    return False
