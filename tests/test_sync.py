"""The blocking client: the async Queue underneath, run on a private loop in a daemon thread."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from asyncjobs import Context, JobFailed, JobStatus, Queue, Worker, WorkerSettings, sync, task


@task(name="sync.add")
async def add(ctx: Context, a: int, b: int) -> int:
    await ctx.progress(0.5, stage="adding")
    return a + b


@task(name="sync.fail", max_tries=1)
async def fail(ctx: Context, why: str) -> None:
    raise ValueError(why)


@contextmanager
def worker_thread(url: str, queue_name: str, functions: list[Any]) -> Iterator[Worker]:
    """A worker on its own event loop in its own thread, stopped gracefully on exit."""
    worker = Worker(
        WorkerSettings(redis_url=url, functions=functions, queues=[queue_name], lease_seconds=2.0)
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(worker.run(handle_signals=False),), daemon=True
    )
    thread.start()
    try:
        yield worker
    finally:
        loop.call_soon_threadsafe(worker.stop)
        thread.join(10)
        loop.close()
        assert not thread.is_alive()


def test_enqueue_and_result_from_a_thread_without_a_loop(backend_url: str) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    with sync.Queue(backend_url, name=name) as queue, worker_thread(backend_url, name, [add]):
        job = queue.enqueue(add, 1, 2)
        assert job.result(timeout=5) == 3
        assert job.status() is JobStatus.SUCCEEDED
        info = job.info()
        assert (info.task, info.args, info.progress, info.stage) == (
            "sync.add",
            [1, 2],
            0.5,
            "adding",
        )
        assert queue.job(job.id).result(timeout=1) == 3  # a handle by id sees the same job
        by_name = queue.enqueue("sync.add", 2, b=3)
        assert by_name.result(timeout=5) == 5


def test_failure_timeout_and_cancel(backend_url: str) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    with sync.Queue(backend_url, name=name) as queue:
        waiting = queue.enqueue(add, 1, 1)
        with pytest.raises(TimeoutError):
            waiting.result(timeout=0.05)  # no worker yet
        later = queue.enqueue(add, 1, 1, _defer_by=60)
        assert later.status() is JobStatus.DEFERRED
        assert later.cancel() is True
        assert later.status() is JobStatus.CANCELLED
        with worker_thread(backend_url, name, [add, fail]):
            failing = queue.enqueue(fail, "bad input")
            with pytest.raises(JobFailed) as caught:
                failing.result(timeout=5)
            assert caught.value.error_type == "ValueError"
            assert caught.value.error_message == "bad input"
            assert waiting.result(timeout=5) == 2
        assert failing.cancel() is False  # it had already ended


async def test_duplicates_and_batches(queue: Queue, start_worker: Any) -> None:
    """Here the worker runs in the test's loop; the blocking calls go through to_thread."""
    await start_worker([add])
    client = sync.Queue(queue.url, name=queue.name)
    try:
        first = await asyncio.to_thread(client.enqueue, add, 1, 2, _job_id="same")
        again = await asyncio.to_thread(client.enqueue, add, 5, 5, _job_id="same")
        assert (first.duplicate, again.duplicate, again.id) == (False, True, first.id)
        items: list[Any] = [(add, (i, i), {}) for i in range(3)] + [(add, (), {"a": 1, "b": 0})]
        batch = await asyncio.to_thread(client.enqueue_many, items)
        results = [await asyncio.to_thread(job.result, 5) for job in batch]
        assert results == [0, 2, 4, 1]
        assert await asyncio.to_thread(again.result, 5) == 3  # the first job's arguments won
        # The async client sees the jobs the blocking one made: one implementation, one store.
        assert await queue.job(first.id).status() is JobStatus.SUCCEEDED
    finally:
        await asyncio.to_thread(client.close)


async def test_calls_inside_a_running_loop_are_refused(backend_url: str) -> None:
    client = sync.Queue(backend_url)
    with pytest.raises(RuntimeError, match=r"asyncjobs\.Queue"):
        client.enqueue(add, 1, 2)
    with pytest.raises(RuntimeError, match="event loop"):
        client.job("some-id").status()
    assert client.thread is None  # refused before anything started
    client.close()


def test_close_stops_the_thread_and_later_calls_fail(backend_url: str) -> None:
    queue = sync.Queue(backend_url)
    assert queue.thread is None  # nothing starts before the first call
    queue.job("nope").status()
    thread = queue.thread
    assert thread is not None and thread.is_alive() and thread.daemon
    queue.close()
    assert not thread.is_alive()
    assert thread not in threading.enumerate()
    with pytest.raises(RuntimeError, match="closed"):
        queue.enqueue(add, 1, 2)
    queue.close()  # idempotent


def test_unreachable_redis_fails_clearly_and_leaves_no_thread() -> None:
    from asyncjobs import RedisUnavailable

    before = set(threading.enumerate())
    queue = sync.Queue("redis://127.0.0.1:1/0")
    with pytest.raises(RedisUnavailable, match="cannot reach Redis"):
        queue.enqueue(add, 1, 2)
    assert set(threading.enumerate()) == before
    queue.close()


def test_a_cron_added_from_sync_code_ticks_on_a_running_worker(backend_url: str) -> None:
    """django-celery-beat's use: schedules edited from a (sync) admin view."""
    from asyncjobs import cron

    name = f"t-{uuid.uuid4().hex[:12]}"
    ran = threading.Event()

    @task(name="sync.tick")
    async def tick(ctx: Context) -> None:
        ran.set()

    with sync.Queue(backend_url, name=name) as queue, worker_thread(backend_url, name, [tick]):
        info = queue.add_cron(cron("sync.tick", "* * * * * *", name="every-second"))
        assert info.name == "every-second" and info.source == "runtime"
        assert ran.wait(10), "the running worker picked it up"
        assert [c.name for c in queue.crons()] == ["every-second"]
        assert queue.remove_cron("every-second") is True
        assert queue.crons() == []
