"""The manifest cache: keys, copies, LRU bounds, hard refresh, and one render for concurrent callers."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tugboat.gitops import render
from tugboat.gitops.render import cache

KEY_ARGS: dict[str, Any] = {
    "repo_url": "https://git.example.com/r.git",
    "revision": "a" * 40,
    "app_name": "app",
    "app_namespace": "ns",
    "project": "default",
    "kube_version": "1.32",
    "api_versions": [],
}


def result_of(*names: str) -> render.RenderResult:
    manifests = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}} for name in names]
    return render.RenderResult(manifests=manifests, source_type="Directory", warnings=["w"])


def test_keys_cover_everything_that_shapes_the_output() -> None:
    base = cache.key_for({"path": "app", "directory": {"recurse": True}}, **KEY_ARGS)
    assert base == cache.key_for({"directory": {"recurse": True}, "path": "app"}, **KEY_ARGS)
    assert base.path == "app"
    variants = [
        cache.key_for({"path": "app", "directory": {"recurse": False}}, **KEY_ARGS),
        cache.key_for({"path": "app", "directory": {"recurse": True}}, **{**KEY_ARGS, "revision": "b" * 40}),
        cache.key_for({"path": "app", "directory": {"recurse": True}}, **{**KEY_ARGS, "app_name": "other"}),
        cache.key_for({"path": "app", "directory": {"recurse": True}}, **{**KEY_ARGS, "app_namespace": "x"}),
        cache.key_for(
            {"path": "app", "directory": {"recurse": True}}, **{**KEY_ARGS, "kube_version": "1.31"}
        ),
    ]
    assert len({base, *variants}) == 1 + len(variants)


def test_entries_are_copies_and_bounded_least_recently_used_first() -> None:
    manifest_cache = render.ManifestCache(max_entries=2)
    keys = [cache.key_for({"path": str(index)}, **KEY_ARGS) for index in range(3)]
    original = result_of("a")
    manifest_cache.put(keys[0], original)
    original.manifests[0]["metadata"]["name"] = "changed"
    first = manifest_cache.get(keys[0])
    assert first is not None
    assert first.manifests[0]["metadata"]["name"] == "a"
    first.manifests.clear()
    again = manifest_cache.get(keys[0])
    assert again is not None
    assert len(again.manifests) == 1
    assert again.warnings == ["w"]
    manifest_cache.put(keys[1], result_of("b"))
    manifest_cache.get(keys[0])  # keys[0] is now the most recently used
    manifest_cache.put(keys[2], result_of("c"))
    assert manifest_cache.get(keys[1]) is None
    assert manifest_cache.get(keys[0]) is not None
    assert len(manifest_cache) == 2


def test_the_byte_bound_and_invalidation() -> None:
    one_entry = len(cache._entry(result_of("x")).manifests)
    manifest_cache = render.ManifestCache(max_bytes=one_entry * 2)
    keys = [cache.key_for({"path": str(index)}, **KEY_ARGS) for index in range(3)]
    for key in keys:
        manifest_cache.put(key, result_of("x"))
    assert len(manifest_cache) == 2
    assert manifest_cache.size_bytes == one_entry * 2
    other = cache.key_for({"path": "p"}, **{**KEY_ARGS, "repo_url": "https://elsewhere"})
    manifest_cache.put(other, result_of("y"))
    assert manifest_cache.invalidate(repo_url=KEY_ARGS["repo_url"]) == 1
    assert manifest_cache.get(other) is not None
    assert manifest_cache.invalidate() == 1
    assert manifest_cache.size_bytes == 0


def counting_kustomize(directory: Path, counter: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "kustomize"
    script.write_text(
        f"#!/bin/sh\necho run >> {counter}\nsleep 0.3\n"
        "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: counted\\n'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


async def test_render_cached_renders_once_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "runs"
    counting_kustomize(tmp_path / "bin", counter)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "kustomization.yaml").write_text("resources: []\n")
    manifest_cache = render.ManifestCache()

    async def cached(**overrides: Any) -> render.RenderResult:
        arguments = {**KEY_ARGS, **overrides}
        return await render.render_cached(manifest_cache, repo, {"path": "app"}, **arguments)

    results = await asyncio.gather(*(cached() for _ in range(5)))
    assert all(result.manifests[0]["metadata"]["name"] == "counted" for result in results)
    assert counter.read_text().count("run") == 1
    results[0].manifests.clear()
    assert len((await cached()).manifests) == 1
    assert counter.read_text().count("run") == 1
    await cached(refresh=True)
    assert counter.read_text().count("run") == 2
    await cached(app_name="other")
    assert counter.read_text().count("run") == 3
    assert manifest_cache.misses == 3
    assert manifest_cache.hits == 5


async def test_failures_are_not_cached(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: [\n")
    manifest_cache = render.ManifestCache()
    for _ in range(2):
        with pytest.raises(render.RenderError):
            await render.render_cached(manifest_cache, tmp_path, {"path": "app"}, **KEY_ARGS)
    assert len(manifest_cache) == 0
    (tmp_path / "app" / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n")
    result = await render.render_cached(manifest_cache, tmp_path, {"path": "app"}, **KEY_ARGS)
    assert result.manifests[0]["metadata"]["name"] == "ok"
