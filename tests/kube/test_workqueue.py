"""The work queue: de-duplication, no concurrent processing of one key, backoff, delayed adds."""

from __future__ import annotations

import asyncio

from tugboat.kube.workqueue import WorkQueue, run_workers


async def test_keys_are_deduplicated_and_requeued_after_processing() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    key = await queue.get()
    assert key == "a"
    queue.add("a")  # while processing: not handed out again until done
    assert await queue.get() == "b"
    assert len(queue) == 0
    queue.done("a")
    assert await queue.get() == "a"


async def test_rate_limited_requeue_backs_off_and_forget_resets() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        queue.add_rate_limited("k")
        key = await queue.get()
        queue.done(key)
    assert queue.failures("k") == 3
    assert loop.time() - started >= 0.01 + 0.02 + 0.04 - 0.005
    queue.forget("k")
    assert queue.failures("k") == 0


async def test_run_workers_retries_failures_and_honours_requeue_after() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=0.001)
    calls: list[str] = []

    async def handler(key: str) -> float | None:
        calls.append(key)
        if key == "flaky" and calls.count("flaky") < 3:
            raise RuntimeError("not yet")
        if key == "later" and calls.count("later") == 1:
            return 0.01
        return None

    runner = asyncio.create_task(run_workers(queue, handler, workers=2))
    for key in ("flaky", "later", "plain"):
        queue.add(key)
    for _ in range(200):
        if calls.count("flaky") == 3 and calls.count("later") == 2:
            break
        await asyncio.sleep(0.005)
    queue.shutdown()
    await asyncio.wait_for(runner, 2)
    assert calls.count("flaky") == 3
    assert calls.count("later") == 2
    assert calls.count("plain") == 1
