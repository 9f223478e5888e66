"""The GitOps controller's settings, read from Argo CD's ``argocd-cm`` ConfigMap.

Users bring their ``argocd-cm`` unchanged: custom Lua health checks, system-level ``ignoreDifferences``,
the resource tracking method and the reconciliation timeout are read from the keys Argo CD uses. A
malformed entry is reported (the controller keeps its previous settings) instead of stopping the
controller.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from tugboat.gitops import diff, health, luahealth, tracking
from tugboat.gitops.errors import GitOpsError

CONFIGMAP_NAME = "argocd-cm"
DEFAULT_RECONCILIATION = 120.0
DEFAULT_JITTER = 60.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


class SettingsError(GitOpsError):
    """``argocd-cm`` holds a value the controller cannot use."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the controller takes from ``argocd-cm``."""

    health_checks: health.HealthChecks = dataclasses.field(default_factory=lambda: health.DEFAULT)
    diff: diff.DiffSettings = dataclasses.field(default_factory=diff.DiffSettings)
    tracking_method: str = tracking.METHOD_ANNOTATION
    reconciliation: float = DEFAULT_RECONCILIATION
    jitter: float = DEFAULT_JITTER
    server_side_diff: bool = False


def parse_duration(text: str) -> float:
    """``"180s"``, ``"3m"``, ``"500ms"``, ``"0"`` as seconds."""
    match = _DURATION.match(text or "")
    if not match:
        raise SettingsError(f"invalid duration {text!r}")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def from_configmap(data: Mapping[str, str] | None, *, reconciliation: float | None = None) -> Settings:
    """Settings from ``argocd-cm``'s data (``None``: the ConfigMap does not exist: defaults).

    ``reconciliation`` (a command-line option) wins over ``timeout.reconciliation``. The defaults are Argo
    CD's: every 120 s plus up to 60 s of jitter, so at most 3 minutes.
    """
    data = data or {}
    method = data.get("application.resourceTrackingMethod") or tracking.METHOD_ANNOTATION
    if method not in (tracking.METHOD_ANNOTATION, tracking.METHOD_LABEL, tracking.METHOD_ANNOTATION_LABEL):
        raise SettingsError(f"application.resourceTrackingMethod: unknown method {method!r}")
    try:
        checks = luahealth.health_checks_from_configmap(data)
        diff_settings = diff.settings_from_configmap(data)
    except GitOpsError as exc:
        raise SettingsError(f"{CONFIGMAP_NAME}: {exc}") from exc
    timeout = reconciliation
    if timeout is None:
        timeout = parse_duration(data.get("timeout.reconciliation") or f"{DEFAULT_RECONCILIATION}s")
    # A reconciliation interval given on the command line comes without Argo CD's default jitter.
    default_jitter = "0s" if reconciliation is not None else f"{DEFAULT_JITTER}s"
    jitter = parse_duration(data.get("timeout.reconciliation.jitter") or default_jitter)
    return Settings(
        health_checks=checks,
        diff=diff_settings,
        tracking_method=method,
        reconciliation=timeout,
        jitter=jitter,
        server_side_diff=(data.get("controller.diff.server.side") or "").strip().lower() == "true",
    )
