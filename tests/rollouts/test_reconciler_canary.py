"""The canary step machine of the rollout Reconciler, step by step on the bare local cluster
(research/rollouts.md §2.5-§2.7): first deploy, setWeight replica counts, pauses, promote, promote --full,
abort, retry, fast rollback, step changes, manual pause, undo and events.

The harness (and the ``xfail(strict=True)`` convention for divergences from Argo Rollouts) is
``test_reconciler.py``'s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from test_reconciler import Harness, at, canary_spec, client, condition, h, template

from tugboat.kube import kinds
from tugboat.rollouts import replicasets as rsutil

__all__ = ["client", "h"]  # fixtures shared with test_reconciler.py

SERVICES = ("canary", "stable")


async def canary_deployed(h: Harness, *, services: bool = False, **spec: Any) -> str:
    """A canary Rollout at revision 1, Healthy; returns its hash."""
    if services:
        spec["canary"] = {"canaryService": "canary", "stableService": "stable", **(spec.get("canary") or {})}
    body = canary_spec(**spec)
    await h.create(body, services=SERVICES if services else ())
    await h.converge(at(0))
    status = await h.status()
    assert status["phase"] == "Healthy", status
    return str(status["stableRS"])


async def update(h: Harness, now: float, image: str = "demo:2") -> str:
    """A new template; one reconcile; returns the new hash."""
    await h.set_image(image)
    await h.step(at(now))
    return str((await h.status())["currentPodHash"])


def pauses(status: dict[str, Any]) -> list[str]:
    return [p["reason"] for p in status.get("pauseConditions") or []]


# ------------------------------------------------------------------------------------ first deploy


async def test_first_deploy_skips_steps(h: Harness) -> None:
    steps = [{"setWeight": 20}, {"pause": {}}]
    await h.create(canary_spec(steps=steps))
    await h.step(at(0))
    await h.step(at(0.5))  # upstream's first reconcile only records the hashes
    (rev1,) = (await h.replicasets()).keys()
    assert await h.replicas() == {rev1: 10}
    await h.converge(at(1))
    status = await h.status()
    assert status["stableRS"] == rev1 == status["currentPodHash"]
    assert status["currentStepIndex"] == 2
    assert status["currentStepHash"]
    assert "pauseConditions" not in status
    assert (status["phase"], status["message"]) == ("Healthy", "")
    assert condition(status, "Healthy")["status"] == "True"
    assert "RolloutCompleted" in h.reasons()


async def test_first_deploy_sets_stable_at_once_and_a_quick_update_runs_steps(h: Harness) -> None:
    await h.create(canary_spec(steps=[{"setWeight": 20}, {"pause": {}}]))
    await h.step(at(0))
    await h.step(at(0.5))  # nothing available yet
    status = await h.status()
    rev1 = status["currentPodHash"]
    assert status.get("stableRS") == rev1
    rev2 = await update(h, 1)
    await h.converge(at(2))
    status = await h.status()
    assert status["stableRS"] == rev1 and pauses(status) == ["CanaryPauseStep"]
    assert (await h.replicas())[rev2] == 2


# ------------------------------------------------------------------------------------ setWeight


@pytest.mark.parametrize(
    ("replicas", "weight", "canary", "stable"),
    [
        (10, 10, 1, 9),
        (10, 50, 5, 5),
        (10, 90, 9, 1),
        (4, 10, 1, 4),  # a surge pod: 1 + 4 (20 %) is closer to 10 % than 1 + 3 (25 %)
        (4, 50, 2, 2),
        (4, 90, 4, 1),
    ],
)
async def test_set_weight_replica_approximation(
    h: Harness, replicas: int, weight: int, canary: int, stable: int
) -> None:
    rev1 = await canary_deployed(h, replicas=replicas, steps=[{"setWeight": weight}, {"pause": {}}])
    rev2 = await update(h, 10)
    await h.converge(at(11))
    status = await h.status()
    assert pauses(status) == ["CanaryPauseStep"] and status["currentStepIndex"] == 1
    assert await h.replicas() == {rev1: stable, rev2: canary}
    assert (status["phase"], status["message"]) == ("Paused", "CanaryPauseStep")
    assert ("Normal", "RolloutStepCompleted", f"Rollout step 1/2 completed (setWeight: {weight})") in h.events


@pytest.mark.parametrize(("replicas", "steps"), [(10, [{"setWeight": 50}, {"pause": {}}]), (4, None)])
async def test_canary_scaling_respects_max_surge_and_max_unavailable(
    h: Harness, replicas: int, steps: list[Any] | None
) -> None:
    rev1 = await canary_deployed(h, replicas=replicas, steps=steps)
    surge = -(-replicas * 25 // 100)  # 25%, rounded up
    unavailable = replicas * 25 // 100  # 25%, rounded down
    rev2 = await update(h, 10)
    for now in (11, 12, 13):  # the new pods never become available
        await h.step(at(now))
        counts = await h.replicas()
        assert counts[rev1] >= replicas - unavailable, counts
        assert counts[rev1] + counts[rev2] <= replicas + surge, counts


async def test_basic_canary_has_no_traffic_weights(h: Harness) -> None:
    await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {}}])
    await update(h, 10)
    await h.converge(at(11))
    assert "weights" not in ((await h.status()).get("canary") or {})


# ------------------------------------------------------------------------------------ pauses


async def test_pause_with_duration(h: Harness) -> None:
    rev1 = await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {"duration": "30s"}}])
    rev2 = await update(h, 10)
    await h.converge(at(11))
    status = await h.status()
    assert pauses(status) == ["CanaryPauseStep"] and status["controllerPause"] is True
    assert status["currentStepIndex"] == 1
    start = datetime.fromisoformat(status["pauseConditions"][0]["startTime"])
    requeue = await h.step(start + timedelta(seconds=10))
    assert requeue is not None and 19 <= requeue <= 21
    await h.step(start + timedelta(seconds=29))
    assert (await h.status())["currentStepIndex"] == 1
    await h.step(start + timedelta(seconds=31))
    status = await h.status()
    assert status["currentStepIndex"] == 2 and "pauseConditions" not in status
    await h.converge(start + timedelta(seconds=32))
    status = await h.status()
    assert status["stableRS"] == rev2 and status["phase"] == "Healthy"
    assert await h.replicas() == {rev1: 0, rev2: 10}


async def test_indefinite_pause_and_promote(h: Harness) -> None:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
    rev1 = await canary_deployed(h, steps=steps)
    rev2 = await update(h, 10)
    await h.converge(at(11))
    assert await h.replicas() == {rev1: 8, rev2: 2}
    # An indefinite pause never ends by itself, and never counts against the progress deadline.
    await h.step(at(10_000))
    status = await h.status()
    assert status["currentStepIndex"] == 1
    assert (status["phase"], status["message"]) == ("Paused", "CanaryPauseStep")
    await h.request({"pauseConditions": None})  # kubectl argo rollouts promote
    await h.converge(at(10_001))
    status = await h.status()
    assert status["currentStepIndex"] == 3 and pauses(status) == ["CanaryPauseStep"]
    assert await h.replicas() == {rev1: 4, rev2: 6}
    await h.request({"pauseConditions": None})
    await h.converge(at(10_002))
    status = await h.status()
    assert status["currentStepIndex"] == 4 and status["stableRS"] == rev2
    assert (status["phase"], status["message"]) == ("Healthy", "")
    assert not status.get("controllerPause")
    assert await h.replicas() == {rev1: 0, rev2: 10}


async def test_promote_full(h: Harness) -> None:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    rev1 = await canary_deployed(h, steps=steps)
    rev2 = await update(h, 10)
    await h.converge(at(11))
    await h.request({"promoteFull": True})
    await h.converge(at(20))
    status = await h.status()
    assert status["stableRS"] == rev2 and status["currentStepIndex"] == 4
    assert not status.get("promoteFull") and "pauseConditions" not in status
    assert status["phase"] == "Healthy"
    assert await h.replicas() == {rev1: 0, rev2: 10}


async def test_spec_paused_is_manually_paused_and_halts_scaling(h: Harness) -> None:
    rev1 = await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {}}])
    await h.patch_spec({"paused": True, "template": template("demo:2")})
    await h.step(at(10))
    await h.make_all_available()
    await h.step(at(11))
    status = await h.status()
    rev2 = status["currentPodHash"]
    assert (status["phase"], status["message"]) == ("Paused", "manually paused")
    assert await h.replicas() == {rev1: 10, rev2: 0}
    assert condition(status, "Paused")["status"] == "True"
    await h.patch_spec({"paused": False})
    await h.converge(at(12))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Paused", "CanaryPauseStep")
    assert await h.replicas() == {rev1: 5, rev2: 5}


async def test_pause_conditions_on_progressing(h: Harness) -> None:
    await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {}}])
    await update(h, 10)
    await h.converge(at(11))
    status = await h.status()
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "RolloutPaused")
    await h.patch_spec({"paused": True})
    await h.request({"pauseConditions": None})
    await h.step(at(20))
    await h.patch_spec({"paused": False})
    await h.step(at(21))
    await h.step(at(22))
    status = await h.status()
    paused = condition(status, "Paused")
    assert (paused["status"], paused["message"]) == ("False", "Rollout is paused")


async def test_manual_pause_does_not_count_against_progress_deadline(h: Harness) -> None:
    await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {}}], progressDeadlineSeconds=60)
    await update(h, 10)
    await h.step(at(11))  # the canary pods never become available
    await h.patch_spec({"paused": True})
    await h.step(at(20))
    await h.step(at(21))
    await h.patch_spec({"paused": False})
    for now in (1000, 1001, 1002):
        await h.step(at(now))
    assert (await h.status())["phase"] != "Degraded"
    await h.step(at(1100))
    assert (await h.status())["phase"] == "Degraded"


# ------------------------------------------------------------------------------------ abort, retry


async def canary_aborted(h: Harness) -> tuple[str, str]:
    rev1 = await canary_deployed(h, services=True, steps=[{"setWeight": 50}, {"pause": {}}])
    rev2 = await update(h, 10)
    await h.converge(at(11))
    assert await h.selector("canary") == rev2 and await h.selector("stable") == rev1
    await h.request({"abort": True})
    await h.step(at(100))
    return rev1, rev2


async def test_abort(h: Harness) -> None:
    rev1, rev2 = await canary_aborted(h)
    status = await h.status()
    assert status["currentStepIndex"] == 0
    assert (status["phase"], status["message"]) == (
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 2",
    )
    assert status["abort"] is True and status["abortedAt"] == "2026-03-01T12:01:40Z"
    assert "pauseConditions" not in status and not status.get("controllerPause")
    assert status["stableRS"] == rev1 and status["currentPodHash"] == rev2
    assert await h.selector("canary") == rev1  # basic canary: the canary Service goes back to stable
    assert await h.selector("stable") == rev1
    await h.converge(at(101))
    assert await h.replicas() == {rev1: 10, rev2: 0}
    status = await h.status()
    assert status["phase"] == "Degraded" and status["currentStepIndex"] == 0
    assert [e for e in h.events if e[1] == "RolloutAborted"] == [
        ("Warning", "RolloutAborted", "Rollout aborted update to revision 2")
    ]


async def test_retry_starts_again_from_step_zero(h: Harness) -> None:
    rev1, rev2 = await canary_aborted(h)
    await h.converge(at(101))
    await h.request({"abort": False})
    await h.step(at(200))
    status = await h.status()
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "RolloutRetry")
    assert "abortedAt" not in status and status["phase"] != "Degraded"
    await h.converge(at(201))
    status = await h.status()
    assert status["currentStepIndex"] == 1 and pauses(status) == ["CanaryPauseStep"]
    assert await h.replicas() == {rev1: 5, rev2: 5}
    assert await h.selector("canary") == rev2


async def test_new_template_while_aborted_clears_abort(h: Harness) -> None:
    rev1, rev2 = await canary_aborted(h)
    await h.converge(at(101))
    rev3 = await update(h, 110, "demo:3")
    status = await h.status()
    assert rev3 not in (rev1, rev2)
    assert not status.get("abort") and "abortedAt" not in status
    assert status["currentStepIndex"] == 0 and status["phase"] != "Degraded"
    assert all(c.get("reason") != "RolloutAborted" for c in status["conditions"])
    await h.converge(at(111))
    status = await h.status()
    assert status["currentStepIndex"] == 1 and pauses(status) == ["CanaryPauseStep"]
    assert await h.replicas() == {rev1: 5, rev2: 0, rev3: 5}
    assert await h.selector("canary") == rev3 and await h.selector("stable") == rev1


async def test_promote_full_while_aborted_promotes(h: Harness) -> None:
    rev1, rev2 = await canary_aborted(h)
    await h.converge(at(101))
    await h.request({"promoteFull": True})
    await h.converge(at(200))
    status = await h.status()
    assert not status.get("abort") and status["stableRS"] == rev2
    assert status["phase"] == "Healthy"
    assert await h.replicas() == {rev1: 0, rev2: 10}


async def test_back_to_stable_template_is_a_fast_rollback(h: Harness) -> None:
    steps = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}]
    rev1 = await canary_deployed(h, steps=steps)
    rev2 = await update(h, 10)
    await h.converge(at(11))
    assert (await h.status())["currentStepIndex"] == 1
    assert await update(h, 20, "demo:1") == rev1
    status = await h.status()
    assert status["currentStepIndex"] == 4 and "pauseConditions" not in status
    await h.converge(at(21))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Healthy", "")
    assert await h.replicas() == {rev1: 10, rev2: 0}


async def test_fast_rollback_event(h: Harness) -> None:
    await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {}}])
    await update(h, 10)
    await h.converge(at(11))
    await update(h, 20, "demo:1")
    assert ("Normal", "SkipSteps", "Rollback to stable ReplicaSets") in h.events


async def test_canary_service_waits_for_an_available_canary_pod(h: Harness) -> None:
    rev1 = await canary_deployed(h, services=True, steps=[{"setWeight": 50}, {"pause": {}}])
    rev2 = await update(h, 10)
    await h.step(at(11))
    assert (await h.replicas())[rev2] > 0
    assert await h.selector("canary") == rev1
    await h.make_available(rev2, available=1)
    await h.step(at(12))
    assert await h.selector("canary") == rev2


async def test_skip_current_step(h: Harness) -> None:
    """Argo CD's ``skip-current-step`` action writes currentStepIndex+1; the controller goes on from there."""
    rev1 = await canary_deployed(
        h, steps=[{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}]
    )
    rev2 = await update(h, 10)
    await h.step(at(11))  # the canary pods never become available: stuck at setWeight 50
    assert (await h.status())["currentStepIndex"] == 0
    await h.request({"currentStepIndex": 2})
    await h.make_all_available()
    await h.converge(at(12))
    status = await h.status()
    assert status["currentStepIndex"] == 3 and pauses(status) == ["CanaryPauseStep"]
    assert await h.replicas() == {rev1: 2, rev2: 8}


async def test_abort_of_a_fully_promoted_rollout_is_removed(h: Harness) -> None:
    rev1 = await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {}}])
    await h.request({"abort": True})
    await h.step(at(10))
    status = await h.status()
    assert not status.get("abort") and status["phase"] == "Healthy"
    assert await h.replicas() == {rev1: 10}


async def test_step_change_resets_the_index(h: Harness) -> None:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
    rev1 = await canary_deployed(h, steps=steps)
    rev2 = await update(h, 10)
    await h.converge(at(11))
    await h.request({"pauseConditions": None})
    await h.converge(at(12))
    status = await h.status()
    assert status["currentStepIndex"] == 3
    old_step_hash = status["currentStepHash"]
    await h.patch_spec({"strategy": {"canary": {"steps": [{"setWeight": 30}, {"pause": {}}]}}})
    await h.step(at(20))
    status = await h.status()
    assert status["currentStepHash"] != old_step_hash
    assert status["currentStepIndex"] == 0 and "pauseConditions" not in status
    assert status["currentPodHash"] == rev2 and status["stableRS"] == rev1
    await h.converge(at(21))
    status = await h.status()
    assert status["currentStepIndex"] == 1 and pauses(status) == ["CanaryPauseStep"]
    assert await h.replicas() == {rev1: 7, rev2: 3}


# ------------------------------------------------------------------------------------ progress deadline


async def stuck_canary(h: Harness, **spec: Any) -> tuple[str, str]:
    """An update whose canary pods never become available (the stable ones follow their spec)."""
    rev1 = await canary_deployed(
        h, steps=[{"setWeight": 50}, {"pause": {}}], progressDeadlineSeconds=60, **spec
    )
    rev2 = await update(h, 10)
    await h.step(at(11))
    await h.make_available(rev1)
    await h.step(at(12))
    return rev1, rev2


async def test_progress_deadline_exceeded(h: Harness) -> None:
    _, rev2 = await stuck_canary(h)
    counts = await h.replicas()
    await h.step(at(50))
    assert (await h.status())["phase"] == "Progressing"
    await h.step(at(200))
    status = await h.status()
    message = f'ReplicaSet "demo-{rev2}" has timed out progressing.'
    assert (status["phase"], status["message"]) == ("Degraded", f"ProgressDeadlineExceeded: {message}")
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False",
        "ProgressDeadlineExceeded",
        message,
    )
    assert not status.get("abort")
    assert await h.replicas() == counts  # no abort: nothing moves back


async def test_progress_after_deadline_recovers(h: Harness) -> None:
    _, rev2 = await stuck_canary(h)
    await h.step(at(200))
    assert (await h.status())["phase"] == "Degraded"
    await h.make_available(rev2)
    await h.converge(at(201))
    status = await h.status()
    assert (status["phase"], status["message"]) == ("Paused", "CanaryPauseStep")


async def test_progress_deadline_abort(h: Harness) -> None:
    rev1, rev2 = await stuck_canary(h, progressDeadlineAbort=True)
    await h.step(at(200))
    status = await h.status()
    timed_out = f'ReplicaSet "demo-{rev2}" has timed out progressing.'
    assert status["abort"] is True
    assert (status["phase"], status["message"]) == (
        "Degraded",
        f"RolloutAborted: Rollout aborted update to revision 2: {timed_out}",
    )
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "RolloutAborted")
    assert ("Warning", "RolloutAborted", f"Rollout aborted update to revision 2: {timed_out}") in h.events
    await h.converge(at(201))
    assert await h.replicas() == {rev1: 10, rev2: 0}
    status = await h.status()
    assert status["message"] == f"RolloutAborted: Rollout aborted update to revision 2: {timed_out}"


# ------------------------------------------------------------------------------------ history, undo


async def test_revision_history_limit(h: Harness) -> None:
    first = await canary_deployed(h, replicas=1, revisionHistoryLimit=1)
    hashes = [first]
    for i, image in enumerate(("demo:2", "demo:3", "demo:4"), start=1):
        hashes.append(await update(h, 10 * i, image))
        await h.converge(at(10 * i + 1))
    await h.step(at(100))
    assert set(await h.replicas()) == {hashes[2], hashes[3]}
    await h.patch_spec({"revisionHistoryLimit": 0})
    await h.step(at(101))
    assert set(await h.replicas()) == {hashes[3]}


async def test_undo_to_an_older_revision(h: Harness) -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    rev1 = await canary_deployed(h, replicas=2, steps=steps)
    for i, image in enumerate(("demo:2", "demo:3"), start=1):
        await update(h, 10 * i, image)
        await h.request({"promoteFull": True})
        await h.converge(at(10 * i + 1))
    rev3 = (await h.status())["stableRS"]
    assert await update(h, 100, "demo:1") == rev1  # kubectl argo rollouts undo --to-revision=1
    rs = await h.rs(rev1)
    assert rs["metadata"]["annotations"][rsutil.REVISION] == "4"
    assert rs["metadata"]["annotations"][rsutil.REVISION_HISTORY] == "1"
    assert (await h.rollout())["metadata"]["annotations"][rsutil.REVISION] == "4"
    status = await h.status()
    assert status["currentStepIndex"] == 0 and status["stableRS"] == rev3  # an ordinary update
    await h.converge(at(101))
    status = await h.status()
    assert status["currentStepIndex"] == 1 and pauses(status) == ["CanaryPauseStep"]
    counts = await h.replicas()
    assert len(counts) == 3 and (counts[rev1], counts[rev3]) == (1, 1)
    assert ("Normal", "RolloutUpdated", "Rollout updated to revision 4") in h.events
    items, _ = await h.client.list(kinds.REPLICASET, h.namespace)
    assert len(items) == 3


# ------------------------------------------------------------------------------------ events


async def test_events_of_an_update(h: Harness) -> None:
    await canary_deployed(h, services=True, steps=[{"setWeight": 50}, {"pause": {"duration": 10}}])
    h.events.clear()
    await update(h, 10)
    await h.converge(at(11))
    await h.converge(at(30))
    reasons = set(h.reasons())
    expected = {"NewReplicaSetCreated", "RolloutUpdated", "ScalingReplicaSet", "SwitchService"}
    assert expected | {"RolloutStepCompleted", "RolloutPaused", "RolloutCompleted"} <= reasons
    assert all(kind == "Normal" for kind, _, _ in h.events)


async def test_event_messages_match_upstream(h: Harness) -> None:
    await canary_deployed(h, steps=[{"setWeight": 50}, {"pause": {"duration": "10s"}}])
    rev2 = await update(h, 10)
    await h.converge(at(11))
    await h.converge(at(30))
    assert ("Normal", "NewReplicaSetCreated", f"Created ReplicaSet demo-{rev2} (revision 2)") in h.events
    assert ("Normal", "RolloutStepCompleted", "Rollout step 2/2 completed (pause: 10s)") in h.events
    assert ("Normal", "RolloutResumed", "Rollout is resumed") in h.events
    assert (
        "Normal",
        "RolloutCompleted",
        f"Rollout completed update to revision 2 ({rev2}): Completed all 2 canary steps",
    ) in h.events
