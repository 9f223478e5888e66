"""Helm apps: ``helm template`` as Argo CD runs it, through ``helm-python-sdk`` and through a ``helm`` binary.

The SDK tests render real charts (the upstream examples and small charts written here) with the SDK path
forced (no ``helm`` on ``PATH``); the binary tests use a stand-in ``helm`` that records its arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

import examples_support
from tugboat.gitops import render
from tugboat.gitops.render import helm

EXAMPLES = examples_support.example_dir("argocd-example-apps")
needs_examples = pytest.mark.skipif(not EXAMPLES, reason="no argocd-example-apps in TUGBOAT_EXAMPLES")
needs_sdk = pytest.mark.skipif(not helm.sdk_available(), reason="helm-python-sdk is not installed")
EXAMPLE_APPS = [
    "blue-green", "guestbook", "helm-dependency", "helm-guestbook", "helm-hooks", "jsonnet-guestbook",
    "jsonnet-guestbook-tla", "kustomize-guestbook", "plugin-kasane", "plugin-kustomized-helm", "plugin-nix",
    "pre-post-sync", "sock-shop", "sync-waves",
]  # fmt: skip

# A stand-in for `helm`: records its arguments, working directory and values files, fails like helm on a
# chart with missing dependencies, and prints a hook Job and a ConfigMap.
FAKE_HELM = """#!/bin/sh
record="$FAKE_HELM_RECORD"
mkdir -p "$record"
if [ "$1" = "dependency" ]; then
  pwd > "$record/dependency-cwd"
  mkdir -p charts && touch charts/dep-1.0.0.tgz
  exit 0
fi
printf '%s\\n' "$@" > "$record/args"
pwd > "$record/cwd"
if grep -q '^dependencies:' Chart.yaml && [ ! -d charts ]; then
  echo "Error: found in Chart.yaml, but missing in charts/ directory: dep" >&2
  exit 1
fi
n=0
previous=""
for arg in "$@"; do
  if [ "$previous" = "--values" ]; then n=$((n+1)); cp "$arg" "$record/values-$n"; fi
  previous="$arg"
done
cat <<END
---
# Source: chart/templates/hook.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    helm.sh/hook: pre-install
    helm.sh/hook-weight: "-1"
---
# Source: chart/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: release-$ARGOCD_APP_NAME
END
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def fingerprint(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


async def render_app(
    root: Path, source: dict[str, Any], *, app_name: str = "guestbook", timeout: float = 60
) -> render.RenderResult:
    return await render.render(
        root,
        source,
        app_name=app_name,
        app_namespace="prod",
        revision="0123456789abcdef",
        repo_url="file:///repo",
        kube_version="v1.31.2",
        api_versions=["apps/v1", "batch/v1"],
        timeout=timeout,
    )


def by_kind(result: render.RenderResult) -> dict[str, dict[str, Any]]:
    return {manifest["kind"]: manifest for manifest in result.manifests}


@pytest.fixture
def no_helm_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``PATH`` without ``helm``, so the SDK path is taken even where a binary is installed."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def without_helm(no_helm_binary: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with neither a ``helm`` binary nor ``helm-python-sdk``."""
    monkeypatch.setattr(helm, "sdk_available", lambda: False)


@pytest.fixture
def fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "helm"
    script.write_text(FAKE_HELM)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "record"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HELM_RECORD", str(record))
    return record


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return write(
        tmp_path / "repo",
        {
            "chart/Chart.yaml": "apiVersion: v2\nname: chart\nversion: 0.1.0\n",
            "chart/values.yaml": "replicas: 1\n",
            "chart/values-prod.yaml": "replicas: 3\n",
            "chart/env/a.yaml": "a: 1\n",
            "chart/env/b.yaml": "b: 1\n",
            "shared/common.yaml": "common: true\n",
            "chart/templates/cm.yaml": "kind: ConfigMap\n",
            "chart/files/config.txt": "x=1\n",
        },
    )


@pytest.fixture
def sdk_chart(tmp_path: Path) -> Path:
    hooks = (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n"
        "  annotations: {helm.sh/hook: pre-install}\n"
        "---\n"
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: smoke\n  annotations: {helm.sh/hook: test}\n"
    )
    return write(
        tmp_path / "repo",
        {
            "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
            "chart/values.yaml": "greeting: hello\ndefaults: {keep: 1, drop: 2}\n",
            "chart/crds/widget.yaml": (
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                "metadata: {name: widgets.example.com}\n"
            ),
            "chart/templates/_helpers.tpl": '{{- define "demo.name" -}}{{ .Release.Name }}-demo{{- end -}}\n',
            "chart/templates/NOTES.txt": "Installed {{ .Release.Name }}\n",
            "chart/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                '  name: {{ include "demo.name" . }}\n  namespace: {{ .Release.Namespace }}\n'
                "data:\n"
                "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
                '  widgets: {{ .Capabilities.APIVersions.Has "example.com/v1" | quote }}\n'
                "  install: {{ .Release.IsInstall | quote }}\n"
                "  values: {{ toJson .Values | quote }}\n"
            ),
            "chart/templates/hooks.yaml": hooks,
            "chart/files/motd.txt": "welcome\n",
            "chart/env/prod.yaml": "greeting: hi\ndefaults: {drop: null}\nflags: {enabled: yes}\n",
        },
    )


def config_map_values(result: render.RenderResult) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(by_kind(result)["ConfigMap"]["data"]["values"])
    return values


@needs_examples
@needs_sdk
async def test_sdk_renders_helm_guestbook_with_default_values(no_helm_binary: None) -> None:
    result = await render_app(Path(EXAMPLES or ""), {"path": "helm-guestbook"})
    assert result.source_type == "Helm"
    assert sorted((m["kind"], m["metadata"]["name"]) for m in result.manifests) == [
        ("Deployment", "guestbook-helm-guestbook"),
        ("Service", "guestbook-helm-guestbook"),
    ]
    deployment, service = by_kind(result)["Deployment"], by_kind(result)["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == 80
    assert deployment["spec"]["replicas"] == 1
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "gcr.io/google-samples/gb-frontend:v5"
    )
    assert deployment["metadata"]["labels"] == {
        "app": "helm-guestbook",
        "chart": "helm-guestbook-0.1.0",
        "release": "guestbook",
        "heritage": "Helm",
    }


@needs_examples
@needs_sdk
async def test_sdk_helm_guestbook_production_values_give_a_load_balancer(no_helm_binary: None) -> None:
    source = {"path": "helm-guestbook", "helm": {"valueFiles": ["values-production.yaml"]}}
    result = await render_app(Path(EXAMPLES or ""), source, app_name="helm-guestbook")
    service = by_kind(result)["Service"]
    assert service["spec"]["type"] == "LoadBalancer"
    # The release name is the app name; the chart's helper drops the chart name it already contains.
    assert {m["metadata"]["name"] for m in result.manifests} == {"helm-guestbook"}


@needs_examples
@needs_sdk
async def test_sdk_helm_guestbook_parameters_win_over_values(no_helm_binary: None) -> None:
    source = {
        "path": "helm-guestbook",
        "helm": {
            "releaseName": "web",
            "valueFiles": ["values-production.yaml"],
            "valuesObject": {"service": {"type": "NodePort", "port": 8080}},
            "parameters": [
                {"name": "replicaCount", "value": "3"},
                {"name": "image.tag", "value": "$ARGOCD_APP_REVISION_SHORT", "forceString": True},
                {"name": "service.type", "value": "ClusterIP"},
            ],
        },
    }
    result = await render_app(Path(EXAMPLES or ""), source)
    deployment, service = by_kind(result)["Deployment"], by_kind(result)["Service"]
    assert deployment["metadata"]["name"] == "web-helm-guestbook"
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("gb-frontend:0123456")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == 8080


@needs_examples
@needs_sdk
async def test_sdk_renders_the_app_of_apps(no_helm_binary: None) -> None:
    result = await render_app(Path(EXAMPLES or ""), {"path": "apps"}, app_name="apps")
    assert {m["kind"] for m in result.manifests} == {"Application"}
    assert sorted(m["metadata"]["name"] for m in result.manifests) == [f"example.{n}" for n in EXAMPLE_APPS]
    apps = {m["metadata"]["name"]: m for m in result.manifests}
    assert {m["metadata"]["namespace"] for m in result.manifests} == {"argocd"}
    guestbook = apps["example.helm-guestbook"]["spec"]
    assert guestbook["source"]["helm"] == {"releaseName": "helm-guestbook"}
    assert guestbook["destination"] == {
        "namespace": "helm-guestbook",
        "server": "https://kubernetes.default.svc",
    }
    assert apps["example.plugin-nix"]["spec"]["source"]["path"] == "plugins/nix"
    assert apps["example.plugin-nix"]["spec"]["source"]["plugin"] == {"name": "nix"}


@needs_sdk
async def test_sdk_template_options_reach_helm(no_helm_binary: None, sdk_chart: Path) -> None:
    before = fingerprint(sdk_chart)
    source = {
        "path": "chart",
        "helm": {
            "valueFiles": ["env/prod.yaml"],
            "values": "extra: {from: values}\ncount: 1\n",
            "parameters": [
                {"name": "count", "value": "3"},
                {"name": "tag", "value": "010", "forceString": True},
                {"name": "list", "value": "{a,b}"},
            ],
            "fileParameters": [{"name": "motd", "path": "files/motd.txt"}],
            "apiVersions": ["example.com/v1"],
            "kubeVersion": "1.30",
            "skipTests": True,
        },
    }
    result = await render_app(sdk_chart, source)
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [
        ("CustomResourceDefinition", "widgets.example.com"),
        ("ConfigMap", "guestbook-demo"),
        ("Job", "migrate"),
    ]
    config_map = by_kind(result)["ConfigMap"]
    assert config_map["metadata"]["namespace"] == "prod"
    assert {k: v for k, v in config_map["data"].items() if k != "values"} == {
        "kube": "v1.30.0",
        "widgets": "true",
        "install": "true",
    }
    # Value files merge deeply, null removes a chart default, Helm's YAML reads `yes` as true, the
    # values string comes after the files and the --set flags after it.
    assert config_map_values(result) == {
        "greeting": "hi",
        "defaults": {"keep": 1},
        "flags": {"enabled": True},
        "extra": {"from": "values"},
        "count": 3,
        "tag": "010",
        "list": ["a", "b"],
        "motd": "welcome\n",
    }
    assert by_kind(result)["Job"]["metadata"]["annotations"] == {"helm.sh/hook": "pre-install"}
    assert fingerprint(sdk_chart) == before


@needs_sdk
async def test_sdk_defaults_skip_crds_and_test_hooks(no_helm_binary: None, sdk_chart: Path) -> None:
    result = await render_app(sdk_chart, {"path": "chart", "helm": {"skipCrds": True}})
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [
        ("ConfigMap", "guestbook-demo"),
        ("Job", "migrate"),
        ("Pod", "smoke"),
    ]
    data = by_kind(result)["ConfigMap"]["data"]
    assert (data["kube"], data["widgets"]) == ("v1.31.2", "false")


@needs_sdk
async def test_sdk_schema_validation_and_skipping_it(no_helm_binary: None, sdk_chart: Path) -> None:
    write(sdk_chart, {"chart/values.schema.json": '{"properties": {"count": {"type": "integer"}}}'})
    before = fingerprint(sdk_chart)
    parameters = [{"name": "count", "value": "3", "forceString": True}]
    with pytest.raises(
        render.RenderError, match=r"(?s)^helm template failed: .*'/count': got string, want integer$"
    ):
        await render_app(sdk_chart, {"path": "chart", "helm": {"parameters": parameters}})
    source = {"path": "chart", "helm": {"parameters": parameters, "skipSchemaValidation": True}}
    assert config_map_values(await render_app(sdk_chart, source))["count"] == "3"
    assert fingerprint(sdk_chart) == before


@needs_sdk
async def test_sdk_builds_missing_dependencies_in_a_private_copy(
    no_helm_binary: None, tmp_path: Path
) -> None:
    repo = write(
        tmp_path / "repo",
        {
            "lib/Chart.yaml": "apiVersion: v2\nname: lib\nversion: 0.1.0\n",
            "lib/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lib-{{ .Release.Name }}}\n"
            ),
            "app/Chart.yaml": (
                "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                "- {name: lib, version: 0.1.0, repository: 'file://../lib', condition: lib.enabled}\n"
            ),
            "app/values.yaml": "lib: {enabled: true}\n",
            "app/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
        },
    )
    before = fingerprint(repo)
    result = await render_app(repo, {"path": "app"})
    assert sorted(m["metadata"]["name"] for m in result.manifests) == ["app", "lib-guestbook"]
    disabled = {"path": "app", "helm": {"parameters": [{"name": "lib.enabled", "value": "false"}]}}
    assert [m["metadata"]["name"] for m in (await render_app(repo, disabled)).manifests] == ["app"]
    assert fingerprint(repo) == before


@needs_sdk
async def test_sdk_failures_are_render_errors(no_helm_binary: None, sdk_chart: Path) -> None:
    write(sdk_chart, {"chart/env/bad.yaml": "a: [\n", "broken/Chart.yaml": "apiVersion: v2\nname: broken\n"})
    with pytest.raises(render.RenderError, match=r"failed to parse \./chart/env/bad\.yaml: .*line 1"):
        await render_app(sdk_chart, {"path": "chart", "helm": {"valueFiles": ["env/bad.yaml"]}})
    with pytest.raises(render.RenderError, match="needs a helm binary"):
        await render_app(sdk_chart, {"path": "chart", "helm": {"valueFiles": ["https://example.com/v.yaml"]}})
    write(sdk_chart, {"chart/templates/fail.yaml": '{{ fail "no greeting" }}\n'})
    with pytest.raises(render.RenderError, match=r"^helm template failed: .*no greeting"):
        await render_app(sdk_chart, {"path": "chart"})
    with pytest.raises(render.RenderError, match=r"^helm template failed: .*version"):
        await render_app(sdk_chart, {"path": "broken"})


@needs_sdk
async def test_sdk_render_that_runs_too_long_times_out(no_helm_binary: None, sdk_chart: Path) -> None:
    await render_app(sdk_chart, {"path": "chart"})  # the workers are up and have loaded the library
    write(
        sdk_chart,
        {"chart/templates/slow.yaml": "{{ range until 20000 }}{{ range until 20000 }}{{ end }}{{ end }}"},
    )
    started = time.monotonic()
    with pytest.raises(render.RenderError, match=r"^helm template timed out after 1s"):
        await render_app(sdk_chart, {"path": "chart"}, timeout=1)
    assert time.monotonic() - started < 10
    (sdk_chart / "chart/templates/slow.yaml").unlink()
    assert len((await render_app(sdk_chart, {"path": "chart"})).manifests) == 4  # new workers


@needs_examples
@pytest.mark.parametrize("path", ["apps", "helm-guestbook"])
async def test_without_helm_the_examples_say_helm_is_missing(without_helm: None, path: str) -> None:
    with pytest.raises(render.RenderError) as caught:
        await render_app(Path(EXAMPLES or ""), {"path": path})
    assert str(caught.value) == "Helm is not available: install a helm binary or the tugboat[helm] extra"


async def test_without_helm_only_helm_apps_fail(without_helm: None, chart: Path) -> None:
    write(chart, {"plain/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"})
    with pytest.raises(render.RenderError, match=r"^Helm is not available"):
        await render_app(chart, {"path": "chart"})
    assert len((await render_app(chart, {"path": "plain"})).manifests) == 1


async def test_helm_template_gets_argo_cd_arguments(fake_helm: Path, chart: Path) -> None:
    before = fingerprint(chart)
    source = {
        "path": "chart",
        "helm": {
            "valueFiles": ["values-prod.yaml", "/shared/common.yaml", "env/*.yaml", "missing.yaml"],
            "ignoreMissingValueFiles": True,
            "valuesObject": {"image": {"tag": "v2"}},
            "values": "ignored: true\n",
            "parameters": [
                {"name": "list", "value": "a,b"},
                {"name": "braces", "value": "{a,b}"},
                {"name": "rev", "value": "$ARGOCD_APP_REVISION_SHORT", "forceString": True},
            ],
            "fileParameters": [{"name": "config", "path": "files/config.txt"}],
        },
    }
    result = await render_app(chart, source)
    assert result.source_type == "Helm"
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [
        ("Job", "migrate"),
        ("ConfigMap", "release-guestbook"),
    ]
    assert result.manifests[0]["metadata"]["annotations"]["helm.sh/hook"] == "pre-install"
    assert result.warnings == ["value file 'missing.yaml' does not exist"]
    args = (fake_helm / "args").read_text().splitlines()
    root = os.path.realpath(chart)
    values_temp = args[args.index(f"{root}/chart/env/b.yaml") + 2]
    assert args == [
        "template", ".",
        "--name-template", "guestbook",
        "--namespace", "prod",
        "--kube-version", "1.31.2",
        "--set", "list=a\\,b",
        "--set", "braces={a,b}",
        "--set-string", "rev=0123456",
        "--set-file", f"config={root}/chart/files/config.txt",
        "--values", f"{root}/chart/values-prod.yaml",
        "--values", f"{root}/shared/common.yaml",
        "--values", f"{root}/chart/env/a.yaml",
        "--values", f"{root}/chart/env/b.yaml",
        "--values", values_temp,
        "--api-versions", "apps/v1",
        "--api-versions", "batch/v1",
        "--include-crds",
    ]  # fmt: skip
    assert (fake_helm / "cwd").read_text().strip() == f"{root}/chart"
    assert (fake_helm / "values-5").read_text() == "image:\n  tag: v2\n"
    assert not os.path.exists(values_temp)
    assert fingerprint(chart) == before


async def test_release_name_namespace_and_skips(fake_helm: Path, chart: Path) -> None:
    source = {
        "path": "chart",
        "helm": {
            "releaseName": "custom",
            "namespace": "other",
            "kubeVersion": "1.30",
            "apiVersions": ["v1"],
            "skipCrds": True,
            "skipSchemaValidation": True,
            "values": "plain: yes\n",
        },
    }
    await render_app(chart, source)
    args = (fake_helm / "args").read_text().splitlines()
    assert args[:8] == [
        "template",
        ".",
        "--name-template",
        "custom",
        "--namespace",
        "other",
        "--kube-version",
        "1.30.0",
    ]
    assert "--include-crds" not in args
    assert "--skip-schema-validation" in args
    assert args[args.index("--api-versions") + 1] == "v1"
    assert args.count("--api-versions") == 1
    assert (fake_helm / "values-1").read_text() == "plain: yes\n"


async def test_missing_dependencies_are_built_in_a_private_copy(fake_helm: Path, chart: Path) -> None:
    (chart / "chart/Chart.yaml").write_text(
        "apiVersion: v2\nname: chart\nversion: 0.1.0\ndependencies:\n- name: dep\n  version: 1.0.0\n"
    )
    before = fingerprint(chart)
    result = await render_app(chart, {"path": "chart"})
    assert len(result.manifests) == 2
    build_dir = (fake_helm / "dependency-cwd").read_text().strip()
    assert build_dir.endswith("/repo/chart")
    assert not build_dir.startswith(os.path.realpath(chart))
    assert (fake_helm / "cwd").read_text().strip() == build_dir
    assert fingerprint(chart) == before
    assert not os.path.exists(build_dir)


@pytest.mark.parametrize(
    ("value_file", "message"),
    [
        ("../../outside.yaml", r"valueFiles\[0\] '../../outside.yaml' resolves to outside the repository"),
        ("nope.yaml", "value file 'nope.yaml' does not exist"),
        ("nope/*.yaml", r"value file glob 'nope/\*.yaml' matched no files"),
        ("ftp://example.com/v.yaml", "the URL scheme 'ftp' is not allowed"),
        ("$values/v.yaml", "refers to another source"),
    ],
)
async def test_bad_value_files_are_clear_errors(
    fake_helm: Path, chart: Path, value_file: str, message: str
) -> None:
    with pytest.raises(render.RenderError, match=message):
        await render_app(chart, {"path": "chart", "helm": {"valueFiles": [value_file]}})
    assert not (fake_helm / "args").exists()


async def test_set_file_parameters_stay_in_the_repository(fake_helm: Path, chart: Path) -> None:
    source = {"path": "chart", "helm": {"fileParameters": [{"name": "x", "path": "../../../etc/passwd"}]}}
    with pytest.raises(
        render.RenderError, match=r"fileParameters\[0\].path '../../../etc/passwd' resolves to outside"
    ):
        await render_app(chart, source)


def test_set_values_escape_commas_like_argo_cd() -> None:
    assert helm.escape_set_value("a,b") == "a\\,b"
    assert helm.escape_set_value("a\\,b") == "a\\,b"
    assert helm.escape_set_value("{a,b}") == "{a,b}"
