"""Tool detection: explicit source sections, then the files of the application directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tugboat.gitops import render
from tugboat.gitops.render import detect


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cm.yaml": ""}, "Directory"),
        ({"main.jsonnet": ""}, "Directory"),
        ({"Chart.yaml": ""}, "Helm"),
        ({"kustomization.yaml": ""}, "Kustomize"),
        ({"kustomization.yml": ""}, "Kustomize"),
        ({"Kustomization": ""}, "Kustomize"),
        ({"Chart.yaml": "", "kustomization.yaml": ""}, "Kustomize"),
        ({"sub/Chart.yaml": ""}, "Directory"),
    ],
)
def test_files_decide_when_the_source_names_no_tool(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    write(tmp_path, files)
    assert detect.source_type(tmp_path, {"path": "."}) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"directory": {"recurse": True}}, "Directory"),
        ({"directory": {"include": "*.yaml"}}, "Directory"),
        ({"helm": {"releaseName": "x"}}, "Helm"),
        ({"kustomize": {"namePrefix": "a-"}}, "Kustomize"),
        ({"plugin": {}}, "Plugin"),
        ({"helm": {}, "directory": {"recurse": False}}, "Kustomize"),  # empty sections do not count
    ],
)
def test_an_explicit_section_chooses_the_tool(tmp_path: Path, source: dict[str, Any], expected: str) -> None:
    write(tmp_path, {"kustomization.yaml": ""})
    assert detect.source_type(tmp_path, source) == expected


def test_two_sections_are_an_error() -> None:
    with pytest.raises(render.RenderError, match="multiple application sources defined: Kustomize,Helm"):
        detect.explicit_type({"helm": {"releaseName": "x"}, "kustomize": {"namePrefix": "y"}})


async def test_an_explicit_directory_section_wins_over_a_kustomization(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/kustomization.yaml": "resources: [cm.yaml]\n",
            "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
        },
    )
    result = await render.render(
        tmp_path,
        {"path": "app", "directory": {"include": "cm.yaml"}},
        app_name="a",
        app_namespace="ns",
        revision="r",
        repo_url="u",
    )
    assert result.source_type == "Directory"
    assert [m["metadata"]["name"] for m in result.manifests] == ["cm"]
