"""A pub/sub whose SUBSCRIBE the server takes late: what a busy server, or on a cluster another
node, does to a SUBSCRIBE that redis-py sent without waiting for its confirmation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from asyncjobs import Context, JobCancelled, Queue, task

from .waiting import wait_until


def taken_late(make_pubsub: Callable[..., Any], gate: asyncio.Event) -> Callable[..., Any]:
    """``make_pubsub`` (a Connection's ``pubsub``) whose pub/subs connect at once but send each
    SUBSCRIBE only once ``gate`` is set."""
    held: set[asyncio.Task[None]] = set()

    def make(*args: Any, **options: Any) -> Any:
        pubsub = make_pubsub(*args, **options)
        subscribe = pubsub.subscribe

        async def later(channels: tuple[str, ...]) -> None:
            await gate.wait()
            await subscribe(*channels)

        async def held_back(*channels: str) -> None:
            if hasattr(pubsub, "connect"):  # a reader can start reading: nothing arrives yet
                await pubsub.connect()
            task = asyncio.create_task(later(channels))
            held.add(task)
            task.add_done_callback(held.discard)

        pubsub.subscribe = held_back
        return pubsub

    return make


@task
async def ended_by_hand(ctx: Context) -> None:  # no worker runs it: the scenario cancels it
    pass


async def job_ended_before_the_subscribe_is_taken(
    url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiter reads its job (queued); the job is cancelled; only then does the server take
    the waiter's SUBSCRIBE. The waiter must still see the job end, well within its timeout."""
    gate = asyncio.Event()
    async with Queue(url, name=queue_name) as queue:
        connection = queue.store.connection
        monkeypatch.setattr(connection, "pubsub", taken_late(connection.pubsub, gate))
        reads: list[object] = []
        read = queue.store.job_values

        async def counted(*args: Any) -> object:
            reads.append(await read(*args))
            return reads[-1]

        monkeypatch.setattr(queue.store, "job_values", counted)
        job = await queue.enqueue(ended_by_hand)
        waiter = asyncio.create_task(job.result(timeout=30))
        try:

            async def read_once() -> bool:
                return bool(reads)

            await wait_until(read_once, 5, "the waiter's first read")
            assert await job.cancel() is True  # announced while the server has no subscriber
            gate.set()
            with pytest.raises(JobCancelled):
                await asyncio.wait_for(waiter, 10)
        finally:
            waiter.cancel()
