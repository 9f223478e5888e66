"""The defaults of a Rollout's optional fields, and the arithmetic that resolves them.

A Rollout leaves most settings unset and the controller fills them in when it reads them (the stored
object is never defaulted, so a GitOps diff stays clean). The values and the rules are Argo Rollouts'
(research/rollouts.md §0, upstream ``utils/defaults``), including two quirks that users depend on:

* ``maxSurge``/``maxUnavailable`` default to the *string* ``"25"``, and any string is read as a percentage
  (upstream resolves IntOrString with the old ``GetValueFromIntOrPercent``, which ignores a missing ``%``);
* a pause duration is an integer, a bare number string (seconds) or a Go duration (``"1h30m"``).

Everything here is pure: a Rollout is a plain dict and nothing is mutated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

DEFAULT_REPLICAS = 1
REVISION_HISTORY_LIMIT = 10
PROGRESS_DEADLINE_SECONDS = 600
SCALE_DOWN_DELAY_SECONDS = 30
ABORT_SCALE_DOWN_DELAY_SECONDS = 30
MAX_SURGE = "25%"
MAX_UNAVAILABLE = "25%"
AUTO_PROMOTION_ENABLED = True
MAX_TRAFFIC_WEIGHT = 100
CONSECUTIVE_ERROR_LIMIT = 4
SUCCESSFUL_RUN_HISTORY_LIMIT = 5
UNSUCCESSFUL_RUN_HISTORY_LIMIT = 5

_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)


# ------------------------------------------------------------------------------------------ accessors


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    """An integer field's value, or ``None`` when unset (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def spec(ro: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(ro.get("spec"))


def strategy(ro: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(spec(ro).get("strategy"))


def canary(ro: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``spec.strategy.canary``, or ``None`` for a blue-green (or strategy-less) Rollout."""
    value = strategy(ro).get("canary")
    return value if isinstance(value, Mapping) else None


def blue_green(ro: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``spec.strategy.blueGreen``, or ``None``."""
    value = strategy(ro).get("blueGreen")
    return value if isinstance(value, Mapping) else None


def traffic_routing(ro: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``spec.strategy.canary.trafficRouting``, or ``None`` (basic canary, or blue-green)."""
    value = (canary(ro) or {}).get("trafficRouting")
    return value if isinstance(value, Mapping) else None


# ------------------------------------------------------------------------------------------ settings


def replicas(ro: Mapping[str, Any]) -> int:
    """``spec.replicas``, 1 when unset."""
    value = _int(spec(ro).get("replicas"))
    return DEFAULT_REPLICAS if value is None else value


def revision_history_limit(ro: Mapping[str, Any]) -> int:
    value = _int(spec(ro).get("revisionHistoryLimit"))
    return REVISION_HISTORY_LIMIT if value is None else value


def progress_deadline(ro: Mapping[str, Any]) -> int:
    """``spec.progressDeadlineSeconds``, 600 when unset."""
    value = _int(spec(ro).get("progressDeadlineSeconds"))
    return PROGRESS_DEADLINE_SECONDS if value is None else value


def scale_down_delay(ro: Mapping[str, Any]) -> int:
    """Seconds an old ReplicaSet keeps running after promotion.

    Blue-green and canary with traffic routing default to 30; a basic canary has no delay (0), because it
    shifts traffic by replica counts and the old pods are already gone when it completes.
    """
    bg = blue_green(ro)
    if bg is not None:
        value = _int(bg.get("scaleDownDelaySeconds"))
        return SCALE_DOWN_DELAY_SECONDS if value is None else value
    can = canary(ro)
    if can is not None and traffic_routing(ro) is not None:
        value = _int(can.get("scaleDownDelaySeconds"))
        return SCALE_DOWN_DELAY_SECONDS if value is None else value
    return 0


def scale_down_revision_limit(ro: Mapping[str, Any]) -> int | None:
    """How many old ReplicaSets may wait out their scale-down delay at once (None: no limit).

    ``scaleDownDelayRevisionLimit`` of either strategy; the older ones beyond it go to zero at once.
    """
    found = blue_green(ro) or canary(ro) or {}
    return _int(found.get("scaleDownDelayRevisionLimit"))


def rollback_window(ro: Mapping[str, Any]) -> int:
    """``spec.rollbackWindow.revisions``: a return to one of that many recent revisions skips the steps."""
    return _int(_dict(spec(ro).get("rollbackWindow")).get("revisions")) or 0


def abort_scale_down_delay(ro: Mapping[str, Any]) -> int:
    """Seconds before the aborted new (preview/canary) ReplicaSet is scaled down; **0 means never**.

    As the field itself: default 30 for blue-green and for canary with traffic routing, an explicit 0 keeps
    the aborted ReplicaSet running. A basic canary ignores the setting (it rolls back to stable by a rolling
    update) and gets 0.
    """
    bg = blue_green(ro)
    if bg is not None:
        value = _int(bg.get("abortScaleDownDelaySeconds"))
        return ABORT_SCALE_DOWN_DELAY_SECONDS if value is None else value
    can = canary(ro)
    if can is not None and traffic_routing(ro) is not None:
        value = _int(can.get("abortScaleDownDelaySeconds"))
        return ABORT_SCALE_DOWN_DELAY_SECONDS if value is None else value
    return 0


def abort_scale_down_delay_explicit(ro: Mapping[str, Any]) -> bool:
    """Whether the user set a non-zero ``abortScaleDownDelaySeconds`` where it applies (upstream's
    ``HasExplicitAbortScaleDownDelay``, which changes how dynamicStableScale aborts)."""
    bg = blue_green(ro)
    section = bg if bg is not None else (canary(ro) if traffic_routing(ro) is not None else None)
    if section is None:
        return False
    value = _int(section.get("abortScaleDownDelaySeconds"))
    return value is not None and value != 0


def auto_promotion_enabled(ro: Mapping[str, Any]) -> bool:
    """``blueGreen.autoPromotionEnabled``, true when unset (or not blue-green)."""
    value = (blue_green(ro) or {}).get("autoPromotionEnabled")
    return value if isinstance(value, bool) else AUTO_PROMOTION_ENABLED


def max_traffic_weight(ro: Mapping[str, Any]) -> int:
    """``canary.trafficRouting.maxTrafficWeight``, 100 when unset: the scale of every setWeight."""
    value = _int((traffic_routing(ro) or {}).get("maxTrafficWeight"))
    return MAX_TRAFFIC_WEIGHT if value is None else value


def successful_run_history_limit(ro: Mapping[str, Any]) -> int:
    value = _int(_dict(spec(ro).get("analysis")).get("successfulRunHistoryLimit"))
    return SUCCESSFUL_RUN_HISTORY_LIMIT if value is None else value


def unsuccessful_run_history_limit(ro: Mapping[str, Any]) -> int:
    value = _int(_dict(spec(ro).get("analysis")).get("unsuccessfulRunHistoryLimit"))
    return UNSUCCESSFUL_RUN_HISTORY_LIMIT if value is None else value


# ------------------------------------------------------------------------------------ int-or-percent


def max_surge_value(ro: Mapping[str, Any]) -> int | str:
    """The raw ``canary.maxSurge`` (an IntOrString), defaulted."""
    value = (canary(ro) or {}).get("maxSurge")
    return value if isinstance(value, int | str) and not isinstance(value, bool) else MAX_SURGE


def max_unavailable_value(ro: Mapping[str, Any]) -> int | str:
    """The raw ``maxUnavailable`` of the strategy in use (blue-green uses it for restarts), defaulted."""
    for section in (blue_green(ro), canary(ro)):
        value = (section or {}).get("maxUnavailable")
        if isinstance(value, int | str) and not isinstance(value, bool):
            return value
    return MAX_UNAVAILABLE


def resolve_int_or_percent(value: int | str | None, total: int, *, round_up: bool) -> int:
    """Resolve an IntOrString against ``total`` with Kubernetes' rounding.

    Integers are returned as is. A string is a percentage of ``total`` whether or not it ends in ``%``
    (``"25"`` is 25%, as Argo reads its own default), rounded up or down. ``None`` is 0. A string that is
    not a number raises ``ValueError``.
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = value.replace("%", "")
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"invalid value {value!r}: not an integer or percentage")
    percent = int(text)
    scaled = percent * total
    return -(-scaled // 100) if round_up else scaled // 100


def resolve_fenceposts(
    max_surge: int | str | None, max_unavailable: int | str | None, desired: int
) -> tuple[int, int]:
    """Surge (rounded up) and unavailable (rounded down) for ``desired`` replicas; if both come out 0,
    unavailable becomes 1 so that a rollout can always make progress (upstream ``resolveFenceposts``)."""
    surge = resolve_int_or_percent(max_surge, desired, round_up=True)
    unavailable = resolve_int_or_percent(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge_unavailable(ro: Mapping[str, Any]) -> tuple[int, int]:
    """``(maxSurge, maxUnavailable)`` in pods, as upstream's ``MaxSurge``/``MaxUnavailable`` resolve them.

    Canary: both fenceposts together. Blue-green: no surge, unavailable from ``blueGreen.maxUnavailable``.
    Unavailable never exceeds ``spec.replicas`` (and is 0 for 0 replicas).
    """
    desired = replicas(ro)
    if canary(ro) is not None:
        surge, unavailable = resolve_fenceposts(max_surge_value(ro), max_unavailable_value(ro), desired)
    else:
        surge = 0
        unavailable = resolve_int_or_percent(max_unavailable_value(ro), desired, round_up=False)
    if desired == 0:
        unavailable = 0
    return surge, min(unavailable, desired)


# ------------------------------------------------------------------------------------------ durations

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # Go accepts both micro signs (U+00B5 and U+03BC)
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go ``time.ParseDuration`` string (``"300ms"``, ``"1.5h"``, ``"1h30m"``, ``"-5s"``).

    Raises ``ValueError`` for anything Go rejects (a bare number other than ``0``, an unknown unit, "")."""
    rest = text
    sign = 1.0
    if rest[:1] in "+-" and rest:
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def pause_duration_seconds(pause: Mapping[str, Any] | None) -> int | None:
    """The seconds of a canary ``pause`` step: ``None`` for an indefinite pause (no duration).

    ``duration`` may be an integer, a string of digits (seconds) or a Go duration, truncated to whole
    seconds. An invalid duration gives -1, as upstream's ``RolloutPause.DurationSeconds`` does (validation
    reports it as "Duration needs to be greater than 0", so a valid Rollout never yields a negative).
    """
    if not isinstance(pause, Mapping):
        return None
    duration = pause.get("duration")
    if duration is None:
        return None
    if isinstance(duration, bool):
        return -1
    if isinstance(duration, int):
        return duration
    if not isinstance(duration, str):
        return -1
    if re.fullmatch(r"[+-]?[0-9]+", duration):
        number = int(duration)
        if _INT32_MIN <= number <= _INT32_MAX:
            return number
        return -1  # Go falls through to ParseDuration, which wants a unit
    try:
        seconds = parse_go_duration(duration)
    except ValueError:
        return -1
    return math.trunc(seconds)
