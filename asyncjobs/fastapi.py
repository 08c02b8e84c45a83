"""FastAPI integration: a lifespan that opens the Queue (and an optional embedded worker), a
dependency that hands it to endpoints, and a router that shows jobs as JSON and as SSE.

Needs the ``fastapi`` extra: ``pip install 'asyncjobs-redis[fastapi]'``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at
# runtime, and they name the dependency passed to jobs_router(), a local it cannot resolve.

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from typing import Annotated, Any

try:
    from fastapi import APIRouter, Depends, HTTPException, Query, Request
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
except ImportError as exc:  # pragma: no cover - exercised by a test that hides fastapi
    raise ImportError(
        f"asyncjobs.fastapi needs FastAPI ({exc}); "
        "install it with: pip install 'asyncjobs-redis[fastapi]'"
    ) from exc


from . import _defaults
from ._errors import ConfigurationError
from ._job import Job
from ._job_stream import JobView, event_stream
from ._models import JobInfo, JobStatus
from ._queue import Queue
from ._settings import WorkerSettings
from ._store import redact
from ._worker import Worker
from .log import show_under_uvicorn

__all__ = ["JobView", "asyncjobs_lifespan", "get_queue", "jobs_router"]

log = logging.getLogger("asyncjobs.fastapi")

#: ``app.state`` attribute names the lifespan sets and the dependency reads.
QUEUE_STATE = "asyncjobs_queue"
WORKER_STATE = "asyncjobs_worker"

# Queue names a client may pass as ``?queue=``: what QueueKeys accepts, bounded in length.
_QUEUE_NAME_PATTERN = r"^[^{}\s]{1,200}$"


def get_queue(request: Request) -> Queue:
    """Dependency: the Queue that ``asyncjobs_lifespan`` stored on ``app.state``."""
    queue = getattr(request.app.state, QUEUE_STATE, None)
    if not isinstance(queue, Queue):
        log.error("app.state.%s is not set: asyncjobs_lifespan is not running", QUEUE_STATE)
        raise HTTPException(
            status_code=500,
            detail=(
                f"asyncjobs is not set up on this app: app.state.{QUEUE_STATE} holds no Queue. "
                "Enter `asyncjobs_lifespan(app, url)` in the app's lifespan (see docs/fastapi.md)."
            ),
        )
    return queue


#: Anything FastAPI accepts as a dependency that gives a Queue (function, coroutine, generator).
QueueDependency = Callable[..., Any]


def jobs_router(
    *,
    prefix: str = "/jobs",
    get_queue: QueueDependency = get_queue,
    queues: Collection[str] | None = None,
    include_traceback: bool = False,
    ping_interval: float | None = 15.0,
    tags: list[str] | None = None,
) -> APIRouter:
    """Routes ``GET {prefix}/{job_id}`` (JSON) and ``GET {prefix}/{job_id}/events`` (SSE).

    Args:
        prefix: where to mount the two routes.
        get_queue: the dependency that gives the Queue (default: the lifespan's).
        queues: if given, the only queue names ``?queue=`` may name (others are 404).
        include_traceback: show a failed job's traceback (off: it may reveal internals).
        ping_interval: seconds between SSE comment lines that keep idle proxies from closing
            the stream (None: never).
    """
    router = APIRouter(prefix=prefix, tags=list(tags or ["jobs"]))
    allowed = None if queues is None else frozenset(queues)
    QueueDep = Annotated[Queue, Depends(get_queue)]
    QueueName = Annotated[
        str | None,
        Query(
            alias="queue",
            pattern=_QUEUE_NAME_PATTERN,
            description="Queue to look in (default: the Queue's own).",
        ),
    ]

    async def find(queue: Queue, job_id: str, queue_name: str | None) -> tuple[Job[Any], JobInfo]:
        name = queue_name or queue.name
        if allowed is not None and name not in allowed:
            raise HTTPException(status_code=404, detail=f"unknown queue {name!r}")
        job = queue.job(job_id, name)
        info = await job.info()
        if info.status is JobStatus.NOT_FOUND:
            raise HTTPException(status_code=404, detail=f"job {job_id} not found in queue {name!r}")
        return job, info

    @router.get("/{job_id}", response_model_exclude_unset=True)
    async def job_state(job_id: str, queue: QueueDep, queue_name: QueueName = None) -> JobView:
        """The job's status and progress; its result once it succeeded, its error if it failed."""
        _, info = await find(queue, job_id, queue_name)
        return JobView.from_info(info, include_traceback=include_traceback)

    @router.get(
        "/{job_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def job_events(
        job_id: str, queue: QueueDep, queue_name: QueueName = None
    ) -> StreamingResponse:
        """Server-sent events: one ``data: <job JSON>`` per change, closed once the job ends."""
        job, _ = await find(queue, job_id, queue_name)
        return StreamingResponse(
            event_stream(job, ping_interval, include_traceback),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


@contextlib.asynccontextmanager
async def asyncjobs_lifespan(
    app: Starlette,
    url: str | None = None,
    *,
    queue_name: str = _defaults.QUEUE,
    worker_settings: WorkerSettings | Any | None = None,
    **queue_options: Any,
) -> AsyncIterator[Queue]:
    """Open a Queue on ``app.state`` for the app's lifetime; optionally run a worker beside it.

    Use it as ``FastAPI(lifespan=functools.partial(asyncjobs_lifespan, url=URL))`` or enter it
    inside your own lifespan: ``async with asyncjobs_lifespan(app, URL) as queue: yield``.
    The Queue it yields also reads as Starlette lifespan state, so used directly as the app's
    lifespan it starts, and ``request.state.asyncjobs_queue`` is that Queue.

    Args:
        app: the FastAPI/Starlette app; gets ``state.asyncjobs_queue`` (and ``asyncjobs_worker``).
        url: Redis URL (default: ``ASYNCJOBS_REDIS_URL``, then ``redis://localhost:6379/0``).
        queue_name: the Queue's default queue.
        worker_settings: if given, an embedded worker runs in this event loop until the lifespan
            ends, then stops gracefully (running jobs finish within ``shutdown_grace``). Settings
            it leaves unset take the Queue's URL, queue name and prefix.
        **queue_options: more ``Queue`` options (``prefix``, ``keep_result``, ...).

    Under uvicorn, asyncjobs' log records get a handler like uvicorn's own (unless the app
    configured logging), so the worker's INFO lines show up beside uvicorn's.
    """
    show_under_uvicorn()
    async with _LifespanQueue(url, name=queue_name, **queue_options) as queue:
        worker: Worker | None = None
        running: asyncio.Task[None] | None = None
        if worker_settings is not None:
            worker = Worker(_embedded_settings(worker_settings, queue))
            running = asyncio.create_task(
                worker.run(handle_signals=False), name="asyncjobs-embedded-worker"
            )
            running.add_done_callback(_log_worker_exit)
            # Let run() get past its start (which clears the stop flag) before anyone can stop it.
            await asyncio.sleep(0)
        setattr(app.state, QUEUE_STATE, queue)
        setattr(app.state, WORKER_STATE, worker)
        try:
            yield queue
        finally:
            for name in (QUEUE_STATE, WORKER_STATE):
                with contextlib.suppress(AttributeError):
                    delattr(app.state, name)
            if worker is not None and running is not None:
                worker.stop()
                with contextlib.suppress(Exception):  # already logged by _log_worker_exit
                    await running


class _LifespanQueue(Queue):
    """The lifespan's Queue. Starlette merges what a lifespan yields into the request state, as a
    mapping; these two methods make that mapping ``{"asyncjobs_queue": <this Queue>}``."""

    def keys(self) -> tuple[str, ...]:
        return (QUEUE_STATE,)

    def __getitem__(self, key: str) -> Queue:
        if key != QUEUE_STATE:
            raise KeyError(key)
        return self


def _embedded_settings(settings: WorkerSettings | Any, queue: Queue) -> WorkerSettings:
    """The worker's settings, with what they leave unset taken from the Queue."""
    base = WorkerSettings.coerce(settings)
    explicit = base.model_fields_set
    if "redis_url" in explicit and base.redis_url != queue.url:
        raise ConfigurationError(
            f"the embedded worker's redis_url {redact(base.redis_url)!r} differs from the "
            f"Queue's {redact(queue.url)!r}; leave WorkerSettings.redis_url unset to use the "
            "Queue's"
        )
    update: dict[str, Any] = {"redis_url": queue.url}
    if "queues" not in explicit:
        update["queues"] = [queue.name]
    if "prefix" not in explicit:
        update["prefix"] = queue.prefix
    return base.model_copy(update=update)


def _log_worker_exit(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the embedded asyncjobs worker stopped", exc_info=task.exception())
