"""Rollout conditions: Argo's strings, and how conditions are set, replaced and removed."""

from __future__ import annotations

import copy

from tugboat.rollouts import conditions

T0 = "2026-08-01T12:00:00Z"
T1 = "2026-08-01T12:05:00Z"
T2 = "2026-08-01T12:10:00Z"


def test_strings_are_argos() -> None:
    assert (conditions.PROGRESSING, conditions.AVAILABLE, conditions.PAUSED) == (
        "Progressing",
        "Available",
        "Paused",
    )
    assert (conditions.HEALTHY, conditions.COMPLETED) == ("Healthy", "Completed")
    assert (conditions.INVALID_SPEC, conditions.REPLICA_FAILURE) == ("InvalidSpec", "ReplicaFailure")
    assert conditions.NEW_RS_CREATED == "NewReplicaSetCreated"
    assert conditions.FOUND_NEW_RS == "FoundNewReplicaSet"
    assert conditions.RS_UPDATED == "ReplicaSetUpdated"
    assert conditions.NEW_RS_AVAILABLE == "NewReplicaSetAvailable"
    assert conditions.PROGRESS_DEADLINE_EXCEEDED == "ProgressDeadlineExceeded"
    assert conditions.ROLLOUT_ABORTED == "RolloutAborted"
    assert conditions.ROLLOUT_PAUSED == "RolloutPaused"
    assert conditions.ROLLOUT_RESUMED == "RolloutResumed"
    assert conditions.ROLLOUT_RETRY == "RolloutRetry"
    assert conditions.AVAILABLE_REASON == "AvailableReason"
    assert conditions.ROLLOUT_HEALTHY == "RolloutHealthy"
    assert conditions.ROLLOUT_COMPLETED == "RolloutCompleted"
    assert conditions.INVALID_SPEC_REASON == "InvalidSpec"
    assert conditions.PAUSE_CANARY_STEP == "CanaryPauseStep"
    assert conditions.PAUSE_BLUE_GREEN == "BlueGreenPause"


def test_messages() -> None:
    assert conditions.aborted_message(2) == "Rollout aborted update to revision 2"
    assert (
        conditions.aborted_message(2, "Step-based analysis phase error/failed: boom")
        == "Rollout aborted update to revision 2: Step-based analysis phase error/failed: boom"
    )
    assert (
        conditions.timed_out_message("demo-6cbccd9f99")
        == 'ReplicaSet "demo-6cbccd9f99" has timed out progressing.'
    )
    assert conditions.progressing_message("demo-1") == 'ReplicaSet "demo-1" is progressing.'
    assert conditions.available_message("demo-1") == 'ReplicaSet "demo-1" has successfully progressed.'
    assert conditions.created_message("demo-1") == 'Created new replica set "demo-1"'
    assert conditions.found_message("demo-1") == 'Found new replica set "demo-1"'
    assert (
        conditions.invalid_spec_message("foo", "spec.x: bad") == 'The Rollout "foo" is invalid: spec.x: bad'
    )
    assert conditions.managed_by_other_message("svc") == 'Service "svc" is managed by another Rollout'
    assert (
        conditions.MISSING_FIELD_MESSAGE.format(".spec.selector")
        == "Rollout has missing field '.spec.selector'"
    )


def test_new_condition_stamps_both_times() -> None:
    cond = conditions.new_condition("Progressing", "True", "ReplicaSetUpdated", "msg", now=T0)
    assert cond == {
        "type": "Progressing",
        "status": "True",
        "lastUpdateTime": T0,
        "lastTransitionTime": T0,
        "reason": "ReplicaSetUpdated",
        "message": "msg",
    }


def test_get_find_remove() -> None:
    progressing = conditions.new_condition(conditions.PROGRESSING, "True", conditions.RS_UPDATED, "m", now=T0)
    available = conditions.new_condition(
        conditions.AVAILABLE, "False", conditions.AVAILABLE_REASON, "n", now=T0
    )
    status = {"conditions": [progressing, available]}
    assert conditions.get(status, conditions.AVAILABLE) is available
    assert conditions.get(status, conditions.HEALTHY) is None
    assert conditions.get({}, conditions.AVAILABLE) is None
    assert conditions.get(None, conditions.AVAILABLE) is None
    assert conditions.find(status["conditions"], conditions.PROGRESSING) is progressing
    remaining = conditions.remove(status["conditions"], conditions.PROGRESSING)
    assert remaining == [available]
    assert len(status["conditions"]) == 2  # not mutated
    assert conditions.remove(None, conditions.PROGRESSING) == []


def test_set_condition_adds_and_replaces() -> None:
    available = conditions.new_condition(
        conditions.AVAILABLE, "True", conditions.AVAILABLE_REASON, "a", now=T0
    )
    first = conditions.new_condition(
        conditions.PROGRESSING, "True", conditions.NEW_RS_CREATED, "created", now=T0
    )
    listed = conditions.set_condition([], first)
    assert listed == [first]
    listed = conditions.set_condition([first, available], first)
    assert [c["type"] for c in listed] == [conditions.AVAILABLE, conditions.PROGRESSING]  # replaced goes last

    # same status, new reason and message: the transition time stays, the update time moves
    before = copy.deepcopy(listed)
    updated = conditions.new_condition(
        conditions.PROGRESSING, "True", conditions.RS_UPDATED, "progressing", now=T1
    )
    after = conditions.set_condition(listed, updated)
    assert listed == before  # inputs are not mutated
    cond = conditions.find(after, conditions.PROGRESSING)
    assert cond is not None
    assert (cond["reason"], cond["message"]) == (conditions.RS_UPDATED, "progressing")
    assert (cond["lastUpdateTime"], cond["lastTransitionTime"]) == (T1, T0)
    assert updated["lastTransitionTime"] == T1  # the argument is not mutated either
    assert conditions.find(after, conditions.AVAILABLE) == available

    # a status change is a transition
    timed_out = conditions.new_condition(
        conditions.PROGRESSING, "False", conditions.PROGRESS_DEADLINE_EXCEEDED, "timed out", now=T2
    )
    after = conditions.set_condition(after, timed_out)
    cond = conditions.find(after, conditions.PROGRESSING)
    assert cond is not None
    assert (cond["status"], cond["lastUpdateTime"], cond["lastTransitionTime"]) == ("False", T2, T2)
    assert len(after) == 2


def test_update_condition_keeps_same_status_and_reason_untouched() -> None:
    old = conditions.new_condition(conditions.PROGRESSING, "True", conditions.RS_UPDATED, "old", now=T0)
    same = conditions.new_condition(conditions.PROGRESSING, "True", conditions.RS_UPDATED, "new", now=T1)
    listed, changed = conditions.update_condition([old], same)
    assert not changed and listed == [old]  # lastUpdateTime must not move: the deadline counts from it
    other = conditions.new_condition(
        conditions.PROGRESSING, "True", conditions.NEW_RS_AVAILABLE, "done", now=T1
    )
    listed, changed = conditions.update_condition([old], other)
    assert changed
    assert listed == [{**other, "lastTransitionTime": T0}]
