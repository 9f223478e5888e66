"""Which tool renders a source: the one the Application names, else the one its files call for.

Argo CD's rules (``docs/user-guide/tool_detection.md``, ``util/app/discovery``): a non-empty
``helm``, ``kustomize`` or ``directory`` section of ``spec.source`` (or any ``plugin`` section) chooses
the tool, and naming two is an error. Otherwise the application directory decides: a
``kustomization.yaml``, ``kustomization.yml`` or ``Kustomization`` file means Kustomize (it wins over a
chart), a ``Chart.yaml`` means Helm, and anything else is a plain directory (whose ``*.jsonnet`` files
are evaluated). An empty section (``helm: {}``) does not count, as Argo CD drops empty sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tugboat.gitops.errors import RenderError
from tugboat.gitops.render import fields, result

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_SECTIONS = (("kustomize", result.KUSTOMIZE), ("helm", result.HELM), ("directory", result.DIRECTORY))


def explicit_type(source: Mapping[str, Any]) -> str | None:
    """The tool the source names, or ``None`` if it names none."""
    chosen = [kind for key, kind in _SECTIONS if fields.is_set(source.get(key))]
    if source.get("plugin") is not None:
        chosen.append(result.PLUGIN)
    if len(chosen) > 1:
        raise RenderError(f"multiple application sources defined: {','.join(chosen)}")
    return chosen[0] if chosen else None


def detected_type(app_dir: Path) -> str:
    """The tool the files of ``app_dir`` call for."""
    names = {entry.name for entry in app_dir.iterdir()}
    if any(name in names for name in KUSTOMIZATION_FILES):
        return result.KUSTOMIZE
    if any(name.endswith("Chart.yaml") for name in names):
        return result.HELM
    return result.DIRECTORY


def source_type(app_dir: Path, source: Mapping[str, Any]) -> str:
    """The tool that renders ``source`` from ``app_dir``."""
    return explicit_type(source) or detected_type(app_dir)
