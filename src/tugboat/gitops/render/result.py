"""What a render produces: the manifests, the kind of source Argo CD would report, and warnings."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

DIRECTORY: Final = "Directory"
KUSTOMIZE: Final = "Kustomize"
HELM: Final = "Helm"
PLUGIN: Final = "Plugin"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenderResult:
    """The outcome of rendering one Application source.

    ``manifests`` are plain JSON-shaped dicts in the order the tool produced them (files in path order
    for a directory app), which is stable for a given commit and parameters; ``source_type`` is what
    Argo CD reports as ``status.sourceType``; ``warnings`` are things skipped that a user may want to know
    about (a YAML file that is not a manifest, a missing optional value file, …).
    """

    manifests: list[dict[str, Any]]
    source_type: str
    warnings: list[str] = dataclasses.field(default_factory=list)
