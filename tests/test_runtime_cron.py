"""Cron at run time: crons stored in Redis, picked up by running workers, removed for good."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from asyncjobs import ConfigurationError, Context, CronInfo, Queue, cron, task

from .chaos.helpers import WorkerProcess
from .long_tasks import record_tick
from .waiting import wait_until

LONG_SETTINGS = "tests.long_tasks:settings"
EVERY_SECOND = "* * * * * *"


def tag() -> str:
    return f"test:{{{uuid.uuid4().hex[:8]}}}"


async def ran(queue: Queue, key: str) -> list[str]:
    return [v.decode() for v in await queue.client.lrange(key, 0, -1)]


async def at_least(queue: Queue, key: str, n: int) -> bool:
    return bool(await queue.client.llen(key) >= n)


async def tick_jobs(queue: Queue, name: str) -> dict[str, int]:
    """Every tick job of cron ``name`` still on record: id → when it was enqueued (ms)."""
    keys = queue.keys_for(queue.name)
    out = {}
    async for key in queue.client.scan_iter(match=f"{keys.job_prefix}cron:{name}:*"):
        job_id = key.decode().removeprefix(keys.job_prefix)
        out[job_id] = int(await queue.client.hget(key, "enqueued_at"))
    return out


async def settle(queue: Queue) -> None:
    """Let every worker act on what happened so far: a probe cron, added now, ticks twice."""
    probe_key = f"{tag()}:probe"
    await queue.add_cron(cron(record_tick, EVERY_SECOND, name="probe", args=(probe_key,)))
    await wait_until(lambda: at_least(queue, probe_key, 2), 20, "two ticks of a probe cron")
    assert await queue.remove_cron("probe") is True


async def test_a_cron_added_at_run_time_ticks_on_a_running_worker_until_removed(
    queue: Queue, start_worker: Any
) -> None:
    key = f"{tag()}:ticks"
    await start_worker([record_tick])
    info = await queue.add_cron(cron(record_tick, EVERY_SECOND, name="each-second", args=(key,)))
    assert (info.name, info.task, info.expression) == ("each-second", "record_tick", EVERY_SECOND)
    assert (info.source, info.queue, info.args) == ("runtime", queue.name, [key])
    assert info.next_run is not None and info.last_run is None
    await wait_until(lambda: at_least(queue, key, 2), 15, "two ticks")
    [listed] = await queue.crons()
    assert listed.name == "each-second" and listed.served and listed.last_run is not None
    assert await queue.remove_cron("each-second") is True
    removed_ms = await queue.store.now_ms()
    assert await queue.crons() == []
    await settle(queue)
    enqueued = await tick_jobs(queue, "each-second")
    assert enqueued and max(enqueued.values()) <= removed_ms, "no tick after the removal"
    assert sorted(await ran(queue, key)) == sorted(enqueued), "each tick ran once"
    assert await queue.remove_cron("each-second") is False, "gone"
    assert await queue.client.hget(queue.keys_for(queue.name).cron, "each-second") is None


@task
async def other_tick(ctx: Context, key: str) -> None:
    await ctx.queue.client.rpush(key, f"other {ctx.job_id}")


async def test_adding_a_cron_of_the_same_name_replaces_it(queue: Queue, start_worker: Any) -> None:
    key = f"{tag()}:ticks"
    await start_worker([record_tick, other_tick])
    await queue.add_cron(cron(record_tick, EVERY_SECOND, name="job", args=(key,)))
    await wait_until(lambda: at_least(queue, key, 1), 15, "a tick")
    await queue.add_cron(cron(other_tick, EVERY_SECOND, name="job", args=(key,)))
    replaced_ms = await queue.store.now_ms()
    await wait_until(lambda: _has_other(queue, key), 15, "a tick of the new definition")
    [listed] = await queue.crons()
    assert listed.task == "other_tick"
    late = [
        job_id
        for job_id in await ran(queue, key)
        if not job_id.startswith("other") and int(job_id.rsplit(":", 1)[1]) > replaced_ms
    ]
    assert late == [], "the old definition ticks no more"
    await queue.remove_cron("job")


async def _has_other(queue: Queue, key: str) -> bool:
    return any(v.startswith("other") for v in await ran(queue, key))


async def test_a_cron_whose_task_no_worker_knows_is_reported_not_skipped_silently(
    queue: Queue, start_worker: Any
) -> None:
    await start_worker([record_tick])
    await wait_until(lambda: _workers(queue, 1), 10, "the worker to serve the queue")
    info = await queue.add_cron(cron("reports.daily", "0 6 * * *", name="orphan"))
    assert info.task == "reports.daily" and info.served is False
    known = await queue.add_cron(cron("record_tick", "0 6 * * *", name="known", args=("k",)))
    assert known.served is True, "a task name is enough when a worker knows it"
    listed = {c.name: c.served for c in await queue.crons()}
    assert listed == {"known": True, "orphan": False}
    await queue.remove_cron("orphan")
    await queue.remove_cron("known")


async def test_settings_crons_are_listed_and_protected(queue: Queue, start_worker: Any) -> None:
    key = f"{tag()}:ticks"
    nightly = cron(record_tick, "0 3 * * *", name="nightly", args=(key,),
                   timezone=ZoneInfo("Europe/Paris"))  # fmt: skip
    worker = await start_worker([record_tick], cron_jobs=[nightly])
    await wait_until(lambda: _listed(queue, "nightly"), 10, "the settings cron to be listed")
    [info] = await queue.crons()
    assert (info.source, info.timezone, info.served) == ("settings", "Europe/Paris", True)
    assert (
        info.next_run is not None and info.next_run.astimezone(ZoneInfo("Europe/Paris")).hour == 3
    )
    with pytest.raises(ConfigurationError, match=r"remove it from WorkerSettings\.cron_jobs"):
        await queue.remove_cron("nightly")
    with pytest.raises(ConfigurationError, match="give the run-time cron another name"):
        await queue.add_cron(cron(record_tick, EVERY_SECOND, name="nightly", args=(key,)))
    worker.stop()


async def _listed(queue: Queue, name: str) -> bool:
    return any(c.name == name for c in await queue.crons())


async def test_a_bad_cron_is_refused_with_nothing_stored(queue: Queue) -> None:
    from datetime import tzinfo

    class Odd(tzinfo):
        def utcoffset(self, dt: Any) -> Any:
            return None

    with pytest.raises(ValueError, match="run_at_startup runs a cron at each worker start"):
        await queue.add_cron(cron(record_tick, EVERY_SECOND, args=("k",), run_at_startup=True))
    with pytest.raises(ValueError, match="cannot store the time zone"):
        await queue.add_cron(cron(record_tick, EVERY_SECOND, args=("k",), timezone=Odd()))
    with pytest.raises(TypeError, match="wrong arguments for task 'record_tick'"):
        await queue.add_cron(cron(record_tick, EVERY_SECOND))
    with pytest.raises(TypeError, match="add_cron takes a cron"):
        await queue.add_cron("0 6 * * *")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid cron expression"):
        cron(record_tick, "every day at six")
    assert await queue.crons() == []


@pytest.mark.slow
async def test_two_running_workers_tick_a_run_time_cron_once_per_tick_until_removed(
    redis_url: str, tmp_path: Path
) -> None:
    name = f"cron-{uuid.uuid4().hex[:8]}"
    key = f"{tag()}:ticks"
    async with Queue(redis_url, name=name) as queue:
        workers = [
            WorkerProcess(redis_url, name, tmp_path / f"worker{i}.log", LONG_SETTINGS).start()
            for i in range(2)
        ]
        try:
            await wait_until(lambda: _workers(queue, 2), 30, "two workers serving the queue")
            # by name: the producer need not import the task
            await queue.add_cron(cron("record_tick", EVERY_SECOND, name="beat", args=(key,)))
            await wait_until(lambda: at_least(queue, key, 3), 20, "three ticks")
            assert workers[0].stop() == 0
            after_stop = await queue.client.llen(key)
            await wait_until(lambda: at_least(queue, key, after_stop + 2), 20, "ticks from one")
            assert await queue.remove_cron("beat") is True
            removed_ms = await queue.store.now_ms()
            await settle(queue)
        finally:
            for worker in workers:
                worker.stop()
        enqueued = await tick_jobs(queue, "beat")
        runs = await ran(queue, key)
        assert len(runs) == len(set(runs)) == len(enqueued), "each tick enqueued once, ran once"
        assert sorted(runs) == sorted(enqueued)
        assert max(enqueued.values()) <= removed_ms, "no tick after the removal"
        ticks = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in enqueued)
        assert all(b - a >= 1000 for a, b in itertools.pairwise(ticks)), "one per tick"


async def _workers(queue: Queue, n: int) -> bool:
    return (await queue.store.counts(queue.keys_for(queue.name))).workers >= n


def test_cron_info_is_exported() -> None:
    assert CronInfo.model_fields.keys() >= {"name", "task", "expression", "next_run", "last_run"}


def test_asyncjobs_info_reports_a_cron_no_worker_serves(redis_url: str) -> None:
    import asyncio
    import json

    from typer.testing import CliRunner

    from asyncjobs.cli import app

    name = f"cron-cli-{uuid.uuid4().hex[:8]}"

    async def add() -> None:
        async with Queue(redis_url, name=name) as queue:
            await queue.add_cron(cron("billing.invoice", "0 1 * * *", name="invoices"))
            await queue.add_cron(cron("billing.remind", "0 2 * * *", name="reminders"))
            elsewhere = cron("billing.remind", "0 2 * * *", name="other", queue=f"{name}-2")
            await queue.add_cron(elsewhere)
            assert [c.name for c in await queue.crons()] == ["invoices", "reminders"]
            listed = {(c.queue, c.name) for c in await queue.crons(all_queues=True)}
            assert {(name, "invoices"), (f"{name}-2", "other")} <= listed

    async def remove() -> None:
        async with Queue(redis_url, name=name) as queue:
            assert await queue.remove_cron("invoices") and await queue.remove_cron("reminders")
            assert await queue.remove_cron("other", f"{name}-2")

    asyncio.run(add())
    try:
        result = CliRunner().invoke(app, ["info", "--redis-url", redis_url])
        assert result.exit_code == 0, result.output
        assert (
            f"warning: cron 'invoices' of queue '{name}' runs task 'billing.invoice', which no "
            "live worker of that queue knows"
        ) in result.stderr
        result = CliRunner().invoke(app, ["info", "--redis-url", redis_url, "--json"])
        [row] = [r for r in json.loads(result.stdout) if r["queue"] == name]
        assert row["crons_not_served"] == ["invoices", "reminders"]
    finally:
        asyncio.run(remove())


async def test_a_cron_added_by_name_with_wrong_arguments_is_skipped_not_fatal(
    queue: Queue, start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"{tag()}:ticks"
    await start_worker([record_tick], give_up_after=1.0)
    await queue.add_cron(cron("record_tick", EVERY_SECOND, name="no-args"))  # needs a key
    await queue.add_cron(cron("record_tick", EVERY_SECOND, name="fine", args=(key,)))
    # three ticks take longer than give_up_after: a cron part failing on the bad one would
    # have stopped the worker by then
    await wait_until(lambda: at_least(queue, key, 3), 20, "ticks of the good cron")
    assert "cron no-args of queue" in caplog.text and "wrong arguments for task" in caplog.text
    assert await tick_jobs(queue, "no-args") == {}
    await queue.remove_cron("no-args")
    await queue.remove_cron("fine")


def test_a_settings_cron_with_wrong_arguments_stops_the_worker_at_once() -> None:
    from asyncjobs import Worker, WorkerSettings

    bad = cron(record_tick, EVERY_SECOND, name="no-key")
    with pytest.raises(ConfigurationError, match="cron 'no-key': wrong arguments for task"):
        Worker(WorkerSettings(redis_url="memory://", functions=[record_tick], cron_jobs=[bad]))
    by_name = cron("reports.weekly", "0 8 * * mon")
    with pytest.raises(ConfigurationError, match=r"not in WorkerSettings\.functions"):
        Worker(WorkerSettings(redis_url="memory://", functions=[record_tick], cron_jobs=[by_name]))


async def test_forgetting_a_queue_keeps_its_run_time_crons(queue: Queue) -> None:
    from asyncjobs import QueueInUse

    await queue.add_cron(cron("reports.daily", "0 6 * * *", name="daily"))
    with pytest.raises(QueueInUse, match=r"1 cron\(s\) added at run time: remove them first"):
        await queue.forget_queue(queue.name)
    assert [c.name for c in await queue.crons()] == ["daily"]
    assert await queue.remove_cron("daily")
    await queue.forget_queue(queue.name)
