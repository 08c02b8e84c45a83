"""The CLI through Typer's runner (and a subprocess for the worker): output and exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

from typer.testing import CliRunner

from asyncjobs import Queue
from asyncjobs.cli import app

from .conftest import run_burst
from .crash_tasks import quick
from .redis_server import free_port

runner = CliRunner()
ROOT = Path(__file__).parent.parent


def test_info_job_and_dlq_commands(redis_url: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"

    async def setup() -> tuple[str, str]:
        async with Queue(redis_url, name=name) as queue:
            ok = await queue.enqueue(quick, 5)
            bad = await queue.enqueue("not_registered")
            await run_burst(queue, [quick])
            return ok.id, bad.id

    async def dead_count() -> int:
        async with Queue(redis_url, name=name) as queue:
            return len(await queue.dead_letters())

    async def burst() -> None:
        async with Queue(redis_url, name=name) as queue:
            await run_burst(queue, [quick])

    ok_id, bad_id = asyncio.run(setup())

    result = runner.invoke(app, ["info", "--redis-url", redis_url, "--json"])
    assert result.exit_code == 0, result.output
    [row] = [r for r in json.loads(result.output) if r["queue"] == name]
    assert row["dead_letters"] == 1 and row["succeeded"] == 1 and row["ready"] == 0

    result = runner.invoke(app, ["info", "--redis-url", redis_url])
    assert result.exit_code == 0 and name in result.output

    result = runner.invoke(app, ["job", ok_id, "--redis-url", redis_url])
    assert result.exit_code == 0 and '"status": "succeeded"' in result.output

    result = runner.invoke(app, ["job", "nope", "--redis-url", redis_url])
    assert result.exit_code == 1 and "not found" in result.output

    dlq = ["--queue", name, "--redis-url", redis_url]
    result = runner.invoke(app, ["dlq", "list", *dlq])
    assert result.exit_code == 0 and bad_id in result.output
    assert "UnknownTaskError" in result.output

    result = runner.invoke(app, ["dlq", "show", bad_id, *dlq])
    assert result.exit_code == 0 and '"error_type": "UnknownTaskError"' in result.output

    result = runner.invoke(app, ["dlq", "purge", *dlq], input="n\n")
    assert result.exit_code == 1 and asyncio.run(dead_count()) == 1, "it asked first"

    result = runner.invoke(app, ["dlq", "replay", bad_id, *dlq])
    assert result.exit_code == 0 and "replayed 1" in result.output
    asyncio.run(burst())
    assert asyncio.run(dead_count()) == 1, "still unknown: dead-lettered again"

    result = runner.invoke(app, ["dlq", "purge", "--yes", *dlq])
    assert result.exit_code == 0 and "purged 1" in result.output


def test_unreachable_redis_is_one_clear_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = runner.invoke(app, ["info", "--redis-url", url])
    assert result.exit_code == 1
    assert f"cannot reach Redis at {url}" in result.output
    assert "Traceback" not in result.output


def test_env_var_gives_the_url(monkeypatch: object) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = runner.invoke(app, ["info"], env={"ASYNCJOBS_REDIS_URL": url})
    assert result.exit_code == 1 and url in result.output


def test_bad_settings_paths_say_what_is_missing() -> None:
    result = runner.invoke(app, ["worker", "no_such_module:settings"])
    assert result.exit_code == 2 and "no module named 'no_such_module'" in result.output
    result = runner.invoke(app, ["worker", "tests.crash_tasks:nothing"])
    assert result.exit_code == 2 and "has no attribute 'nothing'" in result.output
    result = runner.invoke(app, ["worker", "tests.crash_tasks"])
    assert result.exit_code == 2 and "module:settings" in result.output


async def test_worker_command_burst_runs_jobs(redis_url: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    async with Queue(redis_url, name=name) as queue:
        jobs = [await queue.enqueue(quick, n) for n in range(5)]
        proc = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "asyncjobs",
                "worker",
                "tests.crash_tasks:settings",
                "--burst",
                "--queue",
                name,
                "--concurrency",
                "2",
                "--redis-url",
                redis_url,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert "concurrency 2" in proc.stderr
        assert [await j.result(timeout=1) for j in jobs] == list(range(5))


def test_acl_prints_the_rules_the_tests_check() -> None:
    from asyncjobs._store.acl import acl_rules

    result = runner.invoke(app, ["acl", "--role", "producer", "--user", "web-app"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ACL SETUSER web-app on >CHANGE-ME " + " ".join(
        acl_rules("producer")
    )
    bad = runner.invoke(app, ["acl", "--role", "admin"])
    assert bad.exit_code == 2 and "worker or producer" in bad.output
