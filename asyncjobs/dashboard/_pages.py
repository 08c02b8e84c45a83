"""The dashboard's pages (GET): every queue, one queue's jobs by status, one job (with its
live progress as server-sent events), the workers, the cron jobs, and the search by job id.

Every read goes through the Queue's operations API, each bounded by the page it shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .._errors import AsyncJobsError
from .._job_stream import event_stream
from .._models import JobInfo, JobStatus
from .._stats import QueueStats
from ._charts import sparkline, throughput_chart
from ._crons import cron_rows
from ._dashboard import Dashboard
from ._format import segment

PAGE = 50
#: The queue page's tabs: (tab, status, label). ``dead`` pages by stream entry, not offset.
TABS = (
    ("queued", JobStatus.QUEUED, "Queued"),
    ("deferred", JobStatus.DEFERRED, "Deferred"),
    ("in_progress", JobStatus.IN_PROGRESS, "In progress"),
    ("dead", JobStatus.FAILED, "Dead letters"),
    ("succeeded", JobStatus.SUCCEEDED, "Succeeded"),
    ("cancelled", JobStatus.CANCELLED, "Cancelled"),
    ("expired", JobStatus.EXPIRED, "Expired"),
)
CANCELLABLE = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.IN_PROGRESS})
#: Seconds between the job stream's keep-alive comments (proxies close quiet connections).
PING_SECONDS = 15.0
#: Minutes the overview's rate ("done/s") is averaged over.
RATE_MINUTES = 5


def done_per_second(stats: QueueStats) -> float:
    """Jobs that ended (succeeded or failed) per second over the last few minutes."""
    recent = stats.history[-RATE_MINUTES:]
    if not recent:
        return 0.0
    elapsed = (stats.as_of - recent[0].minute).total_seconds()
    done = sum(b.succeeded + b.failed for b in recent)
    return done / max(elapsed, 1.0)


def _offset(request: Request) -> int:
    try:
        return max(0, int(request.query_params.get("offset", "0")))
    except ValueError:
        return 0


class Pages:
    def __init__(self, dashboard: Dashboard) -> None:
        self.d = dashboard

    async def _known_queue(self, name: str) -> None:
        if name not in await self.d.queue.queue_names():
            raise HTTPException(404, f"No queue named {name!r} is known here.")

    async def overview(self, request: Request) -> Response:
        queue = self.d.queue
        names = await queue.queue_names()
        every = await asyncio.gather(*(queue.stats(n, minutes=60, hours=0) for n in names))
        rows = [
            {"stats": s, "rate": done_per_second(s), "spark": sparkline(s.history)} for s in every
        ]
        return self.d.render(request, "overview.html", rows=rows)

    async def queue_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        await self._known_queue(name)
        queue = self.d.queue
        tab = request.query_params.get("tab", "queued")
        status = next((s for t, s, _ in TABS if t == tab), None)
        if status is None:
            names = ", ".join(t for t, _, _ in TABS)
            raise HTTPException(404, f"No tab {tab!r}: use one of {names}.")
        task = request.query_params.get("task", "").strip()
        search = request.query_params.get("search", "").strip()
        before = request.query_params.get("before") or None
        offset = _offset(request)
        stats, workers = await asyncio.gather(
            queue.stats(name, minutes=60, hours=72), queue.workers(name)
        )
        if tab == "dead":
            jobs = await queue.dead_letters(
                PAGE, name, task=task or None, search=search or None, before=before
            )
        else:
            jobs = await queue.jobs(status, name, offset=offset, limit=PAGE)
        return self.d.render(
            request,
            "queue.html",
            name=name,
            stats=stats,
            workers=workers,
            tabs=TABS,
            tab=tab,
            jobs=jobs,
            offset=offset,
            page=PAGE,
            task=task,
            search=search,
            before=before,
            cancellable=CANCELLABLE,
            minutes_chart=throughput_chart(stats.history, label=f"{name}: the last 60 minutes"),
            hours_chart=throughput_chart(stats.hourly, label=f"{name}: the last 72 hours"),
            rate=done_per_second(stats),
        )

    async def _find(self, job_id: str, queue_name: str | None) -> tuple[JobInfo, bool]:
        """The job (from its record, else its dead letter) and whether a dead letter holds it."""
        queue = self.d.queue
        info: JobInfo | None
        if queue_name:
            info = await queue.job(job_id, queue_name).info()
            names = [queue_name]
        else:
            info = await queue.find_job(job_id)
            names = [info.queue] if info is not None else await queue.queue_names()
        if info is not None and info.status is not JobStatus.NOT_FOUND:
            if info.status is not JobStatus.FAILED:
                return info, False
            return info, await queue.dead_letter(job_id, info.queue) is not None
        for name in names:
            dead = await queue.dead_letter(job_id, name)
            if dead is not None:
                return dead, True
        raise HTTPException(404, f"No job with id {job_id!r} was found.")

    async def job_page(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        info, dead = await self._find(job_id, request.query_params.get("queue") or None)
        return self.d.render(
            request,
            "job.html",
            job=info,
            dead=dead,
            live=not info.status.is_terminal,
            cancellable=info.status in CANCELLABLE,
            show_arguments=self.d.show_arguments,
        )

    async def job_events(self, request: Request) -> Response:
        """The job page's live part: one ``data: <JobView JSON>`` per change, until it ends."""
        job_id = request.path_params["job_id"]
        info, _ = await self._find(job_id, request.query_params.get("queue") or None)
        job = self.d.queue.job(job_id, info.queue)
        return StreamingResponse(
            event_stream(job, PING_SECONDS, include_traceback=False),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def workers(self, request: Request) -> Response:
        found = await self.d.queue.all_workers()
        return self.d.render(request, "workers.html", workers=found)

    async def crons(self, request: Request) -> Response:
        return self.d.render(request, "cron.html", crons=await cron_rows(self.d.queue))

    async def search(self, request: Request) -> Response:
        """Find a job by id: to its page if it exists, else a 404 page that says so."""
        job_id = request.query_params.get("q", "").strip()
        if not job_id:
            return RedirectResponse(request.scope.get("root_path", "") + "/", 303)
        info, _ = await self._find(job_id, None)
        root = request.scope.get("root_path", "")
        return RedirectResponse(
            f"{root}/jobs/{segment(job_id)}?queue={segment(info.queue)}", status_code=303
        )


def routes(dashboard: Dashboard) -> list[Route]:
    pages = Pages(dashboard)
    return [
        Route("/", pages.overview, name="overview"),
        Route("/queues/{name:path}", pages.queue_page, name="queue"),
        Route("/jobs/{job_id:path}/events", pages.job_events, name="job_events"),
        Route("/jobs/{job_id:path}", pages.job_page, name="job"),
        Route("/workers", pages.workers, name="workers"),
        Route("/cron", pages.crons, name="cron"),
        Route("/search", pages.search, name="search"),
    ]


Handler = Callable[[Request, Exception], Awaitable[Response]]


def exception_handlers(dashboard: Dashboard) -> Mapping[Any, Handler]:
    """Errors as pages of the dashboard: 404s and 405s, and Redis being away (503)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return dashboard.render(
            request, "error.html", exc.status_code, status=exc.status_code, detail=exc.detail
        )

    async def redis_error(request: Request, exc: Exception) -> Response:
        detail = f"{type(exc).__name__}: {exc}"
        return dashboard.render(request, "error.html", 503, status=503, detail=detail)

    async def bad_input(request: Request, exc: Exception) -> Response:
        return dashboard.render(request, "error.html", 400, status=400, detail=str(exc))

    return {HTTPException: http_error, AsyncJobsError: redis_error, ValueError: bad_input}


__all__ = ["TABS", "done_per_second", "exception_handlers", "routes"]
