"""Helm apps: ``helm template`` arguments as Argo CD builds them, value files, and a missing Helm."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

import examples_support
from tugboat.gitops import render
from tugboat.gitops.render import helm

EXAMPLES = examples_support.example_dir("argocd-example-apps")
needs_examples = pytest.mark.skipif(not EXAMPLES, reason="no argocd-example-apps in TUGBOAT_EXAMPLES")
HELM_PRESENT = shutil.which("helm") is not None or helm.sdk_available()

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


async def render_app(root: Path, source: dict[str, Any]) -> render.RenderResult:
    return await render.render(
        root,
        source,
        app_name="guestbook",
        app_namespace="prod",
        revision="0123456789abcdef",
        repo_url="file:///repo",
        kube_version="v1.31.2",
        api_versions=["apps/v1", "batch/v1"],
    )


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


@needs_examples
@pytest.mark.parametrize("path", ["apps", "helm-guestbook"])
async def test_helm_examples_render_or_say_helm_is_missing(path: str) -> None:
    source = {"path": path}
    if not HELM_PRESENT:
        with pytest.raises(render.RenderError) as caught:
            await render_app(Path(EXAMPLES or ""), source)
        assert str(caught.value) == "Helm is not available: install a helm binary or the tugboat[helm] extra"
        return
    result = await render_app(Path(EXAMPLES or ""), source)
    assert result.source_type == "Helm"
    kinds = [m["kind"] for m in result.manifests]
    if path == "apps":
        assert set(kinds) == {"Application"}
        assert len(kinds) >= 13
    else:
        assert sorted(kinds) == ["Deployment", "Service"]
        assert {m["metadata"]["name"] for m in result.manifests} == {"guestbook-helm-guestbook"}


@pytest.mark.skipif(HELM_PRESENT, reason="Helm is installed here")
async def test_without_helm_only_helm_apps_fail(chart: Path) -> None:
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
