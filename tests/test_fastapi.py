"""The FastAPI integration: lifespan, dependency, jobs router (JSON and SSE), example app."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from asyncjobs import Context, JobFailed, JobStatus, Queue, WorkerSettings, task
from asyncjobs.fastapi import asyncjobs_lifespan, jobs_router
from examples.fastapi_app import create_app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (ASGITransport does not) and give a client talking to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


def jobs_app(url: str, functions: list[Any] | None = None, **router_options: Any) -> FastAPI:
    """An app with just the router, and an embedded worker when ``functions`` are given."""
    settings = WorkerSettings(functions=functions, lease_seconds=2.0) if functions else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with asyncjobs_lifespan(app, url, worker_settings=settings):
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(jobs_router(**router_options))
    return app


def sse_data(text: str) -> list[dict[str, Any]]:
    """The JSON of every ``data:`` event in an SSE body (comment lines skipped)."""
    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if lines:
            assert all(line.startswith("data: ") for line in lines), block
            events.append(json.loads("".join(line[6:] for line in lines)))
    return events


async def open_stream(app: FastAPI, path: str) -> tuple[asyncio.Queue[Any], asyncio.Task[None]]:
    """Call the ASGI app directly, so each SSE chunk arrives when it is sent (httpx's
    ASGITransport hands over the body only once the response is complete)."""
    messages: asyncio.Queue[Any] = asyncio.Queue()
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"app")],
        "server": ("app", 80),
        "client": ("test", 1234),
        "app": app,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        await messages.put(message)

    return messages, asyncio.create_task(app(scope, receive, send))


async def next_event(messages: asyncio.Queue[Any]) -> dict[str, Any] | None:
    """The next ``data:`` event of a raw stream (None when the stream ended)."""
    while True:
        message = await asyncio.wait_for(messages.get(), 5)
        if message["type"] == "http.response.start":
            continue
        if not message.get("more_body", False) and not message["body"]:
            return None
        events = sse_data(message["body"].decode())
        if events:
            assert len(events) == 1, "one event per chunk"
            return events[0]


async def test_post_enqueues_and_get_shows_progress_then_result(backend_url: str) -> None:
    app = create_app(backend_url, embedded_worker=True, seconds_per_page=0.1)
    async with serving(app) as client:
        response = await client.post("/reports", json={"title": "Q3", "pages": 3})
        assert response.status_code == 202
        accepted = response.json()
        job_id = accepted["job_id"]
        assert accepted["status_url"] == f"/jobs/{job_id}"

        seen: list[tuple[str, float | None]] = []
        for _ in range(500):
            state = (await client.get(f"/jobs/{job_id}")).json()
            assert state["id"] == job_id
            seen.append((state["status"], state["progress"]))
            if state["status"] == "succeeded":
                break
            await asyncio.sleep(0.01)
        running = [p for s, p in seen if s == "in_progress" and p is not None]
        assert running, seen  # progress was visible while the job ran
        assert running == sorted(running)
        assert 0 < running[0] < 1
        assert state["progress"] == 1.0
        assert state["attempts"] == 1
        assert state["result"] == {"title": "Q3", "pages": 3, "file": f"/files/{job_id}.pdf"}
        assert "error" not in state


async def test_example_rejects_bad_input_and_fails_bad_job(backend_url: str) -> None:
    app = create_app(backend_url, embedded_worker=True, seconds_per_page=0)
    async with serving(app) as client:
        assert (await client.post("/reports", json={"title": "x", "pages": 0})).status_code == 422
        job_id = (await client.post("/reports", json={"title": " "})).json()["job_id"]
        with pytest.raises(JobFailed):
            await app.state.asyncjobs_queue.job(job_id).result(timeout=5)
        state = (await client.get(f"/jobs/{job_id}")).json()
        assert state["status"] == "failed"
        assert state["error_type"] == "ValueError"
        assert state["error_message"] == "a report needs a title"
        assert state["error"] == "ValueError: a report needs a title"
        assert "result" not in state
        assert "traceback" not in state  # not shown unless the router is asked to


async def test_failed_job_traceback_only_when_asked(backend_url: str) -> None:
    @task(name="api.boom", max_tries=1)
    async def boom(ctx: Context) -> None:
        raise RuntimeError("kaboom")

    app = jobs_app(backend_url, [boom], include_traceback=True)
    async with serving(app) as client:
        job = await app.state.asyncjobs_queue.enqueue(boom)
        with pytest.raises(JobFailed):
            await job.result(timeout=5)
        state = (await client.get(f"/jobs/{job.id}")).json()
        assert state["status"] == "failed"
        assert state["error_type"] == "RuntimeError"
        assert "kaboom" in state["traceback"]


async def test_unknown_job_is_404(backend_url: str) -> None:
    async with serving(jobs_app(backend_url)) as client:
        for path in ("/jobs/no-such-job", "/jobs/no-such-job/events"):
            response = await client.get(path)
            assert response.status_code == 404
            assert "no-such-job" in response.json()["detail"]


async def test_queue_parameter_looks_in_another_queue(backend_url: str) -> None:
    app = jobs_app(backend_url, queues=["default", "reports"])
    async with serving(app) as client:
        job = await app.state.asyncjobs_queue.enqueue("later", _queue_name="reports")
        assert (await client.get(f"/jobs/{job.id}")).status_code == 404
        state = (await client.get(f"/jobs/{job.id}", params={"queue": "reports"})).json()
        assert (state["status"], state["queue"], state["task"]) == ("queued", "reports", "later")
        assert (await client.get(f"/jobs/{job.id}?queue=other")).status_code == 404  # not allowed
        assert (await client.get(f"/jobs/{job.id}?queue=a%7Bb")).status_code == 422  # brace


async def test_events_stream_each_change_live_and_end_at_terminal(backend_url: str) -> None:
    steps = [asyncio.Event() for _ in range(3)]

    @task(name="api.stepper")
    async def stepper(ctx: Context) -> str:
        for i, step in enumerate(steps):
            await ctx.progress((i + 1) / 4, stage=f"step {i + 1}")
            await step.wait()
        return "done"

    app = jobs_app(backend_url, [stepper])
    async with app.router.lifespan_context(app):
        job = await app.state.asyncjobs_queue.enqueue(stepper)
        messages, responding = await open_stream(app, f"/jobs/{job.id}/events")
        start = await asyncio.wait_for(messages.get(), 5)
        assert start["status"] == 200
        assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
        events = []
        while (event := await next_event(messages)) is not None:
            events.append(event)
            # The task waits for us: each event arrived while the job was still running.
            if event["status"] == "in_progress" and event["progress"] is not None:
                steps[round(event["progress"] * 4) - 1].set()
        await asyncio.wait_for(responding, 5)

    progress = [e["progress"] for e in events if e["status"] == "in_progress" and e["progress"]]
    assert progress == [0.25, 0.5, 0.75]
    assert events[0]["status"] in ("queued", "in_progress")
    assert events[-1]["status"] == "succeeded"
    assert events[-1]["result"] == "done"
    order = ["queued", "in_progress", "succeeded"]
    ranks = [order.index(e["status"]) for e in events]
    assert ranks == sorted(ranks)
    assert ranks.count(2) == 1  # one terminal event, the last


async def test_events_of_a_finished_job_are_one_terminal_event(backend_url: str) -> None:
    @task(name="api.quick")
    async def quick(ctx: Context, x: int) -> int:
        return x * 2

    app = jobs_app(backend_url, [quick])
    async with serving(app) as client:
        job = await app.state.asyncjobs_queue.enqueue(quick, 21)
        assert await job.result(timeout=5) == 42
        response = await client.get(f"/jobs/{job.id}/events")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = sse_data(response.text)
        assert [(e["status"], e["result"]) for e in events] == [("succeeded", 42)]


async def test_events_send_pings_while_nothing_changes(backend_url: str) -> None:
    app = jobs_app(backend_url, ping_interval=0.02)  # no worker: the job stays queued
    async with app.router.lifespan_context(app):
        job = await app.state.asyncjobs_queue.enqueue("never.runs")
        messages, responding = await open_stream(app, f"/jobs/{job.id}/events")
        chunks: list[bytes] = []
        while chunks.count(b": ping\n\n") < 2:
            message = await asyncio.wait_for(messages.get(), 5)
            chunks.append(message.get("body", b""))
        assert sse_data(b"".join(chunks).decode())[0]["status"] == "queued"
        assert await job.cancel()
        while await next_event(messages) is not None:
            pass
        await asyncio.wait_for(responding, 5)
        assert await job.status() is JobStatus.CANCELLED


async def test_embedded_worker_finishes_its_job_and_stops_with_the_lifespan(
    backend_url: str,
) -> None:
    started = asyncio.Event()

    @task(name="api.slow")
    async def slow(ctx: Context) -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "finished"

    app = jobs_app(backend_url, [slow])
    async with app.router.lifespan_context(app):
        worker = app.state.asyncjobs_worker
        assert worker is not None
        job = await app.state.asyncjobs_queue.enqueue(slow)
        await asyncio.wait_for(started.wait(), 5)
        assert worker.running  # the lifespan ends while the job runs
    assert not worker.running
    assert not hasattr(app.state, "asyncjobs_queue")
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "asyncjobs-embedded-worker"]
    async with Queue(backend_url) as queue:  # graceful: the job ran to its end
        assert await queue.job(job.id).result(timeout=1) == "finished"


async def test_lifespan_stopped_at_once_still_stops_its_worker(backend_url: str) -> None:
    app = jobs_app(backend_url, [])
    settings = WorkerSettings(functions=[], queues=["elsewhere"])

    async def enter_and_leave() -> None:
        async with asyncjobs_lifespan(app, backend_url, worker_settings=settings):
            worker = app.state.asyncjobs_worker
            assert worker.settings.queues == ["elsewhere"]  # an explicit setting is kept
            assert worker.settings.redis_url == backend_url

    await asyncio.wait_for(enter_and_leave(), 5)


async def test_worker_on_another_redis_is_refused(backend_url: str) -> None:
    from asyncjobs import ConfigurationError

    settings = WorkerSettings(redis_url="memory://somewhere-else", functions=[])
    with pytest.raises(ConfigurationError, match="redis_url"):
        async with asyncjobs_lifespan(FastAPI(), backend_url, worker_settings=settings):
            pass


async def test_router_without_lifespan_says_how_to_set_it_up() -> None:
    app = FastAPI()
    app.include_router(jobs_router())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/jobs/anything")
    assert response.status_code == 500
    assert "asyncjobs_lifespan" in response.json()["detail"]


def test_missing_fastapi_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    monkeypatch.delitem(sys.modules, "asyncjobs.fastapi")
    with pytest.raises(ImportError, match=r"pip install 'asyncjobs-redis\[fastapi\]'"):
        importlib.import_module("asyncjobs.fastapi")
