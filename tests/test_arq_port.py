"""Porting arq code by its import lines: an untouched arq project (tests/arq_project), its
imports rewritten by sed, runs under ``asyncjobs worker`` on a real Redis; and the settings
class forms arq accepts start a worker."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncjobs import WorkerSettings
from asyncjobs.arq import create_pool
from asyncjobs.cli import app

from .redis_server import RedisServer

PROJECT = Path(__file__).parent / "arq_project"
ROOT = Path(__file__).parent.parent
SED = ["sed", "-i", "-e", "s/^from arq/from asyncjobs.arq/"]
SED += ["-e", "s/^import arq/import asyncjobs.arq as arq/"]


@pytest.fixture
def ported(tmp_path: Path) -> Iterator[Path]:
    """The arq project, copied and ported by sed on its import lines only."""
    shutil.copytree(PROJECT / "shop", tmp_path / "shop")
    files = sorted(str(p) for p in (tmp_path / "shop").glob("*.py"))
    subprocess.run(SED + files, check=True)
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
            del sys.modules[name]


def _diff(original: Path, ported: Path) -> list[str]:
    before, after = original.read_text().splitlines(), ported.read_text().splitlines()
    return [f"{a} -> {b}" for a, b in zip(before, after, strict=True) if a != b]


async def test_an_arq_project_runs_after_a_sed_of_its_imports(
    ported: Path, redis_server: RedisServer
) -> None:
    changed = _diff(PROJECT / "shop" / "worker.py", ported / "shop" / "worker.py")
    assert changed and all(line.startswith("from arq") for line in changed), changed
    url = redis_server.url.rsplit("/", 1)[0] + "/7"  # a database of its own: arq:queue is shared
    env = {**os.environ, "SHOP_REDIS": url}
    os.environ["SHOP_REDIS"] = url
    try:
        flush = await create_pool(url)
        await flush.flushdb()
        await flush.close()
        producer: Any = importlib.import_module("shop.producer")
        ids, placed = await producer.place_orders()
        assert placed == {"duplicate": None, "queued": True}
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "asyncjobs", "worker", "shop.worker.WorkerSettings"],
            cwd=ported,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr  # burst = True on the class: it exits
        seen = await producer.outcomes(ids)
    finally:
        del os.environ["SHOP_REDIS"]
    download = seen["download"]
    assert download["url"] == "https://example.com/a" and download["try"] == 1
    assert seen["words"] == 3  # "hello from https://example.com/a", enqueued by the job
    assert seen["flaky"] == 2, "Retry ran it again, and the burst waited for the retry"
    assert seen["declined"] == "card declined for 42"
    assert seen["charge_status"].value == "complete"
    assert seen["charge_attempts"] == b"1", "a plain exception is not retried"
    assert seen["downloads"] == [b"https://example.com/a"]
    all_ids = {i.encode() for i in ids.values()} | {download["follow_up"].encode()}
    assert all_ids <= seen["ended"], "after_job_end ran for every job"
    assert seen["report"] is not None, "the cron job ran at startup"
    assert seen["started"] == b"1" and seen["stopped"] == b"hello"
    assert f"job {ids['flaky']} flaky try 2 succeeded in" in proc.stderr  # our log lines
    [warning] = [line for line in proc.stderr.splitlines() if "ignored settings" in line]
    for name in ("poll_delay", "job_serializer", "max_retries", "describe"):
        assert name in warning


def test_the_ported_project_reads_arqs_timezone_for_its_cron(
    ported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    monkeypatch.setenv("SHOP_REDIS", "redis://localhost:6379/7")
    worker: Any = importlib.import_module("shop.worker")
    settings = WorkerSettings.coerce(worker.WorkerSettings)
    [job] = settings.cron_jobs
    assert job.timezone == ZoneInfo("Europe/Paris") and job.name == "cron:nightly_report"
    winter = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    assert job.next_after(winter).astimezone(timezone.utc) == datetime(
        2026, 1, 11, 1, 30, tzinfo=timezone.utc
    )
    listed = CliRunner().invoke(app, ["cron", "list", "shop.worker.WorkerSettings"])
    assert listed.exit_code == 0 and "cron:nightly_report" in listed.output


def test_the_cli_takes_arqs_dotted_settings_path() -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["worker", "tests.crash_tasks.NoSuchSettings"])
    assert missing.exit_code == 2 and "has no attribute 'NoSuchSettings'" in missing.output
    module = runner.invoke(app, ["worker", "tests.crash_tasks"])
    assert module.exit_code == 2 and "is a module" in module.output


async def test_burst_on_the_settings_class_makes_the_worker_exit(redis_server: RedisServer) -> None:
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "asyncjobs", "worker", "tests.test_arq_port.BurstSettings"],
        cwd=ROOT,
        env={**os.environ, "ASYNCJOBS_REDIS_URL": redis_server.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(burst)" in proc.stderr


async def _noop(ctx: Any) -> None: ...


class BurstSettings:
    functions = [_noop]
    queue_name = "burst-on-the-class"
    burst = True


async def test_run_worker_runs_a_settings_dict_in_its_own_loop(redis_server: RedisServer) -> None:
    from asyncjobs.arq import run_worker

    pool = await create_pool(redis_server.url, default_queue_name="run-worker-dict")
    try:
        job = await pool.enqueue_job("_noop")
        settings = {
            "functions": [_noop],
            "queue_name": "run-worker-dict",
            "redis_settings": redis_server.url,
            "burst": True,
            "handle_signals": False,
        }
        worker = await asyncio.to_thread(run_worker, settings)
        assert worker.jobs_complete == 1 and job is not None and await job.result() is None
    finally:
        await pool.close()


async def test_arqs_command_line_runs_and_checks_a_worker(redis_server: RedisServer) -> None:
    env = {**os.environ, "ARQ_CLI_REDIS": redis_server.url}

    def arq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "asyncjobs.arq", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    settings = "tests.test_arq_port.CliSettings"
    check = await asyncio.to_thread(arq, settings, "--check")
    assert check.returncode == 1, check.stderr  # no worker is alive
    run = await asyncio.to_thread(arq, settings, "--burst")
    assert run.returncode == 0 and "(burst)" in run.stderr, run.stderr
    version = await asyncio.to_thread(arq, "--version", settings)
    assert version.returncode == 0 and "0.28.0" in version.stdout


class CliSettings:
    functions = [_noop]
    queue_name = "arq-cli"
    redis_settings = os.environ.get("ARQ_CLI_REDIS", "redis://localhost:6379/0")
