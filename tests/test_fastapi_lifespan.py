"""`FastAPI(lifespan=functools.partial(asyncjobs_lifespan, ...))`, the documented recipe, starts
and serves under the real ASGI lifespan protocol: driven by hand, and in a uvicorn process.

(Entering ``app.router.lifespan_context`` directly, as other tests do, skips the step where
Starlette merges what the lifespan yields into the lifespan state: the step that crashed.)
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from asyncjobs import Queue
from asyncjobs.fastapi import asyncjobs_lifespan

from .redis_server import free_port

RECIPE = """
import functools
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from asyncjobs import Context, Queue, WorkerSettings, task
from asyncjobs.fastapi import asyncjobs_lifespan, get_queue, jobs_router


@task
async def double(ctx: Context, n: int) -> int:
    return 2 * n


settings = WorkerSettings(functions=[double])
app = FastAPI(lifespan=functools.partial(asyncjobs_lifespan, url=URL, worker_settings=settings))
app.include_router(jobs_router())


@app.post("/double/{n}")
async def enqueue(n: int, queue: Annotated[Queue, Depends(get_queue)]) -> dict[str, object]:
    job = await queue.enqueue(double, n)
    return {"job_id": job.id, "result": await job.result(timeout=10)}


@app.get("/state")
async def state(request: Request) -> dict[str, bool]:
    return {"same": request.state.asyncjobs_queue is request.app.state.asyncjobs_queue}
"""


async def test_the_partial_recipe_completes_the_lifespan_protocol() -> None:
    """Start-up and shut-down as a server runs them; the state it hands to every request
    holds the Queue."""
    app = FastAPI(lifespan=functools.partial(asyncjobs_lifespan, url=f"memory://{uuid.uuid4()}"))
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    running = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), 10)
    assert started["type"] == "lifespan.startup.complete", started.get("message")
    queue = scope["state"]["asyncjobs_queue"]
    assert isinstance(queue, Queue) and queue is app.state.asyncjobs_queue
    await inbox.put({"type": "lifespan.shutdown"})
    stopped = await asyncio.wait_for(outbox.get(), 10)
    assert stopped["type"] == "lifespan.shutdown.complete", stopped.get("message")
    await asyncio.wait_for(running, 10)


async def test_inside_your_own_lifespan_it_still_yields_the_queue() -> None:
    app = FastAPI()
    async with asyncjobs_lifespan(app, f"memory://{uuid.uuid4()}") as queue:
        assert isinstance(queue, Queue) and app.state.asyncjobs_queue is queue
        assert dict(queue) == {"asyncjobs_queue": queue}  # what Starlette merges into state


@pytest.mark.slow
def test_the_partial_recipe_under_uvicorn(tmp_path: Path, redis_url: str) -> None:
    """The docs run apps with uvicorn: start the recipe there on a real Redis, run a job with
    its embedded worker, and read the lifespan state from a request."""
    (tmp_path / "recipe_app.py").write_text(f"URL = {redis_url!r}\n" + textwrap.dedent(RECIPE))
    port = free_port()
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "recipe_app:app", "--port", str(port)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while server.poll() is None and time.monotonic() < deadline:
            try:
                state = httpx.get(f"{base}/state", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            server.kill()
            server.wait(10)
            pytest.fail(f"uvicorn did not serve the app:\n{log.read_text()}")
        assert state.json() == {"same": True}
        answer = httpx.post(f"{base}/double/21", timeout=15).json()
        assert answer["result"] == 42
        job = httpx.get(f"{base}/jobs/{answer['job_id']}", timeout=5).json()
        assert job["status"] == "succeeded"
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(10)
