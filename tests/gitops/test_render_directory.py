"""Directory apps: YAML/JSON files, recurse, include/exclude, List flattening, and malformed input."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import examples_support
from tugboat.gitops import render
from tugboat.gitops.render import directory

EXAMPLES = examples_support.example_dir("argocd-example-apps")
needs_examples = pytest.mark.skipif(not EXAMPLES, reason="no argocd-example-apps in TUGBOAT_EXAMPLES")

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  key: value
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


async def render_dir(root: Path, source: dict[str, Any]) -> render.RenderResult:
    return await render.render(
        root, source, app_name="app", app_namespace="ns", revision="0123456789abcdef", repo_url="file:///repo"
    )


def names(result: render.RenderResult) -> list[tuple[str, str]]:
    return [(m["kind"], m["metadata"]["name"]) for m in result.manifests]


@needs_examples
async def test_guestbook_example_is_a_deployment_and_a_service() -> None:
    result = await render_dir(Path(EXAMPLES or ""), {"path": "guestbook"})
    assert result.source_type == "Directory"
    assert names(result) == [("Deployment", "guestbook-ui"), ("Service", "guestbook-ui")]
    assert result.warnings == []


@needs_examples
async def test_sync_waves_and_helm_hooks_examples_keep_their_annotations() -> None:
    result = await render_dir(Path(EXAMPLES or ""), {"path": "sync-waves"})
    kinds = sorted(m["kind"] for m in result.manifests)
    assert kinds == ["Job", "Job", "Job", "ReplicaSet", "ReplicaSet", "Service", "Service"]
    waves = {
        m["metadata"].get("name") or m["metadata"].get("generateName"): m["metadata"].get("annotations", {})
        for m in result.manifests
    }
    assert waves["frontend"]["argocd.argoproj.io/sync-wave"] == "2"
    hooks = await render_dir(Path(EXAMPLES or ""), {"path": "helm-hooks"})
    annotated = [m for m in hooks.manifests if "helm.sh/hook" in m["metadata"].get("annotations", {})]
    assert len(annotated) == 3


async def test_only_the_top_level_is_read_unless_recurse(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/a.yaml": CONFIGMAP.format(name="a"),
            "app/sub/c.yaml": CONFIGMAP.format(name="c"),
            "app/z.yml": CONFIGMAP.format(name="z"),
            "app/README.md": "not read",
        },
    )
    flat = await render_dir(tmp_path, {"path": "app"})
    assert [m["metadata"]["name"] for m in flat.manifests] == ["a", "z"]
    deep = await render_dir(tmp_path, {"path": "app", "directory": {"recurse": True}})
    assert [m["metadata"]["name"] for m in deep.manifests] == ["a", "c", "z"]  # filepath.Walk order


async def test_include_and_exclude_globs_with_brace_lists(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/a.yaml": CONFIGMAP.format(name="a"),
            "app/b.yml": CONFIGMAP.format(name="b"),
            "app/c.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}',
            "app/sub/d.yaml": CONFIGMAP.format(name="d"),
            "app/sub/e.yaml": CONFIGMAP.format(name="e"),
        },
    )

    async def picked(settings: dict[str, Any]) -> list[str]:
        result = await render_dir(tmp_path, {"path": "app", "directory": {"recurse": True, **settings}})
        return [m["metadata"]["name"] for m in result.manifests]

    assert await picked({"include": "{*.yml,*.yaml}"}) == ["a", "b", "d", "e"]
    assert await picked({"include": "*.json"}) == ["c"]
    assert await picked({"exclude": "sub/*"}) == ["a", "b", "c"]
    assert await picked({"include": "*.yaml", "exclude": "sub/e.yaml"}) == ["a", "d"]  # exclude wins
    assert await picked({"include": "sub/[!d]*"}) == ["e"]


async def test_an_invalid_glob_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"app/a.yaml": CONFIGMAP.format(name="a")})
    with pytest.raises(render.RenderError, match="invalid glob pattern"):
        await render_dir(tmp_path, {"path": "app", "directory": {"include": "{*.yaml"}})


async def test_extension_filter_can_be_disabled(tmp_path: Path) -> None:
    write(tmp_path, {"app/manifest.txt": CONFIGMAP.format(name="txt"), "app/notes": "just: text"})
    default = await render_dir(tmp_path, {"path": "app"})
    assert default.manifests == []
    result = await render_dir(
        tmp_path, {"path": "app", "directory": {"disableExtensionFilter": True, "include": "*.txt"}}
    )
    assert [m["metadata"]["name"] for m in result.manifests] == ["txt"]


async def test_multi_document_yaml_lists_and_empty_documents(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/multi.yaml": "---\n"
            + CONFIGMAP.format(name="one")
            + "---\n# only a comment\n---\n"
            + CONFIGMAP.format(name="two")
            + "---\n",
            "app/list.yaml": """apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: item-1}}
- {apiVersion: v1, kind: Secret, metadata: {name: item-2}}
---
apiVersion: v1
kind: ConfigMapList
items: null
""",
            "app/z.json": '{"apiVersion": "v1", "kind": "ServiceList", "items": '
            '[{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}}]}',
        },
    )
    result = await render_dir(tmp_path, {"path": "app"})
    assert names(result) == [
        ("ConfigMap", "item-1"),
        ("Secret", "item-2"),
        ("ConfigMap", "one"),
        ("ConfigMap", "two"),
        ("Service", "svc"),
    ]


async def test_malformed_yaml_fails_the_whole_render_with_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/a-good.yaml": CONFIGMAP.format(name="good"),
            "app/b-bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n"
            "data:\n  key: [unclosed\n",
        },
    )
    with pytest.raises(render.RenderError) as caught:
        await render_dir(tmp_path, {"path": "app"})
    message = str(caught.value)
    assert message.startswith("app/b-bad.yaml: line ")
    assert str(tmp_path) not in message


async def test_a_bad_document_after_a_good_one_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"app/mixed.yaml": CONFIGMAP.format(name="ok") + "---\n- just\n- a list\n"})
    with pytest.raises(
        render.RenderError, match=r"app/mixed.yaml \(document starting at line 8\): not a Kubernetes"
    ):
        await render_dir(tmp_path, {"path": "app"})


async def test_a_non_object_first_document_of_a_manifest_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"app/scalar.yaml": "hello\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"})
    with pytest.raises(render.RenderError, match="a string, where an object was expected"):
        await render_dir(tmp_path, {"path": "app"})


async def test_unrelated_yaml_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/values.yaml": "replicas: 3\nimage: {tag: v1}\n",
            "app/broken-notes.yaml": "this: is: not: yaml\n",
            "app/cm.yaml": CONFIGMAP.format(name="cm"),
        },
    )
    result = await render_dir(tmp_path, {"path": "app"})
    assert names(result) == [("ConfigMap", "cm")]
    assert sorted(result.warnings) == [
        "skipped app/broken-notes.yaml: it is not a Kubernetes manifest",
        "skipped app/values.yaml: it is not a Kubernetes manifest",
    ]


async def test_json_files_hold_exactly_one_valid_object(tmp_path: Path) -> None:
    write(tmp_path, {"app/two.json": '{"kind": "A", "apiVersion": "v1"}\n{"kind": "B", "apiVersion": "v1"}'})
    with pytest.raises(render.RenderError, match="only one object is allowed in a JSON file"):
        await render_dir(tmp_path, {"path": "app"})
    (tmp_path / "app/two.json").write_text('{\n  "kind": "A",\n  "apiVersion": v1\n}')
    with pytest.raises(render.RenderError, match=r"app/two.json: line 3, column"):
        await render_dir(tmp_path, {"path": "app"})
    (tmp_path / "app/two.json").write_text('{"apiVersion": "v1", "metadata": {"name": "x"}}')
    with pytest.raises(render.RenderError, match="'kind' is missing"):
        await render_dir(tmp_path, {"path": "app"})


async def test_files_with_the_skip_marker_are_not_rendered(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/template.yaml": "# +argocd:skip-file-rendering\napiVersion: v1\nkind: ConfigMap\n"
            "metadata:\n  name: {{ .Values.name }}\n",
            "app/cm.yaml": CONFIGMAP.format(name="cm"),
        },
    )
    assert names(await render_dir(tmp_path, {"path": "app"})) == [("ConfigMap", "cm")]


async def test_label_values_must_be_strings(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    v: 1.0\n"},
    )
    with pytest.raises(
        render.RenderError, match=r"metadata\.labels contains a non-string value under key 'v'"
    ):
        await render_dir(tmp_path, {"path": "app"})


async def test_scalars_follow_kubernetes_yaml_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
            "data:\n  day: 2024-01-31\n  1: one\n"
        },
    )
    (manifest,) = (await render_dir(tmp_path, {"path": "app"})).manifests
    assert manifest["data"] == {"day": "2024-01-31", "1": "one"}


async def test_a_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: bomb}",
        'a0: &a0 ["lol","lol","lol","lol"]',
    ]
    for level in range(1, 12):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 8)}]")
    write(tmp_path, {"app/bomb.yaml": "\n".join(lines) + "\n"})
    with pytest.raises(render.RenderError, match="expands to more than"):
        await render_dir(tmp_path, {"path": "app"})


async def test_the_combined_size_of_manifest_files_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"app/big.yaml": CONFIGMAP.format(name="x") + "#" * (directory.MAX_COMBINED_SIZE + 10)})
    with pytest.raises(render.RenderError, match="exceed 10 MiB in total"):
        await render_dir(tmp_path, {"path": "app"})


async def test_the_git_directory_of_a_real_checkout_is_not_read(tmp_path: Path) -> None:
    write(tmp_path, {"cm.yaml": CONFIGMAP.format(name="cm")})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "c",
        ],
        check=True,
    )
    write(tmp_path, {".git/stray.yaml": "not: [valid"})
    result = await render_dir(tmp_path, {"path": ".", "directory": {"recurse": True}})
    assert names(result) == [("ConfigMap", "cm")]


async def test_source_overrides_from_argocd_source_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/cm.yaml": CONFIGMAP.format(name="top"),
            "app/sub/cm.yaml": CONFIGMAP.format(name="nested"),
            "app/.argocd-source.yaml": "directory:\n  recurse: true\npath: elsewhere\n",
            "app/.argocd-source-app.yaml": "directory:\n  exclude: 'sub/*'\n",
            "app/.argocd-source-other.yaml": "directory:\n  include: nothing\n",
        },
    )
    result = await render_dir(tmp_path, {"path": "app"})
    assert names(result) == [("ConfigMap", "top")]
    (tmp_path / "app/.argocd-source-app.yaml").unlink()
    result = await render_dir(tmp_path, {"path": "app"})
    assert names(result) == [("ConfigMap", "top"), ("ConfigMap", "nested")]


async def test_plugins_and_helm_repository_charts_are_refused_clearly(tmp_path: Path) -> None:
    write(tmp_path, {"app/cm.yaml": CONFIGMAP.format(name="cm")})
    with pytest.raises(
        render.RenderError, match=r"Config Management Plugins \(spec.source.plugin\) are not supported"
    ):
        await render_dir(tmp_path, {"path": "app", "plugin": {"name": "cmp"}})
    with pytest.raises(render.RenderError, match=r"spec\.source\.chart"):
        await render_dir(tmp_path, {"chart": "nginx", "targetRevision": "1.0.0"})
    with pytest.raises(render.RenderError, match=r"spec\.source\.directory\.recurse must be true or false"):
        await render_dir(tmp_path, {"path": "app", "directory": {"recurse": "yes"}})
