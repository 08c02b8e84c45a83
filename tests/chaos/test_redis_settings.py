"""Scenario 7: a Redis that may evict keys is flagged when a worker starts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from asyncjobs import Worker, WorkerSettings

from ..redis_server import RedisServer
from .chaos_tasks import record
from .helpers import WorkerProcess, unique, wait_until


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_an_evicting_redis_is_flagged_with_noeviction_advice(
    redis_factory: Callable[..., RedisServer],
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = redis_factory("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    worker = spawn(server.url, unique("lru"))

    async def warned() -> bool:
        return "noeviction" in worker.log_text()

    try:
        await wait_until(warned, 20, "the eviction warning")
    finally:
        code = await worker.astop()
    line = next(ln for ln in worker.log_text().splitlines() if "noeviction" in ln)
    assert " WARNING " in line and "allkeys-lru" in line, line
    assert code == 0
    # The suite's own server keeps the default policy (noeviction): no warning there.
    caplog.set_level("WARNING", logger="asyncjobs")
    settings = WorkerSettings(redis_url=chaos_redis.url, queues=[unique("ok")], functions=[record])
    await Worker(settings).run(burst=True, handle_signals=False)
    assert not [r for r in caplog.records if "noeviction" in r.getMessage()]
