"""Crashes and outages: a SIGKILLed worker's job comes back; Redis restarts are survived."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from asyncjobs import (
    Context,
    JobStatus,
    Queue,
    RedisUnavailable,
    Worker,
    WorkerSettings,
    task,
)

from .conftest import connections_to_a_refused_login
from .crash_tasks import hang_first_try, quick
from .redis_server import RedisServer, free_port

ROOT = Path(__file__).parent.parent


def spawn_worker(
    url: str, queue: str | None, log: Path, settings: str = "tests.crash_tasks:settings"
) -> subprocess.Popen[bytes]:
    """An `asyncjobs worker` subprocess logging to a file: on one queue, or the settings' own."""
    on_queue = ["--queue", queue] if queue is not None else []
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "asyncjobs",
                "worker",
                settings,
                "--redis-url",
                url,
                *on_queue,
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


@pytest.mark.slow
async def test_sigkilled_worker_job_is_finished_by_another(redis_url: str, tmp_path: Path) -> None:
    name = f"crash-{uuid.uuid4().hex[:8]}"
    marker = f"test:{name}:pid"
    async with Queue(redis_url, name=name) as queue:
        victim = spawn_worker(redis_url, name, tmp_path / "victim.log")
        try:
            job = await queue.enqueue(hang_first_try, marker)
            others = [await queue.enqueue(quick, n) for n in range(20)]
            for _ in range(300):  # wait until the first try is running in the subprocess
                if await queue.client.get(marker):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the subprocess worker never started the job")
            assert await job.status() is JobStatus.IN_PROGRESS
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        rescuer = spawn_worker(redis_url, name, tmp_path / "rescuer.log")
        try:
            assert await job.result(timeout=20) == "finished on try 2"
            assert [await j.result(timeout=10) for j in others] == list(range(20))
            info = await job.info()
            assert info.attempts == 2 and info.status is JobStatus.SUCCEEDED
            assert await queue.dead_letters() == []
        finally:
            rescuer.send_signal(signal.SIGTERM)
            assert rescuer.wait(15) == 0, (tmp_path / "rescuer.log").read_text()


async def test_unreachable_redis_fails_fast_with_the_url() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailable, match=f"cannot reach Redis at {url}"):
        async with Queue(url):
            pass
    worker = Worker(WorkerSettings(redis_url=url, functions=[quick]))
    with pytest.raises(RedisUnavailable):
        await worker.run(handle_signals=False)


async def test_a_cluster_url_on_a_single_server_says_to_use_redis_url(
    redis_server: RedisServer,
) -> None:
    """redis+cluster:// pointed at a server that is not a cluster node: one line saying what
    to use instead, not redis-py's cluster traceback."""
    url = f"redis+cluster://127.0.0.1:{redis_server.port}"
    with pytest.raises(RedisUnavailable) as caught:
        async with Queue(url):
            pass
    message = str(caught.value)
    assert "\n" not in message
    assert "Cluster mode is not enabled" in message
    assert "Use redis:// for a single server" in message


@pytest.mark.parametrize("scheme", ["redis", "unix"])
async def test_a_missing_password_is_named_as_such(scheme: str) -> None:
    """A URL without the password a server asks for: "Authentication required", over TCP and
    a unix socket, on every redis-py we support (5.0 used to recurse in its handshake until
    the check timed out)."""
    path = f"/tmp/asyncjobs-{uuid.uuid4().hex[:8]}.sock"
    socket_args = ("--unixsocket", path, "--unixsocketperm", "700")
    server = RedisServer(password="s3cret", extra_args=socket_args).start()
    url = f"redis://127.0.0.1:{server.port}/0" if scheme == "redis" else f"unix://{path}"
    try:
        with pytest.raises(RedisUnavailable, match="Authentication required") as caught:
            async with Queue(url):
                pass
        assert "Check the username and password" in str(caught.value)
    finally:
        server.cleanup()


@pytest.mark.parametrize("given", ["", ":wrong@"])
async def test_a_refused_login_is_not_retried(given: str) -> None:
    """A missing or wrong password fails on its first connection. redis-py files a refused
    login under connection errors and retries those: a missing password took 20 connections
    (3.5 s) before the error came out."""
    server = RedisServer(password="s3cret").start()
    try:
        url = f"redis://{given}127.0.0.1:{server.port}/0"
        assert await connections_to_a_refused_login(server, url) == 1
    finally:
        server.cleanup()


async def test_password_is_not_shown_in_errors() -> None:
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailable) as caught:
        async with Queue(url):
            pass
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.slow
async def test_worker_and_client_survive_a_redis_restart() -> None:
    server = RedisServer().start()
    done: list[int] = []

    @task(name="note")
    async def note(ctx: Context, n: int) -> int:
        done.append(n)
        return n

    try:
        async with Queue(server.url, name="restart") as queue:
            worker = Worker(
                WorkerSettings(redis_url=server.url, functions=[note], queues=["restart"])
            )
            run = asyncio.create_task(worker.run(handle_signals=False))
            assert await (await queue.enqueue(note, 1)).result(timeout=5) == 1
            server.stop()
            await asyncio.sleep(0.5)
            server.start()  # same port, empty data: scripts must be reloaded too
            job = None
            for _ in range(100):
                try:
                    job = await queue.enqueue(note, 2)
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            assert job is not None, "the client reconnects by itself"
            assert await job.result(timeout=15) == 2
            assert not run.done(), "the worker did not die"
            worker.stop()
            await asyncio.wait_for(run, 10)
    finally:
        server.cleanup()
    assert done == [1, 2]
