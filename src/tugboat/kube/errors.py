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


class ApiError(KubeError):
    """The Kubernetes API answered with a failure ``Status``."""

    def __init__(self, code: int, reason: str, message: str, status: dict[str, object] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status or {}

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.code == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.code == 410


class ConnectionFailed(KubeError):
    """The API server could not be reached (or the connection broke)."""


class ConfigError(KubeError):
    """The kubeconfig is missing or unusable."""
