"""How to test code that uses asyncjobs: a task, an endpoint that enqueues, a workflow."""

from __future__ import annotations

import httpx
import pytest
from shop import SENT, WorkerSettings, app, charge, order_pipeline, send_welcome

from asyncjobs import JobFailed
from asyncjobs.fastapi import get_queue
from asyncjobs.testing import Harness


async def test_a_task_called_directly() -> None:
    # a task is still a function: call it with a context of your own for a unit test
    class FakeCtx:
        attempt = 1

    assert await send_welcome(FakeCtx(), "ada@example.com") == "welcome sent to ada@example.com"


async def test_a_task_through_the_queue_and_a_worker(asyncjobs_harness) -> None:
    jobs = await asyncjobs_harness(functions=[charge])
    job = await jobs.queue.enqueue(charge, 7, 1999)
    report = await jobs.run_until_idle()
    assert report.retried == ["charge"] and report.succeeded == ["charge"]
    assert await job.result() == {"order_id": 7, "charged": 1999}


async def test_run_enqueues_runs_and_returns_the_result(asyncjobs_harness) -> None:
    jobs = await asyncjobs_harness(functions=[send_welcome])
    assert await jobs.run(send_welcome, "bob@example.com") == "welcome sent to bob@example.com"


async def test_a_failure_is_reported_not_hidden(asyncjobs_harness) -> None:
    jobs = await asyncjobs_harness(functions=[charge], fast_retries=True)
    job = await jobs.queue.enqueue(charge, 7, "not a number")
    report = await jobs.run_until_idle()
    assert report.failed == ["charge"]
    with pytest.raises(JobFailed, match="PayloadError"):
        await job.result()


async def test_an_endpoint_that_enqueues(asyncjobs_harness) -> None:
    jobs = await asyncjobs_harness(functions=[send_welcome])
    app.dependency_overrides[get_queue] = lambda: jobs.queue
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/signup", params={"email": "cy@example.com"})
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == 200
    await jobs.assert_enqueued(send_welcome, args=["cy@example.com"], count=1)
    await jobs.run_until_idle()
    assert "cy@example.com" in SENT
    await jobs.assert_not_enqueued(send_welcome)


async def test_a_workflow(asyncjobs_harness) -> None:
    jobs = await asyncjobs_harness(WorkerSettings)  # your own settings, on the test's backend
    workflow = await jobs.queue.enqueue(order_pipeline(42, 500))
    await jobs.run_until_idle()
    assert await workflow.result() == "receipt for order 42: 500 cents"


async def test_arq_style_code() -> None:
    async with Harness(WorkerSettings) as jobs:
        job = await jobs.redis.enqueue_job("send_welcome", "dee@example.com")  # arq's client
        await jobs.run_until_idle()
        assert await job.result() == "welcome sent to dee@example.com"
