"""The operating commands end to end, and every failure a new user meets is one line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from asyncjobs import Queue
from asyncjobs.cli import app, main

from .chaos.helpers import WorkerProcess, wait_until
from .conftest import run_burst
from .ops_apps import a_task, slow_steps
from .redis_server import RedisServer

runner = CliRunner()
ROOT = Path(__file__).parent.parent


def cli(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def one_line_error(result: Any, code: int) -> str:
    """The failure's single stderr line (and no traceback anywhere)."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return str(lines[0])


@pytest.fixture
def name() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


# -- every failure is one line ----------------------------------------------------------------


def test_enqueue_wait_that_runs_out_prints_the_id_and_one_line(redis_url: str, name: str) -> None:
    result = cli("enqueue", "a_task", "--args", "[1]", "-q", name, "--wait", "0.3",
                 "--redis-url", redis_url)  # fmt: skip
    line = one_line_error(result, 1)
    job_id = result.stdout.strip()
    assert f"job {job_id} did not finish within 0.3s (it is queued)" in line
    assert f"asyncjobs job {job_id} --watch" in line


def test_ctrl_c_during_enqueue_wait_says_which_job_goes_on(redis_url: str, name: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncjobs", "enqueue", "a_task", "--args", "[1]", "-q", name,
         "--wait", "60", "--redis-url", redis_url],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a test run started in the background may have SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        job_id = proc.stdout.readline().strip()  # printed before the wait begins
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"interrupted: job {job_id} goes on in the queue; follow it with: "
        f"asyncjobs job {job_id} --watch"
    ]


def test_a_database_index_out_of_range_is_one_line(redis_url: str) -> None:
    line = one_line_error(cli("info", "--redis-url", redis_url.replace("/0", "/99")), 1)
    assert "DB index is out of range" in line and "fewer databases" in line


def test_worker_option_mistakes_are_one_line(redis_url: str, monkeypatch: Any) -> None:
    base = ["worker", "tests.ops_apps:app_a", "--redis-url", redis_url, "--burst"]
    line = one_line_error(cli(*base, "--log-level", "LOUD"), 2)
    assert "--log-level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not 'LOUD'" in line
    line = one_line_error(cli(*base, "--queue", "has space"), 2)
    assert "invalid queue name 'has space'" in line
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if it were not installed
    line = one_line_error(cli(*base, "--metrics-port", "0"), 2)
    assert "pip install 'asyncjobs-redis[metrics]'" in line


def test_a_settings_module_whose_import_fails_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "broken_app.py").write_text("import os\n\nsettings = 1 / 0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    line = one_line_error(cli("worker", "broken_app:settings"), 2)
    assert "importing 'broken_app' failed: ZeroDivisionError: division by zero" in line
    assert "broken_app.py, line 3" in line


def test_an_invalid_queue_name_is_one_line_everywhere(redis_url: str) -> None:
    for command in (["enqueue", "t", "-q", "a{b}"], ["jobs", "a b"], ["pause", "a b"],
                    ["dlq", "list", "-q", "a b"], ["purge", "a b", "--yes"]):  # fmt: skip
        line = one_line_error(cli(*command, "--redis-url", redis_url), 2)
        assert "invalid queue name" in line, command


# -- operating a queue --------------------------------------------------------------------------


def test_pause_jobs_stats_resume(redis_url: str, name: str) -> None:
    url = ["--redis-url", redis_url]
    assert "paused queue" in cli("pause", name, *url).stdout
    assert "was paused already" in cli("pause", name, *url).stdout
    ids = [cli("enqueue", "a_task", "--args", f"[{n}]", "-q", name, *url).stdout.strip()
           for n in range(3)]  # fmt: skip
    listed = cli("jobs", name, *url)
    assert listed.exit_code == 0 and [ln.split()[0] for ln in listed.stdout.splitlines()[1:]] == ids
    as_json = json.loads(cli("jobs", name, "--json", "--limit", "2", "--offset", "1", *url).stdout)
    assert [j["id"] for j in as_json] == ids[1:]
    info = cli("info", *url).stdout
    [row] = [ln for ln in info.splitlines() if ln.startswith(name)]
    assert row.split()[1] == "paused"
    stats = cli("stats", name, *url).stdout
    assert "(paused since" in stats and "queued 3" in stats

    async def burst() -> None:
        async with Queue(redis_url, name=name) as q:
            await run_burst(q, [a_task])

    asyncio.run(burst())
    assert "queued 3" in cli("stats", name, *url).stdout, "a paused queue's jobs wait"
    assert "resumed queue" in cli("resume", name, *url).stdout
    assert "was not paused" in cli("resume", name, *url).stdout
    asyncio.run(burst())
    stats = cli("stats", name, *url).stdout
    assert ("succeeded 3" in stats and "per minute" not in stats) or "succeeded" in stats
    done = cli("jobs", name, "--status", "succeeded", *url).stdout
    assert all(i in done for i in ids)
    assert json.loads(cli("stats", name, "--json", *url).stdout)["succeeded"] == 3
    line = one_line_error(cli("jobs", name, "--status", "lost", *url), 2)
    assert "unknown status 'lost'" in line


def test_cancel_finds_the_job_in_any_queue(redis_url: str, name: str) -> None:
    url = ["--redis-url", redis_url]
    job_id = cli("enqueue", "a_task", "--args", "[1]", "-q", name, "--defer", "60", *url).stdout
    job_id = job_id.strip()
    result = cli("cancel", job_id, *url)
    assert result.exit_code == 0 and f"cancelled job {job_id} in queue {name!r}" in result.stdout
    assert "it was deferred" in result.stdout
    line = one_line_error(cli("cancel", job_id, *url), 1)
    assert "already ended cancelled" in line
    assert "not found" in one_line_error(cli("cancel", "no-such-job", *url), 1)


def test_purge_asks_first_and_shows_what_it_dropped(redis_url: str, name: str) -> None:
    url = ["--redis-url", redis_url]
    for n in range(3):
        cli("enqueue", "a_task", "--args", f"[{n}]", "-q", name, *url)
    cli("enqueue", "a_task", "--args", "[9]", "-q", name, "--defer", "60", *url)
    refused = cli("purge", name, *url, input="n\n")
    assert refused.exit_code == 1 and "Drop the 4 queued and deferred job(s)" in refused.stdout
    assert "queued 3  deferred 1" in cli("stats", name, *url).stdout
    result = cli("purge", name, "--yes", *url)
    assert result.exit_code == 0 and "purged 4 job(s)" in result.stdout
    assert "has no queued or deferred jobs" in cli("purge", name, *url).stdout
    assert "no cancelled jobs" not in cli("jobs", name, "-s", "cancelled", *url).stdout


def test_forget_a_queue(redis_url: str, name: str) -> None:
    url = ["--redis-url", redis_url]
    cli("enqueue", "a_task", "--args", "[1]", "-q", name, *url)
    assert "1 job(s) waiting" in one_line_error(cli("forget", name, *url), 1)
    cli("purge", name, "--yes", *url)
    assert cli("forget", name, *url).stdout.strip() == f"forgot queue {name!r}"
    assert name not in cli("info", *url).stdout


def test_prefix_reaches_every_command(redis_url: str, name: str) -> None:
    url = ["--redis-url", redis_url, "--prefix", "other"]
    job_id = cli("enqueue", "not_registered", "-q", name, *url).stdout.strip()

    async def burst() -> None:
        async with Queue(redis_url, name=name, prefix="other") as q:
            await run_burst(q, [a_task], prefix="other")

    asyncio.run(burst())
    assert job_id in cli("dlq", "list", "-q", name, *url).stdout
    assert job_id not in cli("dlq", "list", "-q", name, "--redis-url", redis_url).stdout
    assert '"error_type": "UnknownTaskError"' in cli("dlq", "show", job_id, "-q", name, *url).stdout
    env = {"ASYNCJOBS_PREFIX": "other"}
    assert name in runner.invoke(app, ["info", "--redis-url", redis_url], env=env).stdout
    assert "replayed 1" in cli("dlq", "replay", "--all", "-q", name, *url).stdout
    assert '"status": "queued"' in cli("job", job_id, *url).stdout


def test_dlq_list_filters_by_task_and_text(redis_url: str, name: str) -> None:
    url = ["--redis-url", redis_url, "-q", name]

    async def fill() -> None:
        async with Queue(redis_url, name=name) as q:
            await q.enqueue("missing_one")
            await q.enqueue("missing_two")
            await run_burst(q, [a_task])

    asyncio.run(fill())
    listed = cli("dlq", "list", "--task", "missing_one", *url).stdout
    assert "missing_one" in listed and "missing_two" not in listed
    assert "missing_two" in cli("dlq", "list", "--search", "'MISSING_TWO'", *url).stdout
    assert "match" in cli("dlq", "list", "--search", "nothing like it", *url).stdout
    replayed = cli("dlq", "replay", "--all", "--task", "missing_two", *url).stdout
    assert "replayed 1" in replayed
    assert "missing_two" not in cli("dlq", "list", *url).stdout


def test_version_and_help_name_every_command() -> None:
    assert cli("--version").stdout.startswith("asyncjobs ")
    text = cli("--help").stdout
    for command in ("pause", "resume", "jobs", "cancel", "purge", "workers", "stats", "forget"):
        assert command in text


@pytest.mark.parametrize(("argv", "alone"), [(["worker"], True), (["dlq", "list"], False)])
def test_a_top_level_command_is_built_alone(
    argv: list[str],
    alone: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`asyncjobs worker` builds only the worker command: typer builds every command's options
    before parsing otherwise (~10 ms of each worker's start). A group (dlq) gets the whole app."""
    built: list[Any] = []

    def spy(instance: typer.Typer) -> Any:
        built.append(real(instance))
        return built[-1]

    real = typer.main.get_command
    monkeypatch.setattr(typer.main, "get_command", spy)
    monkeypatch.setattr(sys, "argv", ["asyncjobs", *argv, "--help"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    assert (sorted(built[0].commands) == [argv[0]]) is alone
    assert f"{' '.join(argv)} [OPTIONS]" in capsys.readouterr().out


# -- watching a job ------------------------------------------------------------------------------


def test_job_watch_follows_progress_until_the_end(redis_url: str, name: str) -> None:
    async def scenario() -> tuple[str, list[str], int]:
        async with Queue(redis_url, name=name) as q:
            job = await q.enqueue(slow_steps, 3)
            watcher = subprocess.Popen(
                [sys.executable, "-m", "asyncjobs", "job", job.id, "--watch", "--redis-url",
                 redis_url],
                cwd=ROOT, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert watcher.stdout is not None
                first = await asyncio.to_thread(watcher.stdout.readline)  # it is watching now
                await run_burst(q, [slow_steps])
                rest, _ = await asyncio.to_thread(watcher.communicate, timeout=30)
            finally:
                if watcher.poll() is None:
                    watcher.kill()
                    watcher.wait()
            return job.id, [first, *rest.splitlines()], watcher.returncode

    job_id, lines, code = asyncio.run(scenario())
    assert code == 0, lines
    assert lines[0].strip() == f"{job_id}  queued"
    progress = [ln for ln in lines if ln.startswith(job_id)]
    assert progress[-1].startswith(f"{job_id}  succeeded · working  100%  step 3"), progress
    assert len(progress) >= 2 and '"status": "succeeded"' in "\n".join(lines)


def test_enqueue_wait_prints_the_result(redis_url: str, name: str) -> None:
    worker = WorkerProcess(redis_url, name, Path(os.devnull), settings="tests.ops_apps:app_a")
    worker.start()
    try:
        result = cli("enqueue", "slow_steps", "--args", "[2]", "-q", name, "--wait", "30",
                     "--redis-url", redis_url)  # fmt: skip
        assert result.exit_code == 0, result.output
        job_id, value = result.stdout.splitlines()
        assert json.loads(value) == "done" and len(job_id) == 32
    finally:
        worker.stop()


# -- workers and the health probe ---------------------------------------------------------------


async def test_health_checks_this_apps_worker_not_any_worker(
    redis_url: str, name: str, tmp_path: Path
) -> None:
    a = WorkerProcess(redis_url, name, tmp_path / "a.log", settings="tests.ops_apps:app_a").start()
    b = WorkerProcess(redis_url, name, tmp_path / "b.log", settings="tests.ops_apps:app_b").start()
    try:
        async with Queue(redis_url, name=name) as q:
            await wait_until(lambda: _count(q.workers(), 2), 20, "both workers' heartbeats")
        health = ["--redis-url", redis_url, "--queue", name]
        result = await asyncio.to_thread(cli, "health", "tests.ops_apps:app_a", *health)
        assert result.exit_code == 0 and result.stdout.strip() == "healthy", result.output
        listed = await asyncio.to_thread(cli, "workers", "--queue", name, "--redis-url", redis_url)
        assert str(a.pid) in listed.stdout and str(b.pid) in listed.stdout

        await a.astop()
        result = await asyncio.to_thread(cli, "health", "tests.ops_apps:app_a", *health)
        assert result.exit_code == 1, "app A's worker is gone, though app B's serves the queue"
        assert "no live worker of these settings" in result.stderr and name in result.stderr
        still = await asyncio.to_thread(cli, "health", "tests.ops_apps:app_b", *health)
        assert still.exit_code == 0
        anyone = await asyncio.to_thread(cli, "health", "tests.ops_apps:app_a", "--any", *health)
        assert anyone.exit_code == 0
        named = await asyncio.to_thread(
            cli, "health", "tests.ops_apps:app_b", "--worker-id", "nobody", *health
        )
        assert named.exit_code == 1 and "worker 'nobody' is not alive" in named.stderr
    finally:
        a.stop()
        b.stop()


async def _count(items: Any, n: int) -> bool:
    return len(await items) == n


def test_workers_when_there_are_none(redis_server: RedisServer) -> None:
    other = RedisServer().start()
    try:
        result = cli("workers", "--redis-url", other.url)
        assert result.exit_code == 0 and result.stdout.strip() == "no live workers"
    finally:
        other.cleanup()


# -- cron list ----------------------------------------------------------------------------------


def test_cron_list_shows_the_time_zone_and_the_last_run(redis_url: str) -> None:
    result = cli("cron", "list", "tests.ops_apps:with_cron", "--redis-url", redis_url)
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert "nightly  [0 3 * * *]  nightly  tz=Europe/Paris" in first and "last=never" in first
    assert result.stdout.splitlines()[1].strip().endswith(("+01:00", "+02:00"))
    offline = cli("cron", "list", "tests.ops_apps:with_cron", "--redis-url",
                  redis_url.replace("/0", "/99"))  # fmt: skip
    assert offline.exit_code == 0 and "note: last runs unknown" in offline.stderr
    assert "last=?" in offline.stdout


def test_progress_bars_on_a_terminal(redis_url: str, name: str, tmp_path: Path) -> None:
    """As on a terminal (Rich told so): live bars on stderr; stdout keeps ids and results."""
    terminal = {**os.environ, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "asyncjobs", *args, "--redis-url", redis_url],
            cwd=ROOT, env=terminal, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    worker = WorkerProcess(redis_url, name, tmp_path / "w.log", settings="tests.ops_apps:app_a")
    worker.start()
    try:
        waited = run("enqueue", "slow_steps", "--args", "[3]", "-q", name, "--wait", "30")
        assert waited.returncode == 0, waited.stderr
        job_id, value = waited.stdout.splitlines()
        assert json.loads(value) == "done"
        assert "step 3" in waited.stderr and "100%" in waited.stderr, "the bar, on stderr"
    finally:
        worker.stop()
    watched = run("job", job_id, "--watch")
    assert json.loads(watched.stdout)["status"] == "succeeded"
    for n in range(3):
        cli("enqueue", "a_task", "--args", f"[{n}]", "-q", name, "--redis-url", redis_url)
    purged = run("purge", name, "--yes")
    assert "purged 3 job(s)" in purged.stdout and "purging" in purged.stderr
