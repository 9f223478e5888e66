"""Jsonnet in directory apps: extVars, tlas, libs, output shapes, imports kept inside the repository."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import examples_support
from tugboat.gitops import render

EXAMPLES = examples_support.example_dir("argocd-example-apps")


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


async def render_app(root: Path, source: dict[str, Any], *, timeout: float = 60) -> render.RenderResult:
    return await render.render(
        root,
        source,
        app_name="guestbook",
        app_namespace="ns",
        revision="0123456789abcdef",
        repo_url="file:///repo",
        timeout=timeout,
    )


GUESTBOOK = """
local params = import 'params.libsonnet';
[
  {apiVersion: 'v1', kind: 'Service', metadata: {name: params.name},
   spec: {ports: [{port: params.servicePort}], selector: {app: params.name}, type: params.type}},
  {apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: params.name},
   spec: {replicas: params.replicas, selector: {matchLabels: {app: params.name}},
          template: {metadata: {labels: {app: params.name}},
                     spec: {containers: [{name: params.name, image: params.image}]}}}},
]
"""
PARAMS = "{name: 'jsonnet-guestbook-ui', servicePort: 80, type: 'LoadBalancer', replicas: 1, image: 'gb:v1'}"


async def test_jsonnet_guestbook_example_or_its_equivalent(tmp_path: Path) -> None:
    example = Path(EXAMPLES or "") / "jsonnet-guestbook"
    if EXAMPLES and example.is_dir():
        root, path = Path(EXAMPLES), "jsonnet-guestbook"
    else:
        root = write(tmp_path, {"jg/guestbook-ui.jsonnet": GUESTBOOK, "jg/params.libsonnet": PARAMS})
        path = "jg"
    result = await render_app(root, {"path": path})
    assert result.source_type == "Directory"
    assert sorted((m["kind"], m["metadata"]["name"]) for m in result.manifests) == [
        ("Deployment", "jsonnet-guestbook-ui"),
        ("Service", "jsonnet-guestbook-ui"),
    ]


async def test_ext_vars_and_tlas_as_strings_and_code_with_build_variables(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/main.jsonnet": """
function(replicas=1, suffix='x') {
  apiVersion: 'v1', kind: 'ConfigMap',
  metadata: {name: std.extVar('name') + '-' + suffix},
  data: {replicas: std.toString(replicas * 2), flag: std.toString(std.extVar('flag')),
         app: std.extVar('app')},
}
"""
        },
    )
    jsonnet = {
        "extVars": [
            {"name": "name", "value": "cm"},
            {"name": "flag", "value": "true && false", "code": True},
            {"name": "app", "value": "$ARGOCD_APP_NAME@${ARGOCD_APP_REVISION_SHORT}"},
        ],
        "tlas": [{"name": "replicas", "value": "3", "code": True}, {"name": "suffix", "value": "prod"}],
    }
    result = await render_app(tmp_path, {"path": "app", "directory": {"jsonnet": jsonnet}})
    (manifest,) = result.manifests
    assert manifest["metadata"]["name"] == "cm-prod"
    assert manifest["data"] == {"replicas": "6", "flag": "false", "app": "guestbook@0123456"}


async def test_libs_are_relative_to_the_repository_root(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "vendor/k.libsonnet": "{cm(name): {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: name}}}",
            "app/main.jsonnet": "local k = import 'k.libsonnet'; [k.cm('a'), k.cm('b')]",
        },
    )
    with pytest.raises(render.RenderError, match=r"couldn't open import 'k\.libsonnet'"):
        await render_app(tmp_path, {"path": "app"})
    for lib in ("vendor", "/vendor"):
        result = await render_app(tmp_path, {"path": "app", "directory": {"jsonnet": {"libs": [lib]}}})
        assert [m["metadata"]["name"] for m in result.manifests] == ["a", "b"]
    with pytest.raises(render.RenderError, match=r"libs\[0\] '\.\./\.\.' resolves to outside the repository"):
        await render_app(tmp_path, {"path": "app", "directory": {"jsonnet": {"libs": ["../.."]}}})


async def test_output_may_be_an_object_a_list_object_or_null(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/a.jsonnet": "{apiVersion: 'v1', kind: 'List', items: [{apiVersion: 'v1', kind: 'Secret', "
            "metadata: {name: 's'}}]}",
            "app/b.jsonnet": "null",
        },
    )
    result = await render_app(tmp_path, {"path": "app"})
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [("Secret", "s")]
    (tmp_path / "app/b.jsonnet").write_text("['not an object']")
    with pytest.raises(render.RenderError, match=r"app/b.jsonnet \(item 0\): not a Kubernetes object"):
        await render_app(tmp_path, {"path": "app"})


@pytest.mark.parametrize(
    "code",
    [
        "import '../../outside/x.libsonnet'",
        "importstr '../../outside/x.libsonnet'",
        "importstr '/etc/hostname'",
    ],
)
async def test_imports_may_not_leave_the_repository(tmp_path: Path, code: str) -> None:
    write(
        tmp_path / "outside", {"x.libsonnet": "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'x'}}"}
    )
    repo = write(tmp_path / "repo", {"app/main.jsonnet": f"local x = {code}; [x]"})
    with pytest.raises(render.RenderError, match="resolves to outside the repository") as caught:
        await render_app(repo, {"path": "app"})
    assert str(tmp_path) not in str(caught.value)


async def test_evaluation_errors_name_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"app/main.jsonnet": "local x = 1;\nerror 'boom: ' + x"})
    with pytest.raises(render.RenderError) as caught:
        await render_app(tmp_path, {"path": "app"})
    message = str(caught.value)
    assert message.startswith("app/main.jsonnet: failed to evaluate Jsonnet: RUNTIME ERROR: boom: 1")
    assert str(tmp_path) not in message


async def test_a_runaway_evaluation_times_out_and_the_pool_recovers(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "slow/main.jsonnet": "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'slow'}, "
            "data: {n: std.toString(std.foldl(function(a, b) a + b, std.range(1, 200000000), 0))}}",
            "fast/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fast\n",
        },
    )
    started = time.monotonic()
    with pytest.raises(render.RenderError, match="rendering the directory timed out after 1s"):
        await render_app(tmp_path, {"path": "slow"}, timeout=1)
    assert time.monotonic() - started < 10
    result = await render_app(tmp_path, {"path": "fast"})
    assert [m["metadata"]["name"] for m in result.manifests] == ["fast"]
