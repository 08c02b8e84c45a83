"""An outage is logged as the docs promise: one line when Redis is lost, one when it is back
(with the duration), a reminder now and then if it lasts, and no traceback, whichever of the
worker's loops (claims, leases, cancels, acks, cron, metrics) or the client's result waiters
notice it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from asyncjobs import Context, Queue, Worker, WorkerSettings, cron, task
from asyncjobs import _supervise as supervise

from ..redis_server import RedisServer, free_port
from .helpers import wait_until

OUTAGE_S = 3.0


@task(name="ticks")
async def ticks(ctx: Context) -> None:
    return None


@task(name="slow_result")
async def slow_result(ctx: Context) -> int:
    await asyncio.sleep(OUTAGE_S + 2)
    return 42


@pytest.mark.chaos
@pytest.mark.timeout(120)
async def test_every_loop_reports_an_outage_in_two_lines(
    redis_factory: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
    figures: Callable[[str], None],
) -> None:
    server = redis_factory("--appendonly", "yes", "--appendfsync", "always")
    settings = WorkerSettings(
        redis_url=server.url,
        functions=[slow_result, ticks],
        queues=["outage-logs"],
        cron_jobs=[cron(ticks, "* * * * * *")],  # every second: a tick falls in the outage
        metrics_port=free_port(),
        lease_seconds=1.0,
    )
    worker = Worker(settings)
    caplog.set_level(logging.INFO, logger="asyncjobs")
    async with Queue(server.url, name="outage-logs") as queue:
        run = asyncio.create_task(worker.run(handle_signals=False))
        job = await queue.enqueue(slow_result)
        waiting = asyncio.create_task(job.result(timeout=60))  # the client's waiters listen

        async def started() -> bool:
            return (await job.status()).value == "in_progress"

        await wait_until(started, 10, "the job to start")
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(server.start)
        assert await waiting == 42, "the job finished and its waiter was woken after the outage"

        async def back() -> bool:
            return sum("Redis is back" in r.getMessage() for r in caplog.records) >= 2

        await wait_until(back, 20, "the worker and the client to see Redis back")
        worker.stop()
        await run
    ours = [r for r in caplog.records if r.name.startswith("asyncjobs")]
    lines = {
        name: [r.getMessage() for r in ours if r.name == name] for name in {r.name for r in ours}
    }
    worker_lines = [m for m in lines.get("asyncjobs.worker", []) if "Redis" in m]
    client_lines = [m for m in lines.get("asyncjobs.client", []) if "Redis" in m]
    problems = [r for r in ours if r.levelno >= logging.WARNING]
    figures(
        f"outage_s={OUTAGE_S} worker_lines={len(worker_lines)} client_lines={len(client_lines)} "
        f"warnings_or_errors={len(problems)}"
    )
    assert [m.split(" ")[0] for m in worker_lines] == ["lost", "Redis"], worker_lines
    assert [m.split(" ")[0] for m in client_lines] == ["lost", "Redis"], client_lines
    assert all(r.exc_info is None for r in ours), "no traceback for an expected outage"
    cron_lines = [r.getMessage() for r in ours if r.name == "asyncjobs.cron"]
    assert all("could not" not in m for m in cron_lines), cron_lines


def test_a_long_outage_is_recalled_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reminders at 1, 5, 15, 30 and 60 minutes, then once an hour; the end says how long."""
    now = [1000.0]
    monkeypatch.setattr(supervise.time, "monotonic", lambda: now[0])
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    log = logging.getLogger("asyncjobs.test-outage")
    log.addHandler(Collect())
    log.setLevel(logging.INFO)
    outages = supervise.OutageLog(log)
    error = ConnectionError("refused")
    outages.begin("claims", error)
    outages.begin("lease upkeep", error)
    for _ in range(3 * 3600):  # three hours, one failure a second from each of two loops
        now[0] += 1
        outages.still("claims", error)
        outages.still("lease upkeep", error)
    outages.end("claims")
    assert outages.ongoing, "the outage lasts while any loop still fails"
    outages.end("lease upkeep")
    assert not outages.ongoing
    assert records[0].startswith("lost Redis")
    reminders = [r for r in records if r.startswith("Redis still lost")]
    assert [r.split(" after ")[1].split(" ")[0] for r in reminders] == [
        "1", "5", "15", "30", "60", "120", "180",
    ]  # fmt: skip
    assert records[-1] == "Redis is back after 10800.0s"
    assert len(records) == 1 + len(reminders) + 1
