"""Stopping background tasks: every task is cancelled before any is awaited; cancellation is no error."""

from __future__ import annotations

import asyncio

import pytest

from tugboat.util.tasks import cancel_and_wait


async def test_cancels_every_task_and_waits_for_their_cleanup() -> None:
    cleaned: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)
            cleaned.append(name)

    tasks = [asyncio.create_task(forever(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0)
    await cancel_and_wait(tasks)
    assert sorted(cleaned) == ["a", "b", "c"]
    assert all(task.cancelled() for task in tasks)


async def test_finished_tasks_and_an_empty_list_are_fine() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await cancel_and_wait([done])
    await cancel_and_wait([])


async def test_a_task_failing_otherwise_raises_after_all_were_cancelled() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    failing = asyncio.create_task(fails_on_cancel())
    other = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait([failing, other])
    assert other.cancelling() or other.cancelled()
    await cancel_and_wait([other])
