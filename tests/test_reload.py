"""asyncjobs worker --reload / --watch: the worker restarts when code changes (development)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asyncjobs import Queue
from asyncjobs.cli import app

from .redis_server import RedisServer

TASKS = """
import os
from asyncjobs import WorkerSettings, task

@task
async def version(ctx) -> int:
    return {value}

settings = WorkerSettings(functions=[version], queues=[os.environ["DEV_QUEUE"]])
"""


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
async def test_reload_restarts_the_worker_on_a_code_change(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    queue_name = f"reload-{uuid.uuid4().hex[:8]}"
    (tmp_path / "devtasks.py").write_text(TASKS.format(value=1))
    log = tmp_path / "worker.log"
    env = {**os.environ, "DEV_QUEUE": queue_name, "PYTHONPATH": str(Path.cwd())}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asyncjobs", "worker", "devtasks:settings", "--reload"]
            + ["--redis-url", redis_server.url],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with Queue(redis_server.url, name=queue_name) as queue:
            first = await queue.enqueue("version")
            assert await first.result(timeout=30) == 1
            (tmp_path / "devtasks.py").write_text(TASKS.format(value=2))
            await asyncio.to_thread(
                _wait_for, lambda: log.read_text().count("serving") >= 2, "the restarted worker"
            )
            assert "devtasks.py changed: restarting the worker" in log.read_text()
            second = await queue.enqueue("version")
            assert await second.result(timeout=30) == 2, "the new code runs"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert log.read_text().count("worker") >= 2


def test_reload_needs_folders_and_watchfiles(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["worker", "tests.crash_tasks:settings", "--watch", "no/such/dir"])
    assert bad.exit_code == 2 and "not a folder: no/such/dir" in bad.output
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # as if not installed
    missing = runner.invoke(app, ["worker", "tests.crash_tasks:settings", "--reload"])
    assert missing.exit_code == 2 and "pip install 'asyncjobs-redis[reload]'" in missing.output
