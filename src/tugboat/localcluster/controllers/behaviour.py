"""How a simulated pod behaves: chosen by its images' tags or by ``sim.tugboat.dev/…`` annotations.

This is the table of DESIGN.md §5, the way users stage failures on the local cluster: an image tag
containing ``crash`` crash-loops, ``does-not-exist`` fails to pull, ``unready`` never becomes Ready, a tag
starting with ``bad`` serves errors, ``slow`` serves slowly; annotations set the same behaviours and the
timings explicitly. Annotations win over tags.

A value that is not a finite number (``error-rate: "abc"``, ``"nan"``, ``latency-ms: "inf"``) is ignored,
so the tag's behaviour (or the default) stays; ``error-rate`` is clamped to 0…1 (``"2"`` fails every
request) and ``latency-ms`` to 0 or more.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

PREFIX = "sim.tugboat.dev/"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | None) -> float | None:
    """Seconds from ``"800ms"``, ``"5s"``, ``"2m"`` or a bare number of seconds; None if unparsable."""
    if text is None:
        return None
    match = _DURATION.match(str(text))
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def image_tag(image: str) -> str:
    """The tag of an image reference (``""`` when it has none); digests count as no tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


@dataclass(frozen=True)
class Behaviour:
    crash_loop: bool = False
    image_pull_fail: bool = False
    never_ready: bool = False
    error_rate: float = 0.0
    latency_ms: float = 5.0
    ready_after: float | None = None
    exit_code: int | None = None
    run_for: float | None = None


def _finite(value: Any) -> float | None:
    """``value`` as a finite number, or None (unparsable, NaN or infinite)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def behaviour_of(pod: dict[str, Any]) -> Behaviour:
    """The behaviour of a pod from its containers' image tags, then its annotations."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    tags = [image_tag(str(c.get("image") or "")) for c in containers]
    crash = any("crash" in t for t in tags)
    pull_fail = any("does-not-exist" in t for t in tags)
    unready = any("unready" in t for t in tags)
    error_rate = 0.5 if any(t.startswith("bad") for t in tags) else 0.0
    latency = 800.0 if any(t.startswith("slow") for t in tags) else 5.0

    def note(name: str) -> Any:
        return annotations.get(PREFIX + name)

    if note("crash-loop") is not None:
        crash = _truthy(note("crash-loop"))
    if note("image-pull") is not None:
        pull_fail = str(note("image-pull")).strip().lower() == "fail"
    if note("never-ready") is not None:
        unready = _truthy(note("never-ready"))
    if (rate := _finite(note("error-rate"))) is not None:
        error_rate = min(1.0, max(0.0, rate))
    if (millis := _finite(note("latency-ms"))) is not None:
        latency = max(0.0, millis)
    exit_code = None
    if note("exit-code") is not None:
        try:
            exit_code = int(note("exit-code"))
        except ValueError:
            exit_code = None
    return Behaviour(
        crash_loop=crash,
        image_pull_fail=pull_fail,
        never_ready=unready,
        error_rate=error_rate,
        latency_ms=latency,
        ready_after=parse_duration(note("ready-after")),
        exit_code=exit_code,
        run_for=parse_duration(note("run-for")),
    )
