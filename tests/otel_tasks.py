"""Tasks of the tracing tests (the worker subprocess runs them through otel_worker.py)."""

from __future__ import annotations

import logging
from typing import cast

from opentelemetry import baggage

from asyncjobs import Context, Retry, task

log = logging.getLogger("tests.otel_tasks")


@task(max_tries=3, backoff=0)
async def flaky(ctx: Context, failures: int) -> int:
    """Fails its first ``failures`` tries, then returns its attempt."""
    log.info("flaky try %d starts", ctx.attempt)
    if ctx.attempt <= failures:
        raise ValueError(f"try {ctx.attempt} fails on purpose")
    return ctx.attempt


@task(max_tries=3)
async def retry_once(ctx: Context) -> str:
    if ctx.attempt == 1:
        raise Retry(defer=0.01)
    return "retried"


@task(max_tries=1)
async def broken(ctx: Context) -> None:
    raise RuntimeError("broken on purpose")


@task
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


@task
async def follow_up(ctx: Context, n: int) -> str:
    """Enqueues a job from inside a job (it continues this job's trace)."""
    job = await ctx.queue.enqueue(add, n, 1)
    return job.id


@task
async def own_redis_call(ctx: Context, key: str) -> str | None:
    """A task's own Redis call (traced when redis-py is instrumented), and the baggage it got."""
    await ctx.queue.client.set(key, "1", ex=60)
    return cast("str | None", baggage.get_baggage("tenant"))
