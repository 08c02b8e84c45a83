"""Promises that a plausible change to the code once broke without any test noticing.

Each test names the promise; each was checked by making the breaking change and watching it
fail (removing the backoff jitter, a zero default backoff, a polling ``result()``, an ETA that
is always now, a first SIGTERM that cancels running jobs, an untyped ``enqueue``, a worker
that ignores cancel messages, log lines without their structured fields, a ctx shared by
concurrent jobs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncjobs import Context, JobStatus, Queue, Worker, WorkerSettings, task
from asyncjobs._backoff import BACKOFF_BASE_SECONDS, retry_delay
from asyncjobs._models import job_info_from_fields

from .conftest import run_burst
from .redis_server import RedisServer
from .waiting import wait_until

ROOT = Path(__file__).parent.parent


def test_the_default_backoff_is_jittered() -> None:
    """Failures of many jobs at once must not retry in lock step."""
    draws = [retry_delay(None, 3) for _ in range(300)]
    assert len(set(draws)) > 250, "each retry draws its own delay"
    assert min(draws) < 0.5 * max(draws), "the draws cover the window, not one point"


def test_the_default_backoff_waits() -> None:
    """A job that fails is not retried at once by default: the mean delay after try n is about
    half of base * 2**(n - 1)."""
    for attempt in (1, 2, 4):
        mean = statistics.fmean(retry_delay(None, attempt) for _ in range(400))
        expected = BACKOFF_BASE_SECONDS * 2 ** (attempt - 1) / 2
        assert 0.7 * expected < mean < 1.3 * expected, (attempt, mean)


async def test_a_failed_try_is_deferred_by_the_default_backoff(queue: Queue) -> None:
    @task(name="fails_once", max_tries=2)
    async def fails_once(ctx: Context) -> None:
        raise ConnectionError("down")

    job = await queue.enqueue(fails_once)
    started = datetime.now(timezone.utc)
    worker = Worker(
        WorkerSettings(redis_url=queue.url, functions=[fails_once], queues=[queue.name])
    )
    run = asyncio.create_task(worker.run(handle_signals=False))

    async def retried() -> Any:
        info = await job.info()
        return info if info.status is JobStatus.DEFERRED else None

    info = await wait_until(retried, 10, "the failed try to be deferred")
    worker.stop()
    await run
    assert info.scheduled_at is not None and info.scheduled_at > started, "it waits first"


async def test_waiting_for_a_result_does_not_poll_redis() -> None:
    """``result()`` sleeps until Redis tells it the job changed: over one second of waiting it
    sends a handful of commands, where a 50 ms poll would send twenty."""
    server = RedisServer().start()
    try:
        async with Queue(server.url, name="waits") as queue:
            job = await queue.enqueue("never_runs")
            before = await _commands(queue)
            with pytest.raises(TimeoutError):
                await job.result(timeout=1.0)
            sent = await _commands(queue) - before
            assert sent <= 6, f"{sent} commands while waiting one second"
    finally:
        server.cleanup()


async def _commands(queue: Queue) -> int:
    stats = await queue.client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def test_the_eta_follows_the_pace_so_far() -> None:
    """At 25 % after 10 s, the job should end about 30 s from now."""
    now_ms = int(time.time() * 1000)
    info = job_info_from_fields(
        "j",
        "q",
        {
            b"task": b"t",
            b"payload": b"[[],{}]",
            b"status": b"in_progress",
            b"started_at": str(now_ms - 10_000).encode(),
            b"progress": b"0.25",
        },
    )
    assert info.eta is not None
    left = (info.eta - datetime.now(timezone.utc)).total_seconds()
    assert 28 < left < 32, left


@pytest.mark.slow
async def test_a_first_sigterm_lets_running_jobs_finish(redis_url: str, tmp_path: Path) -> None:
    """SIGTERM (what Kubernetes and systemd send) is a graceful stop: running jobs complete,
    none is cancelled or requeued, and the worker exits 0."""
    name = f"sigterm-{uuid.uuid4().hex[:8]}"
    module = tmp_path / "sigterm_tasks.py"
    starts = tmp_path / "starts.txt"  # a line per try begun: a requeued job shows twice
    module.write_text(
        "import asyncio\n"
        "from asyncjobs import WorkerSettings, task\n"
        "@task\n"
        "async def slow(ctx):\n"
        f"    with open({str(starts)!r}, 'a') as f: f.write(ctx.job_id + '\\n')\n"
        "    await asyncio.sleep(1.5)\n"
        "    return ctx.attempt\n"
        f"settings = WorkerSettings(functions=[slow], queues=[{name!r}], shutdown_grace=20)\n"
    )
    async with Queue(redis_url, name=name) as queue:
        jobs = [await queue.enqueue("slow") for _ in range(3)]
        env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "asyncjobs", "worker", "sigterm_tasks:settings"]
                + ["--redis-url", redis_url],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        try:

            async def all_running() -> bool:
                # The task bodies have begun: a claimed job whose task is not yet running is
                # not what a graceful stop promises to let finish.
                begun = starts.read_text().split() if starts.exists() else []
                return all(j.id in begun for j in jobs)

            await wait_until(all_running, 20, "the three jobs to start")
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == 0, log.read_text()[-2000:]
        for job in jobs:
            assert await job.result(timeout=1) == 1, "each job finished on its first try"
        # A cancelled try gives its attempt back, so the result alone cannot tell: count starts.
        assert sorted(starts.read_text().split()) == sorted(j.id for j in jobs), "ran twice"


async def test_a_cancel_request_stops_a_running_job_at_once(queue: Queue) -> None:
    """The worker acts on the cancel message, not only on its next lease tick (10 s here)."""
    cancelled = asyncio.Event()
    started = asyncio.Event()

    @task(name="cancel_me")
    async def cancel_me(ctx: Context) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    worker = Worker(
        WorkerSettings(
            redis_url=queue.url, functions=[cancel_me], queues=[queue.name], lease_seconds=30
        )
    )
    run = asyncio.create_task(worker.run(handle_signals=False))
    try:
        job = await queue.enqueue(cancel_me)
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.2)  # let the cancel listener's subscription settle
        assert await job.cancel()
        await asyncio.wait_for(cancelled.wait(), 3)
    finally:
        worker.stop()
        await run


async def test_job_log_lines_carry_their_fields(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    """Log shippers read job_id, task, queue, attempt, outcome and duration off each record."""

    @task(name="logged", max_tries=2, backoff=0)
    async def logged(ctx: Context) -> int:
        if ctx.attempt == 1:
            raise ValueError("first")
        return 1

    job = await queue.enqueue(logged)
    with caplog.at_level(logging.INFO, logger="asyncjobs.worker"):
        await run_burst(queue, [logged])
    records = {r.outcome: r for r in caplog.records if getattr(r, "job_id", None) == job.id}
    assert set(records) == {"retry", "succeeded"}
    for outcome, record in records.items():
        assert (record.task, record.queue, record.outcome) == ("logged", queue.name, outcome)
        assert record.attempt == (1 if outcome == "retry" else 2)
        assert isinstance(record.duration, float) and record.duration >= 0


async def test_each_job_keeps_its_own_ctx_writes(queue: Queue) -> None:
    """Three jobs running at once each set ctx["db"] in on_job_start: each reads its own, and
    the worker-wide state from on_startup stays as it was."""
    seen: dict[str, Any] = {}
    worker_state: dict[str, Any] = {}

    async def startup(state: dict[str, Any]) -> None:
        state["db"] = "shared"
        worker_state.update(state)

    async def job_start(ctx: Context) -> None:
        assert ctx["db"] == "shared", "a job starts from the worker's state"
        ctx["db"] = f"db-of-{ctx.job_id}"

    @task(name="reads_db")
    async def reads_db(ctx: Context) -> None:
        await asyncio.sleep(0.05)  # the other jobs set theirs meanwhile
        seen[ctx.job_id] = (ctx["db"], ctx.get("db"), "db" in ctx)

    jobs = [await queue.enqueue(reads_db) for _ in range(3)]
    worker = await run_burst(queue, [reads_db], on_startup=startup, on_job_start=job_start)
    for job in jobs:
        mine = f"db-of-{job.id}"
        assert seen[job.id] == (mine, mine, True)
    assert worker.state["db"] == "shared"


def test_the_typed_api_keeps_its_types() -> None:
    """tests/typing/check_api.py pins enqueue -> Job[R] and result() -> R under mypy --strict."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tests/typing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.slow
async def test_a_worker_exits_even_when_a_job_left_a_stubborn_task_behind(
    redis_url: str, tmp_path: Path
) -> None:
    """A task that starts a background task ignoring cancellation used to keep the worker
    from exiting on SIGTERM; now it exits, naming the task and the job that left it."""
    name = f"stubborn-{uuid.uuid4().hex[:8]}"
    module = tmp_path / "stubborn_tasks.py"
    module.write_text(
        "import asyncio\n"
        "from asyncjobs import WorkerSettings, task\n"
        "async def never_ends():\n"
        "    while True:\n"
        "        try:\n"
        "            await asyncio.sleep(3600)\n"
        "        except asyncio.CancelledError:\n"
        "            pass\n"
        "@task\n"
        "async def leaves_a_task(ctx):\n"
        "    ctx.queue.__dict__.setdefault('kept', []).append(asyncio.create_task(never_ends()))\n"
        f"settings = WorkerSettings(functions=[leaves_a_task], queues=[{name!r}])\n"
    )
    async with Queue(redis_url, name=name) as queue:
        job = await queue.enqueue("leaves_a_task")
        env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "asyncjobs", "worker", "stubborn_tasks:settings"]
                + ["--redis-url", redis_url],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        try:
            await job.result(timeout=20)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert code == 0, text[-2000:]
    assert took < 15, f"took {took:.1f}s to exit"
    assert "never_ends (left behind by leaves_a_task (job " in text, text[-2000:]
