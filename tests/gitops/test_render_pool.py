"""The render worker pool: results and errors, timeouts that kill, crashes, and recovery."""

from __future__ import annotations

import asyncio
import operator
import os
import time

import pytest

from tugboat.gitops import render
from tugboat.gitops.render import manifests, pool


async def test_results_and_errors_cross_the_process_boundary() -> None:
    assert await pool.run(operator.add, 2, 3, timeout=30, what="adding") == 5
    with pytest.raises(
        render.RenderError,
        match=r"^kustomize build output: line 2, column 1: did not find expected node content",
    ):
        await pool.run(
            manifests.parse_tool_output, b"a: [", "kustomize build output", timeout=30, what="parsing"
        )


async def test_a_task_over_its_timeout_is_killed_and_its_neighbour_retried() -> None:
    started = time.monotonic()
    slow = asyncio.ensure_future(pool.run(time.sleep, 60, timeout=1, what="sleeping"))
    neighbour = asyncio.ensure_future(pool.run(time.sleep, 1.5, timeout=30, what="napping"))
    with pytest.raises(render.RenderError, match=r"^sleeping timed out after 1s$"):
        await slow
    assert await neighbour is None  # killed with the pool at 1 s, then run again
    assert time.monotonic() - started < 20
    assert await pool.run(operator.mul, 6, 7, timeout=30, what="multiplying") == 42


async def test_a_worker_that_dies_is_reported_and_replaced() -> None:
    with pytest.raises(render.RenderError, match="the render worker process died"):
        await pool.run(os._exit, 3, timeout=30, what="crashing")
    assert await pool.run(operator.add, 1, 1, timeout=30, what="adding") == 2


async def test_shutdown_stops_the_workers_and_a_new_pool_starts_on_demand() -> None:
    assert await pool.run(operator.neg, 1, timeout=30, what="negating") == -1
    pool.shutdown()
    assert await pool.run(operator.neg, 2, timeout=30, what="negating") == -2


async def test_shutdown_with_kill_fails_running_tasks_at_once() -> None:
    running = asyncio.ensure_future(pool.run(time.sleep, 60, timeout=120, what="sleeping"))
    await asyncio.sleep(1)  # let the worker start it
    started = time.monotonic()
    pool.shutdown(kill=True)
    with pytest.raises(render.RenderError, match=r"^sleeping: the render workers were shut down$"):
        await running
    assert time.monotonic() - started < 10
    assert await pool.run(operator.add, 2, 2, timeout=30, what="adding") == 4
