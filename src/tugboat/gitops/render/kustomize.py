"""Kustomize apps: ``kustomize build`` (or ``kubectl kustomize``) with the Application's overrides.

The overrides of ``spec.source.kustomize`` are applied the way Argo CD applies them - it runs
``kustomize edit`` in the application directory, so they *replace* or *merge into* the fields of the
app's own kustomization file rather than wrapping it in another layer (``namePrefix: a-`` on an app
whose kustomization says ``namePrefix: b-`` gives ``a-``, not ``a-b-``). We make the same edits to the
kustomization file of a private copy (``workspace.shadow``), in the same order: ``namePrefix``,
``nameSuffix``, ``images``, ``replicas``, ``commonLabels``, ``commonAnnotations``, ``namespace``,
``patches``, ``components``. Without overrides the checkout is built in place (Kustomize only reads).

A ``kustomize`` binary on ``PATH`` is preferred; otherwise ``kubectl kustomize`` (kubectl embeds
Kustomize). The tool gets Argo CD's build environment, runs under a timeout (``process``), and its output
is parsed in the worker pool.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import (
    buildenv,
    detect,
    fields,
    manifests,
    paths,
    pool,
    process,
    workspace,
)

_WHERE = "spec.source.kustomize"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


async def render(
    root: Path, app_dir: Path, settings: Any, *, env: buildenv.BuildEnv, timeout: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """The manifests ``kustomize build`` gives for ``app_dir`` with the overrides in ``settings``."""
    command = tool_command()
    settings = fields.mapping(settings, _WHERE)
    warnings: list[str] = []
    if fields.string(settings, "version", _WHERE):
        warnings.append(f"{_WHERE}.version is not supported: the default Kustomize was used")
    tool_env = {**os.environ, **env.variables()}
    if not has_overrides(settings):
        output = await process.run(
            [*command, str(app_dir)],
            cwd=str(root),
            env=tool_env,
            timeout=timeout,
            what="kustomize build",
            redact=[str(root)],
        )
    else:
        async with workspace.shadow(root, app_dir) as shadow:
            warnings.extend(
                edit_kustomization(shadow.app_dir, settings, env=env, root=root, real_app_dir=app_dir)
            )
            output = await process.run(
                [*command, str(shadow.app_dir)],
                cwd=str(shadow.root),
                env=tool_env,
                timeout=timeout,
                what="kustomize build",
                redact=[str(shadow.base), str(root)],
            )
    blob = await pool.run(
        manifests.parse_tool_output,
        output,
        "kustomize build output",
        timeout=timeout,
        what="parsing kustomize build output",
    )
    return manifests.unpack(blob), warnings


def tool_command() -> list[str]:
    """How to run ``kustomize build``: a ``kustomize`` binary, else ``kubectl kustomize``."""
    found = shutil.which("kustomize")
    if found:
        return [found, "build"]
    found = shutil.which("kubectl")
    if found:
        return [found, "kustomize"]
    raise RenderError("Kustomize is not available: install kustomize or kubectl")


def has_overrides(settings: Mapping[str, Any]) -> bool:
    """Whether ``settings`` asks for any change to the kustomization."""
    keys = (
        "namePrefix",
        "nameSuffix",
        "images",
        "replicas",
        "commonLabels",
        "commonAnnotations",
        "namespace",
        "patches",
        "components",
    )
    return any(fields.is_set(settings.get(key)) for key in keys)


def edit_kustomization(
    app_dir: Path, settings: Mapping[str, Any], *, env: buildenv.BuildEnv, root: Path, real_app_dir: Path
) -> list[str]:
    """Apply the overrides to the kustomization file in (the private copy) ``app_dir``; warnings.

    ``root`` and ``real_app_dir`` locate the checkout, against which paths named by the overrides
    (patch files, components) are checked.
    """
    name = next((name for name in detect.KUSTOMIZATION_FILES if (app_dir / name).is_file()), None)
    if name is None:
        raise RenderError("kustomize overrides need a kustomization file, and the app directory has none")
    path = app_dir / name
    shown = paths.display(real_app_dir / name, root)
    kustomization = manifests.load_document(manifests.decode(path.read_bytes(), where=shown), where=shown)
    if kustomization is None:
        kustomization = {}
    if not isinstance(kustomization, dict):
        raise RenderError(f"{shown}: the kustomization must be an object")
    warnings = apply_overrides(
        kustomization,
        settings,
        env=env,
        shown=shown,
        check_path=lambda value, what: _check_path(value, what=what, root=root, app_dir=real_app_dir),
    )
    path.unlink()  # never write through a link into the checkout
    path.write_text(yaml.safe_dump(kustomization, sort_keys=False), encoding="utf-8")
    return warnings


def _check_path(value: str, *, what: str, root: Path, app_dir: Path) -> Path:
    return paths.resolve(root, app_dir, value, what=what)


def apply_overrides(
    kustomization: dict[str, Any],
    settings: Mapping[str, Any],
    *,
    env: buildenv.BuildEnv,
    shown: str,
    check_path: Callable[[str, str], Path],
) -> list[str]:
    """Edit ``kustomization`` in place as Argo CD's ``kustomize edit`` calls would; warnings.

    ``check_path(value, what)`` returns the real path of a path named by an override, or raises.
    """
    warnings: list[str] = []
    for key in ("namePrefix", "nameSuffix"):
        value = fields.string(settings, key, _WHERE)
        if value:
            kustomization[key] = value
    images = [env.substitute(image) for image in fields.string_list(settings, "images", _WHERE)]
    if images:
        kustomization["images"] = _set_images(kustomization.get("images"), images, shown=shown)
    replicas = fields.object_list(settings, "replicas", _WHERE)
    if replicas:
        kustomization["replicas"] = _set_replicas(kustomization.get("replicas"), replicas, shown=shown)
    labels = {
        key: env.substitute(value)
        for key, value in fields.string_map(settings, "commonLabels", _WHERE).items()
    }
    if labels:
        _add_labels(kustomization, labels, settings, shown=shown)
    annotations = fields.string_map(settings, "commonAnnotations", _WHERE)
    if annotations:
        if fields.boolean(settings, "commonAnnotationsEnvsubst", _WHERE):
            annotations = {key: env.substitute(value) for key, value in annotations.items()}
        force = fields.boolean(settings, "forceCommonAnnotations", _WHERE)
        target = _string_map(kustomization, "commonAnnotations", shown=shown)
        _write_pairs(
            target, annotations, force=force, what="annotation", flag="forceCommonAnnotations", shown=shown
        )
    namespace = fields.string(settings, "namespace", _WHERE)
    if namespace:
        if len(namespace) > 63 or not _NAMESPACE.match(namespace):
            raise RenderError(f"{_WHERE}.namespace {namespace!r} is not a valid namespace name")
        kustomization["namespace"] = namespace
    patches = fields.object_list(settings, "patches", _WHERE)
    if patches:
        existing = kustomization.get("patches")
        if existing is not None and not isinstance(existing, list):
            raise RenderError(f"{shown}: 'patches' must be a list")
        added = []
        for index, patch in enumerate(patches):
            patch_path = fields.string(patch, "path", f"{_WHERE}.patches[{index}]")
            if patch_path:
                check_path(patch_path, f"{_WHERE}.patches[{index}].path")
            added.append({key: value for key, value in patch.items() if value is not None})
        kustomization["patches"] = [*(existing or []), *added]
    components = fields.string_list(settings, "components", _WHERE)
    if components:
        ignore_missing = fields.boolean(settings, "ignoreMissingComponents", _WHERE)
        existing = kustomization.get("components")
        if existing is not None and not isinstance(existing, list):
            raise RenderError(f"{shown}: 'components' must be a list")
        result = list(existing or [])
        for index, component in enumerate(components):
            real = check_path(component, f"{_WHERE}.components[{index}]")
            if not real.exists():
                if ignore_missing:
                    warnings.append(f"skipped component {component!r}: it does not exist")
                    continue
                raise RenderError(f"{_WHERE}.components[{index}] {component!r} does not exist")
            if component not in result:
                result.append(component)
        kustomization["components"] = result
    return warnings


def parse_image(arg: str) -> dict[str, str]:
    """A ``kustomize edit set image`` argument (``name=new:tag``, ``name:tag``, ``name@digest``, …)."""
    key, separator, value = arg.partition("=")
    if not separator:
        key, value = "", arg
    name, tag, digest = _split_image(value)
    if name == arg:
        raise RenderError(
            f"{_WHERE}.images: invalid image {arg!r}: "
            "use NAME=NEWNAME[:TAG][@DIGEST], NAME:TAG or NAME@DIGEST"
        )
    image = {"name": key or name}
    if key:
        image["newName"] = name
    if tag:
        image["newTag"] = tag
    if digest:
        image["digest"] = digest
    return image


def _split_image(reference: str) -> tuple[str, str, str]:
    """``[host[:port]/]path[:tag][@digest]`` as (name, tag, digest); a port is not a tag."""
    slash = reference.find("/")
    offset = slash if slash > 0 else 0
    search = reference[offset:]
    at, colon = search.find("@"), search.find(":")
    if at < 0 and colon < 0:
        return reference, "", ""
    if at >= 0 and (colon < 0 or at < colon):
        return reference[: offset + at], "", reference[offset + at + 1 :]
    if at >= 0:
        return (
            reference[: offset + colon],
            reference[offset + colon + 1 : offset + at],
            reference[offset + at + 1 :],
        )
    return reference[: offset + colon], reference[offset + colon + 1 :], ""


def _set_images(existing: Any, args: list[str], *, shown: str) -> list[dict[str, Any]]:
    wanted: dict[str, dict[str, str]] = {}
    for arg in args:
        image = parse_image(arg)
        wanted[image["name"]] = image
    if existing is not None and not isinstance(existing, list):
        raise RenderError(f"{shown}: 'images' must be a list")
    merged: dict[str, dict[str, Any]] = {}
    for entry in existing or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise RenderError(f"{shown}: every entry of 'images' needs a name")
        new = wanted.pop(entry["name"], None)
        if new is None:
            merged[entry["name"]] = entry
            continue
        for field in ("newName", "newTag", "digest"):  # '*' keeps what the kustomization had
            if new.get(field) == "*":
                new[field] = entry.get(field) or ""
        merged[entry["name"]] = new
    merged.update(wanted)
    result = []
    for name in sorted(merged):
        image = {key: value for key, value in merged[name].items() if value not in ("", "*", None)}
        result.append(image)
    return result


def _set_replicas(existing: Any, replicas: list[Mapping[str, Any]], *, shown: str) -> list[dict[str, Any]]:
    wanted: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(replicas):
        where = f"{_WHERE}.replicas[{index}]"
        name = fields.string(item, "name", where)
        if not name or "=" in name:
            raise RenderError(f"{where}.name must be a resource name")
        count = item.get("count")
        if isinstance(count, str) and re.fullmatch(r"[+-]?\d+", count.strip()):
            count = int(count)
        if not isinstance(count, int) or isinstance(count, bool):
            raise RenderError(f"{where}.count must be an integer")
        wanted[name] = {"name": name, "count": count}
    if existing is not None and not isinstance(existing, list):
        raise RenderError(f"{shown}: 'replicas' must be a list")
    merged: dict[str, Any] = {}
    for entry in existing or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise RenderError(f"{shown}: every entry of 'replicas' needs a name")
        merged[entry["name"]] = entry
    merged.update(wanted)
    return [merged[name] for name in sorted(merged)]


def _add_labels(
    kustomization: dict[str, Any], labels: dict[str, str], settings: Mapping[str, Any], *, shown: str
) -> None:
    force = fields.boolean(settings, "forceCommonLabels", _WHERE)
    without_selector = fields.boolean(settings, "labelWithoutSelector", _WHERE)
    include_templates = fields.boolean(settings, "labelIncludeTemplates", _WHERE)
    if include_templates and not without_selector:
        raise RenderError(f"{_WHERE}.labelIncludeTemplates needs labelWithoutSelector")
    if not without_selector:
        target = _string_map(kustomization, "commonLabels", shown=shown)
        _write_pairs(target, labels, force=force, what="label", flag="forceCommonLabels", shown=shown)
        return
    entries = kustomization.setdefault("labels", [])
    if not isinstance(entries, list):
        raise RenderError(f"{shown}: 'labels' must be a list")
    for entry in entries:
        if (
            isinstance(entry, dict)
            and not entry.get("includeSelectors", False)
            and bool(entry.get("includeTemplates", False)) == include_templates
        ):
            pairs = entry.setdefault("pairs", {})
            break
    else:
        pairs = {}
        entry = {"pairs": pairs}
        if include_templates:
            entry["includeTemplates"] = True
        entries.append(entry)
    if not isinstance(pairs, dict):
        raise RenderError(f"{shown}: 'labels[].pairs' must be an object")
    _write_pairs(pairs, labels, force=force, what="label", flag="forceCommonLabels", shown=shown)


def _string_map(kustomization: dict[str, Any], key: str, *, shown: str) -> dict[str, Any]:
    value = kustomization.get(key)
    if value is None:
        value = kustomization[key] = {}
    if not isinstance(value, dict):
        raise RenderError(f"{shown}: '{key}' must be an object")
    return value


def _write_pairs(
    target: dict[str, Any], pairs: dict[str, str], *, force: bool, what: str, flag: str, shown: str
) -> None:
    for key in sorted(pairs):
        if key in target and not force:
            raise RenderError(f"{what} {key!r} is already set in {shown}: set {_WHERE}.{flag} to override it")
        target[key] = pairs[key]
