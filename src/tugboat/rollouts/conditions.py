"""Rollout status conditions: their types, reasons and messages, and how a list of them is updated.

Argo CD's health check, ``kubectl argo rollouts`` and users' alerts read these strings, so they are Argo
Rollouts' exactly (research/rollouts.md §2.2, upstream ``utils/conditions``): e.g. Progressing=False with
reason ``RolloutAborted`` and message ``Rollout aborted update to revision 2: ...`` is what makes a Rollout
Degraded. Conditions are plain dicts ``{type, status, lastUpdateTime, lastTransitionTime, reason,
message}``; the functions here never mutate their arguments and take the clock as an argument.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Condition = dict[str, Any]

# ------------------------------------------------------------------------------------------ types

PROGRESSING = "Progressing"
AVAILABLE = "Available"
PAUSED = "Paused"
HEALTHY = "Healthy"
COMPLETED = "Completed"
INVALID_SPEC = "InvalidSpec"
REPLICA_FAILURE = "ReplicaFailure"

# ------------------------------------------------------------------------------------------ reasons

NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_NOT_AVAILABLE = "ReplicaSetNotAvailable"
RS_CREATE_ERROR = "ReplicaSetCreateError"
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
ROLLOUT_ABORTED = "RolloutAborted"
ROLLOUT_PAUSED = "RolloutPaused"
ROLLOUT_RESUMED = "RolloutResumed"
ROLLOUT_RETRY = "RolloutRetry"
AVAILABLE_REASON = "AvailableReason"
ROLLOUT_HEALTHY = "RolloutHealthy"
ROLLOUT_COMPLETED = "RolloutCompleted"
INVALID_SPEC_REASON = "InvalidSpec"
SERVICE_REFERENCE_ERROR = "ServiceReferenceError"

# Reasons of ``status.pauseConditions[]`` (not conditions, but read by the same clients).
PAUSE_CANARY_STEP = "CanaryPauseStep"
PAUSE_BLUE_GREEN = "BlueGreenPause"
PAUSE_INCONCLUSIVE_ANALYSIS = "InconclusiveAnalysisRun"
PAUSE_INCONCLUSIVE_EXPERIMENT = "InconclusiveExperiment"

# ------------------------------------------------------------------------------------------ messages

AVAILABLE_MESSAGE = "Rollout has minimum availability"
NOT_AVAILABLE_MESSAGE = "Rollout does not have minimum availability"
HEALTHY_MESSAGE = "Rollout is healthy"
NOT_HEALTHY_MESSAGE = "Rollout is not healthy"
PAUSED_MESSAGE = "Rollout is paused"
RESUMED_MESSAGE = "Rollout is resumed"
RETRY_MESSAGE = "Retrying Rollout after abort"
COMPLETED_MESSAGE = ROLLOUT_COMPLETED  # upstream uses the reason as the Completed condition's message
SELECT_ALL_MESSAGE = "This rollout is selecting all pods. A non-empty selector is required."
MISSING_FIELD_MESSAGE = "Rollout has missing field '{}'"

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"


def _quote(s: str) -> str:
    """Go's ``%q`` for the names that appear in messages."""
    return json.dumps(s, ensure_ascii=False)


def aborted_message(revision: int, reason: str = "") -> str:
    """``Rollout aborted update to revision N`` plus ``: <reason>`` when there is one."""
    message = f"Rollout aborted update to revision {revision}"
    return f"{message}: {reason}" if reason else message


def timed_out_message(rs_name: str) -> str:
    return f"ReplicaSet {_quote(rs_name)} has timed out progressing."


def progressing_message(rs_name: str) -> str:
    return f"ReplicaSet {_quote(rs_name)} is progressing."


def available_message(rs_name: str) -> str:
    return f"ReplicaSet {_quote(rs_name)} has successfully progressed."


def created_message(rs_name: str) -> str:
    return f"Created new replica set {_quote(rs_name)}"


def found_message(rs_name: str) -> str:
    return f"Found new replica set {_quote(rs_name)}"


def create_error_message(rs_name: str, error: str) -> str:
    return f"Failed to create new replica set {_quote(rs_name)}: {error}"


def invalid_spec_message(rollout_name: str, detail: str) -> str:
    """The InvalidSpec condition's message: ``The Rollout "x" is invalid: <field error>``."""
    return f"The Rollout {_quote(rollout_name)} is invalid: {detail}"


def managed_by_other_message(service_name: str) -> str:
    return f"Service {_quote(service_name)} is managed by another Rollout"


# ------------------------------------------------------------------------------------------ updates


def new_condition(type: str, status: str, reason: str, message: str, *, now: str) -> Condition:
    """A condition stamped ``now`` (RFC 3339) as both its update and its transition time."""
    return {
        "type": type,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def get(status: Mapping[str, Any] | None, type: str) -> Condition | None:
    """The condition of ``type`` in a Rollout ``status``, or ``None``."""
    for cond in (status or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type:
            return cond
    return None


def find(conditions: Sequence[Condition] | None, type: str) -> Condition | None:
    """The condition of ``type`` in a list of conditions, or ``None``."""
    return get({"conditions": list(conditions or [])}, type)


def remove(conditions: Sequence[Condition] | None, type: str) -> list[Condition]:
    """A copy of ``conditions`` without the one of ``type``."""
    return [c for c in conditions or [] if not (isinstance(c, Mapping) and c.get("type") == type)]


def set_condition(conditions: Sequence[Condition] | None, cond: Condition) -> list[Condition]:
    """A copy of ``conditions`` with ``cond`` replacing the one of the same type (appended last).

    When the status does not change, the previous ``lastTransitionTime`` is kept, as Kubernetes does;
    ``lastUpdateTime``, reason and message are always ``cond``'s.
    """
    previous = find(conditions, cond["type"])
    new = dict(cond)
    if previous is not None and previous.get("status") == cond.get("status"):
        new["lastTransitionTime"] = previous.get("lastTransitionTime", new.get("lastTransitionTime"))
    return [*remove(conditions, cond["type"]), new]


def update_condition(conditions: Sequence[Condition] | None, cond: Condition) -> tuple[list[Condition], bool]:
    """Upstream's ``SetRolloutCondition``: no change at all (``changed`` false) when a condition of the same
    type already has the same status *and* reason, so its ``lastUpdateTime`` (from which the progress
    deadline counts) stays put; otherwise :func:`set_condition`."""
    previous = find(conditions, cond["type"])
    if (
        previous is not None
        and previous.get("status") == cond.get("status")
        and previous.get("reason") == cond.get("reason")
    ):
        return list(conditions or []), False
    return set_condition(conditions, cond), True
