"""The root of every error raised at the ``tugboat.gitops`` boundary.

The controller catches ``GitOpsError`` to turn a failure of one Application (an unreachable repository,
a manifest that does not render, …) into a condition on that Application, instead of a crash. Each
piece of the GitOps package defines its own subclasses; this module only holds what they share.
"""

from __future__ import annotations


class GitOpsError(Exception):
    """Base of every error raised by ``tugboat.gitops``; messages never contain secrets."""


class RenderError(GitOpsError):
    """An Application source could not be rendered into manifests.

    The message says what to fix (the file, line and problem of a malformed manifest, the tool that
    failed and its error output, the path that leaves the repository, …); the controller reports it as a
    ``ComparisonError`` condition. A render that raises this returns no manifests at all.
    """


class CustomizationError(GitOpsError):
    """A resource customization in ``argocd-cm`` (health Lua, ignoreDifferences, …) is malformed."""


class LuaScriptError(GitOpsError):
    """A custom Lua health script does not compile."""


class IgnoreDifferencesError(GitOpsError):
    """An ``ignoreDifferences`` entry is malformed (bad JSON pointer, jq expression, missing kind, …)."""


class DiffError(GitOpsError):
    """Desired or live state cannot be compared (not Kubernetes objects)."""
