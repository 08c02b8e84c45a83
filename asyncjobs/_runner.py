"""Runs one claimed job: resolve, decode, call under a timeout, classify the outcome, report it."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import _serde
from ._backoff import retry_delay
from ._context import Context
from ._deadlines import TIMED_OUT, Deadlines
from ._errors import (
    JobTimeout,
    LeaseLost,
    PayloadError,
    Retry,
    SerializationError,
    UnknownTaskError,
)
from ._finisher import Finisher
from ._running import CURRENT_TRY, ClaimedJob
from ._settings import WorkerSettings
from ._soft_timeout import call_with_soft_timeout
from ._store import FailOutcome, Store, UnknownTaskOutcome
from ._task import Task
from ._tracing import Tracing
from .log import CallSite

if TYPE_CHECKING:
    from ._queue import Queue

log = logging.getLogger("asyncjobs.worker")

PERMANENT = -1
#: What is stored of a failed try's error: its message and its traceback are cut to this many
#: characters (the traceback keeps its start and its end, where the error is).
MAX_ERROR_MESSAGE = 8_192
MAX_TRACEBACK = 32_768


class Hooks:
    """The settings' ``on_job_start`` / ``on_job_end`` / ``on_dead_letter`` hooks; a hook that
    raises is logged, never allowed to stop the job's report."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings

    async def call(self, name: str, *args: Any) -> None:
        fn = getattr(self.settings, name, None)
        if fn is None:
            return
        try:
            await fn(*args)
        except Exception:
            log.exception("%s hook failed", name)


class _TryTimedOut(Exception):
    pass


def _storable(text: str, limit: int, keep_end: bool = False) -> str:
    """``text`` as UTF-8 can carry it (lone surrogates escaped), cut to ``limit`` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    cut = f"\n... [{len(text) - limit} characters cut] ...\n"
    if keep_end:
        half = limit // 2
        return text[:half] + cut + text[-half:]
    return text[:limit] + cut.rstrip()


def error_fields(exc: BaseException) -> tuple[str, str, str]:
    """Type name, message and traceback of ``exc``, each safe to store whatever ``exc`` is
    (a ``__str__`` that raises, a message of megabytes, text that is not valid UTF-8)."""
    try:
        message = str(exc)
    except Exception as render_error:
        message = f"<the error's message could not be rendered: {render_error!r}>"
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception as render_error:
        tb = f"<the traceback could not be rendered: {render_error!r}>"
    return (
        type(exc).__name__,
        _storable(message, MAX_ERROR_MESSAGE),
        _storable(tb, MAX_TRACEBACK, keep_end=True),
    )


def effective_max_tries(job_max_tries: int, task: Task[Any, Any] | None, default: int) -> int:
    """The tries a job gets: its own (set at enqueue), else its task's, else the worker's."""
    return job_max_tries or (task.max_tries if task else None) or default


class Runner:
    """Runs claimed jobs for a worker: what it needs, and nothing of the worker itself."""

    def __init__(
        self,
        *,
        settings: WorkerSettings,
        registry: dict[str, Task[Any, Any]],
        store: Store,
        finisher: Finisher,
        queue: Queue,
        state: dict[str, Any],
        hooks: Hooks,
        metrics: Any = None,
        tracing: Tracing | None = None,
        worker_id: str = "",
        unknown_task_grace: float = 0.0,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.finisher = finisher
        self.queue = queue
        self.state = state
        self.hooks = hooks
        self.metrics = metrics
        self.tracing = tracing
        self._report_errors: set[str] = set()  # kinds of report failure logged in full once
        self.worker_id = worker_id
        self.unknown_task_grace = unknown_task_grace
        self._unknown_seen: set[str] = set()  # tasks already warned about (bounded)
        self.deadlines = Deadlines()

    def context(self, job: ClaimedJob, max_tries: int) -> Context:
        """The job's own context: a copy of the worker's state, so a write stays with it."""
        return Context(
            job_id=job.id,
            task_name=job.task_name,
            attempt=job.attempt,
            max_tries=max_tries,
            enqueued_ms=job.enqueued_ms,
            queue=self.queue,
            state=self.state.copy(),
            report_progress=self._progress_reporter(job),
            checkpoint=job.checkpoint,
            save_checkpoint=self._checkpoint_saver(job),
        )

    def _progress_reporter(
        self, job: ClaimedJob
    ) -> Callable[[float, str | None, str | None], Awaitable[None]]:
        async def report(value: float, stage: str | None, message: str | None) -> None:
            await self.store.progress(job.keys, job.id, job.token, value, stage, message)

        return report

    def _checkpoint_saver(self, job: ClaimedJob) -> Callable[[Any], Awaitable[bytes]]:
        limit = self.settings.max_payload_bytes

        async def save(value: Any) -> bytes:
            encoded = _serde.dumps(value, f"checkpoint of {job.task_name!r}")
            if len(encoded) > limit:
                raise SerializationError(
                    f"the checkpoint of {job.task_name!r} takes {len(encoded)} bytes, over "
                    f"max_payload_bytes ({limit}): save where the work got to (a page, an id, a "
                    "count), not the data itself"
                )
            if not await self.store.checkpoint(job.keys, job.id, job.token, encoded):
                raise LeaseLost(
                    f"job {job.id} try {job.attempt} no longer holds its lease (it ran out and "
                    "another try has the job, or the job was cancelled): its checkpoint was "
                    "refused; this try should stop"
                )
            return encoded

        return save

    async def run_or_leave(self, job: ClaimedJob) -> None:
        """``run``; if reporting the outcome itself fails (not an outage: those are waited
        out), log it and leave the job to its lease, which brings it back."""
        try:
            await self.run(job)
        except Exception as exc:
            kind = type(exc).__name__
            first = kind not in self._report_errors
            self._report_errors.add(kind)
            log.error(
                "job %s %s try %d: could not report its outcome (%s: %s); it runs again "
                "when its lease runs out",
                job.id, job.task_name, job.attempt, kind, exc, exc_info=exc if first else None,
            )  # fmt: skip

    async def run(self, job: ClaimedJob) -> None:
        """Run ``job`` to an outcome and report it; never raises for the task's own errors."""
        # In this try's own task: its log records, and tasks it starts, know the job.
        CURRENT_TRY.set(job)
        tracing = self.tracing
        if tracing is not None and tracing.active():
            await tracing.process(job, self._run)
        else:
            await self._run(job)

    async def _run(self, job: ClaimedJob) -> Context:
        task = self.registry.get(job.task_name)
        max_tries = effective_max_tries(job.max_tries, task, self.settings.max_tries)
        started = time.monotonic()
        ctx = self.context(job, max_tries)
        if task is None:
            await self._unknown_task(job, ctx, started)
            await self.hooks.call("on_job_end", ctx)
            return ctx
        try:
            if len(job.payload) > self.settings.max_payload_bytes:
                raise ValueError(
                    f"payload of {len(job.payload)} bytes is over max_payload_bytes "
                    f"({self.settings.max_payload_bytes})"
                )
            args, kwargs = _serde.decode_payload(job.payload)
            args, kwargs = task.validate_arguments(args, kwargs)
        except (ValueError, TypeError, ValidationError) as exc:
            error = PayloadError(f"cannot decode the job's arguments: {exc}")
            await self._report_failure(job, ctx, error, PERMANENT, started)
            await self.hooks.call("on_job_end", ctx)
            return ctx
        timeout = (
            job.timeout_ms / 1000 if job.timeout_ms else (task.timeout or self.settings.job_timeout)
        )
        ctx.deadline = started + timeout
        call = task.fn(ctx, *args, **kwargs)
        soft = task.soft_timeout
        if soft is not None and soft < timeout:
            call = call_with_soft_timeout(
                call,
                soft,
                f"try {job.attempt} ran past its soft timeout of {soft}s; its timeout of "
                f"{timeout}s cancels it",
            )
        log.debug("job %s %s try %d started", job.id, job.task_name, job.attempt)
        if self.metrics is not None:
            self.metrics.job_started(job)
        await self.hooks.call("on_job_start", ctx)
        try:
            result = await self._body(job, call, timeout)
        except asyncio.CancelledError:
            job.running = False
            if job.stop_reason is None:
                raise  # the worker itself is being torn down
            ctx.outcome = "requeued" if job.stop_reason == "shutdown" else job.stop_reason
            await self._stopped(job)
        except _TryTimedOut:
            timed_out = JobTimeout(
                f"try {job.attempt} ran past its timeout of {timeout}s and was cancelled"
            )
            delay = _delay_if_retryable(task, timed_out, job.attempt)
            await self._report_failure(job, ctx, timed_out, delay, started)
        except Retry as exc:
            delay = exc.defer if exc.defer is not None else retry_delay(task.backoff, job.attempt)
            await self._report_failure(job, ctx, exc, delay, started)
        except Exception as exc:
            delay = _delay_if_retryable(task, exc, job.attempt)
            await self._report_failure(job, ctx, exc, delay, started)
        else:
            job.running = False
            await self._report_success(job, ctx, result, started)
        await self.hooks.call("on_job_end", ctx)
        return ctx

    async def _body(self, job: ClaimedJob, call: Any, timeout: float) -> Any:
        """Await the task's coroutine; cancelled (and _TryTimedOut raised) once it runs past
        ``timeout`` seconds."""
        slot = self.deadlines.add(job, timeout)
        try:
            return await call
        except asyncio.CancelledError:
            if job.stop_reason == TIMED_OUT:
                raise _TryTimedOut from None
            raise
        finally:
            self.deadlines.remove(slot, job)
            if job.stop_reason == TIMED_OUT and sys.version_info >= (3, 11):
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    async def _report_success(
        self, job: ClaimedJob, ctx: Context, result: Any, started: float
    ) -> None:
        try:
            encoded = _serde.dumps(result, f"result of {job.task_name!r}")
        except SerializationError as exc:
            await self._report_failure(job, ctx, exc, PERMANENT, started)
            return
        limit = self.settings.max_result_bytes
        if len(encoded) > limit:
            too_big = SerializationError(
                f"the result of {job.task_name!r} takes {len(encoded)} bytes, over "
                f"max_result_bytes ({limit}): store big results elsewhere (S3, a database, a "
                "file) and return a reference to them, such as their key or URL"
            )
            await self._report_failure(job, ctx, too_big, PERMANENT, started)
            return
        took = time.monotonic() - started
        if not await self.finisher.succeed(job.keys, job.id, job.token, encoded):
            ctx.outcome = "refused"
            _log_refused(job)
            return
        ctx.outcome, ctx.result = "succeeded", result
        if self.metrics is not None:
            self.metrics.job_ended(job, "succeeded", took)
        if self.settings.log_successes and log.isEnabledFor(logging.INFO):
            _log_success(job, took)

    async def _report_failure(
        self, job: ClaimedJob, ctx: Context, exc: BaseException, delay_s: float, started: float
    ) -> None:
        error_type, message, tb = error_fields(exc)
        delay_ms = PERMANENT if delay_s == PERMANENT else int(delay_s * 1000)
        job.running = False
        outcome = await self.finisher.fail(
            job.keys,
            job.id,
            job.token,
            retry_delay_ms=delay_ms,
            max_tries=ctx.max_tries,
            error_type=error_type,
            error_message=message,
            traceback=tb,
        )
        took = time.monotonic() - started
        ctx.error = exc
        if outcome is FailOutcome.RETRY:
            ctx.outcome = "retry"
            log.info(
                "job %s %s try %d/%d failed in %.3fs (%s: %s); retry in %.2fs",
                job.id, job.task_name, job.attempt, ctx.max_tries, took, error_type, message,
                max(delay_s, 0), extra=_extra(job, "retry", took),
            )  # fmt: skip
        elif outcome is FailOutcome.DEAD_LETTERED:
            ctx.outcome = "failed"
            log.error(
                "job %s %s try %d/%d failed in %.3fs (%s: %s); dead-lettered",
                job.id, job.task_name, job.attempt, ctx.max_tries, took, error_type, message,
                extra=_extra(job, "failed", took),
            )  # fmt: skip
            await self.hooks.call("on_dead_letter", ctx, exc)
        else:
            ctx.outcome = "refused"
            _log_refused(job)
        if self.metrics is not None:
            self.metrics.job_ended(job, ctx.outcome, took)

    async def _unknown_task(self, job: ClaimedJob, ctx: Context, started: float) -> None:
        """A task this worker does not register: if another live worker of the queue says it
        does (another app on the queue, or a newer release), leave the job to it, for up to
        ``unknown_task_grace`` seconds from the first worker that did not know it; otherwise,
        or after that, dead-letter it as UnknownTaskError."""
        known = ", ".join(sorted(self.registry)) or "none"
        error = UnknownTaskError(
            f"no task named {job.task_name!r} is registered in this worker (known: {known})"
            + (" nor in another live worker of this queue (it may wait up to "
               f"{self.unknown_task_grace:g}s for one)" if self.unknown_task_grace else "")
            + "; add it to WorkerSettings.functions, then replay the dead letter"
        )  # fmt: skip
        waiting = (
            f"worker {self.worker_id} does not know task {job.task_name!r}; waiting up to "
            f"{self.unknown_task_grace:g}s for a worker that does"
        )
        job.running = False
        outcome, delay_ms = await self.finisher.give_back_unknown(
            job.keys,
            job.id,
            job.token,
            grace_ms=int(self.unknown_task_grace * 1000),
            worker=self.worker_id,
            error_message=str(error),
            waiting_message=waiting,
        )
        if outcome is UnknownTaskOutcome.GIVEN_BACK:
            ctx.outcome = "requeued"
            first = job.task_name not in self._unknown_seen
            if first and len(self._unknown_seen) < 1000:
                self._unknown_seen.add(job.task_name)
            when = f"retry in {delay_ms / 1000:.1f}s" if delay_ms else "offered to the others now"
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "job %s: task %r is not registered in this worker; left for a worker that "
                "knows it (%s; dead-lettered if none takes it within %gs)",
                job.id, job.task_name, when, self.unknown_task_grace,
                extra=_extra(job, "unknown_task", None),
            )  # fmt: skip
        elif outcome is UnknownTaskOutcome.DEAD_LETTERED:
            ctx.outcome, ctx.error = "failed", error
            took = time.monotonic() - started
            log.error(
                "job %s %s try %d failed (UnknownTaskError: %s); dead-lettered",
                job.id, job.task_name, job.attempt, error,
                extra=_extra(job, "failed", took),
            )  # fmt: skip
            if self.metrics is not None:
                self.metrics.job_ended(job, "failed", took)
            await self.hooks.call("on_dead_letter", ctx, error)
        else:
            ctx.outcome = "refused"
            _log_refused(job)

    async def _stopped(self, job: ClaimedJob) -> None:
        if job.stop_reason == "shutdown":
            if await self.finisher.requeue(job.keys, job.id, job.token):
                log.warning("job %s %s requeued: shutdown grace ran out", job.id, job.task_name)
            return
        # A lost lease is already reported once for all its jobs by the lease keeper ("lost the
        # lease of job(s) ..."): repeating it per job would make an outage's log grow with the
        # number of jobs in flight.
        level = logging.DEBUG if job.stop_reason == "lease_lost" else logging.WARNING
        log.log(
            level,
            "job %s %s try %d stopped: %s",
            job.id,
            job.task_name,
            job.attempt,
            "cancelled by request" if job.stop_reason == "cancelled" else "its lease was lost",
            extra=_extra(job, job.stop_reason or "stopped", None),
        )


def _delay_if_retryable(task: Task[Any, Any], exc: BaseException, attempt: int) -> float:
    """The backoff delay if ``retry_on`` covers ``exc`` (default: any Exception), else PERMANENT."""
    retry_on = task.retry_on if task.retry_on is not None else (Exception,)
    return retry_delay(task.backoff, attempt) if isinstance(exc, retry_on) else PERMANENT


def _log_refused(job: ClaimedJob) -> None:
    log.warning(
        "job %s %s try %d: outcome refused, the lease token no longer matches "
        "(the job was reclaimed after the lease ran out, or cancelled)",
        job.id,
        job.task_name,
        job.attempt,
    )


def _log_success(job: ClaimedJob, took: float) -> None:
    """The per-job INFO line, as ``log.info`` would emit it (same record, filters, handlers),
    made the cheap way: the worker writes one line per job."""
    _SUCCESS.log((job.id, job.task_name, job.attempt, took), _extra(job, "succeeded", took))


_SUCCESS = CallSite(
    log, logging.INFO, "job %s %s try %d succeeded in %.3fs", _log_success, batched=True
)


def _extra(job: ClaimedJob, outcome: str, took: float | None) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "task": job.task_name,
        "queue": job.keys.name,
        "attempt": job.attempt,
        "outcome": outcome,
        "duration": took,
    }
