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
optional ``helm-python-sdk`` package (Helm's Go SDK as a shared library, in the ``tugboat[helm]`` extra)
renders in the worker pool, which gives it the same timeout as every other render step. That path does
what ``helm template`` does around Helm's engine itself: value files are read with Helm's own YAML
reader and merged as Helm merges them, then the ``--set``/``--set-string``/``--set-file`` expressions
are parsed by Helm's ``strvals`` and applied in Helm's order; the chart is checked for missing
dependencies; CRDs come first; partials, ``NOTES.txt`` and (with ``skipTests``) test hooks are dropped.
Known differences from the binary: remote (URL) value files are refused, a chart's ``kubeVersion``
constraint is not checked, a ``--set`` list index replaces a list taken from a value file instead of
patching it, and ``skipSchemaValidation`` does not reach the schemas of subcharts packed as ``.tgz``.
Without either, the render fails with a clear message - only for Helm apps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import buildenv, fields, manifests, paths, pool, process, workspace

if TYPE_CHECKING:
    import helm_python

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
        blob = await _render_with_sdk(root, app_dir, options, timeout=timeout)
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


async def _render_with_sdk(root: Path, app_dir: Path, options: TemplateOptions, *, timeout: float) -> bytes:
    """Template with ``helm-python-sdk`` in the worker pool; missing dependencies are built in a copy."""
    for path in options.value_files:
        if urlsplit(path).scheme:
            raise RenderError(f"remote value file {path!r} needs a helm binary")
    arguments = dataclasses.asdict(options)
    what = "helm template"
    try:
        return await pool.run(
            render_with_sdk_in_worker, str(app_dir), arguments, [str(root)], False, timeout=timeout, what=what
        )
    except RenderError as exc:
        if not any(marker in str(exc) for marker in _MISSING_DEPENDENCY):
            raise
    async with workspace.shadow(root, app_dir) as shadow:
        redact = [str(shadow.base), str(root)]
        return await pool.run(
            render_with_sdk_in_worker,
            str(shadow.app_dir),
            arguments,
            redact,
            True,
            timeout=timeout,
            what=what,
        )


def render_with_sdk_in_worker(
    app_dir: str, options: dict[str, Any], redact: list[str], build_dependencies: bool
) -> bytes:
    """``helm template`` of the chart in ``app_dir`` with ``helm-python-sdk`` (in a worker process).

    ``options`` is a ``TemplateOptions`` as a dict; the paths in ``redact`` are shown as ``.`` in errors;
    ``build_dependencies`` runs ``helm dependency build`` first (in a private copy). Returns the
    manifests packed by ``manifests.dump``.
    """
    try:
        import helm_python
    except Exception as exc:  # the native library may not load on this platform
        raise RenderError(f"helm-python-sdk cannot be loaded: {exc}") from None
    if build_dependencies:
        try:
            helm_python.dependency_build(app_dir)
        except helm_python.HelmError as exc:
            raise RenderError(
                f"helm dependency build failed: {_redacted(str(exc), redact).strip()}"
            ) from None
    try:
        values = _sdk_values(options, redact=redact)
        with (
            _chart_dir(app_dir, skip_schemas=options["skip_schema_validation"]) as chart_dir,
            helm_python.Chart.load(chart_dir) as chart,
        ):
            _check_dependencies(chart)
            rendered = _sdk_render(chart, values, options)
            # Read after rendering: rendering drops the subcharts whose condition or tags are off.
            crds = [] if options["skip_crds"] else chart.crds
    except helm_python.HelmError as exc:
        raise RenderError(f"helm template failed: {_redacted(str(exc), redact).strip()}") from None
    found: list[dict[str, Any]] = []
    for crd in crds:
        found.extend(manifests.load_yaml(crd["data"], where=f"helm template {crd['filename']}")[0])
    for name in sorted(rendered):
        base = os.path.basename(name)
        if base.startswith("_") or base.endswith("NOTES.txt"):
            continue
        for manifest in manifests.load_yaml(rendered[name], where=f"helm template {name}")[0]:
            if not (options["skip_tests"] and _is_test_hook(manifest)):
                found.append(manifest)
    return manifests.dump(found)


def _sdk_values(options: Mapping[str, Any], *, redact: list[str]) -> dict[str, Any]:
    """The user-supplied values as ``helm template`` composes them from files and ``--set*`` flags."""
    import helm_python

    values: dict[str, Any] = {}
    documents = [(path, _read_text(path)) for path in options["value_files"]]
    if options["values_yaml"]:
        documents.append((f"{_WHERE}.values", options["values_yaml"]))
    for source, text in documents:
        try:
            loaded = helm_python.values_from_yaml(text)
        except helm_python.HelmError as exc:
            raise RenderError(
                f"helm template failed: failed to parse {_redacted(source, redact)}: {exc}"
            ) from None
        _merge_values(values, loaded)
    for name, value in options["set_values"].items():
        _merge_values(values, helm_python.parse_set_string(f"{name}={escape_set_value(value)}"))
    for name, value in options["set_strings"].items():
        _merge_values(values, helm_python.parse_set_string_values(f"{name}={escape_set_value(value)}"))
    for name, path in options["set_files"].items():
        _merge_values(values, helm_python.parse_set_file(f"{name}={escape_set_value(path)}"))
    return values


def _read_text(path: str) -> str:
    shown = os.path.basename(path)
    try:
        with open(path, "rb") as handle:
            return manifests.decode(handle.read(), where=shown)
    except OSError as exc:
        raise RenderError(f"value file {shown!r} cannot be read: {exc.strerror}") from None


def _merge_values(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    """Merge ``overlay`` into ``base`` as Helm merges values: maps deeply, anything else replaced."""
    for key, value in overlay.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge_values(current, value)
        else:
            base[key] = value


@contextlib.contextmanager
def _chart_dir(app_dir: str, *, skip_schemas: bool) -> Iterator[str]:
    """``app_dir``, or with ``skip_schemas`` a private copy without ``values.schema.json`` files.

    Helm's engine always checks values against the schemas, so skipping that means hiding them.
    """
    if not skip_schemas:
        yield app_dir
        return
    with tempfile.TemporaryDirectory(prefix="tugboat-helm-") as scratch:
        copy = os.path.join(scratch, os.path.basename(app_dir) or "chart")
        shutil.copytree(app_dir, copy, ignore=shutil.ignore_patterns("values.schema.json", ".git"))
        yield copy


def _check_dependencies(chart: helm_python.Chart) -> None:
    """Fail as ``helm template`` does when ``Chart.yaml`` lists a dependency that is not in ``charts/``."""
    present = {dependency.get("name") for dependency in chart.dependencies}
    declared = chart.metadata.get("dependencies") or []
    missing = [str(entry.get("name")) for entry in declared if entry.get("name") not in present]
    if missing:
        names = ", ".join(missing)
        raise RenderError(
            f"helm template failed: found in Chart.yaml, but missing in charts/ directory: {names}"
        )


def _sdk_render(
    chart: helm_python.Chart, values: dict[str, Any], options: Mapping[str, Any]
) -> dict[str, str]:
    """Template path -> rendered text, for an install with the release and cluster of ``options``.

    ``Chart.render`` does not pass on the Kubernetes version and API versions, which the library's
    ``helm_render`` accepts (``kube_version``, ``api_versions``: Helm's ``--kube-version`` and
    ``--api-versions``), so this calls it directly; pyproject.toml pins the versions that have them.
    """
    render_options: dict[str, Any] = {"name": options["release_name"], "is_install": True}
    if options["namespace"]:
        render_options["namespace"] = options["namespace"]
    if options["kube_version"]:
        render_options["kube_version"] = options["kube_version"]
    if options["api_versions"]:
        render_options["api_versions"] = list(options["api_versions"])
    from helm_python import _native

    text = _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(render_options))
    rendered: dict[str, str] = json.loads(text)
    return rendered


def _is_test_hook(manifest: Mapping[str, Any]) -> bool:
    """Whether ``manifest`` is a Helm test hook (what ``helm template --skip-tests`` leaves out)."""
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    hooks = str(annotations.get("helm.sh/hook", ""))
    return any(hook.strip() in ("test", "test-success") for hook in hooks.split(","))


def _redacted(text: str, paths: list[str]) -> str:
    for path in sorted(paths, key=len, reverse=True):
        if path:
            text = text.replace(path, ".")
    return text
