"""The exceptions of the ``tugboat.kube`` boundary.

Pure object-model helpers (patches, selectors, paths) raise these; callers at an HTTP or controller
boundary translate them into their own errors (the local cluster's API server into a Kubernetes
``Status``).
"""

from __future__ import annotations


class KubeError(Exception):
    """Base of every error raised by ``tugboat.kube``."""


class PatchError(KubeError):
    """A patch document is malformed or cannot be applied to the object (e.g. a failed JSON-patch test)."""


class SelectorError(KubeError):
    """A label or field selector is malformed, or names a field that cannot be selected on."""


class JSONPathError(KubeError):
    """A Kubernetes JSONPath expression is malformed."""
