"""A Pod's STATUS, READY and RESTARTS the way ``kubectl get pods`` words them, computed in one place.

Three screens show Pods: the local cluster's server-side table (what ``kubectl get pods`` prints against
it), ``tugboat rollout get`` and the Rollouts part of the API. All of them owe the user kubectl's
wording, which is not the Pod's phase but a reason read from the container statuses, so the rules live
here, below every layer that shows Pods:

- the Pod's ``status.reason`` (``Evicted``, ``NodeLost``, …) else its phase; ``SchedulingGated`` while a
  scheduling gate holds it;
- an unfinished init container gives ``Init:<reason>`` (failed), ``Init:<waiting reason>`` or
  ``Init:<done>/<count>``; restartable (sidecar) init containers that started count as running;
- then the app containers, the first in spec order with a problem naming it: a waiting reason, a
  terminated reason, or ``Signal:<n>``/``ExitCode:<n>``; ``Completed`` with a container still running is
  ``Running`` (``NotReady`` without the Ready condition);
- a Pod being deleted is ``Terminating`` (``Unknown`` when its node is lost), unless it already finished.

READY counts the ready app containers and started sidecars out of the app containers and sidecars;
RESTARTS adds up the restart counts (sidecars' included) and remembers the last restart, which the table
prints as ``3 (5m ago)``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tugboat.util import jsondata

NODE_LOST = "NodeLost"  # status.reason of a Pod whose node stopped answering
_TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodStatus:
    """What the STATUS, READY and RESTARTS cells of a Pod are made of."""

    reason: str  # the STATUS cell
    ready: int
    total: int
    restarts: int
    last_restart: datetime.datetime | None = None  # when a container last finished before a restart

    @property
    def ready_text(self) -> str:
        """The READY cell: ``ready/total``."""
        return f"{self.ready}/{self.total}"


@dataclass
class _Tally:
    """The counts while the container statuses are read."""

    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: datetime.datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime.datetime | None = None


_get = jsondata.dig


def _dicts(obj: Any, *path: str) -> list[Mapping[str, Any]]:
    value = _get(obj, *path)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (nanoseconds cut to micro); ``None`` if malformed."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}" if digits else f"{head}{tail}"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _later(
    current: datetime.datetime | None, candidate: datetime.datetime | None
) -> datetime.datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


def _condition_true(status: Mapping[str, Any], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in _dicts(status, "conditions"))


def _is_sidecar(container: Mapping[str, Any] | None) -> bool:
    """A restartable init container (``restartPolicy: Always``) runs alongside the app containers."""
    return container is not None and container.get("restartPolicy") == "Always"


def _last_finished(container_status: Mapping[str, Any]) -> datetime.datetime | None:
    return _parse_time(_get(container_status, "lastState", "terminated", "finishedAt"))


def terminated_reason(terminated: Mapping[str, Any]) -> str:
    """A terminated container's reason, else ``Signal:<n>``, else ``ExitCode:<n>``."""
    reason = _str(terminated.get("reason"))
    if reason:
        return reason
    signal = _int(terminated.get("signal"))
    return f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated.get('exitCode'))}"


def _scan_init_containers(tally: _Tally, pod: Mapping[str, Any]) -> bool:
    """Count the init containers; True (with ``Init:…`` as the reason) while initialisation is pending."""
    specs = _dicts(pod, "spec", "initContainers")
    by_name = {_str(c.get("name")): c for c in specs}
    for index, container in enumerate(_dicts(pod, "status", "initContainerStatuses")):
        restarts, finished = _int(container.get("restartCount")), _last_finished(container)
        tally.restarts += restarts
        tally.last_restart = _later(tally.last_restart, finished)
        sidecar = _is_sidecar(by_name.get(_str(container.get("name"))))
        if sidecar:
            tally.sidecar_restarts += restarts
            tally.sidecar_last_restart = _later(tally.sidecar_last_restart, finished)
        terminated = _get(container, "state", "terminated")
        waiting = _str(_get(container, "state", "waiting", "reason"))
        if isinstance(terminated, Mapping) and _int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and container.get("started") is True:
            tally.ready += 1 if container.get("ready") is True else 0
            continue
        if isinstance(terminated, Mapping):
            tally.reason = "Init:" + terminated_reason(terminated)
        elif waiting not in ("", "PodInitializing"):
            tally.reason = "Init:" + waiting
        else:
            tally.reason = f"Init:{index}/{len(specs)}"
        return True
    return False


def _scan_containers(tally: _Tally, status: Mapping[str, Any]) -> None:
    """Count the app containers; the first one (in spec order) with a problem names the STATUS."""
    tally.restarts = tally.sidecar_restarts
    tally.last_restart = tally.sidecar_last_restart
    has_running = False
    for container in reversed(_dicts(status, "containerStatuses")):
        tally.restarts += _int(container.get("restartCount"))
        tally.last_restart = _later(tally.last_restart, _last_finished(container))
        waiting = _str(_get(container, "state", "waiting", "reason"))
        terminated = _get(container, "state", "terminated")
        if waiting:
            tally.reason = waiting
        elif isinstance(terminated, Mapping):
            tally.reason = terminated_reason(terminated)
        elif container.get("ready") is True and isinstance(_get(container, "state", "running"), Mapping):
            has_running = True
            tally.ready += 1
    if tally.reason == "Completed" and has_running:
        tally.reason = "Running" if _condition_true(status, "Ready") else "NotReady"


def summarize(pod: Mapping[str, Any]) -> PodStatus:
    """The STATUS, READY and RESTARTS of ``pod`` (a Pod as the API returns it), by kubectl's rules."""
    status = _get(pod, "status")
    status = status if isinstance(status, Mapping) else {}
    phase = _str(status.get("phase"))
    tally = _Tally(reason=_str(status.get("reason")) or phase)
    for condition in _dicts(status, "conditions"):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            tally.reason = "SchedulingGated"
    initializing = _scan_init_containers(tally, pod)
    if not initializing or _condition_true(status, "Initialized"):
        _scan_containers(tally, status)
    if _get(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == NODE_LOST:
            tally.reason = "Unknown"
        elif phase not in _TERMINAL_PHASES:
            tally.reason = "Terminating"
    sidecars = sum(1 for c in _dicts(pod, "spec", "initContainers") if _is_sidecar(c))
    return PodStatus(
        reason=tally.reason,
        ready=tally.ready,
        total=len(_dicts(pod, "spec", "containers")) + sidecars,
        restarts=tally.restarts,
        last_restart=tally.last_restart,
    )
