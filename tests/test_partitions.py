"""Partitioned queues: one queue spread over N physical queues (each its own hash tag), on a
real Redis, memory:// and a real 3-master cluster."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from asyncjobs import Context, Queue, task
from asyncjobs._store import MAX_PARTITIONS, Connection, Partitions, partition_name

from .conftest import key_count, run_burst
from .late_subscribe import taken_late
from .waiting import wait_until


@task
async def record(ctx: Context, counter: str) -> str:
    """Count this run in Redis, by job id (the check does not trust the library's counters)."""
    await ctx.queue.client.hincrby(counter, ctx.job_id, 1)
    return ctx.job_id


running_now = 0
most_at_once = 0


@task(max_concurrency=1)
async def one_at_a_time(ctx: Context, counter: str) -> None:
    global running_now, most_at_once
    running_now += 1
    most_at_once = max(most_at_once, running_now)
    await asyncio.sleep(0.005)
    running_now -= 1
    await ctx.queue.client.hincrby(counter, ctx.job_id, 1)


@task(unique=True)
async def unique_record(ctx: Context, counter: str, n: int) -> None:
    await ctx.queue.client.hincrby(counter, ctx.job_id, 1)


@pytest.fixture
def counter(queue_name: str) -> str:
    # the hash tag keeps the counter in one slot on a cluster
    return f"test:{{{queue_name}-runs}}"


@pytest.fixture(autouse=True)
def quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Producers re-read the partition count within a tenth of a second (workers are told)."""
    monkeypatch.setattr("asyncjobs._queue.PARTITIONS_REFRESH", 0.1)


async def waiting(queue: Queue, name: str | None = None) -> int:
    """Jobs queued or deferred over every partition of the queue."""
    total = 0
    for physical in await queue.partition_names(name):
        keys = queue.keys_for(physical)
        total += await queue.client.zcard(keys.ready) + await queue.client.zcard(keys.deferred)
    return total


async def test_a_queue_is_one_partition_until_set_and_stores_as_before(queue: Queue) -> None:
    """partitions=1 (the default) writes no key of its own: the same keys as ever."""
    assert await queue.partitions() == Partitions(1, 1)
    job = await queue.enqueue("t", 1)
    assert job.queue_name == queue.name
    keys = queue.keys_for(queue.name)
    assert await queue.client.exists(keys.partitions) == 0
    assert await queue.client.exists(keys.job(job.id)) == 1
    assert await queue.partition_names() == [queue.name]


async def test_jobs_spread_over_every_partition_and_each_runs_once(
    queue: Queue, counter: str
) -> None:
    layout = await queue.set_partitions(4)
    assert (layout.count, layout.span) == (4, 4)
    jobs = await queue.enqueue_many([(record, (counter,), {}) for _ in range(200)])
    used = {job.queue_name for job in jobs}
    assert used == {partition_name(queue.name, i) for i in range(4)}, "every partition gets jobs"
    single = await queue.enqueue(record, counter)
    assert single.queue_name in used
    await run_burst(queue, [record])
    runs = await queue.client.hgetall(counter)
    assert set(runs) == {j.id.encode() for j in [*jobs, single]}
    assert set(runs.values()) == {b"1"}
    stats = await queue.stats()
    assert stats.succeeded == 201 and stats.queued == 0


@task
async def log_order(ctx: Context, order: str) -> None:
    await ctx.queue.client.rpush(order, ctx.job_id)


async def test_claims_take_turns_over_the_partitions_so_none_starves(
    queue: Queue, queue_name: str
) -> None:
    await queue.set_partitions(3)
    order = f"test:{{{queue_name}-order}}"
    jobs = await queue.enqueue_many([(log_order, (order,), {}) for _ in range(90)])
    where = {job.id: job.queue_name for job in jobs}
    await run_burst(queue, [log_order], concurrency=1)
    ran = [where[i.decode()] for i in await queue.client.lrange(order, 0, -1)]
    assert len(ran) == 90
    # each of the first nine claims comes from another partition than the one before
    assert len(set(ran[:9])) == 3 and all(a != b for a, b in itertools.pairwise(ran[:9]))


async def test_enqueue_many_makes_one_script_call_per_partition(queue: Queue) -> None:
    await queue.set_partitions(3)
    sent: list[str] = []
    run = queue.store.run

    async def counting(command: tuple[Any, ...]) -> Any:
        sent.append(command[command[2] + 3])  # the tag: first leading argument
        return await run(command)

    queue.store.run = counting  # type: ignore[method-assign]
    jobs = await queue.enqueue_many([("t", (i,), {}) for i in range(90)])
    assert len(sent) == 3 and len(set(sent)) == 3
    infos = [await job.info() for job in jobs]
    assert [info.args for info in infos] == [[i] for i in range(90)]  # in the items' order


async def test_a_job_is_found_by_id_in_whichever_partition_holds_it(queue: Queue) -> None:
    await queue.set_partitions(5)
    jobs = await queue.enqueue_many([("t", (i,), {}) for i in range(20)])
    keyed = await queue.enqueue("t", _idempotency_key="order-7")  # routed by its key, not id
    for job in [*jobs, keyed]:
        found = queue.job(job.id)
        assert await found.status() == "queued"
        assert found.queue_name == job.queue_name
        assert (await queue.job(job.id).info()).args == list((await job.info()).args)  # same record
        assert await queue.find_job(job.id) is not None
    await queue.set_partitions(2)  # routing by id changes; lookups still find every job
    for job in jobs:
        assert await queue.job(job.id).status() == "queued"
    assert await queue.job("no-such-job").status() == "not_found"


async def test_idempotency_unique_and_job_ids_hold_across_partitions(
    queue: Queue, counter: str
) -> None:
    await queue.set_partitions(6)
    first = await queue.enqueue(record, counter, _idempotency_key="pay-1")
    again = [await queue.enqueue(record, counter, _idempotency_key="pay-1") for _ in range(10)]
    assert all(j.duplicate and j.id == first.id for j in again)
    by_id = [await queue.enqueue(record, counter, _job_id="fixed") for _ in range(5)]
    assert [j.duplicate for j in by_id] == [False, True, True, True, True]
    uniques = await queue.enqueue_many([(unique_record, (counter, i % 3), {}) for i in range(30)])
    assert len({j.id for j in uniques}) == 3
    assert sum(not j.duplicate for j in uniques) == 3
    await run_burst(queue, [record, unique_record])
    runs = await queue.client.hgetall(counter)
    assert len(runs) == 1 + 1 + 3 and set(runs.values()) == {b"1"}


async def test_a_limited_task_goes_to_one_home_partition_so_its_limit_holds(
    queue: Queue, counter: str
) -> None:
    global most_at_once
    most_at_once = 0
    await queue.set_partitions(6)
    jobs = await queue.enqueue_many([(one_at_a_time, (counter,), {}) for _ in range(30)])
    assert len({j.queue_name for j in jobs}) == 1, "every job of the task in its home partition"
    await run_burst(queue, [one_at_a_time], concurrency=10)
    await run_burst(queue, [one_at_a_time], concurrency=10)  # (nothing left: returns at once)
    assert most_at_once == 1
    assert await queue.client.hlen(counter) == 30
    # by name: the workers declared the limit, so the client routes it home too
    by_name = await queue.enqueue("one_at_a_time", counter)
    assert by_name.queue_name == jobs[0].queue_name


async def test_shrinking_the_count_loses_no_job_workers_drain_the_dropped_partitions(
    queue: Queue, counter: str
) -> None:
    await queue.set_partitions(6)
    before = await queue.enqueue_many([(record, (counter,), {}) for _ in range(300)])
    assert len({j.queue_name for j in before}) == 6
    layout = await queue.set_partitions(3)
    assert (layout.count, layout.span) == (3, 6)
    after = await queue.enqueue_many([(record, (counter,), {}) for _ in range(60)])
    assert {j.queue_name for j in after} <= {partition_name(queue.name, i) for i in range(3)}
    assert await waiting(queue) == 360
    await run_burst(queue, [record])
    runs = await queue.client.hgetall(counter)
    assert set(runs) == {j.id.encode() for j in [*before, *after]}
    assert set(runs.values()) == {b"1"}


async def test_a_running_worker_serves_partitions_added_while_it_runs(
    queue: Queue, counter: str, start_worker: Any
) -> None:
    await start_worker([record])
    first = await queue.enqueue(record, counter)
    assert await first.result(timeout=10) == first.id
    await queue.set_partitions(4)
    jobs = await queue.enqueue_many([(record, (counter,), {}) for _ in range(40)])
    assert len({j.queue_name for j in jobs}) == 4
    for job in jobs:
        assert await job.result(timeout=20) == job.id


async def test_partitions_added_before_the_server_takes_the_workers_subscribe_are_served(
    queue: Queue, counter: str, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count changes after the worker sent its SUBSCRIBE but before the server took it:
    the change was announced to nobody, so the subscription's confirmation has the worker
    read the count again."""
    gate = asyncio.Event()
    monkeypatch.setattr(Connection, "pubsub", taken_late(Connection.pubsub, gate))
    worker = await start_worker([record])
    await queue.enqueue(record, counter)

    async def ran(expected: int) -> bool:
        return await queue.client.hlen(counter) == expected

    await wait_until(lambda: ran(1), 10, "the worker's first job")
    await queue.set_partitions(4)
    assert [k.name for k in worker.keys] == [queue.name]  # nothing heard yet
    gate.set()
    jobs = await queue.enqueue_many([(record, (counter,), {}) for _ in range(40)])
    assert len({j.queue_name for j in jobs}) == 4
    await wait_until(lambda: ran(41), 20, "every partition's jobs")


async def test_a_workflow_stays_in_one_partition(
    queue: Queue, counter: str, start_worker: Any
) -> None:
    from asyncjobs import chain, group

    await queue.set_partitions(4)
    await start_worker([record])
    flows = [
        await queue.enqueue(chain(record.si(counter), group(record.si(counter) for _ in range(3))))
        for _ in range(4)
    ]
    assert len({wf.queue_name for wf in flows}) > 1, "workflows take turns over the partitions"
    for wf in flows:
        assert len(await wf.result(timeout=20)) == 3  # the group's results
    assert await queue.client.hlen(counter) == 16


@pytest.mark.parametrize("bad", [0, -1, MAX_PARTITIONS + 1, 2.5, "4", True])
async def test_a_bad_partition_count_is_one_clear_line_and_changes_nothing(
    queue: Queue, bad: Any
) -> None:
    await queue.set_partitions(2)
    job = await queue.enqueue("t")
    keys_before = await key_count(queue)
    with pytest.raises(ValueError) as raised:
        await queue.set_partitions(bad)
    message = str(raised.value)
    assert "\n" not in message and f"1 to {MAX_PARTITIONS}" in message
    assert await queue.partitions() == Partitions(2, 2)
    assert await key_count(queue) == keys_before
    assert await queue.job(job.id).status() == "queued"


async def test_a_partition_cannot_itself_be_partitioned(queue: Queue) -> None:
    with pytest.raises(ValueError, match="is a partition"):
        await queue.set_partitions(2, partition_name(queue.name, 1))


def test_the_cli_sets_and_shows_partitions_and_info_shows_one_queue(redis_url: str) -> None:
    import json
    import uuid

    from typer.testing import CliRunner

    from asyncjobs.cli import app

    name = f"cli-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    result = runner.invoke(app, ["partitions", name, "4", "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    assert f"queue {name!r}: 4 partition(s)" in result.output

    async def fill() -> None:
        async with Queue(redis_url, name=name) as queue:
            await queue.enqueue_many([("t", (i,), {}) for i in range(40)])

    asyncio.run(fill())
    shown = runner.invoke(app, ["partitions", name, "--redis-url", redis_url])
    assert shown.exit_code == 0 and f"{name}~p3" in shown.output
    rows = json.loads(runner.invoke(app, ["info", "--json", "--redis-url", redis_url]).output)
    [row] = [r for r in rows if r["queue"].startswith(name)]
    assert (row["queue"], row["ready"], row["partitions"]) == (name, 40, 4)
    args = ["info", "--json", "--partitions", "--redis-url", redis_url]
    rows = json.loads(runner.invoke(app, args).output)
    mine = [r for r in rows if r["queue"].startswith(name)]
    assert len(mine) == 5 and sum(r["ready"] for r in mine[1:]) == 40

    bad = runner.invoke(app, ["partitions", name, "0", "--redis-url", redis_url])
    assert bad.exit_code == 1
    assert bad.output.count("\n") == 1 and "1 to 256" in bad.output
    again = runner.invoke(app, ["partitions", name, "--redis-url", redis_url])
    assert "4 partition(s)" in again.output  # the bad count changed nothing


@task(max_tries=1)
async def always_fails(ctx: Context, n: int) -> None:
    raise ValueError(f"bad {n}")


async def test_operating_a_partitioned_queue_covers_every_partition(
    queue: Queue, counter: str
) -> None:
    from asyncjobs import JobStatus

    await queue.set_partitions(3)
    failing = await queue.enqueue_many([(always_fails, (i,), {}) for i in range(30)])
    assert len({j.queue_name for j in failing}) == 3
    await run_burst(queue, [always_fails])
    letters = await queue.dead_letters(limit=100)
    assert {i.id for i in letters} == {j.id for j in failing}
    stamps = [tuple(int(p) for p in (i.dead_letter_id or "").split("-")) for i in letters]
    assert stamps == sorted(stamps, reverse=True), "newest first over all partitions"
    assert len(await queue.jobs(JobStatus.FAILED, limit=5)) == 5
    assert (await queue.dead_letter(failing[-1].id)) is not None
    assert (await queue.stats()).dead_letters == 30
    one = await queue.replay_dead_letter(failing[0].id)
    assert one.queue_name == failing[0].queue_name
    assert await queue.replay_dead_letters() == 29
    assert (await queue.stats()).dead_letters == 0

    queued = await queue.jobs(JobStatus.QUEUED, limit=50)
    assert len(queued) == 30
    assert {i.id for i in queued} == {j.id for j in failing}
    assert [i.id for i in await queue.jobs(JobStatus.QUEUED, offset=10, limit=5)] == [
        i.id for i in queued[10:15]
    ]
    assert await queue.pause() and await queue.is_paused()
    assert (await queue.stats()).paused
    worker_done = await run_burst(queue, [always_fails])
    assert worker_done.jobs_done == 0, "no partition hands out a job while paused"
    assert await queue.resume()
    assert await queue.purge() == 30
    assert (await queue.stats()).queued == 0
    ended = await queue.jobs(JobStatus.CANCELLED, limit=50)
    assert {i.id for i in ended} == {j.id for j in failing}


async def test_metrics_show_a_partitioned_queue_as_one_queue(redis_url: str) -> None:
    import urllib.request
    import uuid

    from asyncjobs import Worker, WorkerSettings

    from .redis_server import free_port

    name, port = f"m-{uuid.uuid4().hex[:8]}", free_port()
    counter = f"test:{{{name}}}"
    async with Queue(redis_url, name=name) as queue:
        await queue.set_partitions(3)
        jobs = await queue.enqueue_many([(record, (counter,), {}) for _ in range(30)])
        assert len({j.queue_name for j in jobs}) == 3
        settings = WorkerSettings(
            redis_url=redis_url, functions=[record], queues=[name], metrics_port=port
        )
        worker = Worker(settings)
        run = asyncio.create_task(worker.run(handle_signals=False))
        for job in jobs:
            await job.result(timeout=10)
        url = f"http://127.0.0.1:{port}/metrics"
        gauge = f'asyncjobs_queue_enqueued_total{{queue="{name}"}} 30.0'

        async def scraped() -> str | None:
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
            return body.decode() if gauge in body.decode() else None

        text = await wait_until(scraped, 10, "the queue gauges to add the partitions up")
        worker.stop()
        await run
    assert f'asyncjobs_jobs_succeeded_total{{queue="{name}",task="record"}} 30.0' in text
    assert "~p" not in text


async def test_the_dashboard_shows_a_partitioned_queue_as_one(backend_url: str) -> None:
    import uuid

    import httpx

    from asyncjobs.dashboard import create_dashboard

    prefix = f"d{uuid.uuid4().hex[:8]}"
    async with Queue(backend_url, name="work", prefix=prefix) as queue:
        await queue.set_partitions(3)
        jobs = await queue.enqueue_many([("t", (i,), {}) for i in range(30)])
        assert len({j.queue_name for j in jobs}) == 3
        app = create_dashboard(queue)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dash.test") as http:
            overview = (await http.get("/")).text
            assert 'data-queue="work"' in overview and "~p" not in overview
            page = (await http.get("/queues/work?tab=queued")).text
            assert all(job.id in page for job in jobs)
            far = next(j for j in jobs if j.queue_name != "work")
            job_page = await http.get(f"/jobs/{far.id}?queue=work")
            assert job_page.status_code == 200 and far.id in job_page.text


async def test_forgetting_a_partitioned_queue_refuses_while_any_partition_holds_jobs(
    queue: Queue,
) -> None:
    from asyncjobs import QueueInUse

    await queue.set_partitions(3)
    jobs = await queue.enqueue_many([("t", (i,), {}) for i in range(30)])
    far = next(j for j in jobs if j.queue_name != queue.name)
    with pytest.raises(QueueInUse, match="waiting or running"):
        await queue.forget_queue(queue.name)
    assert await queue.partitions() == Partitions(3, 3), "nothing was forgotten"
    assert await queue.job(far.id).status() == "queued"
    assert await queue.purge() == 30
    await queue.forget_queue(queue.name)
    assert queue.name not in await queue.queue_names()
    assert await queue.partitions() == Partitions(1, 1), "the count went with the queue"
