"""Each Lua script called directly with exact KEYS/ARGV on the real Redis: state before → after."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import pytest
import redis.asyncio as aioredis

from asyncjobs._keys import QueueKeys
from asyncjobs._scripts import SCRIPT_NAMES, load_scripts, run_script


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def k() -> QueueKeys:
    return QueueKeys(f"s-{uuid.uuid4().hex[:10]}")


def job_fields(
    job_id: str, *, priority: int = 0, max_tries: int = 0, delay_ms: int = 0
) -> list[Any]:
    return [job_id, "t", b"[[],{}]", priority, max_tries, 0, delay_ms, 0, 0, "", 1000, ""]


async def enqueue(r: Any, k: QueueKeys, *jobs: list[Any]) -> Any:
    argv: list[Any] = [k.job_prefix, k.idempotency_prefix, len(jobs)]
    for fields in jobs:
        argv += fields
    return await run_script(r, "enqueue", [k.ready, k.deferred, k.wake, k.seq, k.stats], argv)


async def claim(
    r: Any, k: QueueKeys, n: int, worker: str = "w1", lease_ms: int = 5000, idle: bool = True
) -> Any:
    return await run_script(
        r,
        "claim",
        [k.ready, k.deferred, k.leases, k.wake, k.seq, k.stats, k.limits, k.dead_letters],
        [k.job_prefix, worker, n, lease_ms, 60000, k.events, k.group_prefix, k.rate_prefix]
        + [k.cancel, 100, int(idle), k.rate_started_prefix],
    )


async def complete(r: Any, k: QueueKeys, job_id: str, token: str) -> Any:
    return await run_script(
        r,
        "complete",
        [k.leases, k.stats, k.ready, k.wake, k.seq],
        [k.job_prefix, 60000, k.events, k.group_prefix, job_id, token, b"1"],
    )


async def fail(r: Any, k: QueueKeys, job_id: str, token: str, delay_ms: int, max_tries: int) -> Any:
    tail = [k.events, k.group_prefix, k.cancel]
    return await run_script(
        r,
        "fail",
        [k.leases, k.deferred, k.ready, k.wake, k.seq, k.dead_letters, k.stats],
        [k.job_prefix, job_id, token, delay_ms, max_tries, "E", "msg", "tb", 60000, 100, *tail],
    )


async def recover(r: Any, k: QueueKeys, default_max: int = 3) -> Any:
    return await run_script(
        r,
        "recover",
        [k.leases, k.ready, k.wake, k.seq, k.dead_letters, k.stats, k.limits, k.deferred],
        [k.job_prefix, 100, default_max, 60000, 100, k.events, k.group_prefix, 3, k.cancel],
    )


def test_every_script_has_a_header_matching_its_callers() -> None:
    """Each file documents KEYS, ARGV and Returns; the wrappers pass that many KEYS."""
    folder = resources.files("asyncjobs") / "scripts"
    source = "".join(
        f.read_text() for f in resources.files("asyncjobs").iterdir() if f.name.endswith(".py")
    )
    for name in SCRIPT_NAMES:
        text = (folder / f"{name}.lua").read_text()
        header = (
            text.split("\n\n")[0] if not text.startswith("--") else text[: text.find("\nlocal")]
        )
        assert "Returns" in header, name
        declared = {int(n) for n in re.findall(r"KEYS\[(\d+)\]", header)}
        assert declared == set(range(1, len(declared) + 1)), f"{name}: KEYS numbered 1..n"
        assert f'"{name}"' in source, f"{name}.lua has a caller"
    assert set(load_scripts()) == set(SCRIPT_NAMES)


async def test_enqueue_dedupes_by_id_and_key(r: Any, k: QueueKeys) -> None:
    reply = await enqueue(r, k, job_fields("a"), job_fields("a"), job_fields("b", delay_ms=60000))
    assert reply == [b"a", 0, b"a", 1, b"b", 0]
    assert await r.zrange(k.ready, 0, -1) == [b"a"]
    assert await r.zrange(k.deferred, 0, -1) == [b"b"]
    assert await r.hget(k.job("b"), "status") == b"deferred"
    assert await r.zcard(k.wake) == 1


async def test_claim_orders_by_priority_then_fifo_and_leases(r: Any, k: QueueKeys) -> None:
    await enqueue(
        r,
        k,
        job_fields("low", priority=-1),
        job_fields("x"),
        job_fields("hi", priority=9),
        job_fields("y"),
    )
    reply = await claim(r, k, 3)
    ids = [reply[i] for i in range(4, len(reply), 7)]
    assert ids == [b"hi", b"x", b"y"]
    assert reply[0] == -1 and reply[1] > 1_700_000_000_000 and reply[2:4] == [0, b""]
    assert await r.hget(k.job("hi"), "token") == b"w1:1"
    assert await r.hget(k.job("hi"), "status") == b"in_progress"
    assert await r.zcard(k.leases) == 3
    assert await r.zcard(k.wake) == 1, "work is left, so the next worker is woken (chain wake)"


async def test_rate_limited_starts_stay_an_interval_apart_after_a_late_claim(
    r: Any, k: QueueKeys
) -> None:
    """Reserved slots that all fell due while no worker looked start one by one, not together."""
    await r.hset(k.limits, "t:interval_ms", 200)
    await enqueue(r, k, job_fields("a"), job_fields("b"), job_fields("c"))
    reply = await claim(r, k, 3)
    assert [reply[i] for i in range(4, len(reply), 7)] == [b"a"], "b and c reserve later slots"
    assert await r.zrange(k.deferred, 0, -1) == [b"b", b"c"]
    await asyncio.sleep(0.5)  # both reserved slots (+200, +400 ms) have passed
    reply = await claim(r, k, 3)
    assert [reply[i] for i in range(4, len(reply), 7)] == [b"b"]
    b_started = int(await r.hget(k.job("b"), "started_at"))
    status, slot = await r.hmget(k.job("c"), "status", "scheduled_at")
    assert status == b"deferred"
    assert int(float(slot)) == b_started + 200, "c waits one interval after b's actual start"
    assert await r.zscore(k.deferred, "c") == int(float(slot))
    await r.hset(k.limits, "t:interval_ms", 0)


async def test_fencing_refuses_an_old_token(r: Any, k: QueueKeys) -> None:
    await enqueue(r, k, job_fields("j", max_tries=3))
    await claim(r, k, 1, worker="slow", lease_ms=1)
    await r.delete(k.wake)
    import asyncio

    await asyncio.sleep(0.01)
    assert await recover(r, k) == [1, 0, -1]
    assert await r.hget(k.job("j"), "status") == b"queued"
    await claim(r, k, 1, worker="fast")
    assert await r.hget(k.job("j"), "token") == b"fast:2"
    assert await complete(r, k, "j", "slow:1") == [-1], "the slow worker's ack is refused"
    assert await fail(r, k, "j", "slow:1", 0, 3) == -1
    assert await complete(r, k, "j", "fast:2") == [1]
    assert await complete(r, k, "j", "fast:2") == [-1], "a second ack is refused too"
    assert await r.hget(k.job("j"), "status") == b"succeeded"
    assert await r.ttl(k.job("j")) > 0


async def test_fail_retries_then_dead_letters(r: Any, k: QueueKeys) -> None:
    await enqueue(r, k, job_fields("j"))
    await claim(r, k, 1)
    assert await fail(r, k, "j", "w1:1", 60000, 2) == 1
    assert await r.hget(k.job("j"), "status") == b"deferred"
    assert await r.zscore(k.deferred, "j") is not None
    assert await r.zcard(k.leases) == 0
    await r.zadd(k.deferred, {"j": 0})  # make it due now
    reply = await claim(r, k, 1)
    assert reply[4] == b"j" and reply[7] == 2
    assert await fail(r, k, "j", "w1:2", 0, 2) == 2
    assert await r.hget(k.job("j"), "status") == b"failed"
    [(_, entry)] = await r.xrange(k.dead_letters)
    assert entry[b"id"] == b"j" and entry[b"attempts"] == b"2" and entry[b"error_type"] == b"E"


async def test_permanent_failure_skips_retries(r: Any, k: QueueKeys) -> None:
    await enqueue(r, k, job_fields("j"))
    await claim(r, k, 1)
    assert await fail(r, k, "j", "w1:1", -1, 5) == 2


async def test_recover_dead_letters_when_tries_are_used_up(r: Any, k: QueueKeys) -> None:
    await enqueue(r, k, job_fields("j", max_tries=1))
    await claim(r, k, 1, lease_ms=1)
    import asyncio

    await asyncio.sleep(0.01)
    reply = await recover(r, k)
    assert reply[:3] == [0, 1, -1] and reply[3:5] == [b"j", b"t"] and reply[5] == b"WorkerLost"
    assert await r.hget(k.job("j"), "error_type") == b"WorkerLost"
    assert await r.xlen(k.dead_letters) == 1


async def test_extend_reports_lost_leases(r: Any, k: QueueKeys) -> None:
    await enqueue(r, k, job_fields("a"), job_fields("b"))
    await claim(r, k, 2)
    lost = await run_script(
        r, "extend", [k.leases], [k.job_prefix, 5000, "a", "w1:1", "b", "other:1"]
    )
    assert lost == [b"b"]


async def test_requeue_gives_the_try_back(r: Any, k: QueueKeys) -> None:
    await enqueue(r, k, job_fields("j"))
    await claim(r, k, 1)
    reply = await run_script(
        r,
        "requeue",
        [k.leases, k.ready, k.wake, k.seq],
        [k.job_prefix, "j", "w1:1", k.events, k.group_prefix],
    )
    assert reply == 1
    assert await r.hget(k.job("j"), "attempts") == b"0"
    assert await r.zrange(k.ready, 0, -1) == [b"j"]


async def test_cancel_running_revokes_token_and_notifies(r: Any, k: QueueKeys) -> None:
    await enqueue(r, k, job_fields("j"))
    await claim(r, k, 1)
    pubsub = r.pubsub()
    await pubsub.subscribe(k.cancel)
    await pubsub.get_message(timeout=1)
    code = await run_script(
        r,
        "cancel",
        [k.ready, k.deferred, k.leases, k.stats, k.wake, k.seq],
        [k.job_prefix, "j", 60000, k.events, k.cancel, k.group_prefix],
    )
    assert code == 2
    message = await pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == b"j"
    await pubsub.aclose()
    assert await complete(r, k, "j", "w1:1") == [-1]
    assert await r.hget(k.job("j"), "status") == b"cancelled"


async def test_poison_pill_after_max_stalls(r: Any, k: QueueKeys) -> None:
    import asyncio

    await enqueue(r, k, job_fields("j", max_tries=10))
    for stall in (1, 2, 3):
        await claim(r, k, 1, lease_ms=1)
        await asyncio.sleep(0.01)
        reply = await recover(r, k)
        assert reply[:2] == ([1, 0] if stall < 3 else [0, 1])
    assert await r.hget(k.job("j"), "error_type") == b"PoisonPill"
    assert await r.hget(k.job("j"), "status") == b"failed"


async def test_a_dead_workers_jobs_come_back_as_suspects_one_per_worker(
    r: Any, k: QueueKeys
) -> None:
    import asyncio

    await enqueue(r, k, job_fields("a"), job_fields("b"), job_fields("c"), job_fields("d"))
    await claim(r, k, 2, worker="dead", lease_ms=1)  # a and b die together
    await asyncio.sleep(0.01)
    assert (await recover(r, k))[:2] == [2, 0]
    assert await r.hget(k.job("a"), "stalls") is None, "died in company: not blamed"
    first = await claim(r, k, 5, worker="w1")
    assert first[3] == b"a" and first[4::7] == [b"a", b"c", b"d"], "one suspect, then the rest"
    assert first[2] == 1, "b is still waiting"
    carrying = await claim(r, k, 5, worker="w1", idle=False)
    assert carrying[4::7] == [] and carrying[2] == 1, "w1 carries a suspect already"
    other = await claim(r, k, 5, worker="w2")
    assert other[3] == b"b" and other[2] == 0
    # w1 dies with a (its one suspect), c and d: only a is blamed
    await r.zadd(k.leases, {"a": 0, "c": 0, "d": 0})
    assert (await recover(r, k))[:2] == [3, 0]
    assert await r.hget(k.job("a"), "stalls") == b"1"
    assert await r.hget(k.job("c"), "stalls") is None
