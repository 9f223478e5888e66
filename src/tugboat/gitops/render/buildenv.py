"""Argo CD's build environment: the variables every rendering tool sees, and ``$VAR`` substitution.

Argo CD passes ``ARGOCD_APP_*`` variables to Helm, Kustomize, Jsonnet and plugins (its
``docs/user-guide/build-environment.md``), and substitutes them in some option values before use:
Kustomize ``images`` and ``commonLabels`` (``commonAnnotations`` on request), Helm ``parameters`` and
value-file paths, Jsonnet ``extVars`` and ``tlas``. Substitution follows Go's ``os.Expand``, as Argo CD's
``Env.Envsubst`` does: ``$NAME`` and ``${NAME}`` expand, unknown names expand to nothing, and ``$$`` is a
literal ``$``. Only the ``ARGOCD_APP_*`` variables are substituted; ``KUBE_VERSION`` and
``KUBE_API_VERSIONS`` reach the tools' environment only, as in Argo CD.
"""

from __future__ import annotations

import dataclasses
import re

from tugboat.gitops.errors import RenderError

_KUBE_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")
_SPECIAL = frozenset("*#$@!?-0123456789")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildEnv:
    """The values behind the build environment of one render."""

    app_name: str
    app_namespace: str
    project: str
    revision: str
    repo_url: str
    source_path: str
    target_revision: str
    kube_version: str
    api_versions: tuple[str, ...] = ()

    def argocd_vars(self) -> dict[str, str]:
        """The ``ARGOCD_APP_*`` variables, which option values may reference."""
        return {
            "ARGOCD_APP_NAME": self.app_name,
            "ARGOCD_APP_NAMESPACE": self.app_namespace,
            "ARGOCD_APP_PROJECT_NAME": self.project,
            "ARGOCD_APP_REVISION": self.revision,
            "ARGOCD_APP_REVISION_SHORT": self.revision[:7],
            "ARGOCD_APP_REVISION_SHORT_8": self.revision[:8],
            "ARGOCD_APP_SOURCE_REPO_URL": self.repo_url,
            "ARGOCD_APP_SOURCE_PATH": self.source_path,
            "ARGOCD_APP_SOURCE_TARGET_REVISION": self.target_revision,
        }

    def variables(self) -> dict[str, str]:
        """Every build variable, as added to each tool's environment."""
        result = self.argocd_vars()
        result["KUBE_VERSION"] = self.kube_version
        result["KUBE_API_VERSIONS"] = ",".join(self.api_versions)
        return result

    def substitute(self, text: str) -> str:
        """``text`` with ``$NAME``/``${NAME}`` replaced by the ``ARGOCD_APP_*`` values."""
        return expand(text, self.argocd_vars())


def normalize_kube_version(version: str) -> str:
    """``1.32``, ``v1.32.4`` or ``v1.32.4+k3s1`` as ``1.32.0``/``1.32.4``: semver without metadata."""
    found = _KUBE_VERSION.match(version.strip())
    if found is None:
        raise RenderError(f"invalid Kubernetes version {version!r}: expected MAJOR.MINOR[.PATCH]")
    major, minor, patch = found.group(1), found.group(2), found.group(3) or "0"
    return f"{int(major)}.{int(minor)}.{int(patch)}"


def expand(text: str, values: dict[str, str]) -> str:
    """Go ``os.Expand`` of ``text`` over ``values`` (``$$`` gives ``$``, unknown names give "")."""
    if "$" not in text:
        return text
    out: list[str] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char != "$" or index + 1 >= length:
            out.append(char)
            index += 1
            continue
        name, width = _shell_name(text, index + 1)
        if name:
            out.append("$" if name == "$" else values.get(name, ""))
        elif width == 0:
            out.append("$")  # '$' not followed by a name stays as it is
        index += 1 + width  # with a bad '${' or '${}', the characters are dropped
    return "".join(out)


def _shell_name(text: str, start: int) -> tuple[str, int]:
    """The variable name after a ``$`` at ``start`` and how many characters it spans."""
    first = text[start]
    if first == "{":
        if start + 2 < len(text) and text[start + 1] in _SPECIAL and text[start + 2] == "}":
            return text[start + 1], 3
        close = text.find("}", start + 1)
        if close < 0:
            return "", 1
        if close == start + 1:
            return "", 2
        return text[start + 1 : close], close - start + 1
    if first in _SPECIAL:
        return first, 1
    end = start
    while end < len(text) and (text[end] == "_" or (text[end].isascii() and text[end].isalnum())):
        end += 1
    return text[start:end], end - start
