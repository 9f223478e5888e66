"""Directory apps: the YAML, JSON and Jsonnet files of a directory, as Argo CD reads them.

The rules follow Argo CD's repo-server (``findManifests``): files are visited in path order (the order
of Go's ``filepath.Walk``), sub-directories only with ``directory.recurse``, and ``.yaml``, ``.yml``,
``.json`` and ``.jsonnet`` files only, unless ``directory.disableExtensionFilter`` is set. ``exclude`` and
then ``include`` (globs with brace lists, see ``globs``) are matched against the path relative to the
application directory; exclude wins. A symlinked file is read if it stays inside the repository (an
error otherwise), a dangling one is skipped with a warning, and symlinked directories are not followed.
Files containing ``+argocd:skip-file-rendering`` are skipped. The YAML and JSON files together may not
exceed ``MAX_COMBINED_SIZE`` (Argo CD's ``--max-combined-directory-manifests-size`` default).

The walk and all parsing run in one task of the worker pool; any malformed file fails the whole render.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import buildenv, fields, globs, jsonnet, manifests, paths, pool

MAX_COMBINED_SIZE = 10 * 1024 * 1024
SKIP_MARKER = b"+argocd:skip-file-rendering"
_EXTENSIONS = (".yaml", ".yml", ".json", ".jsonnet")
_WHERE = "spec.source.directory"


async def render(
    root: Path, app_dir: Path, settings: Any, *, env: buildenv.BuildEnv, timeout: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """The manifests of the directory app in ``app_dir`` and the warnings (skipped files)."""
    settings = fields.mapping(settings, _WHERE)
    options = {
        "recurse": fields.boolean(settings, "recurse", _WHERE),
        "include": fields.string(settings, "include", _WHERE),
        "exclude": fields.string(settings, "exclude", _WHERE),
        "disable_extension_filter": fields.boolean(settings, "disableExtensionFilter", _WHERE),
        "jsonnet": jsonnet.options(settings.get("jsonnet"), root=root, app_dir=app_dir, env=env),
    }
    for key in ("include", "exclude"):
        if options[key]:
            globs.compile_pattern(options[key])  # a bad pattern fails here, before any work
    blob, warnings = await pool.run(
        render_in_worker, str(root), str(app_dir), options, timeout=timeout, what="rendering the directory"
    )
    return manifests.unpack(blob), warnings


def render_in_worker(root: str, app_dir: str, options: Mapping[str, Any]) -> tuple[bytes, list[str]]:
    """Walk, read and parse the directory app (in a worker process); JSON bytes and warnings."""
    found: list[dict[str, Any]] = []
    warnings: list[str] = []
    total = 0
    for path, shown, size in _files(root, app_dir, options, warnings):
        is_jsonnet = path.endswith(".jsonnet")
        if not is_jsonnet:  # checked before reading, so a huge file is never loaded
            total += size
            if total > MAX_COMBINED_SIZE:
                raise RenderError(
                    f"the manifest files of this directory exceed {MAX_COMBINED_SIZE >> 20} MiB in total"
                )
        with open(path, "rb") as handle:
            data = handle.read()
        if SKIP_MARKER in data:
            continue
        if is_jsonnet:
            found.extend(jsonnet.evaluate(path, root=root, settings=options["jsonnet"], where=shown))
            continue
        text = manifests.decode(data, where=shown)
        if path.endswith(".json"):
            found.extend(manifests.load_json(text, where=shown))
        else:
            objects, skipped = manifests.load_yaml(text, where=shown, lenient=True)
            found.extend(objects)
            warnings.extend(skipped)
    return manifests.dump(found), warnings


def _files(
    root: str, app_dir: str, options: Mapping[str, Any], warnings: list[str]
) -> Iterator[tuple[str, str, int]]:
    """The candidate files in walk order, as (path, path shown in messages, size)."""
    include, exclude = options["include"], options["exclude"]
    for path in _walk(app_dir, root=root, recurse=options["recurse"]):
        name = os.path.basename(path)
        shown = paths.display(path, root)
        if not options["disable_extension_filter"] and not name.endswith(_EXTENSIONS):
            continue
        try:
            info = os.lstat(path)
        except FileNotFoundError:  # pragma: no cover - removed while we walk
            continue
        if stat.S_ISLNK(info.st_mode):
            real = os.path.realpath(path)
            if not os.path.exists(real):
                warnings.append(f"skipped {shown}: the symlink points to a missing file")
                continue
            if not paths.is_inside(real, root, allow_root=False):
                raise RenderError(f"{shown}: illegal file path in symlink: it points outside the repository")
            info = os.stat(real)
        if not stat.S_ISREG(info.st_mode):
            if stat.S_ISLNK(os.lstat(path).st_mode):
                warnings.append(f"skipped {shown}: the symlink does not point to a regular file")
            continue
        relative = os.path.relpath(path, app_dir).replace(os.sep, "/")
        if exclude and globs.match(exclude, relative):
            continue
        if include and not globs.match(include, relative):
            continue
        yield path, shown, info.st_size


def _walk(top: str, *, root: str, recurse: bool) -> Iterator[str]:
    """Non-directory entries under ``top`` in Go ``filepath.Walk`` order (names sorted, depth first).

    Symlinks to directories are yielded as entries, not followed; ``.git`` directories are skipped.
    """
    try:
        entries = sorted(os.scandir(top), key=lambda entry: entry.name)
    except OSError as exc:
        raise RenderError(f"{paths.display(top, root)}: cannot read the directory: {exc.strerror}") from None
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if recurse and entry.name != ".git":
                yield from _walk(entry.path, root=root, recurse=True)
        else:
            yield entry.path
