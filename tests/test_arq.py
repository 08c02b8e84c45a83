"""asyncjobs.arq behaves as arq 0.28 documents it: the producer side (create_pool, ArqRedis,
Job) and the worker side (Worker, func, Retry, hooks, ctx), on a real Redis and on memory://.

Written from arq's documentation and the intent of its test suite, not from its code.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis.exceptions

from asyncjobs import ConfigurationError, Queue
from asyncjobs.arq import ArqRedis, Retry, Worker, check_health, create_pool, func
from asyncjobs.arq.connections import RedisSettings
from asyncjobs.arq.jobs import Job, JobDef, JobResult, JobStatus, ResultNotFound
from asyncjobs.arq.worker import FailedJobs, JobExecutionFailed

from .redis_server import free_port


@pytest.fixture
async def arq_redis(arq_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(arq_url, default_queue_name=f"arq-{uuid.uuid4().hex[:10]}")
    yield pool
    await pool.close()


MakeWorker = Callable[..., Worker]


@pytest.fixture
def worker(arq_redis: ArqRedis) -> MakeWorker:
    """arq's test fixture shape: a burst Worker on the test's pool and queue."""

    def make(functions: list[Any], **kwargs: Any) -> Worker:
        kwargs.setdefault("burst", True)
        kwargs.setdefault("handle_signals", False)
        kwargs.setdefault("queue_name", arq_redis.default_queue_name)
        return Worker(functions=functions, redis_pool=arq_redis, **kwargs)

    return make


async def foobar(ctx: Any, *args: Any, **kwargs: Any) -> int:
    return 42


async def fails(ctx: Any) -> None:
    await ctx["redis"].incr("fails:tries")
    raise ValueError("it broke")


class Boom(Exception):
    """An exception class of the user's own."""


async def raises_own(ctx: Any) -> None:
    raise Boom("custom")


# -- producer side -------------------------------------------------------------------------


async def test_enqueue_job_returns_a_job_with_its_id_and_definition(arq_redis: ArqRedis) -> None:
    before = datetime.now(timezone.utc)
    job = await arq_redis.enqueue_job("foobar", 123, a=456)
    assert isinstance(job, Job) and job.job_id and repr(job) == f"<arq job {job.job_id}>"
    assert await job.status() == JobStatus.queued
    info = await job.info()
    assert isinstance(info, JobDef) and not isinstance(info, JobResult)
    assert (info.function, info.args, info.kwargs, info.job_try) == (
        "foobar",
        (123,),
        {"a": 456},
        None,
    )
    assert abs((info.enqueue_time - before).total_seconds()) < 5
    assert info.score is not None and abs(info.score / 1000 - before.timestamp()) < 5


async def test_a_duplicate_job_id_gives_none(arq_redis: ArqRedis, worker: MakeWorker) -> None:
    first = await arq_redis.enqueue_job("foobar", _job_id="same")
    assert first is not None and first.job_id == "same"
    assert await arq_redis.enqueue_job("foobar", _job_id="same") is None
    await worker([foobar]).main()
    assert await arq_redis.enqueue_job("foobar", _job_id="same") is None, "its result is kept"


async def test_defer_by_and_defer_until_make_a_job_deferred(arq_redis: ArqRedis) -> None:
    now = datetime.now(timezone.utc)
    by = await arq_redis.enqueue_job("foobar", _defer_by=timedelta(seconds=60))
    until = await arq_redis.enqueue_job("foobar", _defer_until=now + timedelta(seconds=90))
    assert by is not None and until is not None
    assert await by.status() == JobStatus.deferred == await until.status()
    by_score = (await by.info()).score  # type: ignore[union-attr]
    until_score = (await until.info()).score  # type: ignore[union-attr]
    assert by_score is not None and abs(by_score / 1000 - now.timestamp() - 60) < 5
    assert until_score is not None and abs(until_score / 1000 - now.timestamp() - 90) < 5
    with pytest.raises(RuntimeError, match="use either 'defer_until' or 'defer_by'"):
        await arq_redis.enqueue_job("foobar", _defer_by=1, _defer_until=now)


async def test_a_job_expires_a_day_after_it_is_due_unless_told(arq_redis: ArqRedis) -> None:
    job = await arq_redis.enqueue_job("foobar", _defer_by=100)
    short = await arq_redis.enqueue_job("foobar", _expires=30)
    assert job is not None and short is not None
    queue = arq_redis.queue
    for handle, expected in ((job, 86_400 + 100), (short, 30)):
        info = await queue.job(handle.job_id, arq_redis.default_queue_name).info()
        assert info.expires_at is not None and info.enqueued_at is not None
        assert abs((info.expires_at - info.enqueued_at).total_seconds() - expected) < 2


async def test_an_expired_job_ends_with_job_expired(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    job = await arq_redis.enqueue_job("foobar", _expires=0.001)
    assert job is not None
    await asyncio.sleep(0.01)  # past its 1 ms: the worker must see it expired
    await worker([foobar]).main()
    with pytest.raises(JobExecutionFailed, match="job expired"):
        await job.result(timeout=5)
    assert await job.status() == JobStatus.complete


async def test_arq_redis_runs_raw_redis_commands(arq_redis: ArqRedis) -> None:
    key = f"raw-{uuid.uuid4().hex}"
    await arq_redis.set(key, "v")
    await arq_redis.lpush(key + ":list", "a", "b")
    assert await arq_redis.get(key) == b"v"
    assert await arq_redis.lrange(key + ":list", 0, -1) == [b"b", b"a"]
    async with arq_redis.pipeline(transaction=True) as pipe:
        pipe.incr(key + ":n")
        pipe.incr(key + ":n")
        assert await pipe.execute() == [1, 2]


async def test_queued_jobs_lists_waiting_jobs_in_due_order(arq_redis: ArqRedis) -> None:
    await arq_redis.enqueue_job("foobar", a=1, _job_id="1")
    await arq_redis.enqueue_job("second", 4, b=5, _job_id="2", _defer_by=30)
    await arq_redis.enqueue_job("third", 7, _job_id="3")
    jobs = await arq_redis.queued_jobs()
    assert [(j.job_id, j.function, j.args, j.kwargs) for j in jobs] == [
        ("1", "foobar", (), {"a": 1}),
        ("3", "third", (7,), {}),
        ("2", "second", (4,), {"b": 5}),
    ]
    assert all(isinstance(j, JobDef) and j.job_try is None for j in jobs)
    assert jobs[0].score <= jobs[1].score < jobs[2].score  # type: ignore[operator]


async def test_results_and_all_job_results(arq_redis: ArqRedis, worker: MakeWorker) -> None:
    job = await arq_redis.enqueue_job("foobar", 1, 2, c=3)
    assert job is not None
    await worker([func(foobar, name="foobar")]).main()
    assert await job.result(poll_delay=0) == 42
    assert await job.status() == JobStatus.complete
    info = await job.info()
    assert isinstance(info, JobResult) and info == await job.result_info()
    assert (info.function, info.args, info.kwargs, info.job_try) == ("foobar", (1, 2), {"c": 3}, 1)
    assert info.success and info.result == 42 and info.score is None
    assert info.queue_name == arq_redis.default_queue_name and info.job_id == job.job_id
    assert info.enqueue_time <= info.start_time <= info.finish_time
    assert job.job_id in [r.job_id for r in await arq_redis.all_job_results()]


async def test_result_waits_until_its_timeout(arq_redis: ArqRedis) -> None:
    job = await arq_redis.enqueue_job("foobar")
    assert job is not None
    with pytest.raises(asyncio.TimeoutError):
        await job.result(timeout=0.1)
    unknown = Job("no-such-job", arq_redis)
    with pytest.raises(ResultNotFound):
        await unknown.result()
    assert await unknown.status() == JobStatus.not_found and await unknown.info() is None


async def test_a_job_handle_by_id_finds_the_job_in_any_queue(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    job = await arq_redis.enqueue_job("foobar", _queue_name=arq_redis.default_queue_name)
    assert job is not None
    await worker([foobar]).main()
    by_id = Job(job.job_id, arq_redis, _queue_name="some-other-queue")
    assert await by_id.status() == JobStatus.complete and await by_id.result() == 42


async def test_abort_stops_a_queued_job_and_a_running_one(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    started = asyncio.Event()
    ran: list[str] = []

    async def slow(ctx: Any) -> None:
        ran.append(ctx["job_id"])
        started.set()
        await asyncio.sleep(30)

    waiting = await arq_redis.enqueue_job("slow", _defer_by=30)
    assert waiting is not None and await waiting.abort(timeout=5) is True
    running = await arq_redis.enqueue_job("slow")
    assert running is not None
    run = asyncio.create_task(worker([func(slow, name="slow")], allow_abort_jobs=True).main())
    await asyncio.wait_for(started.wait(), 10)
    assert await running.abort(timeout=5) is True
    with pytest.raises(asyncio.CancelledError):
        await running.result(timeout=5)
    await asyncio.wait_for(run, 10)
    assert ran == [running.job_id], "the aborted queued job never ran"
    done = await arq_redis.enqueue_job("foobar")
    assert done is not None
    await worker([foobar]).main()
    assert await done.abort(timeout=1) is False, "a finished job is not aborted"


async def test_create_pool_retries_then_raises_redis_connection_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = RedisSettings(port=free_port(), conn_retries=2, conn_retry_delay=0)
    with pytest.raises(redis.exceptions.ConnectionError):
        await create_pool(settings)
    retries = [r for r in caplog.records if "retries remaining" in r.getMessage()]
    assert len(retries) == 2


def test_redis_settings_from_dsn_and_as_url() -> None:
    settings = RedisSettings.from_dsn("rediss://user:pw@example.com:6380/3")
    assert (settings.host, settings.port, settings.database, settings.ssl) == (
        "example.com", 6380, 3, True,
    )  # fmt: skip
    assert settings.url.startswith("rediss://user:pw@example.com:6380/3")
    assert RedisSettings.from_dsn("redis://localhost?db=2").database == 2
    unix = RedisSettings.from_dsn("unix:///tmp/redis.sock")
    assert unix.unix_socket_path == "/tmp/redis.sock" and unix.url.startswith("unix:///tmp/")
    with pytest.raises(RuntimeError, match="invalid DSN scheme"):
        RedisSettings.from_dsn("http://localhost")


# -- worker side ---------------------------------------------------------------------------


async def test_an_ordinary_exception_fails_the_job_at_once(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    """arq retries only on Retry: a side effect before the error happens once."""
    await arq_redis.delete("fails:tries")
    job = await arq_redis.enqueue_job("fails")
    assert job is not None
    w = worker([fails])
    await w.main()
    assert (w.jobs_complete, w.jobs_failed, w.jobs_retried) == (0, 1, 0)
    assert await arq_redis.get("fails:tries") == b"1"
    with pytest.raises(ValueError, match="it broke"):
        await job.result()
    info = await job.result_info()
    assert info is not None and not info.success and isinstance(info.result, ValueError)


async def test_a_failure_re_raises_the_users_own_exception_type(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    job = await arq_redis.enqueue_job("raises_own")
    assert job is not None
    await worker([raises_own]).main()
    with pytest.raises(Boom, match="custom") as caught:
        await job.result()
    assert caught.value.args == ("custom",), "rebuilt from its type and message"


async def test_retry_runs_the_job_again_and_a_burst_waits_for_it(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    tries: list[int] = []

    async def flaky(ctx: Any) -> int:
        tries.append(ctx["job_try"])
        if ctx["job_try"] < 3:
            raise Retry(defer=timedelta(milliseconds=50))
        return ctx["job_try"]

    job = await arq_redis.enqueue_job("flaky")
    assert job is not None
    w = worker([func(flaky, name="flaky")])
    await w.main()
    assert tries == [1, 2, 3] and await job.result() == 3
    assert (w.jobs_complete, w.jobs_failed, w.jobs_retried) == (1, 0, 2)
    assert repr(Retry(defer=2)) == "<Retry defer 2.00s>" and Retry(1.5).defer_score == 1500


async def test_retries_used_up_end_with_max_retries_exceeded(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    async def always(ctx: Any) -> None:
        raise Retry()

    job = await arq_redis.enqueue_job("always")
    assert job is not None
    w = worker([func(always, name="always")], max_tries=3)
    await w.main()
    assert (w.jobs_failed, w.jobs_retried) == (1, 2)
    with pytest.raises(JobExecutionFailed, match="max 3 retries exceeded"):
        await job.result()


async def test_a_timeout_fails_the_job_without_a_retry(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    async def slow(ctx: Any) -> None:
        await asyncio.sleep(30)

    job = await arq_redis.enqueue_job("slow")
    assert job is not None
    w = worker([func(slow, name="slow", timeout=0.1)])
    await w.main()
    assert (w.jobs_failed, w.jobs_retried) == (1, 0)
    with pytest.raises(asyncio.TimeoutError):
        await job.result()


async def test_ctx_holds_arqs_keys_and_redis_is_an_arq_client(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    seen: dict[str, Any] = {}

    async def look(ctx: Any) -> str:
        seen.update(ctx)
        await ctx["redis"].set(f"look:{ctx['job_id']}", "raw")
        follow = await ctx["redis"].enqueue_job("foobar", _job_id=f"after-{ctx['job_id']}")
        seen["follow"] = follow
        return ctx.get("job_try")  # type: ignore[no-any-return]

    job = await arq_redis.enqueue_job("look")
    assert job is not None
    await worker([func(look, name="look"), foobar]).main()
    assert await job.result() == 1
    assert seen["job_id"] == job.job_id and seen["job_try"] == 1
    assert isinstance(seen["enqueue_time"], datetime) and isinstance(seen["score"], int)
    assert isinstance(seen["redis"], ArqRedis)
    assert await arq_redis.get(f"look:{job.job_id}") == b"raw"
    assert isinstance(seen["follow"], Job) and seen["follow"].job_id == f"after-{job.job_id}"
    # (the worker's client closed with the worker: read the job through ours)
    assert await Job(seen["follow"].job_id, arq_redis).result(timeout=5) == 42


async def test_each_job_gets_its_own_ctx(arq_redis: ArqRedis, worker: MakeWorker) -> None:
    wrote = {1: asyncio.Event(), 2: asyncio.Event()}

    async def write(ctx: Any, value: int) -> int:
        ctx["mine"] = value
        wrote[value].set()
        await wrote[3 - value].wait()  # both jobs have written before either reads
        return ctx["mine"]  # type: ignore[no-any-return]

    jobs = [await arq_redis.enqueue_job("write", n) for n in (1, 2)]
    await worker([func(write, name="write")], max_jobs=2).main()
    assert [await j.result() for j in jobs if j] == [1, 2]


async def test_hooks_run_in_arqs_order_with_the_worker_ctx(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    events: list[str] = []

    async def startup(ctx: dict[str, Any]) -> None:
        assert "redis" in list(ctx), "listed before its first read, as in arq's ctx dict"
        events.append(f"startup redis={type(ctx['redis']).__name__} seed={ctx['seed']}")
        ctx["db"] = "connection"

    async def shutdown(ctx: dict[str, Any]) -> None:
        events.append("shutdown")

    async def job_start(ctx: Any) -> None:
        events.append(f"start {ctx['db']}")

    async def job_end(ctx: Any) -> None:
        events.append("end")

    async def after_end(ctx: Any) -> None:
        status = await Job(ctx["job_id"], ctx["redis"]).status()
        events.append(f"after {status.value}")

    async def work(ctx: Any) -> None:
        events.append("run")

    await arq_redis.enqueue_job("work")
    await worker(
        [func(work, name="work")],
        ctx={"seed": 7},
        on_startup=startup,
        on_shutdown=shutdown,
        on_job_start=job_start,
        on_job_end=job_end,
        after_job_end=after_end,
    ).main()
    assert events == [
        "startup redis=ArqRedis seed=7",
        "start connection",
        "run",
        "end",
        "after complete",
        "shutdown",
    ]


async def test_max_burst_jobs_stops_a_burst_after_that_many(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    for _ in range(3):
        await arq_redis.enqueue_job("foobar")
    w = worker([foobar], max_burst_jobs=1)
    await w.main()
    assert w.jobs_complete == 1 and len(await arq_redis.queued_jobs()) == 2


async def test_run_check_raises_failed_jobs_or_counts_successes(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    await arq_redis.enqueue_job("foobar")
    assert await worker([foobar]).run_check() == 1
    await arq_redis.enqueue_job("fails")
    with pytest.raises(FailedJobs, match="1 job failed ValueError") as caught:
        await worker([fails]).run_check()
    assert caught.value.count == 1 and isinstance(caught.value.job_results[0].result, ValueError)


async def test_job_try_at_enqueue_sets_the_first_try(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    async def which(ctx: Any, **kwargs: Any) -> Any:
        return ctx["job_try"], kwargs

    later = await arq_redis.enqueue_job("which", flag=True, _job_try=3)
    over = await arq_redis.enqueue_job("which", _job_try=6)
    assert later is not None and over is not None
    assert (await later.info()).job_try == 3  # type: ignore[union-attr]
    await worker([func(which, name="which")]).main()
    assert await later.result() == [3, {"flag": True}]
    with pytest.raises(JobExecutionFailed, match="max 5 retries exceeded"):
        await over.result()


async def test_an_unknown_function_fails_with_function_not_found(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    job = await arq_redis.enqueue_job("missing")
    assert job is not None
    w = worker([foobar])
    await w.main()
    assert w.jobs_failed == 1
    with pytest.raises(JobExecutionFailed, match="function 'missing' not found"):
        await job.result()


def test_workers_get_arqs_defaults() -> None:
    w = Worker(functions=[foobar], handle_signals=False)
    s = w.settings
    assert (s.queues, s.concurrency, s.keep_result, s.max_tries, s.job_timeout) == (
        ["arq:queue"], 10, 3600, 5, 300,
    )  # fmt: skip
    assert s.redis_url.startswith("redis://localhost:6379/0")
    assert w.functions["foobar"].name == "foobar" and w.health_check_key == "arq:queue:health-check"
    with pytest.raises(RuntimeError, match="at least one function"):
        Worker(functions=[], handle_signals=False)


def test_func_takes_arqs_options_and_dotted_paths() -> None:
    f = func(foobar, name="renamed", timeout=timedelta(seconds=3), max_tries=2, keep_result=10)
    assert (f.name, f.timeout_s, f.max_tries, f.keep_result_s) == ("renamed", 3, 2, 10)
    assert f.coroutine is foobar and func(f) is f
    by_path = func("tests.test_arq.foobar")
    assert by_path.name == "tests.test_arq.foobar" and by_path.coroutine is foobar
    with pytest.raises(RuntimeError, match="not a coroutine function"):
        func(len)  # type: ignore[arg-type]


async def test_check_health_says_whether_a_worker_is_alive(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    url = arq_redis.queue.url
    name = arq_redis.default_queue_name

    class Settings:
        functions = [foobar]
        redis_settings = url
        queue_name = name

    assert await asyncio.to_thread(check_health, Settings) == 1
    started = asyncio.Event()

    async def hold(ctx: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    job = await arq_redis.enqueue_job("hold")
    assert job is not None
    run = asyncio.create_task(worker([func(hold, name="hold")]).main())
    await asyncio.wait_for(started.wait(), 10)
    assert await asyncio.to_thread(check_health, Settings) == 0  # its own loop, in a thread
    await job.abort(timeout=5)
    await asyncio.wait_for(run, 10)


async def test_a_settings_class_warns_once_about_what_arq_ignores(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from asyncjobs import WorkerSettings

    class Settings:
        functions = [foobar]
        redis_settings = RedisSettings()
        poll_delay = 0.1
        job_serializer = None
        max_retries = 3  # a typo arq drops silently

        @staticmethod
        def helper() -> None: ...

    with caplog.at_level(logging.WARNING, logger="asyncjobs.worker"):
        settings = WorkerSettings.coerce(Settings)
    [line] = [r.getMessage() for r in caplog.records if "ignored settings" in r.getMessage()]
    for name in ("poll_delay", "job_serializer", "max_retries (did you mean 'max_tries'?)"):
        assert name in line
    assert "helper" in line
    assert settings.max_tries == 5 and settings.queues == ["arq:queue"]


async def test_a_producer_queue_sees_arq_jobs_as_its_own(arq_redis: ArqRedis) -> None:
    job = await arq_redis.enqueue_job("foobar", 5)
    assert job is not None
    async with Queue(arq_redis.queue.url, name=arq_redis.default_queue_name) as queue:
        info = await queue.job(job.job_id).info()
    assert info.task == "foobar" and info.args == [5] and info.status.value == "queued"


# -- what differs from arq (each listed in docs/migrating-from-arq.md) -----------------------


async def echo(ctx: Any, *args: Any, **kwargs: Any) -> Any:
    return [list(args), kwargs]


async def test_differs_arguments_and_results_travel_as_json(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    from asyncjobs import SerializationError

    job = await arq_redis.enqueue_job(
        "echo", (1, 2), when=datetime(2026, 1, 1, tzinfo=timezone.utc)
    )
    assert job is not None
    await worker([echo]).main()
    assert await job.result() == [[[1, 2]], {"when": "2026-01-01T00:00:00+00:00"}]
    with pytest.raises(SerializationError, match="JSON"):
        await arq_redis.enqueue_job("echo", object())
    with pytest.raises(TypeError):  # SerializationError is a TypeError too
        await arq_redis.enqueue_job("echo", {1, 2j})


async def test_differs_an_error_class_this_process_cannot_find_comes_back_as_job_failed(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    from asyncjobs import JobFailed

    class Hidden(Exception):  # a local class: no module attribute names it
        pass

    async def hides(ctx: Any) -> None:
        raise Hidden("where am I")

    job = await arq_redis.enqueue_job("hides")
    assert job is not None
    await worker([func(hides, name="hides")]).main()
    with pytest.raises(JobFailed, match="Hidden: where am I") as caught:
        await job.result()
    assert caught.value.error_type == "Hidden" and "where am I" in caught.value.traceback


async def test_differs_results_are_kept_for_the_workers_keep_result(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    job = await arq_redis.enqueue_job("foobar")
    assert job is not None
    await worker([func(foobar, name="foobar", keep_result=0)]).main()
    assert await job.result() == 42, "arq would have dropped it (keep_result=0)"


async def test_differs_on_job_end_runs_once_the_outcome_is_recorded(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    seen: list[JobStatus] = []

    async def job_end(ctx: Any) -> None:
        seen.append(await Job(ctx["job_id"], arq_redis).status())

    await arq_redis.enqueue_job("foobar")
    await worker([foobar], on_job_end=job_end).main()
    assert seen == [JobStatus.complete], "arq's on_job_end runs just before it is recorded"


def test_differs_job_completion_wait_is_the_shutdown_grace() -> None:
    assert Worker(functions=[foobar], job_completion_wait=5).settings.shutdown_grace == 5
    default = Worker(functions=[foobar]).settings.shutdown_grace
    assert default == 20, "arq cancels running jobs at once on a signal; we let them finish"


async def test_differs_abort_works_without_allow_abort_jobs(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    started = asyncio.Event()

    async def slow(ctx: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    job = await arq_redis.enqueue_job("slow")
    assert job is not None
    run = asyncio.create_task(worker([func(slow, name="slow")]).main())  # allow_abort_jobs off
    await asyncio.wait_for(started.wait(), 10)
    assert await job.abort(timeout=5) is True
    await asyncio.wait_for(run, 10)


async def test_differs_ctx_score_is_the_enqueue_time(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    scores: list[int] = []

    async def score(ctx: Any) -> None:
        scores.append(ctx["score"])

    job = await arq_redis.enqueue_job("score", _defer_by=0.05)
    assert job is not None
    enqueued = (await job.info()).enqueue_time  # type: ignore[union-attr]
    await worker([func(score, name="score")]).main()
    assert scores == [round(enqueued.timestamp() * 1000)], "arq: the time it was due"


async def test_differs_arqs_own_keys_are_neither_written_nor_read(
    arq_redis: ArqRedis, worker: MakeWorker
) -> None:
    job = await arq_redis.enqueue_job("foobar")
    assert job is not None
    assert await arq_redis.exists(f"arq:job:{job.job_id}") == 0
    assert await arq_redis.zscore(arq_redis.default_queue_name, job.job_id) is None
    await arq_redis.zadd(arq_redis.default_queue_name, {"left-by-arq": 1})  # an arq job's id
    w = worker([foobar])
    await w.main()
    assert w.jobs_complete == 1 and await job.result() == 42
    assert await arq_redis.exists(f"arq:result:{job.job_id}") == 0


async def test_differs_info_of_a_waiting_job_carries_its_id(arq_redis: ArqRedis) -> None:
    job = await arq_redis.enqueue_job("foobar")
    assert job is not None
    info = await job.info()
    assert info is not None and info.job_id == job.job_id, "arq's info() leaves it None"


async def test_differs_other_underscore_keywords_are_refused(arq_redis: ArqRedis) -> None:
    with pytest.raises(TypeError, match="unknown enqueue option"):
        await arq_redis.enqueue_job("foobar", _custom=1)
    job = await arq_redis.enqueue_job("foobar", _priority=5)  # asyncjobs's own options work
    assert job is not None


async def test_differs_ctx_is_a_mapping_not_a_dict(arq_redis: ArqRedis, worker: MakeWorker) -> None:
    from collections.abc import MutableMapping

    kinds: list[tuple[bool, bool]] = []

    async def kind(ctx: Any) -> None:
        kinds.append((isinstance(ctx, MutableMapping), isinstance(ctx, dict)))

    await arq_redis.enqueue_job("kind")
    await worker([func(kind, name="kind")]).main()
    assert kinds == [(True, False)]


async def test_the_workers_pool_is_open_until_close(arq_redis: ArqRedis) -> None:
    url = arq_redis.queue.url
    w = Worker(
        functions=[foobar], redis_settings=url, queue_name=arq_redis.default_queue_name,  # type: ignore[arg-type]
        burst=True, handle_signals=False,
    )  # fmt: skip
    job = await w.pool.enqueue_job("foobar")
    assert job is not None and w.pool.default_queue_name == arq_redis.default_queue_name
    await w.main()
    assert await job.result(timeout=5) == 42 and await w.pool.ping()
    await w.close()


async def test_differs_create_pool_refuses_a_cluster() -> None:
    from asyncjobs import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"use asyncjobs\.Queue for a Redis Cluster"):
        await create_pool("redis+cluster://127.0.0.1:1")


def test_a_class_with_only_shared_names_is_read_as_worker_settings() -> None:
    """Only arq-only names, or a module that uses asyncjobs.arq, make a class arq-style:
    a minimal class written for asyncjobs gets our defaults, and a typo in it is refused."""
    from asyncjobs._settings import WorkerSettings as Settings

    from .settings_samples import arq_minimal, native_minimal

    native = Settings.coerce(native_minimal.Settings)
    assert native.queues == ["default"] and native.concurrency == 100 and native.max_tries == 2
    arq = Settings.coerce(arq_minimal.WorkerSettings)
    assert arq.queues == ["arq:queue"] and arq.concurrency == 10 and arq.max_tries == 5
    with pytest.raises(ConfigurationError, match="max_retries"):
        Settings.coerce(native_minimal.WithTypo)
