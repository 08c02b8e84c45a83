"""Fitting in: an arq module ported by imports only, Prometheus metrics, health probe, CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

from typer.testing import CliRunner

from asyncjobs import Queue, Worker, WorkerSettings
from asyncjobs._settings import WorkerSettings as Settings
from asyncjobs.arq import cron

from .arq_style_worker import WorkerSettings as ArqSettings
from .arq_style_worker import cleanup
from .crash_tasks import quick
from .redis_server import free_port
from .waiting import wait_until

ROOT = Path(__file__).parent.parent
runner = CliRunner()


def test_arq_settings_class_is_read_unchanged() -> None:
    settings = Settings.coerce(ArqSettings)
    assert settings.concurrency == 5 and settings.queues == ["arq:queue"]
    assert settings.job_timeout == 60 and settings.keep_result == 3600 and settings.max_tries == 3
    assert [t.name for t in settings.functions] == ["download_content", "count_words"]
    assert settings.functions[1].timeout == 10 and settings.functions[1].max_tries == 2


def test_arq_weekday_zero_is_monday() -> None:
    job = cron(cleanup, hour=3, minute=12, weekday=0)
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    assert job.next_after(sunday) == datetime(2026, 11, 30, 3, 12, tzinfo=timezone.utc)


async def test_ported_arq_module_runs_through_the_cli(redis_url: str) -> None:
    async with Queue(redis_url, name="arq:queue") as queue:
        job = await queue.enqueue_job("download_content", "https://example.com")
        env = {**os.environ, "ARQ_PORT_REDIS": redis_url}
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "asyncjobs", "worker", "tests.arq_style_worker:WorkerSettings"]
            + ["--burst"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        length = await job.result(timeout=1)
        text = "arq-port fetched https://example.com on try 1"
        assert length == len(text)
        follow = queue.job(f"count:{job.id}")
        assert await follow.result(timeout=1) == len(text.split())
        assert "poll_delay" in proc.stderr, "ignored arq settings are named in the log"


async def test_metrics_endpoint_counts_jobs(redis_url: str) -> None:
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    port = free_port()
    async with Queue(redis_url, name=name) as queue:
        worker = Worker(
            WorkerSettings(
                redis_url=redis_url,
                functions=[quick],
                queues=[name],
                metrics_port=port,
                lease_seconds=0.6,
                unknown_task_grace=0,  # dead-letter the unknown task at once
            )
        )
        run = asyncio.create_task(worker.run(handle_signals=False))
        jobs = [await queue.enqueue(quick, n) for n in range(5)]
        await queue.enqueue("unknown_task")
        for job in jobs:
            await job.result(timeout=5)
        url = f"http://127.0.0.1:{port}/metrics"
        gauge = f'asyncjobs_queue_dead_letters{{queue="{name}"}} 1.0'

        async def scraped() -> str | None:  # the gauges follow Redis on the next refresh
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
            return body.decode() if gauge in body.decode() else None

        text = await wait_until(scraped, 10, "the queue gauges to show the dead letter")
        worker.stop()
        await run
    assert f'asyncjobs_jobs_succeeded_total{{queue="{name}",task="quick"}} 5.0' in text
    assert f'asyncjobs_jobs_dead_lettered_total{{queue="{name}",task="unknown_task"}} 1.0' in text
    assert f'asyncjobs_job_duration_seconds_count{{queue="{name}",task="quick"}} 5.0' in text
    assert f'asyncjobs_job_queue_wait_seconds_count{{queue="{name}",task="quick"}} 5.0' in text
    assert f'asyncjobs_queue_dead_letters{{queue="{name}"}} 1.0' in text
    assert f'asyncjobs_queue_enqueued_total{{queue="{name}"}} 6.0' in text
    by_task = f'asyncjobs_queue_enqueued_by_task_total{{queue="{name}",task="quick"}} 5.0'
    assert by_task in text


def test_health_probe(redis_url: str, tmp_path: Path) -> None:
    name = f"health-{uuid.uuid4().hex[:8]}"
    module = tmp_path / "health_settings.py"
    module.write_text(
        "from asyncjobs import WorkerSettings\n"
        f"settings = WorkerSettings(queues=[{name!r}], lease_seconds=1.0)\n"
    )
    cmd = ["health", "health_settings:settings", "--redis-url", redis_url]
    sys.path.insert(0, str(tmp_path))
    try:
        result = runner.invoke(app_(), cmd)
        assert result.exit_code == 1 and "no live worker" in result.output

        async def with_worker() -> int:
            worker = Worker(WorkerSettings(redis_url=redis_url, queues=[name], lease_seconds=1.0))
            run = asyncio.create_task(worker.run(handle_signals=False))

            async def passes() -> bool:
                return (await asyncio.to_thread(runner.invoke, app_(), cmd)).exit_code == 0

            await wait_until(passes, 10, "the probe to pass while the worker runs")
            code = 0
            worker.stop()
            await run
            return code

        assert asyncio.run(with_worker()) == 0
        result = runner.invoke(app_(), cmd)
        assert result.exit_code == 1, "a stopped worker leaves the heartbeat set"
        dead = runner.invoke(
            app_(),
            [
                "health",
                "health_settings:settings",
                "--redis-url",
                f"redis://127.0.0.1:{free_port()}/0",
            ],
        )
        assert dead.exit_code == 1 and "cannot reach Redis" in dead.output
    finally:
        sys.path.remove(str(tmp_path))


def test_enqueue_and_cron_list_commands(redis_url: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(
        app_(),
        ["enqueue", "quick", "--args", "[7]", "--queue", name, "--job-id", "op-1"]
        + ["--redis-url", redis_url],
    )
    assert result.exit_code == 0 and result.output.strip() == "op-1"
    again = runner.invoke(
        app_(),
        [
            "enqueue",
            "quick",
            "--args",
            "[8]",
            "--queue",
            name,
            "--job-id",
            "op-1",
            "--redis-url",
            redis_url,
        ],
    )
    assert "duplicate" in again.output
    bad = runner.invoke(app_(), ["enqueue", "quick", "--args", "{nope", "--redis-url", redis_url])
    assert bad.exit_code == 2 and "JSON" in bad.output

    async def check() -> int:
        async with Queue(redis_url, name=name) as queue:
            worker = Worker(WorkerSettings(redis_url=redis_url, functions=[quick], queues=[name]))
            await worker.run(burst=True, handle_signals=False)
            return await queue.job("op-1").result(timeout=1)  # type: ignore[no-any-return]

    assert asyncio.run(check()) == 7
    listed = runner.invoke(app_(), ["cron", "list", "tests.arq_style_worker:WorkerSettings"])
    assert listed.exit_code == 0
    assert "cleanup  [12 3 * * 1 0]" in listed.output and "T03:12:00+00:00" in listed.output


def app_():  # type: ignore[no-untyped-def]
    from asyncjobs.cli import app

    return app
