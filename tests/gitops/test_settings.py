"""The controller's settings from ``argocd-cm``: Argo CD's keys and defaults."""

from __future__ import annotations

import pytest

from tugboat.gitops import health, settings, tracking

DEGRADED_SCRIPT = 'return {status = "Degraded", message = "no"}'


def test_defaults_are_argo_cds() -> None:
    found = settings.from_configmap(None)
    assert (found.reconciliation, found.jitter) == (120.0, 60.0)
    assert found.tracking_method == tracking.METHOD_ANNOTATION
    assert found.diff.normalize_status


def test_configmap_keys() -> None:
    found = settings.from_configmap(
        {
            "timeout.reconciliation": "3m",
            "timeout.reconciliation.jitter": "0",
            "application.resourceTrackingMethod": "label",
            "resource.customizations.health.example.com_Widget": DEGRADED_SCRIPT,
        }
    )
    assert (found.reconciliation, found.jitter, found.tracking_method) == (180.0, 0.0, "label")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert found.health_checks.health_of(widget) == health.HealthStatus(health.DEGRADED, "no")


def test_command_line_interval_wins_and_has_no_default_jitter() -> None:
    found = settings.from_configmap({"timeout.reconciliation": "3m"}, reconciliation=5)
    assert (found.reconciliation, found.jitter) == (5, 0.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"application.resourceTrackingMethod": "uid"}, "unknown method"),
        ({"timeout.reconciliation": "soon"}, "invalid duration"),
        ({"resource.customizations.health.apps_Deployment": "return {"}, "argocd-cm"),
    ],
)
def test_bad_values_are_clear_errors(data: dict[str, str], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        settings.from_configmap(data)


def test_durations() -> None:
    assert settings.parse_duration("500ms") == 0.5
    assert settings.parse_duration("2h") == 7200
    assert settings.parse_duration("90") == 90
