"""A job as clients see it (JobView) and its changes as server-sent events: what the FastAPI
router and the dashboard stream, without depending on either web framework."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from ._job import Job
from ._models import JobInfo, JobStatus, Model


class JobView(Model):
    """A job as the router shows it: ``result`` only when it succeeded, errors when it failed."""

    id: str
    queue: str
    task: str
    status: JobStatus
    attempts: int
    max_tries: int | None = None
    progress: float | None = None
    stage: str | None = None
    message: str | None = None
    eta: datetime | None = None
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None

    @classmethod
    def from_info(cls, info: JobInfo, *, include_traceback: bool = False) -> JobView:
        """Pick the public fields of a JobInfo (arguments are never shown: they may be private)."""
        fields: dict[str, Any] = {
            name: getattr(info, name)
            for name in (
                "id",
                "queue",
                "task",
                "status",
                "attempts",
                "max_tries",
                "progress",
                "stage",
                "message",
                "eta",
                "enqueued_at",
                "started_at",
                "finished_at",
            )
        }
        if info.status is JobStatus.SUCCEEDED:
            fields["result"] = info.result
        elif info.status is JobStatus.FAILED:
            fields["error"] = info.error
            fields["error_type"] = info.error_type
            fields["error_message"] = info.error_message
            if include_traceback:
                fields["traceback"] = info.traceback
        return cls(**fields)

    def to_json(self) -> str:
        """The JSON the router sends: fields that do not apply to this status are left out."""
        return self.model_dump_json(exclude_unset=True)


async def event_stream(
    job: Job[Any], ping_interval: float | None, include_traceback: bool
) -> AsyncIterator[str]:
    """SSE frames for ``job.watch()``, with a comment line after each quiet ``ping_interval``."""
    # watch() runs in its own task so a ping never cancels it mid-wait; the one-slot queue keeps
    # a slow client from piling up updates (watch() then coalesces them, newest state wins).
    updates: asyncio.Queue[JobInfo] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        async for info in job.watch():
            await updates.put(info)

    pumping = asyncio.create_task(pump(), name=f"asyncjobs-sse-{job.id}")
    getting: asyncio.Future[JobInfo] | None = None
    try:
        while True:
            getting = asyncio.ensure_future(updates.get())
            done, _ = await asyncio.wait(
                {getting, pumping}, timeout=ping_interval, return_when=asyncio.FIRST_COMPLETED
            )
            if getting in done:
                yield _frame(getting.result(), include_traceback)
                continue
            getting.cancel()  # not done, so it took nothing from the queue
            if pumping not in done:
                yield ": ping\n\n"
                continue
            while not updates.empty():
                yield _frame(updates.get_nowait(), include_traceback)
            pumping.result()  # re-raise what stopped watch(), if anything did
            return
    finally:
        for waiting in (getting, pumping):
            if waiting is not None and not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting


def _frame(info: JobInfo, include_traceback: bool) -> str:
    return f"data: {JobView.from_info(info, include_traceback=include_traceback).to_json()}\n\n"
