"""Python-version shims: shutting background tasks down even when a cancellation is lost."""

from __future__ import annotations

import asyncio

import pytest

from asyncjobs._compat import cancel_and_wait


async def test_cancel_and_wait_outlasts_a_swallowed_cancellation() -> None:
    cancels = 0

    async def swallows_the_first_cancel() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancels += 1
                if cancels == 2:
                    raise

    task = asyncio.create_task(swallows_the_first_cancel())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_and_wait(task))
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert done, "the task was cancelled again, not waited on for 30 s"
    assert task.cancelled() and cancels == 2


async def test_cancel_and_wait_raises_what_the_task_raised() -> None:
    async def broken() -> None:
        raise ValueError("a bug in a background loop")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="background loop"):
        await cancel_and_wait(task)


async def test_cancel_and_wait_on_a_finished_task_returns_at_once() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    await cancel_and_wait(task)
    assert task.done() and not task.cancelled()
