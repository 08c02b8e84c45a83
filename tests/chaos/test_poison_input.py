"""Scenario 4: payloads written straight into the queue's keys that no worker can run.

Each bad job is enqueued normally, then its hash is tampered with before any worker runs: it
must end FAILED in the dead-letter stream with a clear reason, and the jobs around it must run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from asyncjobs import Queue, Worker, WorkerSettings

from ..redis_server import RedisServer
from .chaos_tasks import record
from .helpers import run_counts, statuses, unique

MAX_PAYLOAD = 1024
AROUND = 20  # good jobs before and after the bad one

# Both corrupt-record cases used to error claim.lua half-way (jobs lost, worker dead); the
# claim script now dead-letters such a record with a PayloadError instead.

# name → (fields to HSET, fields to HDEL, expected error types, xfail reason)
CASES: dict[str, tuple[dict[str, Any], list[str], set[str], str | None]] = {
    "invalid_json": ({"payload": b"{not json"}, [], {"PayloadError"}, None),
    "json_of_wrong_shape": ({"payload": b'{"args": [1]}'}, [], {"PayloadError"}, None),
    "arguments_that_do_not_fit": (
        {"payload": b"[[1, 2, 3, 4, 5], {}]"},
        [],
        {"PayloadError"},
        None,
    ),
    "missing_payload": ({}, ["payload"], {"PayloadError"}, None),
    "unknown_task": ({"task": "no_such_task"}, [], {"UnknownTaskError"}, None),
    "over_max_payload_bytes": (
        {"payload": orjson.dumps([["x" * (MAX_PAYLOAD * 4)], {}])},
        [],
        {"PayloadError"},
        None,
    ),
    "missing_task_field": (
        {},
        ["task"],
        {"PayloadError", "UnknownTaskError"},
        None,
    ),
    "attempts_not_a_number": ({"attempts": "x"}, [], {"PayloadError"}, None),
}


def _params() -> list[Any]:
    params = []
    for name, (hset, hdel, expected, bug) in CASES.items():
        marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
        params.append(pytest.param(hset, hdel, expected, id=name, marks=marks))
    return params


@pytest.mark.chaos
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("hset", "hdel", "expected"), _params())
async def test_poison_input_is_dead_lettered_and_the_rest_runs(
    chaos_redis: RedisServer,
    no_key_leaks: Callable[[str, str], None],
    hset: dict[str, Any],
    hdel: list[str],
    expected: set[str],
) -> None:
    url, name = chaos_redis.url, unique("poison")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(url, name)
    async with Queue(url, name=name) as queue:
        keys = queue.keys_for(name)
        before = await queue.enqueue_many([(record, (runs_key,), {}) for _ in range(AROUND)])
        bad = await queue.enqueue(record, runs_key)
        after = await queue.enqueue_many([(record, (runs_key,), {}) for _ in range(AROUND)])
        if hset:
            await queue.client.hset(keys.job(bad.id), mapping=hset)
        if hdel:
            await queue.client.hdel(keys.job(bad.id), *hdel)

        worker = Worker(
            WorkerSettings(
                redis_url=url,
                queues=[name],
                functions=[record],
                lease_seconds=1.0,
                max_payload_bytes=MAX_PAYLOAD,
            )
        )
        try:
            await asyncio.wait_for(worker.run(burst=True, handle_signals=False), 30)
        except asyncio.TimeoutError:
            pytest.fail("the worker hung on the bad job (no burst end within 30 s)")
        except Exception as exc:
            good = before + after
            states = await statuses(queue.client, keys.job_prefix, [j.id for j in good])
            stranded = [
                j.id
                for j, s in zip(good, states, strict=True)
                if s == "queued"
                and await queue.client.zscore(keys.ready, j.id) is None
                and await queue.client.zscore(keys.deferred, j.id) is None
            ]
            # Leave nothing behind for no_key_leaks to trip over: this run is already a failure.
            async for key in queue.client.scan_iter(match=keys.tag + ":*"):
                await queue.client.delete(key)
            await queue.client.delete(runs_key)
            pytest.fail(
                f"the worker crashed on the bad job: {type(exc).__name__}: {exc}; "
                f"{len(stranded)} good job(s) left queued in no set (lost)"
            )

        dead = await queue.dead_letters()
        states = await statuses(queue.client, keys.job_prefix, [j.id for j in before + after])
        runs = await run_counts(queue.client, runs_key)
        await queue.client.delete(runs_key)
        info = await bad.info()
    assert [d.id for d in dead] == [bad.id], "only the bad job is dead-lettered"
    assert dead[0].error is not None
    error_type = dead[0].error.split(":", 1)[0]
    assert error_type in expected, dead[0].error
    assert len(dead[0].error) > len(error_type) + 10, "the reason says what is wrong"
    assert info.status.value == "failed"
    assert states == ["succeeded"] * (2 * AROUND), "the jobs around it ran"
    assert bad.id not in runs, "the bad job's body never ran"
