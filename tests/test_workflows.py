"""Workflows on every backend: chain, group, chord, nesting, failures, cancellation, crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncjobs import JobCancelled, JobFailed, JobStatus, Queue, chain, chord, group

from .test_crash import spawn_worker
from .workflow_tasks import add, collect, describe, explode, slow_square, square, wait_for

TASKS = [add, square, slow_square, collect, explode, describe, wait_for]
WORKFLOW_SETTINGS = "tests.workflow_tasks:settings"


def tag() -> str:
    return f"test:{{{uuid.uuid4().hex[:8]}}}"  # one hash tag: test keys live in one slot


async def test_chain_passes_results_along(queue: Queue, start_worker: Any) -> None:
    await start_worker(TASKS)
    job = await queue.enqueue(chain(add.si(1, 2), add.s(10), square.s()))
    assert await job.result(timeout=10) == 169
    info = await job.info()
    assert info.status is JobStatus.SUCCEEDED and info.task == "workflow:chain"
    assert (info.progress, info.message) == (1.0, "3 of 3 members done")


async def test_pipe_operator_builds_a_chain(queue: Queue, start_worker: Any) -> None:
    await start_worker(TASKS)
    job = await queue.enqueue(add.si(2, 3) | square.s())
    assert await job.result(timeout=10) == 25


async def test_chord_of_100_calls_back_once_with_results_in_order(
    queue: Queue, start_worker: Any
) -> None:
    calls = f"{tag()}:calls"
    await start_worker(TASKS, concurrency=20)
    job = await queue.enqueue(chord(group(square.si(i) for i in range(100)), collect.s(calls)))
    result = await job.result(timeout=30)
    assert result == {"count": 100, "total": sum(i * i for i in range(100)), "first": 0}
    assert int(await queue.client.get(calls)) == 1


async def test_group_result_is_in_member_order(queue: Queue, start_worker: Any) -> None:
    await start_worker(TASKS, concurrency=10)
    job = await queue.enqueue(group(square.si(i) for i in range(20)))
    assert await job.result(timeout=10) == [i * i for i in range(20)]


async def test_nesting_group_in_chain_and_chain_in_group(queue: Queue, start_worker: Any) -> None:
    await start_worker(TASKS, concurrency=10)
    # a group inside a chain: the next step gets the list (an implicit chord)
    fan_in = chain(add.si(1, 1), group(square.s(), add.s(5)), collect.s(f"{tag()}:c"))
    job = await queue.enqueue(fan_in)
    assert await job.result(timeout=10) == {"count": 2, "total": 4 + 7, "first": 4}
    # a chain inside a group
    nested = group(chain(add.si(1, 2), square.s()), square.si(4), group(add.si(1, 1)))
    job = await queue.enqueue(nested)
    assert await job.result(timeout=10) == [9, 16, [2]]


async def test_empty_group_in_a_chord_calls_back_with_nothing(
    queue: Queue, start_worker: Any
) -> None:
    await start_worker(TASKS)
    job = await queue.enqueue(chord(group([]), describe.s()))
    assert await job.result(timeout=10) == []


async def test_failed_member_fails_the_chord(queue: Queue, start_worker: Any) -> None:
    calls = f"{tag()}:calls"
    await start_worker(TASKS)
    job = await queue.enqueue(
        chord(group(square.si(1), explode.si(2), square.si(3)), collect.s(calls))
    )
    with pytest.raises(JobFailed) as caught:
        await job.result(timeout=10)
    assert caught.value.error_type == "ValueError"
    assert f"member {job.id}.1 (explode) failed: member 2 exploded" in caught.value.error_message
    assert await queue.client.get(calls) is None, "the callback never ran"
    dead = [d.id for d in await queue.dead_letters()]
    assert dead == [f"{job.id}.1"], "the failed member is in the dead letters, replayable"


async def test_allow_failures_marks_them_for_the_callback(queue: Queue, start_worker: Any) -> None:
    await start_worker(TASKS)
    members = group(square.si(1), explode.si(2), square.si(3))
    job = await queue.enqueue(chord(members, describe.s(), allow_failures=True))
    assert await job.result(timeout=10) == ["ok", "failed", "ok"]


async def test_cancelling_a_running_chain_stops_later_steps(
    queue: Queue, start_worker: Any
) -> None:
    release = f"{tag()}:release"
    await start_worker(TASKS)
    job = await queue.enqueue(chain(wait_for.si(release), square.si(3), square.si(4)))
    for _ in range(200):
        if await job.status() is JobStatus.IN_PROGRESS:
            break
        await asyncio.sleep(0.02)
    assert await job.cancel() is True
    with pytest.raises(JobCancelled):
        await job.result(timeout=5)
    await queue.client.set(release, 1)
    await asyncio.sleep(0.3)
    first = await queue.job(f"{job.id}.0").status()
    assert first is JobStatus.CANCELLED
    for later in (1, 2):
        assert await queue.job(f"{job.id}.{later}").status() is JobStatus.NOT_FOUND, "never ran"


async def test_workflow_members_must_share_the_queue(queue: Queue) -> None:
    with pytest.raises(ValueError, match="a workflow runs on one queue"):
        await queue.enqueue(chain(add.si(1, 2), square.s(_queue_name="elsewhere")))
    with pytest.raises(TypeError, match="wrong arguments for task 'add'"):
        await queue.enqueue(chain(square.si(1), add.s(1, 2)))


async def test_watching_a_chord_counts_members(queue: Queue, start_worker: Any) -> None:
    await start_worker(TASKS, concurrency=5)
    runs = f"{tag()}:runs"
    job = await queue.enqueue(chord(group(slow_square.si(i, 0.05, runs) for i in range(10)),
                                    collect.s(f"{tag()}:c")))  # fmt: skip
    messages = [info.message async for info in job.watch()]
    assert messages[-1] == "11 of 11 members done"
    counts = [int(m.split(" ")[0]) for m in messages if m]
    assert counts == sorted(counts), "progress only moves forward"


@pytest.mark.slow
async def test_sigkill_mid_chord_still_calls_back_once(redis_url: str, tmp_path: Path) -> None:
    name = f"wf-{uuid.uuid4().hex[:8]}"
    runs, calls = f"{tag()}:runs", f"{tag()}:calls"
    async with Queue(redis_url, name=name) as queue:
        members = group(slow_square.si(i, 0.01, runs) for i in range(500))
        job = await queue.enqueue(chord(members, collect.s(calls)))
        victim = spawn_worker(redis_url, name, tmp_path / "victim.log", WORKFLOW_SETTINGS)
        try:
            for _ in range(500):  # kill once a good part of the members ran
                if await queue.client.hlen(runs) >= 150:
                    break
                await asyncio.sleep(0.02)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        done_before = await queue.client.hlen(runs)
        assert 0 < done_before < 500, "the kill came mid-chord"
        rescuer = spawn_worker(redis_url, name, tmp_path / "rescuer.log", WORKFLOW_SETTINGS)
        try:
            result = await job.result(timeout=60)
        finally:
            rescuer.send_signal(signal.SIGTERM)
            rescuer.wait(15)
        assert result == {"count": 500, "total": sum(i * i for i in range(500)), "first": 0}
        assert int(await queue.client.get(calls)) == 1, "the callback ran exactly once"
        assert await queue.client.hlen(runs) == 500, "every member ran at least once"
