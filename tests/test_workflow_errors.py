"""Workflow error callbacks: `.on_error(sig)` on chain, group and chord, enqueued once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from asyncjobs import (
    JobCancelled,
    JobFailed,
    JobStatus,
    Queue,
    WorkflowFailure,
    chain,
    chord,
    group,
)

from .chaos.helpers import WorkerProcess
from .waiting import wait_until
from .workflow_tasks import (
    add,
    collect,
    describe,
    explode,
    killed_then_fails,
    note_call,
    note_failure,
    square,
    wait_for,
)

TASKS = [add, square, collect, explode, describe, wait_for, note_failure, note_call]
WORKFLOW_SETTINGS = "tests.workflow_tasks:settings"


def tag() -> str:
    return f"test:{{{uuid.uuid4().hex[:8]}}}"


async def failures(queue: Queue, log: str) -> list[WorkflowFailure]:
    return [WorkflowFailure.model_validate_json(v) for v in await queue.client.lrange(log, 0, -1)]


async def called(queue: Queue, log: str, n: int = 1) -> bool:
    return bool(await queue.client.llen(log) >= n)


async def test_a_chain_whose_second_step_fails_calls_its_error_callback_once(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker(TASKS)
    flow = chain(add.si(1, 2), explode.s(), square.s()).on_error(note_failure.s(log))
    job = await queue.enqueue(flow)
    with pytest.raises(JobFailed, match="member 3 exploded"):
        await job.result(timeout=10)
    callback = queue.job(f"{job.id}.on_error.0")
    assert await callback.result(timeout=10) == f"{job.id}.1"
    [failure] = await failures(queue, log)
    assert failure.workflow_id == job.id
    assert (failure.job_id, failure.task) == (f"{job.id}.1", "explode")
    assert (failure.error_type, failure.error_message) == ("ValueError", "member 3 exploded")
    assert [(s.job_id, s.task) for s in failure.succeeded] == [(f"{job.id}.0", "add")]
    assert await queue.job(failure.succeeded[0].job_id).result(timeout=1) == 3
    assert await queue.job(f"{job.id}.2").status() is JobStatus.NOT_FOUND, "never started"


async def test_a_group_with_two_failures_calls_back_once(queue: Queue, start_worker: Any) -> None:
    log = f"{tag()}:log"
    await start_worker(TASKS, concurrency=10)
    flow = group(explode.si(1), square.si(2), explode.si(3)).on_error(note_failure.s(log))
    job = await queue.enqueue(flow)
    with pytest.raises(JobFailed):
        await job.result(timeout=10)
    await queue.job(f"{job.id}.on_error.0").result(timeout=10)
    for member in ("0", "2"):  # both failing members have ended, one way or another
        await wait_until(lambda m=member: _ended(queue, f"{job.id}.{m}"), 10, "the members")
    [failure] = await failures(queue, log)
    assert failure.task == "explode"


async def _ended(queue: Queue, job_id: str) -> bool:
    return (await queue.job(job_id).status()).is_terminal


async def test_a_chord_whose_callback_fails_calls_its_error_callback(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker(TASKS)
    flow = chord(group(square.si(1), square.si(2)), explode.s()).on_error(note_failure.s(log))
    job = await queue.enqueue(flow)
    with pytest.raises(JobFailed):
        await job.result(timeout=10)
    await wait_until(lambda: called(queue, log), 10, "the error callback")
    [failure] = await failures(queue, log)
    assert (failure.job_id, failure.task) == (f"{job.id}.2", "explode")
    assert [s.task for s in failure.succeeded] == ["square", "square"]


async def test_nested_error_callbacks_each_run_once_innermost_first(
    queue: Queue, start_worker: Any
) -> None:
    inner, outer, untouched = f"{tag()}:inner", f"{tag()}:outer", f"{tag()}:untouched"
    await start_worker(TASKS)
    flow = chain(
        add.si(1, 2),
        chain(square.s(), explode.s()).on_error(note_failure.s(inner)),
        chain(square.s(), square.s()).on_error(note_failure.s(untouched)),
    ).on_error(note_failure.s(outer))
    job = await queue.enqueue(flow)
    with pytest.raises(JobFailed):
        await job.result(timeout=10)
    assert await queue.job(f"{job.id}.on_error.0").result(timeout=10) == f"{job.id}.2"
    assert await queue.job(f"{job.id}.on_error.2").result(timeout=10) == f"{job.id}.2"
    [in_failure], [out_failure] = await failures(queue, inner), await failures(queue, outer)
    assert in_failure.job_id == out_failure.job_id == f"{job.id}.2"
    assert [s.task for s in in_failure.succeeded] == ["square"], "its own node's members"
    assert [s.task for s in out_failure.succeeded] == ["add", "square"]
    assert await queue.client.llen(untouched) == 0, "that chain never failed"
    assert await queue.job(f"{job.id}.on_error.1").status() is JobStatus.NOT_FOUND


async def test_an_error_callback_on_a_nested_group_of_a_chord(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker(TASKS)
    header = group(square.si(1), explode.si(2)).on_error(note_failure.s(log))
    job = await queue.enqueue(chord(header, collect.s(f"{tag()}:c")))
    with pytest.raises(JobFailed):
        await job.result(timeout=10)
    await wait_until(lambda: called(queue, log), 10, "the group's error callback")
    [failure] = await failures(queue, log)
    assert failure.task == "explode"


async def test_an_immutable_error_callback_takes_no_failure(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker(TASKS)
    job = await queue.enqueue((square.si(2) | explode.s()).on_error(note_call.si(log)))
    with pytest.raises(JobFailed):
        await job.result(timeout=10)
    await wait_until(lambda: called(queue, log), 10, "the error callback")
    assert await queue.client.lrange(log, 0, -1) == [b"called"]


async def test_no_error_callback_for_success_tolerated_failures_or_a_cancel(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker(TASKS)
    ok = await queue.enqueue(chain(add.si(1, 1), square.s()).on_error(note_failure.s(log)))
    assert await ok.result(timeout=10) == 4
    tolerated = chord(group(square.si(1), explode.si(2), allow_failures=True), describe.s())
    job = await queue.enqueue(tolerated.on_error(note_failure.s(log)))
    assert await job.result(timeout=10) == ["ok", "failed"]
    release = f"{tag()}:release"
    cancelled = await queue.enqueue(
        chain(wait_for.si(release), square.si(3)).on_error(note_failure.s(log))
    )
    await wait_until(lambda: _running(queue, f"{cancelled.id}.0"), 10, "the first step")
    assert await cancelled.cancel() is True
    with pytest.raises(JobCancelled):
        await cancelled.result(timeout=5)
    await queue.client.set(release, 1)
    # a later workflow's callback runs after anything the earlier ones could have enqueued
    probe = await queue.enqueue(chain(explode.si(0)).on_error(note_failure.s(log)))
    with pytest.raises(JobFailed):
        await probe.result(timeout=10)
    await queue.job(f"{probe.id}.on_error.0").result(timeout=10)
    assert [f.workflow_id for f in await failures(queue, log)] == [probe.id]
    for job_id in (ok.id, job.id, cancelled.id):
        assert await queue.job(f"{job_id}.on_error.0").status() is JobStatus.NOT_FOUND


async def _running(queue: Queue, job_id: str) -> bool:
    return await queue.job(job_id).status() is JobStatus.IN_PROGRESS


async def test_cancelling_a_member_fails_the_workflow_and_calls_back(
    queue: Queue, start_worker: Any
) -> None:
    log, release = f"{tag()}:log", f"{tag()}:release"
    await start_worker(TASKS)
    job = await queue.enqueue(
        chain(wait_for.si(release), square.si(3)).on_error(note_failure.s(log))
    )
    await wait_until(lambda: _running(queue, f"{job.id}.0"), 10, "the first step")
    assert await queue.job(f"{job.id}.0").cancel() is True
    await wait_until(lambda: called(queue, log), 10, "the error callback")
    [failure] = await failures(queue, log)
    assert (failure.error_type, failure.job_id) == ("JobCancelled", f"{job.id}.0")
    await queue.client.set(release, 1)


async def test_a_bad_error_callback_is_refused_at_enqueue_with_nothing_written(
    queue: Queue,
) -> None:
    with pytest.raises(TypeError, match="on_error takes a task signature"):
        chain(square.si(1)).on_error(note_failure)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="wrong arguments for task 'note_failure'"):
        await queue.enqueue(chain(square.si(1)).on_error(note_failure.s()))
    with pytest.raises(ValueError, match="a workflow runs on one queue"):
        await queue.enqueue(group(square.si(1)).on_error(note_call.si("x").set(queue_name="other")))
    keys = queue.keys_for(queue.name)
    assert [k async for k in queue.client.scan_iter(match=keys.tag + ":job:*")] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tries", "error_type", "message"),
    [(2, "ValueError", "try 2 failed too"), (1, "WorkerLost", "the lease ran out on try 1")],
    ids=["then-fails", "lost-for-good"],
)
async def test_a_worker_sigkilled_mid_chain_still_gives_one_error_callback(
    redis_url: str, tmp_path: Path, tries: int, error_type: str, message: str
) -> None:
    """Step 2's first try dies with its worker; other workers either retry it and it fails,
    or (one try) recover it as lost for good: the error callback is enqueued once, runs once."""
    name = f"wf-err-{uuid.uuid4().hex[:8]}"
    log, marker = f"{tag()}:log", f"{tag()}:pid"
    async with Queue(redis_url, name=name) as queue:
        step = killed_then_fails.si(marker).set(max_tries=tries)
        flow = chain(add.si(1, 2), step, square.s())
        job = await queue.enqueue(flow.on_error(note_failure.s(log)))
        victim = WorkerProcess(redis_url, name, tmp_path / "victim.log", WORKFLOW_SETTINGS)
        victim.start()
        try:
            pid = await wait_until(lambda: queue.client.get(marker), 30, "step 2's first try")
            assert int(pid) == victim.pid
        finally:
            victim.kill()
        assert await queue.client.llen(log) == 0
        rescuers = [
            WorkerProcess(redis_url, name, tmp_path / f"rescuer{i}.log", WORKFLOW_SETTINGS)
            for i in range(2)
        ]
        for rescuer in rescuers:
            rescuer.start()
        try:
            with pytest.raises(JobFailed) as failed:
                await job.result(timeout=30)
            assert failed.value.error_type == error_type and message in str(failed.value)
            assert await queue.job(f"{job.id}.on_error.0").result(timeout=20) == f"{job.id}.1"
            # anything enqueued twice would run by the time a job enqueued now has run
            after = await queue.enqueue(chain(explode.si(0)).on_error(note_failure.s(log)))
            with pytest.raises(JobFailed):
                await after.result(timeout=20)
            await queue.job(f"{after.id}.on_error.0").result(timeout=20)
        finally:
            for rescuer in rescuers:
                rescuer.stop()
        calls = [orjson.loads(v)["workflow_id"] for v in await queue.client.lrange(log, 0, -1)]
        assert calls == [job.id, after.id], "one call for the killed chain"
        [failure] = (await failures(queue, log))[:1]
        assert failure.error_type == error_type and failure.error_message.startswith(message)
        assert [s.task for s in failure.succeeded] == ["add"]


async def test_an_error_callbacks_record_expires_like_any_jobs(
    queue: Queue, start_worker: Any
) -> None:
    await start_worker(TASKS)
    job = await queue.enqueue(chain(explode.si(1)).on_error(note_call.si(f"{tag()}:l")))
    with pytest.raises(JobFailed):
        await job.result(timeout=10)
    callback = queue.job(f"{job.id}.on_error.0")
    await callback.result(timeout=10)
    keys = queue.keys_for(queue.name)
    ttl = await queue.client.pttl(keys.job(callback.id))
    assert ttl > 0
