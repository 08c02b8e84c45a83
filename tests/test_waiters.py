"""Result waiters across a dropped subscription: a job that ends while the waiter's pub/sub
connection is gone still wakes it (the waiter re-reads its job once it is subscribed again)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from asyncjobs import Context, JobCancelled, Queue, task
from asyncjobs._store.scripts import load_scripts

from .late_subscribe import job_ended_before_the_subscribe_is_taken
from .waiting import wait_until


@task
async def never_run(ctx: Context) -> None:  # no worker runs it: the test ends it by hand
    pass


async def test_a_job_ended_while_the_subscription_was_cut_still_wakes_its_waiter(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(redis_url, name=queue_name) as queue:
        job = await queue.enqueue(never_run)
        waiter = asyncio.create_task(job.result(timeout=30))
        raw = aioredis.Redis.from_url(redis_url)
        try:
            keys = queue.keys_for(queue_name)

            async def subscribed() -> bool:
                [(_, count)] = await raw.pubsub_numsub(keys.events)
                return bool(count)

            await wait_until(subscribed, 5, "the waiter's subscription")
            # One batch, run by Redis in order: the waiter's connection is cut, then the job
            # is cancelled and its event published, before the waiter can subscribe again.
            cancel = list(queue.store.command("cancel", keys, id=job.id))
            cancel[:2] = ["EVAL", load_scripts()["cancel"].source]
            async with raw.pipeline(transaction=False) as batch:
                batch.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
                batch.execute_command(*cancel)
                killed, _ = await batch.execute()
            assert killed >= 1
            with pytest.raises(JobCancelled):
                await asyncio.wait_for(waiter, 10)
        finally:
            waiter.cancel()
            await raw.aclose()


async def test_a_job_that_ends_before_the_server_takes_the_subscribe_still_wakes_its_waiter(
    backend_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py sends SUBSCRIBE without waiting for it: the server may take it after the waiter
    read its job and after the job ended, so the end was announced to nobody. The
    subscription's confirmation wakes the waiter to read its job again."""
    await job_ended_before_the_subscribe_is_taken(backend_url, queue_name, monkeypatch)
