"""Where the upstream example manifests are: ``$TUGBOAT_EXAMPLES`` (.ci/run: ../shared/examples).

Tests skip when it is unset. The variable names the folder holding ``argocd-example-apps``,
``argo-rollouts`` and ``rollouts-demo``; pointing it at one of those directly works too.
"""

from __future__ import annotations

import os
from pathlib import Path


def example_dir(name: str) -> str | None:
    """The directory of one upstream example set (e.g. ``argocd-example-apps``), or None if unavailable."""
    root = os.environ.get("TUGBOAT_EXAMPLES")
    if not root:
        return None
    base = Path(root)
    if (base / name).is_dir():
        return str(base / name)
    if base.name == name and base.is_dir():
        return str(base)
    return None
