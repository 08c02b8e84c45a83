"""A small app under test: tasks, a FastAPI endpoint that enqueues, and a workflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI

from asyncjobs import Context, Queue, Retry, chain, task
from asyncjobs.fastapi import get_queue

SENT: list[str] = []  # stands in for an email provider


@task
async def send_welcome(ctx: Context, email: str) -> str:
    SENT.append(email)
    return f"welcome sent to {email}"


@task(max_tries=3)
async def charge(ctx: Context, order_id: int, cents: int) -> dict[str, int]:
    if ctx.attempt == 1:
        raise ConnectionError("payment provider timed out")  # retried
    return {"order_id": order_id, "charged": cents}


@task
async def reserve(ctx: Context, order_id: int) -> int:
    if order_id < 0:
        raise Retry(defer=0.05)
    return order_id


@task
async def receipt(ctx: Context, charged: dict[str, int]) -> str:
    return f"receipt for order {charged['order_id']}: {charged['charged']} cents"


def order_pipeline(order_id: int, cents: int) -> object:
    """reserve → charge → receipt, each step fed the previous result."""
    return chain(reserve.s(order_id), charge.s(cents), receipt.s())


app = FastAPI()


@app.post("/signup")
async def signup(email: str, queue: Annotated[Queue, Depends(get_queue)]) -> dict[str, str]:
    job = await queue.enqueue(send_welcome, email)
    return {"job_id": job.id}


class WorkerSettings:  # an arq-style settings class works in tests as it does in production
    functions = [send_welcome, charge, reserve, receipt]
    max_jobs = 5
