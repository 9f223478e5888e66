"""Jsonnet files of a directory app, evaluated with ``gojsonnet`` as Argo CD evaluates them.

``spec.source.directory.jsonnet`` gives ``extVars`` and ``tlas`` (each ``{name, value, code}``; values
may use the build variables, e.g. ``$ARGOCD_APP_NAME``) and ``libs``, library directories relative to
the repository root. Imports are looked up as go-jsonnet's file importer does - beside the importing
file, then in the library directories, the last one first - with the application directory as the first
library path. Unlike plain go-jsonnet, an import that resolves outside the repository (``../../etc``, an
absolute path, a symlink) is an error: evaluation goes through our import callback, which checks real
paths. The output must be an object or an array of objects; ``List`` objects are flattened.

``evaluate`` runs inside the render worker pool.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import buildenv, fields, manifests, paths

_WHERE = "spec.source.directory.jsonnet"


def options(settings: Any, *, root: Path, app_dir: Path, env: buildenv.BuildEnv) -> dict[str, Any]:
    """The evaluation options from ``directory.jsonnet``, checked, substituted and picklable."""
    settings = fields.mapping(settings, _WHERE)
    result: dict[str, Any] = {"ext_vars": {}, "ext_codes": {}, "tla_vars": {}, "tla_codes": {}}
    for key, plain, code in (("extVars", "ext_vars", "ext_codes"), ("tlas", "tla_vars", "tla_codes")):
        for index, item in enumerate(fields.object_list(settings, key, _WHERE)):
            where = f"{_WHERE}.{key}[{index}]"
            name = fields.string(item, "name", where)
            if not name:
                raise RenderError(f"{where}.name is required")
            value = env.substitute(fields.string(item, "value", where))
            result[code if fields.boolean(item, "code", where) else plain][name] = value
    jpaths = [str(app_dir)]
    for index, lib in enumerate(fields.string_list(settings, "libs", _WHERE)):
        real = paths.resolve(
            root, root, lib, what=f"{_WHERE}.libs[{index}]", absolute_from_root=True, allow_root=True
        )
        jpaths.append(str(real))
    result["jpaths"] = jpaths
    return result


def evaluate(file: str, *, root: str, settings: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The manifests that the Jsonnet ``file`` evaluates to."""
    import _gojsonnet  # the extension is only needed where Jsonnet runs: in the workers

    problems: list[str] = []
    jpaths: list[str] = list(settings["jpaths"])

    def import_callback(directory: str, imported: str) -> tuple[str, bytes]:
        candidates = [directory, *reversed(jpaths)]
        for base in candidates:
            path = imported if os.path.isabs(imported) else os.path.join(base, imported)
            if not os.path.isfile(path):
                continue
            if not paths.is_inside(os.path.realpath(path), root, allow_root=False):
                problems.append(f"import {imported!r} resolves to outside the repository")
                return path, _failing_import(imported)
            with open(path, "rb") as handle:
                return path, handle.read()
        problems.append(
            f"couldn't open import {imported!r}: no match locally or in the Jsonnet library paths"
        )
        return os.path.join(directory, imported), _failing_import(imported)

    try:
        output = _gojsonnet.evaluate_file(
            file,
            ext_vars=settings["ext_vars"],
            ext_codes=settings["ext_codes"],
            tla_vars=settings["tla_vars"],
            tla_codes=settings["tla_codes"],
            import_callback=import_callback,
        )
    except RuntimeError as exc:
        if problems:
            raise RenderError(f"{where}: {problems[0]}") from None
        message = str(exc).replace(root.rstrip("/") + "/", "").strip()
        raise RenderError(f"{where}: failed to evaluate Jsonnet: {message}") from None
    if problems:  # e.g. an importstr of a forbidden file evaluates without error
        raise RenderError(f"{where}: {problems[0]}")
    try:
        value = orjson.loads(output)
    except orjson.JSONDecodeError as exc:  # pragma: no cover - gojsonnet always prints JSON
        raise RenderError(f"{where}: Jsonnet output is not JSON: {exc}") from None
    return manifests.from_value(value, where=where)


def _failing_import(imported: str) -> bytes:
    return ("error " + orjson.dumps(f"import {imported} is not allowed").decode()).encode()
