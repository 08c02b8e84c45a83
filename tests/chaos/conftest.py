"""Fixtures of the chaos suite: fault injection against real redis-servers and worker processes.

Run it with ``python -m pytest -q tests/chaos -m chaos -p no:cacheprovider``.

ASYNCJOBS_CHAOS_SCALE (default 1.0) multiplies the size of every scenario: how many jobs, how
many kills and cuts. 1.0 takes about 85 s on a 2-core machine; 5 is the soak size
(100,000 jobs in the memory scenario). The figures each scenario observed (jobs, kills, lost,
duplicates, time to recover) are printed in a "chaos figures" section at the end of the run.

Everything runs on loopback; every redis-server and worker process a test starts is stopped by
its own PID when the test ends, passed or not.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from asyncjobs._defaults import PREFIX as DEFAULT_PREFIX
from asyncjobs._store import QueueKeys

from ..redis_server import RedisServer
from .helpers import SCALE, SETTINGS, WorkerProcess

#: Keys every queue keeps for good; anything else under its hash tag is per job and must expire.
FIXED_KEYS = frozenset(
    {"ready", "deferred", "leases", "wake", "seq", "stats", "dlq", "workers", "limits", "cron"}
    | {"paused", "hours", "dlq_index", "groups", "worker_info", "unknown", "crontab"}
    | {"recent:succeeded", "recent:cancelled", "recent:expired"}  # capped lists
)

_FIGURES: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault-injection tests")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section(f"chaos figures (ASYNCJOBS_CHAOS_SCALE={SCALE:g})")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line of observed figures for the end-of-run summary."""

    def add(line: str) -> None:
        _FIGURES.append(f"{request.node.name}: {line}")

    return add


@pytest.fixture(scope="session")
def chaos_redis() -> Iterator[RedisServer]:
    """A redis-server of the chaos suite's own, for the scenarios that do not restart it."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start throwaway redis-servers (extra command-line arguments allowed); each is stopped by
    its PID after the test, and after no_key_leaks has looked at it."""
    servers: list[RedisServer] = []

    def start(*extra_args: str, server: RedisServer | None = None) -> RedisServer:
        """A new server with these arguments, or ``server`` (a RedisServer subclass) started."""
        server = server or RedisServer(extra_args=tuple(extra_args))
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.cleanup()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `asyncjobs worker` subprocesses; any still running at the end is SIGKILLed by PID."""
    started: list[WorkerProcess] = []

    def start(
        url: str, queue: str, *, settings: str = SETTINGS, extra: tuple[str, ...] = ()
    ) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(url, queue, log, settings, extra).start()
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            with contextlib.suppress(Exception):
                worker.kill()


async def leaked_keys(url: str, queue_name: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Keys under the queue's hash tag that are neither fixed nor set to expire."""
    tag = QueueKeys(queue_name, prefix).tag
    leaks: list[str] = []
    client = aioredis.Redis.from_url(url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=tag + ":*", count=1000):
            if key.decode().removeprefix(tag + ":") not in FIXED_KEYS:
                batch.append(key)
        for start in range(0, len(batch), 5000):
            async with client.pipeline(transaction=False) as pipe:
                for key in batch[start : start + 5000]:
                    pipe.pttl(key)
                ttls = await pipe.execute()
            # -2: expired between SCAN and PTTL, which is fine; -1: no TTL, a leak.
            leaks += [k.decode() for k, t in zip(batch[start:], ttls, strict=False) if t == -1]
    finally:
        await client.aclose()
    return leaks


@pytest.fixture
async def no_key_leaks(
    redis_factory: Callable[..., RedisServer],
) -> AsyncIterator[Callable[[str, str], None]]:
    """Call it with (redis_url, queue_name): after the test, fail if any per-job key of that
    queue has no TTL (a key that would stay in Redis forever). Depends on redis_factory so the
    servers a test started are still up while it checks."""
    watched: list[tuple[str, str]] = []
    yield lambda url, name: watched.append((url, name))
    problems = []
    for url, name in watched:
        leaks = await leaked_keys(url, name)
        if leaks:
            problems.append(f"queue {name!r}: {len(leaks)} key(s) without a TTL, e.g. {leaks[:5]}")
    if problems:
        pytest.fail("per-job keys left without a TTL: " + "; ".join(problems))
