"""Rollout defaults, int-or-percent resolution, surge/unavailable fenceposts and pause durations."""

from __future__ import annotations

from typing import Any

import pytest

from tugboat.rollouts import defaults


def canary(replicas: int | None = None, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"strategy": {"canary": fields}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"spec": spec}


def blue_green(replicas: int | None = None, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"strategy": {"blueGreen": {"activeService": "active", **fields}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"spec": spec}


def test_constants() -> None:
    assert defaults.DEFAULT_REPLICAS == 1
    assert defaults.REVISION_HISTORY_LIMIT == 10
    assert defaults.PROGRESS_DEADLINE_SECONDS == 600
    assert defaults.SCALE_DOWN_DELAY_SECONDS == 30
    assert defaults.ABORT_SCALE_DOWN_DELAY_SECONDS == 30
    assert defaults.MAX_SURGE == "25%"
    assert defaults.MAX_UNAVAILABLE == "25%"


def test_simple_settings_default_and_override() -> None:
    empty: dict[str, Any] = {"spec": {}}
    assert defaults.replicas(empty) == 1
    assert defaults.replicas({}) == 1
    assert defaults.replicas({"spec": {"replicas": 0}}) == 0
    assert defaults.replicas({"spec": {"replicas": 5}}) == 5
    assert defaults.revision_history_limit(empty) == 10
    assert defaults.revision_history_limit({"spec": {"revisionHistoryLimit": 0}}) == 0
    assert defaults.progress_deadline(empty) == 600
    assert defaults.progress_deadline({"spec": {"progressDeadlineSeconds": 30}}) == 30
    assert defaults.max_traffic_weight(canary()) == 100
    assert defaults.max_traffic_weight(canary(trafficRouting={"nginx": {}, "maxTrafficWeight": 1000})) == 1000
    assert defaults.successful_run_history_limit(empty) == 5
    assert (
        defaults.unsuccessful_run_history_limit({"spec": {"analysis": {"unsuccessfulRunHistoryLimit": 2}}})
        == 2
    )


def test_scale_down_delay() -> None:
    assert defaults.scale_down_delay(blue_green()) == 30
    assert defaults.scale_down_delay(blue_green(scaleDownDelaySeconds=5)) == 5
    assert defaults.scale_down_delay(canary()) == 0  # basic canary: no delay
    assert defaults.scale_down_delay(canary(scaleDownDelaySeconds=99)) == 0
    assert defaults.scale_down_delay(canary(trafficRouting={"nginx": {}})) == 30
    assert defaults.scale_down_delay(canary(trafficRouting={"nginx": {}}, scaleDownDelaySeconds=10)) == 10


def test_abort_scale_down_delay_zero_means_never() -> None:
    assert defaults.abort_scale_down_delay(blue_green()) == 30
    assert defaults.abort_scale_down_delay(blue_green(abortScaleDownDelaySeconds=0)) == 0
    assert defaults.abort_scale_down_delay(blue_green(abortScaleDownDelaySeconds=45)) == 45
    assert defaults.abort_scale_down_delay(canary(trafficRouting={"smi": {}})) == 30
    assert (
        defaults.abort_scale_down_delay(canary(trafficRouting={"smi": {}}, abortScaleDownDelaySeconds=60))
        == 60
    )
    assert defaults.abort_scale_down_delay(canary(abortScaleDownDelaySeconds=60)) == 0  # not applicable
    assert not defaults.abort_scale_down_delay_explicit(blue_green())
    assert not defaults.abort_scale_down_delay_explicit(blue_green(abortScaleDownDelaySeconds=0))
    assert defaults.abort_scale_down_delay_explicit(blue_green(abortScaleDownDelaySeconds=5))
    assert not defaults.abort_scale_down_delay_explicit(canary(abortScaleDownDelaySeconds=5))


def test_auto_promotion_enabled() -> None:
    assert defaults.auto_promotion_enabled(blue_green()) is True
    assert defaults.auto_promotion_enabled(blue_green(autoPromotionEnabled=False)) is False
    assert defaults.auto_promotion_enabled(canary()) is True


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        ("25%", 4, True, 1),
        ("25%", 4, False, 1),
        ("25%", 5, True, 2),
        ("25%", 5, False, 1),
        ("25", 5, True, 2),  # a bare numeric string is a percentage, as Argo reads its own default
        ("25", 5, False, 1),
        ("0%", 10, True, 0),
        ("100%", 3, False, 3),
        ("1%", 1, True, 1),
        ("1%", 1, False, 0),
        ("50%", 0, True, 0),
        (3, 10, True, 3),
        (0, 10, False, 0),
        (None, 10, True, 0),
    ],
)
def test_resolve_int_or_percent(value: int | str | None, total: int, round_up: bool, expected: int) -> None:
    assert defaults.resolve_int_or_percent(value, total, round_up=round_up) == expected


@pytest.mark.parametrize("value", ["abc", "%", "1.5%", ""])
def test_resolve_int_or_percent_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError):
        defaults.resolve_int_or_percent(value, 10, round_up=True)
    with pytest.raises(ValueError):
        defaults.resolve_int_or_percent(True, 10, round_up=True)


@pytest.mark.parametrize(
    ("ro", "expected"),
    [
        (canary(replicas=4), (1, 1)),  # defaults 25%/25%
        (canary(), (1, 0)),  # 1 replica: surge rounds up, unavailable rounds down
        (canary(replicas=10), (3, 2)),
        (canary(replicas=5, maxSurge=1, maxUnavailable=1), (1, 1)),  # examples/rollout-rolling-update.yaml
        (canary(replicas=5, maxSurge=0, maxUnavailable="10%"), (0, 1)),  # both resolve to 0 → unavailable 1
        (canary(replicas=3, maxSurge="50%", maxUnavailable=10), (2, 3)),  # unavailable capped at replicas
        (canary(replicas=0), (0, 0)),
        (canary(replicas=4, maxUnavailable=0), (1, 0)),
        (blue_green(replicas=4), (0, 1)),
        (blue_green(replicas=4, maxUnavailable=2), (0, 2)),
        (blue_green(replicas=3), (0, 0)),  # blue-green does not apply the fencepost rule
    ],
)
def test_max_surge_unavailable(ro: dict[str, Any], expected: tuple[int, int]) -> None:
    assert defaults.max_surge_unavailable(ro) == expected


def test_raw_surge_values_are_defaulted() -> None:
    assert defaults.max_surge_value(canary()) == "25%"
    assert defaults.max_surge_value(canary(maxSurge=0)) == 0
    assert defaults.max_unavailable_value(canary(maxUnavailable="10%")) == "10%"
    assert defaults.max_unavailable_value(blue_green(maxUnavailable=1)) == 1
    assert defaults.max_unavailable_value(blue_green()) == "25%"


@pytest.mark.parametrize(
    ("pause", "expected"),
    [
        ({}, None),
        (None, None),
        ({"duration": None}, None),
        ({"duration": 30}, 30),
        ({"duration": 0}, 0),
        ({"duration": "30"}, 30),
        ({"duration": "30s"}, 30),
        ({"duration": "5m"}, 300),
        ({"duration": "1h"}, 3600),
        ({"duration": "1h30m"}, 5400),
        ({"duration": "1.5h"}, 5400),
        ({"duration": "2m3.9s"}, 123),
        ({"duration": "300ms"}, 0),
        ({"duration": "90000us"}, 0),
        ({"duration": "-5"}, -5),
        ({"duration": "abc"}, -1),
        ({"duration": ""}, -1),
        ({"duration": "10x"}, -1),
        ({"duration": "1h 30m"}, -1),
        ({"duration": "99999999999"}, -1),  # beyond int32, and Go wants a unit then
        ({"duration": True}, -1),
        ({"duration": 1.5}, -1),
    ],
)
def test_pause_duration_seconds(pause: dict[str, Any] | None, expected: int | None) -> None:
    assert defaults.pause_duration_seconds(pause) == expected


def test_parse_go_duration() -> None:
    assert defaults.parse_go_duration("0") == 0
    assert defaults.parse_go_duration("-1.5h") == -5400
    assert defaults.parse_go_duration("+2s") == 2
    assert defaults.parse_go_duration("1h2m3s4ms") == pytest.approx(3723.004)
    assert defaults.parse_go_duration(".5s") == 0.5
    assert defaults.parse_go_duration("1µs") == pytest.approx(1e-6)
    for bad in ("", "1", "h", ".s", "-", "1d", "s1"):
        with pytest.raises(ValueError):
            defaults.parse_go_duration(bad)
