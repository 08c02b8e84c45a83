"""OpenTelemetry spans by the messaging conventions, and the suppression of our own Redis calls.

``send <queue>`` (PRODUCER) around an enqueue, its context stored with the job; ``process
<queue>`` (CONSUMER) around each try, linked to that context (or its child). Needs only
``opentelemetry-api`` (the ``otel`` extra): without it ``AVAILABLE`` is False and callers keep
their untraced path. Spans go through the global tracer provider unless one is given; while it
is the API's no-op, ``active()`` is False and nothing is built per job.

The worker's own loops (blocking waits, lease upkeep, heartbeats, recovery, acks) run in a
context that sets OpenTelemetry's suppression flag, so an app that instrumented redis-py sees
no span from them; a task's own calls run outside it and are traced as usual.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ._errors import Retry
from ._presence import package_version

if TYPE_CHECKING:
    from ._context import Context
    from ._running import ClaimedJob
    from ._store import Enqueued, NewJob

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.context import Context as OtelContext
    from opentelemetry.trace import (
        Link,
        NoOpTracerProvider,
        ProxyTracerProvider,
        Span,
        SpanKind,
        Status,
        StatusCode,
        TracerProvider,
    )
except ImportError:  # the otel extra is not installed: nothing here is used
    AVAILABLE = False
else:
    AVAILABLE = True
    # Instrumentations check both keys (the plain string is kept for older ones).
    _SUPPRESS_KEYS: tuple[str, ...] = (
        getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation"),
        "suppress_instrumentation",
    )
    _NO_OP_PROVIDERS = (ProxyTracerProvider, NoOpTracerProvider)
    #: The API loads a provider named by this variable on its first get_tracer_provider().
    _PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ

TraceParent = Literal["link", "child"]

SYSTEM = "asyncjobs"
_INSTRUMENTATION = "asyncjobs"


# -- suppression of the worker's own Redis traffic ---------------------------------------------


def _suppressing() -> Any:
    ctx = otel_context.get_current()
    for key in _SUPPRESS_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    return ctx


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Instrumented libraries (redis-py, ...) make no span inside (a no-op without the API)."""
    if not AVAILABLE:
        yield
        return
    token = otel_context.attach(_suppressing())
    try:
        yield
    finally:
        otel_context.detach(token)


def suppressed_context() -> contextvars.Context | None:
    """A copy of the current context with suppression on, for the worker's loops to run in
    (``ctx.run(asyncio.create_task, ...)``); None without the API."""
    if not AVAILABLE:
        return None
    copy = contextvars.copy_context()
    copy.run(lambda: otel_context.attach(_suppressing()))  # never detached: the copy is theirs
    return copy


# -- spans --------------------------------------------------------------------------------------


class Tracing:
    """The spans of one Queue or one Worker, made through one tracer."""

    def __init__(
        self,
        provider: Any = None,
        *,
        client_id: str | None = None,
        trace_parent: TraceParent = "link",
    ) -> None:
        self._provider: TracerProvider | None = provider
        source = provider if provider is not None else trace
        self.tracer = source.get_tracer(_INSTRUMENTATION, package_version())
        self.client_id = client_id
        self.child = trace_parent == "child"

    def active(self) -> bool:
        """Whether spans are recorded at all: False while the provider is the API's no-op
        (checked per call, so an SDK installed after start-up is picked up)."""
        provider = self._provider
        if provider is None:
            # The global one, read without get_tracer_provider()'s environment lookup (0.8 us
            # per call): this runs once per job even when no SDK is installed.
            provider = getattr(trace, "_TRACER_PROVIDER", None)
            if provider is None and (_PROVIDER_FROM_ENV or not hasattr(trace, "_TRACER_PROVIDER")):
                provider = trace.get_tracer_provider()
        return provider is not None and not isinstance(provider, _NO_OP_PROVIDERS)

    # -- producer --

    @contextlib.contextmanager
    def sending(self, queue: str, task: str | None, count: int = 1) -> Iterator[tuple[Span, str]]:
        """A ``send <queue>`` span, current inside; yields it and the context to store."""
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.destination.name": queue,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
        }
        if task is not None:
            attributes["asyncjobs.task"] = task
        if count > 1:
            attributes["messaging.batch.message_count"] = count
        span = self.tracer.start_span(
            f"send {queue}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield span, inject(trace.set_span_in_context(span))
        except Exception as exc:
            _set_error(span, exc)
            raise
        finally:
            span.end()

    async def send(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        enqueue: Callable[[Sequence[NewJob]], Awaitable[list[Enqueued]]],
    ) -> list[Enqueued]:
        """``enqueue(jobs)`` inside a ``send <queue>`` span whose context the jobs carry.

        A batch (``enqueue_many``) is one span with ``messaging.batch.message_count``, its
        context stored in every job of the batch: a span per job would cost more than the
        enqueue itself and flood the trace of a request that enqueues thousands.
        """
        tasks = {job.task for job in jobs}
        task = next(iter(tasks)) if len(tasks) == 1 else None
        with self.sending(queue, task, len(jobs)) as (span, stored):
            traced = [job._replace(trace=stored) for job in jobs] if stored else jobs
            replies = await enqueue(traced)
            if len(replies) == 1 and span.is_recording():
                job_id, duplicate = replies[0]
                span.set_attribute("messaging.message.id", job_id)
                if duplicate:  # an existing job was returned: it keeps the context it had
                    span.set_attribute("asyncjobs.duplicate", True)
        return replies

    # -- consumer --

    async def process(
        self, job: ClaimedJob, run: Callable[[ClaimedJob], Awaitable[Context | None]]
    ) -> None:
        """``run(job)`` inside a ``process <queue>`` span, current while the try runs (so the
        task's own spans, logs and follow-up jobs belong to it)."""
        stored = extract(job.trace)
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.destination.name": job.keys.name,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": job.id,
            "asyncjobs.task": job.task_name,
            "asyncjobs.attempt": job.attempt,
        }
        if self.client_id is not None:
            attributes["messaging.client.id"] = self.client_id
        name = f"process {job.keys.name}"
        if self.child:
            span = self.tracer.start_span(
                name, context=stored, kind=SpanKind.CONSUMER, attributes=attributes
            )
        else:
            remote = trace.get_current_span(stored).get_span_context()
            span = self.tracer.start_span(
                name,
                context=OtelContext(),  # a trace of its own, linked to the send
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=[Link(remote)] if remote.is_valid else None,
            )
        # The stored context, with this span current: baggage from the producer comes along,
        # and the suppression of the worker's loops does not.
        token = otel_context.attach(trace.set_span_in_context(span, stored))
        ctx: Context | None = None
        try:
            ctx = await run(job)
        finally:
            otel_context.detach(token)
            _end_try(span, ctx)


def inject(ctx: Any) -> str:
    """The propagation headers of ``ctx`` (the app's propagators: W3C traceparent, tracestate
    and baggage by default) as the JSON stored with a job; '' when there is nothing to carry."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return orjson.dumps(carrier).decode() if carrier else ""


@functools.lru_cache(maxsize=1024)
def extract(stored: bytes | str) -> Any:
    """The context a job carries (an empty one when it carries none, or garbage). Cached: the
    jobs of one enqueue_many, and the tries of one job, carry the same one (contexts are
    immutable)."""
    if not stored:
        return OtelContext()
    try:
        carrier = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return OtelContext()
    if not isinstance(carrier, dict):
        return OtelContext()
    headers = {k: v for k, v in carrier.items() if isinstance(v, str)}
    return propagate.extract(headers, context=OtelContext())


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, in W3C hex, or None if there is none."""
    if not AVAILABLE:
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def _error_type(exc: BaseException) -> str:
    """The exception's class name, as the job's stored ``error_type`` names it too."""
    return type(exc).__qualname__


def _set_error(span: Span, exc: BaseException) -> None:
    if span.is_recording():
        span.set_attribute("error.type", _error_type(exc))
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def _end_try(span: Span, ctx: Context | None) -> None:
    """ERROR only for a try that failed: not for Retry, a cancel, a requeue at shutdown."""
    if span.is_recording():
        outcome = ctx.outcome if ctx is not None else None
        span.set_attribute("asyncjobs.outcome", outcome or "abandoned")
        error = ctx.error if ctx is not None else None
        if outcome == "lease_lost":
            span.set_attribute("error.type", "lease_lost")
            span.set_status(Status(StatusCode.ERROR, "the lease was lost; the job runs again"))
        elif error is not None and (outcome == "failed" or not isinstance(error, Retry)):
            _set_error(span, error)
    span.end()


def for_queue(enabled: bool, provider: Any = None) -> Tracing | None:
    """The producer's tracing, or None when it is off or the API is missing."""
    return Tracing(provider) if enabled and AVAILABLE else None


def for_worker(
    enabled: bool, provider: Any, client_id: str, trace_parent: TraceParent
) -> Tracing | None:
    return (
        Tracing(provider, client_id=client_id, trace_parent=trace_parent)
        if enabled and AVAILABLE
        else None
    )
