"""OpenTelemetry tracing end to end: a FastAPI request, the ``send`` span of its enqueue, and the
``process`` spans of a real worker subprocess on the real Redis (it writes its spans to a file,
see otel_worker.py), linked by default and parented with ``trace_parent="child"``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import baggage, context, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import asyncjobs
from asyncjobs import Context, JobFailed, JobStatus, Queue, chain, cron, task

from . import otel_tasks as tasks
from .chaos.helpers import WorkerProcess, wait_until
from .redis_cluster import RedisCluster

pytestmark = pytest.mark.slow

SETTINGS = "tests.otel_worker:settings"
MESSAGING = {"messaging.system": "asyncjobs", "messaging.operation.type": "process"}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """The app's SDK: spans kept in memory (the global provider stays the API's no-op)."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@pytest.fixture
async def queue(redis_url: str, queue_name: str, provider: TracerProvider) -> AsyncIterator[Queue]:
    async with Queue(redis_url, name=queue_name, tracer_provider=provider) as q:
        yield q


class Spans:
    """The spans a worker subprocess wrote, one JSON object per line, as they end."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[dict[str, Any]]:
        text = self.path.read_text() if self.path.exists() else ""
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.all() if s["name"] == name]

    async def wait_for(self, name: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]] | None:
            found = self.named(name)
            return found if len(found) >= count else None

        found: list[dict[str, Any]] = await wait_until(enough, timeout, f"{count} {name} span(s)")
        return sorted(found, key=lambda s: s["start_time"])


@pytest.fixture
def run_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[WorkerProcess, Spans]]]:
    """Start `asyncjobs worker tests.otel_worker:settings` with its spans going to a file."""
    started: list[WorkerProcess] = []

    def start(
        url: str, queue: str, *, parent: str = "link", redis_spans: bool = False, extra: Any = ()
    ) -> tuple[WorkerProcess, Spans]:
        path = tmp_path / f"spans-{len(started)}.jsonl"
        monkeypatch.setenv("ASYNCJOBS_TEST_SPANS", str(path))
        monkeypatch.setenv("ASYNCJOBS_TEST_TRACE_PARENT", parent)
        monkeypatch.setenv("ASYNCJOBS_TEST_INSTRUMENT_REDIS", "1" if redis_spans else "0")
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(url, queue, log, SETTINGS, tuple(extra)).start()
        started.append(worker)
        return worker, Spans(path)

    yield start
    for worker in started:
        worker.stop()


def hex_id(value: int, width: int) -> str:
    return "0x" + format(value, f"0{width}x")


def ids_of(span: ReadableSpan) -> tuple[str, str]:
    """(trace id, span id) of an in-memory span, as the JSON lines write them."""
    assert span.context is not None
    return hex_id(span.context.trace_id, 32), hex_id(span.context.span_id, 16)


def links_of(span: dict[str, Any]) -> list[str]:
    return [link["context"]["span_id"] for link in span["links"]]


def app_for(queue: Queue, provider: TracerProvider) -> FastAPI:
    app = FastAPI()

    @app.post("/sum")
    async def enqueue_sum(a: int, b: int) -> dict[str, str]:
        job = await queue.enqueue(tasks.add, a, b)
        return {"job_id": job.id}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    return app


@pytest.mark.parametrize("parent", ["link", "child"])
async def test_a_request_its_send_and_the_process_span_are_connected(
    queue: Queue,
    redis_url: str,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    run_worker: Callable[..., tuple[WorkerProcess, Spans]],
    parent: str,
) -> None:
    _, spans = run_worker(redis_url, queue.name, parent=parent)
    app = app_for(queue, provider)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post("/sum", params={"a": 2, "b": 3})
    job_id = response.json()["job_id"]
    assert await queue.job(job_id).result(timeout=20) == 5

    [request] = [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    [send] = [s for s in exporter.get_finished_spans() if s.name == f"send {queue.name}"]
    assert send.kind is trace.SpanKind.PRODUCER
    scope = send.instrumentation_scope
    assert scope is not None and (scope.name, scope.version) == ("asyncjobs", asyncjobs.__version__)
    assert scope.version != "0+unknown", "the installed distribution's version"
    assert send.parent is not None and send.parent.span_id == request.context.span_id  # type: ignore[union-attr]
    assert dict(send.attributes or {}) == {
        "messaging.system": "asyncjobs",
        "messaging.destination.name": queue.name,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.message.id": job_id,
        "asyncjobs.task": "add",
    }
    send_trace, send_span = ids_of(send)
    assert (await queue.job(job_id).info()).trace_id == send_trace.removeprefix("0x")

    [process] = await spans.wait_for(f"process {queue.name}", 1)
    assert process["kind"] == "SpanKind.CONSUMER"
    attributes = process["attributes"]
    assert (
        attributes.items()
        >= {
            **MESSAGING,
            "messaging.destination.name": queue.name,
            "messaging.message.id": job_id,
            "asyncjobs.task": "add",
            "asyncjobs.attempt": 1,
            "asyncjobs.outcome": "succeeded",
        }.items()
    )
    assert attributes["messaging.client.id"]  # the worker's id
    assert process["status"]["status_code"] == "UNSET"
    if parent == "link":
        assert links_of(process) == [send_span]
        assert process["parent_id"] is None and process["context"]["trace_id"] != send_trace
    else:
        assert process["parent_id"] == send_span and process["context"]["trace_id"] == send_trace
        assert links_of(process) == []


async def test_every_try_of_a_retried_job_links_to_the_one_send_span(
    queue: Queue,
    redis_url: str,
    exporter: InMemorySpanExporter,
    run_worker: Callable[..., tuple[WorkerProcess, Spans]],
) -> None:
    _, spans = run_worker(redis_url, queue.name)
    flaky = await queue.enqueue(tasks.flaky, 2)
    retried = await queue.enqueue(tasks.retry_once)
    assert await flaky.result(timeout=20) == 3
    assert await retried.result(timeout=20) == "retried"
    sends = {
        s.attributes["messaging.message.id"]: ids_of(s)[1] for s in exporter.get_finished_spans()
    }  # type: ignore[index]

    tries = await spans.wait_for(f"process {queue.name}", 5)
    of_flaky = [s for s in tries if s["attributes"]["messaging.message.id"] == flaky.id]
    assert [s["attributes"]["asyncjobs.attempt"] for s in of_flaky] == [1, 2, 3]
    assert {tuple(links_of(s)) for s in of_flaky} == {(sends[flaky.id],)}
    assert [s["status"]["status_code"] for s in of_flaky] == ["ERROR", "ERROR", "UNSET"]
    assert [s["attributes"].get("error.type") for s in of_flaky] == ["ValueError"] * 2 + [None]
    assert [s["attributes"]["asyncjobs.outcome"] for s in of_flaky] == ["retry"] * 2 + ["succeeded"]

    of_retry = [s for s in tries if s["attributes"]["messaging.message.id"] == retried.id]
    assert {tuple(links_of(s)) for s in of_retry} == {(sends[retried.id],)}
    assert [s["status"]["status_code"] for s in of_retry] == ["UNSET", "UNSET"], "Retry is no error"
    assert "error.type" not in of_retry[0]["attributes"]


async def test_a_replayed_dead_letter_keeps_its_original_context(
    queue: Queue,
    redis_url: str,
    exporter: InMemorySpanExporter,
    run_worker: Callable[..., tuple[WorkerProcess, Spans]],
) -> None:
    _, spans = run_worker(redis_url, queue.name)
    job = await queue.enqueue(tasks.broken)
    with pytest.raises(JobFailed):
        await job.result(timeout=20)
    [send] = exporter.get_finished_spans()
    [failed] = await spans.wait_for(f"process {queue.name}", 1)
    assert failed["status"]["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"] == "RuntimeError"
    assert failed["attributes"]["asyncjobs.outcome"] == "failed"
    assert any(e["name"] == "exception" for e in failed["events"]), "the exception is recorded"
    [letter] = await queue.dead_letters(queue_name=queue.name)
    assert letter.trace_id == ids_of(send)[0].removeprefix("0x")

    await queue.replay_dead_letter(job.id)
    tries = await spans.wait_for(f"process {queue.name}", 2)
    assert await job.status() is JobStatus.FAILED
    assert [links_of(s) for s in tries] == [[ids_of(send)[1]]] * 2, "the replay links to the send"
    assert len(exporter.get_finished_spans()) == 1, "a replay is not a new send"


@pytest.mark.parametrize("parent", ["link", "child"])
async def test_a_chains_steps_and_follow_up_jobs_belong_to_the_request(
    queue: Queue,
    redis_url: str,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    run_worker: Callable[..., tuple[WorkerProcess, Spans]],
    parent: str,
) -> None:
    """With links every try starts a trace linked to the one send; as children they all share
    the request's trace (the steps, and a job a task enqueues from inside its try)."""
    _, spans = run_worker(redis_url, queue.name, parent=parent)
    with provider.get_tracer("test").start_as_current_span("request") as request:
        flow = await queue.enqueue(chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.follow_up.s()))
    follow_up_id = await flow.result(timeout=20)
    assert await queue.job(follow_up_id).result(timeout=20) == 7
    [send] = [s for s in exporter.get_finished_spans() if s.name.startswith("send")]
    assert send.attributes is not None and send.attributes["asyncjobs.task"] == "workflow:chain"
    request_trace = hex_id(request.get_span_context().trace_id, 32)
    send_span = ids_of(send)[1]

    tries = await spans.wait_for(f"process {queue.name}", 4)
    steps = [s for s in tries if s["attributes"]["messaging.message.id"].startswith(flow.id)]
    [after] = [s for s in tries if s["attributes"]["messaging.message.id"] == follow_up_id]
    [inner_send] = await spans.wait_for(f"send {queue.name}", 1)
    assert len(steps) == 3
    assert inner_send["parent_id"] == steps[-1]["context"]["span_id"], "sent from inside the try"
    if parent == "child":
        assert {s["context"]["trace_id"] for s in [*steps, after]} == {request_trace}
        assert {s["parent_id"] for s in steps} == {send_span}
        assert after["parent_id"] == inner_send["context"]["span_id"]
    else:
        assert {tuple(links_of(s)) for s in steps} == {(send_span,)}
        assert links_of(after) == [inner_send["context"]["span_id"]]
        assert inner_send["context"]["trace_id"] == steps[-1]["context"]["trace_id"]


async def test_baggage_travels_with_the_job(
    queue: Queue, redis_url: str, run_worker: Callable[..., tuple[WorkerProcess, Spans]]
) -> None:
    run_worker(redis_url, queue.name)
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        job = await queue.enqueue(tasks.own_redis_call, f"otel-{uuid.uuid4().hex}")
    finally:
        context.detach(token)
    assert await job.result(timeout=20) == "acme"


@pytest.mark.parametrize("backend", ["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
async def test_an_idle_worker_makes_no_redis_spans_but_a_tasks_own_calls_are_traced(
    redis_url: str,
    queue_name: str,
    request: pytest.FixtureRequest,
    run_worker: Callable[..., tuple[WorkerProcess, Spans]],
    backend: str,
) -> None:
    """redis-py instrumented in the worker: its blocking waits, lease upkeep, heartbeats,
    recovery and metrics reads (every third of a second here) make no span."""
    url = redis_url
    if backend == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        url = cluster.url
    worker, spans = run_worker(url, queue_name, redis_spans=True, extra=("--metrics-port", "0"))
    async with Queue(url, name=queue_name) as queue:  # the global provider: no spans here
        keys = queue.keys_for(queue_name)

        async def alive() -> bool:
            return (await queue.store.counts(keys)).workers > 0

        await wait_until(alive, 20, "the worker's heartbeat")
        await asyncio.sleep(5.0)  # idle: lease ticks, heartbeats, blocking waits
        assert worker.alive(), worker.log_text()
        assert spans.all() == [], "the worker's own Redis traffic is never traced"

        key = f"otel-{uuid.uuid4().hex}"
        job = await queue.enqueue(tasks.own_redis_call, key)
        assert await job.result(timeout=20) is None
        [process] = await spans.wait_for(f"process {queue_name}", 1)
        await asyncio.sleep(1.0)  # a few more lease ticks and the ack, none of them traced
        redis_spans = [s for s in spans.all() if s["name"] != f"process {queue_name}"]
        assert [s["name"] for s in redis_spans] == ["SET"], "only the task's own call"
        assert redis_spans[0]["parent_id"] == process["context"]["span_id"]
        await queue.client.delete(key)


# -- in this process: what each outcome does to the span ------------------------------------------


@task(max_tries=2)
async def sleeper(ctx: Context, seconds: float) -> None:
    await asyncio.sleep(seconds)


@task(rate_limit="4/s")
async def limited(ctx: Context) -> None:
    pass


def finished(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def wait_spans(
    exporter: InMemorySpanExporter, name: str, count: int, timeout: float = 20.0
) -> list[ReadableSpan]:
    async def enough() -> list[ReadableSpan] | None:
        found = finished(exporter, name)
        return found if len(found) >= count else None

    found: list[ReadableSpan] = await wait_until(enough, timeout, f"{count} {name} span(s)")
    return found


def outcome(span: ReadableSpan) -> tuple[str, trace.StatusCode, Any]:
    attributes = dict(span.attributes or {})
    return attributes["asyncjobs.outcome"], span.status.status_code, attributes.get("error.type")


async def wait_status(queue: Queue, job_id: str, status: JobStatus) -> None:
    async def reached() -> bool:
        return await queue.job(job_id).status() is status

    await wait_until(reached, 20, f"job {job_id} {status.value}")


async def test_a_cancel_a_timeout_and_a_lost_lease_each_end_their_span_as_they_should(
    queue: Queue,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    start_worker: Callable[..., Any],
) -> None:
    await start_worker([sleeper], tracer_provider=provider, lease_seconds=0.6)
    cancelled = await queue.enqueue(sleeper, 30)
    timed_out = await queue.enqueue(sleeper, 30, _timeout=0.05, _max_tries=1)
    lost = await queue.enqueue(sleeper, 30, _max_tries=1)
    await wait_status(queue, cancelled.id, JobStatus.IN_PROGRESS)
    await wait_status(queue, lost.id, JobStatus.IN_PROGRESS)
    assert await cancelled.cancel()
    await queue.client.hset(queue.keys_for(queue.name).job(lost.id), "token", "someone-else:1")
    spans = await wait_spans(exporter, f"process {queue.name}", 3)
    by_job = {dict(s.attributes or {})["messaging.message.id"]: s for s in spans}
    assert outcome(by_job[cancelled.id]) == ("cancelled", trace.StatusCode.UNSET, None)
    assert outcome(by_job[timed_out.id]) == ("failed", trace.StatusCode.ERROR, "JobTimeout")
    assert outcome(by_job[lost.id]) == ("lease_lost", trace.StatusCode.ERROR, "lease_lost")


async def test_a_try_requeued_at_shutdown_is_no_error(
    queue: Queue, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    from asyncjobs import Worker, WorkerSettings

    started = asyncio.Event()

    @task(name="held_at_shutdown")
    async def held(ctx: Context) -> None:
        started.set()
        await asyncio.sleep(30)

    worker = Worker(
        WorkerSettings(
            redis_url=queue.url,
            functions=[held],
            queues=[queue.name],
            tracer_provider=provider,
            shutdown_grace=0,
        )
    )
    running = asyncio.create_task(worker.run(handle_signals=False))
    job = await queue.enqueue(held)
    # Its body runs (IN_PROGRESS alone can be seen before the worker has read the claim's
    # reply), and the claim loop waits again: a stop while a claim is in flight leaves what
    # that claim takes to its lease, the requeued job included.
    await asyncio.wait_for(started.wait(), 20)

    async def waiting_again() -> bool:
        clients = await queue.client.client_list()
        return any(c.get("cmd") == "bzpopmin" and "b" in c.get("flags", "") for c in clients)

    await wait_until(waiting_again, 20, "the claim loop to wait again")
    worker.stop()
    await asyncio.wait_for(running, 20)
    [span] = finished(exporter, f"process {queue.name}")  # ended before run() returned
    assert outcome(span) == ("requeued", trace.StatusCode.UNSET, None)
    assert await job.status() is JobStatus.QUEUED


async def test_a_rate_limited_job_is_deferred_without_a_span_and_runs_without_error(
    queue: Queue,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    start_worker: Callable[..., Any],
) -> None:
    jobs = await queue.enqueue_many([(limited, (), {}) for _ in range(3)])
    [batch] = finished(exporter, f"send {queue.name}")
    assert dict(batch.attributes or {})["messaging.batch.message_count"] == 3
    await start_worker([limited], tracer_provider=provider)
    for job in jobs:
        await job.result(timeout=20)
    spans = await wait_spans(exporter, f"process {queue.name}", 3)
    assert len(spans) == 3, "one span per try; a deferral to the next rate slot makes none"
    assert {outcome(s) for s in spans} == {("succeeded", trace.StatusCode.UNSET, None)}
    assert {link.context.span_id for s in spans for link in s.links} == {
        batch.context.span_id  # type: ignore[union-attr]
    }


async def test_tracing_off_or_no_sdk_stores_no_context_and_makes_no_span(
    queue: Queue,
    redis_url: str,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    start_worker: Callable[..., Any],
) -> None:
    async with Queue(redis_url, name=queue.name, tracing=False, tracer_provider=provider) as off:
        quiet = await off.enqueue(tasks.add, 1, 1)
    async with Queue(redis_url, name=queue.name) as global_no_op:  # the API's no-op provider
        plain = await global_no_op.enqueue(tasks.add, 1, 2)
    for job in (quiet, plain):
        assert not await queue.client.hexists(queue.keys_for(queue.name).job(job.id), "trace")
    traced = await queue.enqueue(tasks.add, 1, 3)
    worker = await start_worker([tasks.add], tracer_provider=provider, tracing=False)
    results = [await queue.job(j.id).result(timeout=20) for j in (quiet, plain, traced)]
    assert results == [2, 3, 4]

    async def tries_ended() -> bool:  # a span would end just after its try's ack
        return worker.jobs_done == 3

    await wait_until(tries_ended, 20, "the three tries to end")
    assert [s.name for s in exporter.get_finished_spans()] == [f"send {queue.name}"]


async def test_a_cron_tick_starts_a_trace_of_its_own(
    queue: Queue, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    from asyncjobs import Worker, WorkerSettings

    tick = cron(tasks.add, "0 0 1 1 *", run_at_startup=True, args=(2, 2), queue=queue.name)
    settings = WorkerSettings(
        redis_url=queue.url, queues=[queue.name], cron_jobs=[tick], tracer_provider=provider
    )
    worker = Worker(settings)
    running = asyncio.create_task(worker.run(handle_signals=False))
    try:
        [span] = await wait_spans(exporter, f"process {queue.name}", 1)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 20)
    assert span.parent is None and list(span.links) == [], "no send: a new trace"
    assert outcome(span) == ("succeeded", trace.StatusCode.UNSET, None)


def test_the_sync_client_enqueues_under_the_callers_span(
    redis_url: str, queue_name: str, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    """A Django or Flask view enqueues from its own thread: its request span is the parent."""
    from asyncjobs.sync import Queue as SyncQueue

    with SyncQueue(redis_url, name=queue_name, tracer_provider=provider) as queue:
        with provider.get_tracer("view").start_as_current_span("GET /checkout") as view:
            job = queue.enqueue(tasks.add, 1, 2)
        job.cancel()
    [send] = finished(exporter, f"send {queue_name}")
    assert send.parent is not None and send.parent.span_id == view.get_span_context().span_id
