"""asyncjobs.testing and its pytest plugin, as users' own tests use them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncjobs import Context, JobFailed, Retry, task
from asyncjobs.testing import Harness

from .redis_server import RedisServer

DOCS_TESTS = Path(__file__).parent.parent / "docs" / "examples" / "testing"


@task
async def greet(ctx: Context, name: str, *, loud: bool = False) -> str:
    return f"hello {name}{'!' if loud else ''}"


@task(max_tries=3, backoff=30)
async def wobbly(ctx: Context) -> int:
    if ctx.attempt < 3:
        raise ConnectionError("flaky")
    return ctx.attempt


@task
async def later(ctx: Context) -> str:
    if ctx.attempt == 1:
        raise Retry(defer=0.05)
    return "done"


def test_the_documented_tests_pass_as_a_users_project() -> None:
    """docs/testing.md's examples: a user's folder with the plugin in its conftest."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=DOCS_TESTS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 passed" in proc.stdout


async def test_assert_enqueued_compares_arguments_as_stored() -> None:
    async with Harness(functions=[greet]) as jobs:
        await jobs.queue.enqueue(greet, "ada", loud=True)
        [info] = await jobs.assert_enqueued(greet, args=("ada",), kwargs={"loud": True})
        assert info.task == "greet"
        await jobs.assert_enqueued("greet")  # any arguments
        with pytest.raises(AssertionError, match=r"found 0; waiting: greet\(args=\['ada'\]"):
            await jobs.assert_enqueued(greet, args=["bob"])
        with pytest.raises(AssertionError, match="expected 0 job"):
            await jobs.assert_not_enqueued(greet)
        report = await jobs.run_until_idle()
        assert report.succeeded == ["greet"] and report.tries[0].result == "hello ada!"
        await jobs.assert_not_enqueued(greet)


async def test_retries_run_at_once_unless_told_otherwise() -> None:
    async with Harness(functions=[wobbly]) as jobs:
        job = await jobs.queue.enqueue(wobbly)
        report = await jobs.run_until_idle()
        assert report.retried == ["wobbly", "wobbly"] and await job.result() == 3
        assert [type(e) for e in report.errors()] == [ConnectionError, ConnectionError]
    async with Harness(functions=[wobbly], fast_retries=False) as jobs:
        job = await jobs.queue.enqueue(wobbly)
        report = await jobs.run_until_idle()
        assert report.retried == ["wobbly"] and (await job.status()).value == "deferred"


async def test_include_deferred_waits_for_deferred_jobs() -> None:
    async with Harness(functions=[later]) as jobs:
        job = await jobs.queue.enqueue(later)
        await jobs.run_until_idle()
        assert (await job.status()).value == "deferred", "a plain run does not wait for it"
        await jobs.run_until_idle(include_deferred=True)
        assert await job.result() == "done"


async def test_max_jobs_and_run() -> None:
    async with Harness(functions=[greet]) as jobs:
        for name in ("a", "b", "c"):
            await jobs.queue.enqueue(greet, name)
        report = await jobs.run_until_idle(max_jobs=2)
        assert len(report.succeeded) == 2 and len(await jobs.enqueued(greet)) == 1
        assert await jobs.run(greet, "z") == "hello z"
        with pytest.raises(JobFailed, match="PayloadError"):
            await jobs.run("greet")


async def test_each_harness_has_its_own_backend() -> None:
    async with Harness(functions=[greet]) as one, Harness(functions=[greet]) as two:
        await one.queue.enqueue(greet, "only-here")
        assert len(await one.enqueued()) == 1 and await two.enqueued() == []


async def test_a_harness_on_a_real_redis(redis_server: RedisServer) -> None:
    async with Harness(functions=[greet], url=redis_server.url, queues=["harness-real"]) as jobs:
        assert await jobs.run(greet, "redis") == "hello redis"


async def test_a_harness_from_settings_runs_their_hooks() -> None:
    events: list[str] = []

    async def startup(state: dict[str, Any]) -> None:
        events.append("startup")

    class Settings:
        functions = [greet]
        on_startup = startup

    async with Harness(Settings) as jobs:
        job = await jobs.redis.enqueue_job("greet", "arq")
        await asyncio.wait_for(jobs.run_until_idle(), 30)
        assert events == ["startup"] and await job.result() == "hello arq"


async def test_running_keeps_a_worker_up_for_code_that_waits_for_results() -> None:
    async with Harness(functions=[greet]) as jobs:
        async with jobs.running() as report:
            job = await jobs.queue.enqueue(greet, "waiting")
            assert await job.result(timeout=10) == "hello waiting"
        assert report.succeeded == ["greet"]
