"""Paths named by a source never leave the repository: ``..``, absolute paths and symlinks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tugboat.gitops import render
from tugboat.gitops.render import paths

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


async def render_app(root: Path, source: dict[str, Any], revision: str = "rev-1") -> render.RenderResult:
    return await render.render(
        root, source, app_name="app", app_namespace="ns", revision=revision, repo_url="file:///repo"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write(tmp_path / "outside", {"secret.yaml": CONFIGMAP.format(name="secret")})
    return write(
        tmp_path / "repo",
        {"app/cm.yaml": CONFIGMAP.format(name="cm"), "shared/s.yaml": CONFIGMAP.format(name="s")},
    )


@pytest.mark.parametrize("path", ["../outside", "app/../../outside", "app/../.."])
async def test_a_source_path_escaping_with_dot_dot_is_refused(repo: Path, path: str) -> None:
    with pytest.raises(render.RenderError, match="resolves to outside the repository"):
        await render_app(repo, {"path": path})


async def test_absolute_missing_and_file_paths_are_refused(repo: Path) -> None:
    with pytest.raises(render.RenderError, match="is absolute"):
        await render_app(repo, {"path": str(repo / "app")})
    with pytest.raises(render.RenderError, match="app path does not exist"):
        await render_app(repo, {"path": "nope"})
    with pytest.raises(render.RenderError, match="app path is not a directory"):
        await render_app(repo, {"path": "app/cm.yaml"})


async def test_dot_dot_inside_the_repository_is_fine(repo: Path) -> None:
    result = await render_app(repo, {"path": "shared/../app"})
    assert [m["metadata"]["name"] for m in result.manifests] == ["cm"]


async def test_a_symlink_to_a_file_outside_fails_the_render(repo: Path) -> None:
    os.symlink(repo.parent / "outside" / "secret.yaml", repo / "app" / "leak.yaml")
    with pytest.raises(render.RenderError, match=r"symlink that points outside it: app/leak.yaml") as caught:
        await render_app(repo, {"path": "app"}, revision="rev-leak")
    assert str(repo) not in str(caught.value)


async def test_a_relative_symlink_climbing_out_fails_even_elsewhere_in_the_repository(repo: Path) -> None:
    os.symlink("../../outside", repo / "shared" / "escape")
    with pytest.raises(render.RenderError, match="shared/escape"):
        await render_app(repo, {"path": "app"}, revision="rev-climb")


async def test_a_symlinked_app_directory_leaving_the_repository_is_refused(repo: Path) -> None:
    os.symlink(repo.parent / "outside", repo / "linked")
    with pytest.raises(render.RenderError, match="linked"):
        await render_app(repo, {"path": "linked"}, revision="rev-dir")


async def test_symlinks_inside_the_repository_are_followed(repo: Path) -> None:
    os.symlink("../shared/s.yaml", repo / "app" / "s.yaml")
    os.symlink("../shared/missing.yaml", repo / "app" / "dangling.yaml")
    result = await render_app(repo, {"path": "app"}, revision="rev-in")
    assert [m["metadata"]["name"] for m in result.manifests] == ["cm", "s"]
    assert result.warnings == ["skipped app/dangling.yaml: the symlink points to a missing file"]


def test_resolve_keeps_paths_in_the_repository(repo: Path) -> None:
    root = paths.repo_root(repo)
    app = root / "app"
    assert paths.resolve(root, app, "../shared/s.yaml", what="x") == root / "shared" / "s.yaml"
    assert (
        paths.resolve(root, app, "/shared/s.yaml", what="x", absolute_from_root=True)
        == root / "shared/s.yaml"
    )
    with pytest.raises(render.RenderError, match=r"x '/shared/s\.yaml' is absolute"):
        paths.resolve(root, app, "/shared/s.yaml", what="x")
    with pytest.raises(render.RenderError, match="resolves to outside the repository"):
        paths.resolve(root, app, "../../outside/secret.yaml", what="x")
    with pytest.raises(render.RenderError, match="resolves to outside the repository"):
        paths.resolve(root, app, "/../../outside/secret.yaml", what="x", absolute_from_root=True)
    with pytest.raises(render.RenderError, match="repository root, which is not allowed"):
        paths.resolve(root, app, "..", what="x")
    assert paths.resolve(root, app, "..", what="x", allow_root=True) == root


def test_the_symlink_scan_follows_argo_cd(repo: Path) -> None:
    os.symlink("../shared/s.yaml", repo / "app" / "ok.yaml")
    os.symlink("/etc/hostname", repo / ".git-like-but-not")
    assert paths.find_out_of_bounds_symlink(str(repo)) == ".git-like-but-not"
    (repo / ".git-like-but-not").unlink()
    (repo / ".git").mkdir()
    os.symlink("/etc/hostname", repo / ".git" / "ignored")
    assert paths.find_out_of_bounds_symlink(str(repo)) is None
    os.symlink("sub/../../..", repo / "app" / "climb")
    assert paths.find_out_of_bounds_symlink(str(repo)) == "app/climb"
