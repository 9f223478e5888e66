"""Helm apps: ``helm template`` with the Application's values and parameters, as Argo CD runs it.

Argo CD only ever *templates* charts (it never installs them), so hooks come out as annotated manifests
and the sync engine maps them to its own phases. The options follow Argo CD's repo-server: the release
name defaults to the Application's name, the namespace to the destination namespace; ``valueFiles``
are resolved in the repository (a leading ``/`` means the repository root, ``http(s)`` URLs are passed
through, globs expand in lexical order, missing files are skipped with ``ignoreMissingValueFiles``);
``valuesObject`` (else ``values``) goes into a temporary values file, applied last; ``parameters`` become
``--set`` or, with ``forceString``, ``--set-string`` (commas escaped as Argo CD does); ``fileParameters``
become ``--set-file``; CRDs are included unless ``skipCrds``. Values and parameters may use the build
variables (``$ARGOCD_APP_NAME``…).

A ``helm`` binary on ``PATH`` is used when present; a chart whose dependencies are missing gets
``helm dependency build`` in a private copy (``workspace``), never in the checkout. Without a binary the
optional ``helm-python-sdk`` package (the ``tugboat[helm]`` extra) renders in the worker pool. Without
either, the render fails with a clear message - only for Helm apps.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import buildenv, fields, manifests, paths, pool, process, workspace

UNAVAILABLE = "Helm is not available: install a helm binary or the tugboat[helm] extra"
_WHERE = "spec.source.helm"
_URL_SCHEMES = ("http", "https")
_MISSING_DEPENDENCY = (
    "found in requirements.yaml, but missing in charts",
    "found in Chart.yaml, but missing in charts/ directory",
)


@dataclasses.dataclass(kw_only=True)
class TemplateOptions:
    """Everything ``helm template`` is told, resolved and checked."""

    release_name: str
    namespace: str
    kube_version: str
    api_versions: list[str]
    value_files: list[str] = dataclasses.field(default_factory=list)
    values_yaml: str = ""
    set_values: dict[str, str] = dataclasses.field(default_factory=dict)
    set_strings: dict[str, str] = dataclasses.field(default_factory=dict)
    set_files: dict[str, str] = dataclasses.field(default_factory=dict)
    skip_crds: bool = False
    skip_schema_validation: bool = False
    skip_tests: bool = False
    warnings: list[str] = dataclasses.field(default_factory=list)

    def arguments(self, values_file: str | None) -> list[str]:
        """The ``helm template .`` arguments after the chart, in Argo CD's order."""
        args = ["--name-template", self.release_name]
        if self.namespace:
            args += ["--namespace", self.namespace]
        if self.kube_version:
            args += ["--kube-version", self.kube_version]
        for name, value in self.set_values.items():
            args += ["--set", f"{name}={escape_set_value(value)}"]
        for name, value in self.set_strings.items():
            args += ["--set-string", f"{name}={escape_set_value(value)}"]
        for name, value in self.set_files.items():
            args += ["--set-file", f"{name}={escape_set_value(value)}"]
        for path in self.value_files:
            args += ["--values", path]
        if values_file:
            args += ["--values", values_file]
        for version in self.api_versions:
            args += ["--api-versions", version]
        if not self.skip_crds:
            args.append("--include-crds")
        if self.skip_schema_validation:
            args.append("--skip-schema-validation")
        if self.skip_tests:
            args.append("--skip-tests")
        return args


async def render(
    root: Path,
    app_dir: Path,
    settings: Any,
    *,
    env: buildenv.BuildEnv,
    timeout: float,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The manifests of the chart in ``app_dir`` templated with ``settings``."""
    binary = shutil.which("helm")
    if binary is None and not sdk_available():
        raise RenderError(UNAVAILABLE)
    options = template_options(root, app_dir, settings, env=env)
    if binary is not None:
        blob = await _render_with_binary(binary, root, app_dir, options, env=env, timeout=timeout)
    else:
        blob = await pool.run(
            render_with_sdk_in_worker,
            str(app_dir),
            dataclasses.asdict(options),
            timeout=timeout,
            what="rendering the Helm chart",
        )
    return manifests.unpack(blob), list(options.warnings)


def sdk_available() -> bool:
    """Whether the optional ``helm-python-sdk`` package is installed."""
    return importlib.util.find_spec("helm_python") is not None


def escape_set_value(value: str) -> str:
    """Escape unescaped commas (helm splits ``--set`` on them) unless the value is a ``{a,b}`` list."""
    if value.startswith("{") and value.endswith("}"):
        return value
    out: list[str] = []
    previous = ""
    for char in value:
        out.append("\\," if char == "," and previous != "\\" else char)
        previous = char
    return "".join(out)


def template_options(
    root: Path, app_dir: Path, settings: Mapping[str, Any], *, env: buildenv.BuildEnv
) -> TemplateOptions:
    """``spec.source.helm`` resolved against the repository, checked and substituted."""
    settings = fields.mapping(settings, _WHERE)
    kube_version = fields.string(settings, "kubeVersion", _WHERE)
    options = TemplateOptions(
        release_name=fields.string(settings, "releaseName", _WHERE) or env.app_name,
        namespace=fields.string(settings, "namespace", _WHERE) or env.app_namespace,
        kube_version=buildenv.normalize_kube_version(kube_version) if kube_version else env.kube_version,
        api_versions=fields.string_list(settings, "apiVersions", _WHERE) or list(env.api_versions),
        skip_crds=fields.boolean(settings, "skipCrds", _WHERE),
        skip_schema_validation=fields.boolean(settings, "skipSchemaValidation", _WHERE),
        skip_tests=fields.boolean(settings, "skipTests", _WHERE),
    )
    options.value_files = _value_files(
        root,
        app_dir,
        fields.string_list(settings, "valueFiles", _WHERE),
        env=env,
        ignore_missing=fields.boolean(settings, "ignoreMissingValueFiles", _WHERE),
        warnings=options.warnings,
    )
    values_object = settings.get("valuesObject")
    if values_object is not None:
        options.values_yaml = yaml.safe_dump(dict(fields.mapping(values_object, f"{_WHERE}.valuesObject")))
    else:
        options.values_yaml = fields.string(settings, "values", _WHERE)
    for index, parameter in enumerate(fields.object_list(settings, "parameters", _WHERE)):
        where = f"{_WHERE}.parameters[{index}]"
        name = fields.string(parameter, "name", where)
        if not name:
            raise RenderError(f"{where}.name is required")
        value = env.substitute(fields.string(parameter, "value", where))
        target = (
            options.set_strings if fields.boolean(parameter, "forceString", where) else options.set_values
        )
        options.set_strings.pop(name, None)
        options.set_values.pop(name, None)
        target[name] = value
    for index, parameter in enumerate(fields.object_list(settings, "fileParameters", _WHERE)):
        where = f"{_WHERE}.fileParameters[{index}]"
        name = fields.string(parameter, "name", where)
        if not name:
            raise RenderError(f"{where}.name is required")
        raw = env.substitute(fields.string(parameter, "path", where))
        real = paths.resolve(root, app_dir, raw, what=f"{where}.path", absolute_from_root=True)
        if not real.is_file():
            raise RenderError(f"{where}.path {raw!r} does not exist")
        options.set_files[name] = str(real)
    return options


def _value_files(
    root: Path,
    app_dir: Path,
    raw_files: list[str],
    *,
    env: buildenv.BuildEnv,
    ignore_missing: bool,
    warnings: list[str],
) -> list[str]:
    """Argo CD's value-file resolution: in the repository, URLs passed through, globs expanded."""
    resolved: list[tuple[str, str, bool]] = []  # (raw, resolved, is a glob)
    for index, raw in enumerate(raw_files):
        what = f"{_WHERE}.valueFiles[{index}]"
        reference = raw.split("/", 1)[0][1:].strip("{}") if raw.startswith("$") else ""
        if reference and reference not in env.argocd_vars():
            raise RenderError(
                f"{what} {raw!r} refers to another source, which needs multiple sources (not supported yet)"
            )
        value = env.substitute(raw)
        scheme = urlsplit(value).scheme
        if scheme:
            if scheme.lower() not in _URL_SCHEMES:
                raise RenderError(f"{what}: the URL scheme {scheme!r} is not allowed")
            resolved.append((raw, value, False))
            continue
        real = paths.resolve(root, app_dir, value, what=what, absolute_from_root=True)
        resolved.append((raw, str(real), any(char in value for char in "*?[")))
    explicit = {path for _, path, is_glob in resolved if not is_glob}
    result: list[str] = []
    for raw, path, is_glob in resolved:
        if urlsplit(path).scheme:
            candidates = [path]
        elif is_glob:
            matches = sorted(glob.glob(path, recursive=True))
            if not matches:
                if ignore_missing:
                    warnings.append(f"value file glob {raw!r} matched no files")
                    continue
                raise RenderError(f"value file glob {raw!r} matched no files")
            candidates = []
            for match in matches:
                matched = os.path.realpath(match)
                if not paths.is_inside(matched, root, allow_root=False):
                    raise RenderError(f"value file glob {raw!r} matches a file outside the repository")
                if match not in explicit and os.path.isfile(matched):
                    candidates.append(match)
        elif not os.path.isfile(path):
            if ignore_missing:
                warnings.append(f"value file {raw!r} does not exist")
                continue
            raise RenderError(f"value file {raw!r} does not exist (set ignoreMissingValueFiles to skip it)")
        else:
            candidates = [path]
        for candidate in candidates:
            if candidate not in result:
                result.append(candidate)
    return result


async def _render_with_binary(
    binary: str,
    root: Path,
    app_dir: Path,
    options: TemplateOptions,
    *,
    env: buildenv.BuildEnv,
    timeout: float,
) -> bytes:
    tool_env = {**os.environ, **env.variables()}
    async with workspace.scratch() as scratch:
        values_file = None
        if options.values_yaml:
            values_path = scratch / "values.yaml"
            fd = os.open(values_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(options.values_yaml)
            values_file = str(values_path)
        argv = [binary, "template", ".", *options.arguments(values_file)]
        redact = [str(scratch), str(root)]
        try:
            output = await process.run(
                argv, cwd=str(app_dir), env=tool_env, timeout=timeout, what="helm template", redact=redact
            )
        except RenderError as exc:
            if not any(marker in str(exc) for marker in _MISSING_DEPENDENCY):
                raise
            async with workspace.shadow(root, app_dir) as shadow:
                redact = [*redact, str(shadow.base)]
                await process.run(
                    [binary, "dependency", "build"],
                    cwd=str(shadow.app_dir),
                    env=tool_env,
                    timeout=timeout,
                    what="helm dependency build",
                    redact=redact,
                )
                output = await process.run(
                    argv,
                    cwd=str(shadow.app_dir),
                    env=tool_env,
                    timeout=timeout,
                    what="helm template",
                    redact=redact,
                )
    return await pool.run(
        manifests.parse_tool_output,
        output,
        "helm template output",
        timeout=timeout,
        what="parsing helm template output",
    )


def render_with_sdk_in_worker(app_dir: str, options: dict[str, Any]) -> bytes:
    """Template the chart with ``helm-python-sdk`` (in a worker process); packed manifests."""
    import helm_python

    try:
        values: dict[str, Any] = {}
        for path in options["value_files"]:
            if urlsplit(path).scheme:
                raise RenderError("remote value files need a helm binary")
            with open(path, "rb") as handle:
                shown = os.path.basename(path)
                loaded = manifests.load_document(manifests.decode(handle.read(), where=shown), where=shown)
            _merge_values(values, loaded or {}, source=path)
        if options["values_yaml"]:
            loaded = manifests.load_document(options["values_yaml"], where=f"{_WHERE}.values")
            _merge_values(values, loaded or {}, source=f"{_WHERE}.values")
        for name, value in options["set_values"].items():
            _merge_values(
                values, helm_python.parse_set_string(f"{name}={escape_set_value(value)}"), source=name
            )
        for name, value in options["set_strings"].items():
            _merge_values(
                values, helm_python.parse_set_string_values(f"{name}={escape_set_value(value)}"), source=name
            )
        for name, path in options["set_files"].items():
            _merge_values(values, helm_python.parse_set_file(f"{name}={path}"), source=name)
        with helm_python.Chart.load(app_dir) as chart:
            if not options["skip_schema_validation"]:
                chart.validate_schema(values)
            rendered = chart.render(
                values, name=options["release_name"], namespace=options["namespace"] or None, is_install=True
            )
            crds = [] if options["skip_crds"] else list(chart.crds)
    except helm_python.HelmError as exc:
        raise RenderError(f"helm template failed: {exc}") from None
    found: list[dict[str, Any]] = []
    for crd in crds:
        found.extend(
            manifests.load_yaml(crd.get("data", ""), where=f"helm template {crd.get('name', 'crd')}")[0]
        )
    for name in sorted(rendered):
        base = os.path.basename(name)
        if base.startswith("_") or base == "NOTES.txt" or (options["skip_tests"] and "/tests/" in name):
            continue
        found.extend(manifests.load_yaml(rendered[name], where=f"helm template {name}")[0])
    return manifests.dump(found)


def _merge_values(base: dict[str, Any], overlay: Any, *, source: str) -> None:
    """Merge ``overlay`` into ``base`` as helm merges ``--values`` files: maps deeply, the rest replaced."""
    if not isinstance(overlay, dict):
        raise RenderError(f"values from {os.path.basename(source)} must be an object")
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_values(base[key], value, source=source)
        else:
            base[key] = value
