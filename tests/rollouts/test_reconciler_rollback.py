"""Fast rollbacks and the limits on old ReplicaSets, step by step on the bare local cluster:
``spec.rollbackWindow`` (canary and blue-green), a blue-green return to a revision still up within its
scale-down delay, and ``scaleDownDelayRevisionLimit`` (research/rollouts.md §1.2, §2.7).

The harness is ``test_reconciler.py``'s.
"""

from __future__ import annotations

from typing import Any

from test_reconciler import Harness, at, blue_green_spec, canary_spec, client, h

from tugboat.rollouts import replicasets as rsutil

__all__ = ["client", "h"]  # fixtures shared with test_reconciler.py

STEPS = [{"setWeight": 50}, {"pause": {}}]


async def promoted_canary(h: Harness, images: list[str], **spec: Any) -> list[str]:
    """A canary Rollout taken through ``images`` one full promotion each; returns their hashes."""
    await h.create(canary_spec(replicas=2, steps=STEPS, **spec))
    await h.converge(at(0))
    hashes = [str((await h.status())["stableRS"])]
    for i, image in enumerate(images, start=1):
        await h.set_image(image)
        await h.step(at(10 * i))
        await h.request({"promoteFull": True})
        await h.converge(at(10 * i + 1))
        hashes.append(str((await h.status())["stableRS"]))
    return hashes


async def test_canary_rollback_within_window_skips_steps(h: Harness) -> None:
    rev1, rev2 = await promoted_canary(h, ["demo:2"], rollbackWindow={"revisions": 1})
    assert rev1 != rev2
    await h.set_image("demo:1")
    await h.step(at(100))
    status = await h.status()
    assert status["currentPodHash"] == rev1
    assert status["currentStepIndex"] == 2 and "pauseConditions" not in status
    await h.converge(at(101))
    status = await h.status()
    assert (status["phase"], status["stableRS"]) == ("Healthy", rev1)
    assert (await h.replicas())[rev1] == 2
    completed = [m for _, r, m in h.events if r == "RolloutCompleted"]
    assert completed[-1].endswith(": Rollback within window")


async def test_canary_rollback_outside_window_runs_the_steps(h: Harness) -> None:
    rev1, _, _ = await promoted_canary(h, ["demo:2", "demo:3"], rollbackWindow={"revisions": 1})
    await h.set_image("demo:1")  # two revisions back: revision 2 lies in between
    await h.step(at(100))
    await h.converge(at(101))
    status = await h.status()
    assert status["currentPodHash"] == rev1 and status["currentStepIndex"] == 1
    assert [p["reason"] for p in status["pauseConditions"]] == ["CanaryPauseStep"]


async def test_canary_without_window_an_older_revision_is_an_ordinary_update(h: Harness) -> None:
    rev1, _ = await promoted_canary(h, ["demo:2"])
    await h.set_image("demo:1")
    await h.step(at(100))
    await h.converge(at(101))
    status = await h.status()
    assert status["currentPodHash"] == rev1 and status["phase"] == "Paused"


async def test_blue_green_rollback_within_window_skips_the_pause(h: Harness) -> None:
    await h.create(
        blue_green_spec(autoPromotionEnabled=False, spec={"rollbackWindow": {"revisions": 3}}),
        services=("active", "preview"),
    )
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    await h.set_image("demo:2")
    await h.converge(at(10))
    await h.request({"pauseConditions": None})
    await h.converge(at(11))
    await h.converge(at(200))  # rev1's scale-down delay has passed: it is down to zero
    rev2 = str((await h.status())["stableRS"])
    assert (await h.replicas())[rev1] == 0 and rev2 != rev1
    await h.set_image("demo:1")
    await h.converge(at(300))
    status = await h.status()
    assert (status["phase"], status["stableRS"]) == ("Healthy", rev1)
    assert await h.selector("active") == rev1
    assert "pauseConditions" not in status


async def test_blue_green_return_within_scale_down_delay_is_a_fast_rollback(h: Harness) -> None:
    await h.create(
        blue_green_spec(autoPromotionEnabled=False, scaleDownDelaySeconds=60), services=("active", "preview")
    )
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    await h.set_image("demo:2")
    await h.converge(at(10))
    await h.request({"pauseConditions": None})
    await h.converge(at(11))
    assert rsutil.deadline_of(await h.rs(rev1)) is not None and (await h.replicas())[rev1] == 3
    await h.set_image("demo:1")  # within the 60 s: the old pods still run
    await h.step(at(20))
    status = await h.status()
    assert await h.selector("active") == rev1
    assert status["stableRS"] == rev1 and "pauseConditions" not in status
    await h.step(at(21))  # stable again: its old deadline has served
    assert rsutil.deadline_of(await h.rs(rev1)) is None
    completed = [m for _, r, m in h.events if r == "RolloutCompleted"]
    assert completed[-1].endswith(": Fast rollback")


async def test_blue_green_return_after_the_delay_pauses_as_usual(h: Harness) -> None:
    await h.create(
        blue_green_spec(autoPromotionEnabled=False, scaleDownDelaySeconds=5), services=("active", "preview")
    )
    await h.converge(at(0))
    await h.set_image("demo:2")
    await h.converge(at(10))
    await h.request({"pauseConditions": None})
    await h.converge(at(11))
    await h.converge(at(100))
    await h.set_image("demo:1")
    await h.converge(at(200))
    status = await h.status()
    assert status["phase"] == "Paused"
    assert [p["reason"] for p in status["pauseConditions"]] == ["BlueGreenPause"]


async def test_scale_down_delay_revision_limit(h: Harness) -> None:
    await h.create(
        blue_green_spec(scaleDownDelaySeconds=600, scaleDownDelayRevisionLimit=1),
        services=("active", "preview"),
    )
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    await h.set_image("demo:2")
    await h.converge(at(10))
    rev2 = str((await h.status())["stableRS"])
    assert await h.replicas() == {rev1: 3, rev2: 3}  # rev1 waits out its delay
    await h.set_image("demo:3")
    await h.converge(at(20))
    rev3 = str((await h.status())["stableRS"])
    # Only one old ReplicaSet may wait: the newest (rev2); rev1 goes at once.
    assert await h.replicas() == {rev1: 0, rev2: 3, rev3: 3}
    assert rsutil.deadline_of(await h.rs(rev2)) is not None


async def test_without_revision_limit_every_old_replicaset_waits(h: Harness) -> None:
    await h.create(blue_green_spec(scaleDownDelaySeconds=600), services=("active", "preview"))
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    for i, image in enumerate(("demo:2", "demo:3"), start=1):
        await h.set_image(image)
        await h.converge(at(10 * i))
    counts = await h.replicas()
    assert counts[rev1] == 3 and sorted(counts.values()) == [3, 3, 3]


async def test_revision_limit_zero_scales_down_at_once(h: Harness) -> None:
    await h.create(
        blue_green_spec(scaleDownDelaySeconds=600, scaleDownDelayRevisionLimit=0),
        services=("active", "preview"),
    )
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    await h.set_image("demo:2")
    await h.converge(at(10))
    assert (await h.replicas())[rev1] == 0


async def test_blue_green_fast_rollback_survives_a_reconcile_that_cannot_promote(h: Harness) -> None:
    await h.create(
        blue_green_spec(autoPromotionEnabled=False, scaleDownDelaySeconds=60), services=("active", "preview")
    )
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    await h.set_image("demo:2")
    await h.converge(at(10))
    await h.request({"pauseConditions": None})
    await h.converge(at(11))
    # Back to rev1 while the Rollout is paused: nothing is promoted, and rev1 stays a fast rollback.
    await h.patch_spec({"paused": True, "template": blue_green_spec()["template"]})
    await h.step(at(20))
    await h.step(at(21))
    assert (await h.status())["stableRS"] != rev1
    assert rsutil.deadline_of(await h.rs(rev1)) is not None
    await h.patch_spec({"paused": False})
    await h.step(at(22))
    status = await h.status()
    assert status["stableRS"] == rev1 and "pauseConditions" not in status
    assert await h.selector("active") == rev1
