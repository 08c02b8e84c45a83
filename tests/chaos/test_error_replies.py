"""Redis answers with error replies, not dropped connections: out of memory, a password that
appeared (NOAUTH), busy with another client's script (BUSY). The worker must neither half-die
nor hang: every job completes once, and the log says what happened in a few lines."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from asyncjobs import Queue

from ..redis_server import RedisServer
from .chaos_tasks import record, record_in_file
from .helpers import WorkerProcess, statuses, unique, wait_until

JOBS = 2000
FAULT_S = 1.5
#: Lines at WARNING or above a worker may log for one fault (lost, maybe a reminder, a refusal).
LOG_LINES_PER_FAULT = 4

BUSY_LOOP = """
local t = redis.call('TIME')
local start = tonumber(t[1]) * 1000000 + tonumber(t[2])
while true do
  t = redis.call('TIME')
  if tonumber(t[1]) * 1000000 + tonumber(t[2]) - start > tonumber(ARGV[1]) then return 1 end
end
"""


async def out_of_memory(admin: aioredis.Redis) -> Callable[[], Awaitable[None]]:
    await admin.config_set("maxmemory-policy", "noeviction")
    await admin.config_set("maxmemory", "1")  # every write that needs memory is refused

    async def heal() -> None:
        await admin.config_set("maxmemory", "0")

    return heal


async def password_appears(admin: aioredis.Redis) -> Callable[[], Awaitable[None]]:
    await admin.config_set("requirepass", "now-secret")
    # Open connections stay authenticated: drop them, so that every reconnect gets NOAUTH.
    await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes")

    async def heal() -> None:
        await admin.config_set("requirepass", "")

    return heal


async def busy_script(admin: aioredis.Redis) -> Callable[[], Awaitable[None]]:
    await admin.config_set("busy-reply-threshold", "100")  # others get BUSY after 100 ms
    # a client of its own, on a pool like admin's (redis-py 8 keeps connection-only options
    # in connection_kwargs, so Redis(**connection_kwargs) no longer works)
    pool = admin.connection_pool
    blocker = aioredis.Redis(
        connection_pool=type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs)
    )
    running = asyncio.create_task(blocker.eval(BUSY_LOOP, 0, int(FAULT_S * 1_000_000)))
    await asyncio.sleep(0.2)

    async def heal() -> None:
        await running  # the script ends by itself after FAULT_S
        await blocker.aclose()
        await blocker.connection_pool.disconnect()
        await admin.config_set("busy-reply-threshold", "5000")

    return heal


FAULTS: dict[str, Callable[[aioredis.Redis], Awaitable[Callable[[], Awaitable[None]]]]] = {
    "OOM": out_of_memory,
    "NOAUTH": password_appears,
    "BUSY": busy_script,
}


@pytest.mark.chaos
@pytest.mark.timeout(180)
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_error_replies_for_a_while_lose_and_double_nothing(
    fault: str,
    redis_factory: Callable[..., RedisServer],
    spawn: Callable[..., WorkerProcess],
    figures: Callable[[str], None],
    tmp_path: Path,
) -> None:
    server = redis_factory()
    name = unique(f"reply-{fault.lower()}")
    # counted in a file: NOAUTH cuts the tasks' own Redis calls as well, and a try whose own
    # command failed is retried, as it should be (it would count twice in Redis)
    runs_file = tmp_path / "runs.txt"
    runs_file.touch()
    admin = aioredis.Redis.from_url(server.url)
    try:
        async with Queue(server.url, name=name) as queue:
            keys = queue.keys_for(name)
            jobs = await queue.enqueue_many(
                [(record_in_file, (str(runs_file), 5), {}) for _ in range(JOBS)]
            )
            worker = spawn(server.url, name, extra=("--concurrency", "50"))

            async def some_done() -> bool:
                return int(await queue.client.hget(keys.stats, "succeeded") or 0) > JOBS // 10

            await wait_until(some_done, 30, "the drain to be under way")
            started = time.monotonic()
            heal = await FAULTS[fault](admin)
            await asyncio.sleep(FAULT_S)
            await heal()
            healed = time.monotonic()

            async def all_done() -> Any:
                states = await statuses(queue.client, keys.job_prefix, [j.id for j in jobs])
                return all(s == "succeeded" for s in states)

            await wait_until(all_done, 90, f"every job to succeed after {fault}")
            drained = time.monotonic()
            runs = Counter(runs_file.read_text().split())
            code = await worker.astop()
        log = worker.log_text()
        problems = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
        figures(
            f"fault={fault} for {healed - started:.1f}s jobs={JOBS} "
            f"drained_after_heal_s={drained - healed:.1f} runs={sum(runs.values())} "
            f"worker_log_lines={len(problems)}"
        )
        assert sum(runs.values()) == JOBS and set(runs.values()) == {1}, "each job ran once"
        assert code == 0, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert any("lost Redis" in line for line in problems), "the fault is logged"
        assert len(problems) <= LOG_LINES_PER_FAULT, "\n".join(problems)
    finally:
        await admin.aclose()


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_a_part_that_keeps_failing_stops_the_worker_loudly(
    redis_factory: Callable[..., RedisServer],
    spawn: Callable[..., WorkerProcess],
) -> None:
    """Not an outage but a refusal that will not pass (here an ACL without SUBSCRIBE, so the
    cancel listener can never start): logged once with its traceback, retried, and after
    give_up_after the worker exits 1, leaves the heartbeat (health fails) and gives its running
    job back (had it been killed instead, the lease would have brought it back)."""
    from asyncjobs._store.acl import acl_rules

    server = redis_factory()
    name = unique("gives-up")
    admin = aioredis.Redis.from_url(server.url)
    try:
        rules = [r for r in acl_rules("worker") if r != "+subscribe"]
        await admin.execute_command("ACL", "SETUSER", "nosub", "on", ">pw", *rules)
        url = server.url.replace("redis://", "redis://nosub:pw@")
        settings_module = "tests.chaos.chaos_tasks:give_up_settings"
        async with Queue(server.url, name=name) as queue:
            runs = queue.keys_for(name).tag + ":runs"  # a key the worker's ACL covers
            job = await queue.enqueue(record, runs, 60_000)
            worker = spawn(url, name, settings=settings_module)
            code = await asyncio.to_thread(worker.proc.wait, 40)  # type: ignore[union-attr]
            log = worker.log_text()
            assert code == 1, log[-3000:]
            assert "cancel requests kept failing" in log, log[-3000:]
            assert log.count("cancel requests failed; retrying") == 1, "once, not per retry"
            assert await queue.client.zcard(queue.keys_for(name).workers) == 0, "left"
            info = await job.info()
            assert (info.status.value, info.attempts) == ("queued", 0), "given back at once"
    finally:
        await admin.aclose()
