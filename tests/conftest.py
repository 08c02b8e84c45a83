"""Fixtures: a real redis-server for the session, and every API test on redis and memory://."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncjobs import Queue, Worker, WorkerSettings

from .redis_cluster import RedisCluster
from .redis_server import NoServerError, RedisServer, find_server


def pytest_report_header(config: pytest.Config) -> str:
    """Say which server binary the run uses (see tests/redis_server.py for the order)."""
    try:
        return f"redis server: {find_server().describe()}"
    except NoServerError as exc:
        return f"redis server: none ({exc})"


def server_used() -> str | None:
    """The server binary this run started, if a test started one (find_server caches it)."""
    if find_server.cache_info().currsize:
        with contextlib.suppress(NoServerError):
            return find_server().describe()
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the server binary the run started, even under -q (where no header is shown)."""
    used = server_used()
    if used is not None:
        terminalreporter.write_line(f"redis server used: {used}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With $ASYNCJOBS_CI_SUMMARY set, write this run's counts and server there as JSON, for
    .ci/run's per-server report (it runs the README's test command as it is)."""
    path = os.environ.get("ASYNCJOBS_CI_SUMMARY")
    if not path:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", {})
    summary: dict[str, Any] = {k: len(stats.get(k, [])) for k in ("passed", "failed", "error")}
    summary |= {k: len(stats.get(k, [])) for k in ("skipped", "deselected")}
    summary["exitstatus"] = int(exitstatus)
    summary["server"] = server_used()
    Path(path).write_text(json.dumps(summary))


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """No server binary: stop the whole run with the one line that says what to install,
    rather than failing every test that starts a server with the same error."""
    if call.excinfo is not None and call.excinfo.errisinstance(NoServerError):
        pytest.exit(str(call.excinfo.value), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real 3-master cluster, started the first time a test asks for it."""
    cluster = RedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["redis", "memory", pytest.param("cluster", marks=pytest.mark.cluster)])
def backend_url(request: pytest.FixtureRequest, redis_server: RedisServer) -> str:
    """A Redis URL: the session's real server, a fresh embedded memory:// one, or a cluster."""
    if request.param == "redis":
        return redis_server.url
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture(params=["redis", "memory"])
def arq_url(request: pytest.FixtureRequest, redis_server: RedisServer) -> str:
    """The session's real Redis, or a fresh memory:// one (arq's client has no cluster mode)."""
    return redis_server.url if request.param == "redis" else f"memory://{uuid.uuid4().hex}"


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The real server only (for tests that need a second process or raw Redis access)."""
    return redis_server.url


@pytest.fixture
def queue_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def queue(backend_url: str, queue_name: str) -> AsyncIterator[Queue]:
    async with Queue(backend_url, name=queue_name) as q:
        yield q


WorkerFactory = Callable[..., Worker]


@pytest.fixture
async def start_worker(queue: Queue) -> AsyncIterator[Callable[..., Any]]:
    """Start workers in this event loop on the test's queue; stops them after the test."""
    started: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(functions: list[Any], **options: Any) -> Worker:
        options.setdefault("queues", [queue.name])
        options.setdefault("lease_seconds", 2.0)
        burst = options.pop("burst", False)
        settings = WorkerSettings(redis_url=queue.url, functions=functions, **options)
        worker = Worker(settings)
        task = asyncio.create_task(worker.run(burst=burst, handle_signals=False))
        started.append((worker, task))
        await asyncio.sleep(0)
        return worker

    yield start
    for worker, _ in started:
        worker.stop()
    for _, task in started:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


async def run_burst(queue: Queue, functions: list[Any], **options: Any) -> Worker:
    """Run a burst worker on the queue until nothing is ready or running."""
    options.setdefault("queues", [queue.name])
    options.setdefault("lease_seconds", 2.0)
    worker = Worker(WorkerSettings(redis_url=queue.url, functions=functions, **options))
    await asyncio.wait_for(worker.run(burst=True, handle_signals=False), 60)
    return worker


def one_claimer(store: Any, keys: Any, worker_id: str, *, burst: bool, running: Any = None) -> Any:
    """A worker's claim loop alone (concurrency 10, a 30 s lease, jobs started nowhere), for
    tests that drive its steps by hand."""
    from asyncjobs._claimer import Claimer
    from asyncjobs._running import RunningJobs

    return Claimer(
        store=store,
        queues=[keys],
        running=RunningJobs() if running is None else running,
        worker_id=worker_id,
        concurrency=10,
        lease_seconds=30,
        start=lambda job: None,
        stopping=asyncio.Event(),
        burst=burst,
    )


async def connections_to_a_refused_login(server: RedisServer, url: str) -> int:
    """How many connections ``server`` received while a Queue on ``url`` failed to open with
    the refused-login error (``server`` has the password ``s3cret``)."""
    import redis.asyncio

    from asyncjobs import RedisUnavailable

    admin = redis.asyncio.Redis(port=server.port, password="s3cret")
    try:
        before = (await admin.info("stats"))["total_connections_received"]
        with pytest.raises(RedisUnavailable, match="Check the username and password"):
            async with Queue(url):
                pass
        return int((await admin.info("stats"))["total_connections_received"] - before)
    finally:
        await admin.aclose()


async def key_count(queue: Queue) -> int:
    """How many keys this queue has (its hash tag), for 'nothing was written' checks."""
    keys = queue.keys_for(queue.name)
    return len([k async for k in queue.client.scan_iter(match=keys.tag + "*")])
