"""A FastAPI app that builds reports in the background and shows their progress.

    uvicorn examples.fastapi_app:app                    # memory://, worker inside the app
    ASYNCJOBS_REDIS_URL=redis://localhost:6379/0 uvicorn examples.fastapi_app:app
    ASYNCJOBS_EMBEDDED_WORKER=0 ...                     # jobs wait for a separate worker:
    asyncjobs worker examples.fastapi_app:worker_settings

    curl -X POST localhost:8000/reports -H 'content-type: application/json' \\
         -d '{"title": "Q3", "pages": 5}'               # -> {"job_id": ..., "status_url": ...}
    curl localhost:8000/jobs/<job_id>                   # status, progress, result
    curl -N localhost:8000/jobs/<job_id>/events         # one SSE event per change
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from asyncjobs import Context, Queue, WorkerSettings, task
from asyncjobs.fastapi import asyncjobs_lifespan, get_queue, jobs_router


@task(name="reports.build", timeout=600, retry_on=(ConnectionError, TimeoutError))
async def build_report(
    ctx: Context, title: str, pages: int, seconds_per_page: float = 0.5
) -> dict[str, Any]:
    """Render ``pages`` pages, reporting progress after each one."""
    if not title.strip():
        raise ValueError("a report needs a title")  # not in retry_on: fails at once
    for page in range(1, pages + 1):
        await asyncio.sleep(seconds_per_page)
        await ctx.progress(page / pages, stage="render", message=f"page {page} of {pages}")
    return {"title": title, "pages": pages, "file": f"/files/{ctx.job_id}.pdf"}


worker_settings = WorkerSettings(
    redis_url=os.environ.get("ASYNCJOBS_REDIS_URL", "redis://localhost:6379/0"),
    functions=[build_report],
    concurrency=10,
)


class ReportRequest(BaseModel):
    title: str = Field(max_length=200)
    pages: int = Field(3, ge=1, le=100)


class ReportAccepted(BaseModel):
    job_id: str
    status_url: str
    events_url: str


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off")


def create_app(
    url: str | None = None,
    *,
    embedded_worker: bool | None = None,
    seconds_per_page: float = 0.5,
) -> FastAPI:
    """The app; ``url`` defaults to ``ASYNCJOBS_REDIS_URL``, then ``memory://`` (no server)."""
    url = url or os.environ.get("ASYNCJOBS_REDIS_URL") or "memory://reports"
    if embedded_worker is None:
        embedded_worker = _flag("ASYNCJOBS_EMBEDDED_WORKER", True)
    # Leave redis_url unset: the embedded worker then uses the lifespan's URL.
    settings = WorkerSettings(functions=[build_report], concurrency=10)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Your own start-up and shut-down go around (or inside) this block.
        async with asyncjobs_lifespan(
            app, url, worker_settings=settings if embedded_worker else None
        ):
            yield

    app = FastAPI(title="Reports", lifespan=lifespan)
    app.include_router(jobs_router(prefix="/jobs"))

    @app.post("/reports", status_code=202)
    async def create_report(
        body: ReportRequest, queue: Annotated[Queue, Depends(get_queue)]
    ) -> ReportAccepted:
        """Start building a report; follow it at ``status_url`` or ``events_url``."""
        job = await queue.enqueue(build_report, body.title, body.pages, seconds_per_page)
        return ReportAccepted(
            job_id=job.id,
            status_url=f"/jobs/{job.id}",
            events_url=f"/jobs/{job.id}/events",
        )

    return app


app = create_app()
