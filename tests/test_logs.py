"""Logs: job and trace fields on the records of a try, `--log-format json`, logs under uvicorn,
and the outage lines docs/observability.md promises."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from asyncjobs import Context, Queue, Worker, WorkerSettings, task
from asyncjobs._supervise import REMINDERS_AT_MINUTES
from asyncjobs.cli import app as cli_app
from asyncjobs.log import (
    TEXT_FORMAT,
    CallSite,
    JobContextFilter,
    JsonFormatter,
    LineBatchingHandler,
    TextFormatter,
)

from . import otel_tasks
from .chaos.helpers import ROOT, WorkerProcess, wait_until
from .redis_server import RedisServer

task_log = logging.getLogger("tests.test_logs")


@task(max_tries=2, backoff=0)
async def chatty(ctx: Context) -> int:
    task_log.info("working on try %d", ctx.attempt)
    if ctx.attempt == 1:
        raise ConnectionError("not yet")
    return ctx.attempt


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every record reaching the root logger, as asyncjobs' JSON lines, while the test runs."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(JobContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_records_of_a_try_carry_its_job_and_span(
    redis_url: str, queue_name: str, json_lines: io.StringIO
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with Queue(redis_url, name=queue_name, tracer_provider=provider) as queue:
        job = await queue.enqueue(chatty)
        settings = WorkerSettings(
            redis_url=redis_url, functions=[chatty], queues=[queue_name], tracer_provider=provider
        )
        await asyncio.wait_for(Worker(settings).run(burst=True, handle_signals=False), 30)
        assert await job.result(timeout=5) == 2
    tries = {
        span.attributes["asyncjobs.attempt"]: span.context  # type: ignore[index]
        for span in exporter.get_finished_spans()
        if span.name.startswith("process")
    }
    records = parsed(json_lines.getvalue())
    by_task = [r for r in records if r["logger"] == "tests.test_logs"]
    assert [r["message"] for r in by_task] == ["working on try 1", "working on try 2"]
    for record in by_task:
        span = tries[record["attempt"]]
        assert record["job_id"] == job.id and record["task"] == "chatty"
        assert record["queue"] == queue_name
        assert record["trace_id"] == format(span.trace_id, "032x")  # type: ignore[union-attr]
        assert record["span_id"] == format(span.span_id, "016x")  # type: ignore[union-attr]
    outcomes = [r for r in records if r["logger"] == "asyncjobs.worker" and "outcome" in r]
    assert [(r["outcome"], r["attempt"]) for r in outcomes] == [("retry", 1), ("succeeded", 2)]
    assert all(isinstance(r["duration"], float) and r["trace_id"] for r in outcomes)
    assert not any("job_id" in r for r in records if "serving" in r["message"]), "outside a try"


@pytest.mark.slow
async def test_worker_log_format_json_is_one_object_per_line(
    redis_url: str, queue_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = tmp_path / "spans.jsonl"
    monkeypatch.setenv("ASYNCJOBS_TEST_SPANS", str(spans))
    async with Queue(redis_url, name=queue_name) as queue:
        job = await queue.enqueue(otel_tasks.flaky, 1)
        worker = WorkerProcess(
            redis_url,
            queue_name,
            tmp_path / "worker.log",
            "tests.otel_worker:settings",
            ("--log-format", "json", "--log-level", "INFO", "--burst"),
        ).start()
        assert worker.proc is not None
        assert await asyncio.to_thread(worker.proc.wait, 60) == 0, worker.log_text()
        assert await job.result(timeout=5) == 2
    records = parsed(worker.log_text())  # fails here if any line is not one JSON object
    assert {r["level"] for r in records} <= {"INFO", "WARNING"}
    ours = [r for r in records if r.get("job_id") == job.id]
    mine = [r for r in ours if r["logger"] == "tests.otel_tasks"]
    ends = [r for r in ours if "outcome" in r]
    assert [(r["outcome"], r["attempt"], r["task"], r["queue"]) for r in ends] == [
        ("retry", 1, "flaky", queue_name),
        ("succeeded", 2, "flaky", queue_name),
    ]
    assert all(r["duration"] >= 0 for r in ends)
    process = [json.loads(line) for line in spans.read_text().splitlines()]
    trace_ids = [s["context"]["trace_id"].removeprefix("0x") for s in process]
    assert [r["trace_id"] for r in mine] == trace_ids, "each try's records name its trace"
    assert [r["message"] for r in mine] == ["flaky try 1 starts", "flaky try 2 starts"]


def test_text_lines_are_the_standard_formatters_across_seconds() -> None:
    """The worker's text formatter renders its time stamp once per second: every line must
    still read exactly as logging.Formatter writes it, milliseconds and second changes too."""
    ours, standard = TextFormatter(TEXT_FORMAT), logging.Formatter(TEXT_FORMAT)
    for created in (1796171557.862, 1796171557.001, 1796171558.5, 1796171558.999, 1796171620.0):
        record = logging.LogRecord("asyncjobs.worker", logging.INFO, "", 0, "job %s", ("x",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)


def test_a_bad_log_format_is_one_clear_line() -> None:
    result = CliRunner().invoke(cli_app, ["worker", "x:settings", "--log-format", "xml"])
    assert result.exit_code == 2
    assert "--log-format takes text or json, not 'xml'" in result.output


@pytest.mark.slow
def test_the_worker_in_an_app_logs_under_uvicorn(tmp_path: Path) -> None:
    """uvicorn configures only its own loggers: asyncjobs' INFO lines used to vanish there."""
    from .redis_server import free_port

    port = free_port()
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "ASYNCJOBS_REDIS_URL": "memory://uvicorn-test"}
    args = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        async def serving() -> bool:
            return "Uvicorn running" in log.read_text()

        asyncio.run(wait_until(serving, 30, "uvicorn to start"))
        reply = httpx.post(f"http://127.0.0.1:{port}/reports", json={"title": "Q3", "pages": 1})
        job_id = reply.json()["job_id"]

        async def logged() -> bool:
            return f"job {job_id} reports.build try 1 succeeded" in log.read_text()

        asyncio.run(wait_until(logged, 30, "the job's INFO line in uvicorn's output"))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
    text = log.read_text()
    assert re.search(r"INFO: +asyncjobs\.worker: worker \S+ serving default", text), text


async def test_docs_say_what_the_worker_logs_in_an_outage(tmp_path: Path) -> None:
    """One WARNING when Redis is lost, one INFO when it is back, reminders in between: the
    worker does it (a real redis-server stopped and started) and the guide says it."""
    server = RedisServer().start()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(logging.INFO)
    worker_log = logging.getLogger("asyncjobs.worker")
    level = worker_log.level
    worker_log.addHandler(keep)
    worker_log.setLevel(logging.INFO)
    settings = WorkerSettings(
        redis_url=server.url, functions=[otel_tasks.add], queues=["outage"], lease_seconds=0.6
    )
    worker = Worker(settings)
    running = asyncio.create_task(worker.run(handle_signals=False))
    try:

        async def started() -> bool:
            return any("serving" in r.getMessage() for r in records)

        await wait_until(started, 20, "the worker to start")
        await asyncio.to_thread(server.stop)

        async def lost() -> bool:
            return any(r.getMessage().startswith("lost Redis") for r in records)

        await wait_until(lost, 20, "the outage line")
        await asyncio.sleep(2.0)  # outage seconds: retries, each unlogged
        await asyncio.to_thread(server.start)

        async def back() -> bool:
            return any(r.getMessage().startswith("Redis is back after") for r in records)

        # An idle worker says so within seconds, not when its blocking wait (30 s) returns.
        await wait_until(back, 10, "the line saying Redis is back")
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
        worker_log.removeHandler(keep)
        worker_log.setLevel(level)
        server.cleanup()
    outage = [r for r in records if "Redis" in r.getMessage() and "worker" not in r.getMessage()]
    assert [(r.levelname, r.getMessage().split(" (")[0].split(" after")[0]) for r in outage] == [
        ("WARNING", "lost Redis"),
        ("INFO", "Redis is back"),
    ], [r.getMessage() for r in outage]

    guide = " ".join((ROOT / "docs" / "observability.md").read_text().split())
    assert "`lost Redis (noticed by <part>): <error>; retrying with backoff`" in guide
    assert "`Redis is back after <N>s`" in guide
    assert "`Redis still lost after <N> min (<part>): <error>`" in guide
    minutes = ", ".join(str(m) for m in REMINDERS_AT_MINUTES[:-1])
    assert f"after {minutes} and {REMINDERS_AT_MINUTES[-1]} minutes, then every hour" in guide
    assert "logged once" not in guide


def test_without_opentelemetry_nothing_changes(tmp_path: Path) -> None:
    """The package without the otel extra: enqueue, run, JSON logs; no import error."""
    script = """
import asyncio, logging, sys
sys.modules["opentelemetry"] = None  # import opentelemetry -> ImportError
from asyncjobs import Queue, Worker, WorkerSettings, _tracing, task
from asyncjobs.log import configure_logging
configure_logging("INFO", "json")

@task
async def double(ctx, n):
    logging.getLogger("t").info("doubling")
    return 2 * n

async def main():
    async with Queue("memory://no-otel") as queue:
        job = await queue.enqueue(double, 21)
        await Worker(WorkerSettings(redis_url="memory://no-otel", functions=[double])).run(
            burst=True, handle_signals=False)
        print(_tracing.AVAILABLE, await job.result(timeout=5))

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "42"]
    records = parsed(done.stderr)
    [doubling] = [r for r in records if r["message"] == "doubling"]
    assert doubling["task"] == "double" and "trace_id" not in doubling


def _success_site() -> CallSite:
    from asyncjobs import _runner

    return _runner._SUCCESS


async def test_the_success_line_is_the_record_log_info_makes() -> None:
    """The worker makes its per-job record from a template: every attribute must be what
    Logger.makeRecord gives for the same call (in a task: on 3.12+ its name is one), and a
    custom record factory is still used."""
    site = _success_site()
    args, extra = ("j1", "send", 2, 0.25), {"job_id": "j1", "outcome": "succeeded"}
    ours = vars(site.record(args, extra))
    path, line, func = site._where
    theirs = vars(site.logger.makeRecord(
        site.logger.name, logging.INFO, path, line, site.msg, args, None, func, extra
    ))  # fmt: skip
    assert set(ours) == set(theirs)
    timing = {"created", "msecs", "relativeCreated"}
    assert {k: v for k, v in ours.items() if k not in timing} == {
        k: v for k, v in theirs.items() if k not in timing
    }
    assert abs(ours["created"] - theirs["created"]) < 1
    assert ours["msecs"] == int((ours["created"] - int(ours["created"])) * 1000)
    assert abs(ours["relativeCreated"] - theirs["relativeCreated"]) < 1000
    assert (
        logging.Formatter("%(filename)s:%(funcName)s %(message)s").format(site.record(args, extra))
        == "_runner.py:_log_success job j1 send try 2 succeeded in 0.250s"
    )

    class Tagged(logging.LogRecord):
        pass

    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(Tagged)
    try:
        assert type(site.record(args, extra)) is Tagged
    finally:
        logging.setLogRecordFactory(previous)


class _Writes(io.StringIO):
    """A stream that counts its write calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def write(self, text: str) -> int:
        self.calls += 1
        return super().write(text)


async def test_success_lines_of_one_loop_pass_are_one_write_and_others_go_at_once() -> None:
    stream = _Writes()
    handler = LineBatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    site = _success_site()
    for i in range(3):
        handler.handle(site.record((f"j{i}", "t", 1, 0.0), {}))
    assert stream.getvalue() == "", "held until the end of this pass of the loop"
    await asyncio.sleep(0)
    assert stream.getvalue().splitlines() == [
        f"job j{i} t try 1 succeeded in 0.000s" for i in range(3)
    ]
    assert stream.calls == 1
    handler.handle(site.record(("j3", "t", 1, 0.0), {}))
    handler.handle(logging.LogRecord("tests", logging.INFO, "", 0, "a task's own line", (), None))
    assert stream.getvalue().splitlines()[-2:] == [
        "job j3 t try 1 succeeded in 0.000s",
        "a task's own line",
    ], "another line is written at once, behind the held ones, in order"


def test_outside_an_event_loop_every_line_is_written_at_once() -> None:
    stream = _Writes()
    handler = LineBatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(_success_site().record(("j1", "t", 1, 0.0), {}))
    assert stream.getvalue() == "job j1 t try 1 succeeded in 0.000s\n"
