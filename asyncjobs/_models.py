"""Job status and the job record as users see it (a pydantic model read from the job hash)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict

from . import _serde


class JobStatus(str, Enum):
    """Where a job is in its life; the values are what the job hash stores."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
        JobStatus.NOT_FOUND,
    }
)


class Model(BaseModel):
    """Base of asyncjobs's models (``JobInfo``, ``QueueStats``, ``WorkerInfo``, …): each builds
    its validator at its first use, not at import, since a worker uses few of them. That took
    about 10 ms of every worker's start-up."""

    model_config = ConfigDict(defer_build=True)


class JobInfo(Model):
    """Everything known about one job (also the shape of a dead letter)."""

    id: str
    queue: str
    task: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    status: JobStatus
    attempts: int = 0
    max_tries: int | None = None
    priority: int = 0
    enqueued_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    progress: float | None = None
    stage: str | None = None
    message: str | None = None
    eta: datetime | None = None
    worker: str | None = None
    idempotency_key: str | None = None
    raw_payload: str | None = None
    #: The W3C trace id of the span that enqueued it (with tracing on), to find that trace.
    trace_id: str | None = None
    #: The last value a try saved with ``ctx.checkpoint()`` (where its next try resumes).
    checkpoint: Any = None
    checkpoint_at: datetime | None = None
    #: A dead letter's stream entry: pass it as ``before=`` to read the next page.
    dead_letter_id: str | None = None
    #: The workflow this job belongs to (its id: a member's, or the workflow's own job's), and
    #: the member's place in it (None for the workflow's own job).
    workflow_id: str | None = None
    workflow_node: int | None = None

    @property
    def task_name(self) -> str:
        return self.task


def _int(value: bytes | str | int | None) -> int:
    """A counter from the job hash; 0 when missing or not a number (a hand-written record)."""
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0


def ms_to_datetime(value: bytes | str | int | None) -> datetime | None:
    ms = _int(value)
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms > 0 else None


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


def _eta(status: JobStatus, started_at: datetime | None, progress: float | None) -> datetime | None:
    """When a running job should finish if it keeps its average pace so far."""
    if status is not JobStatus.IN_PROGRESS or started_at is None or not progress:
        return None
    now = datetime.now(timezone.utc)
    elapsed = (now - started_at).total_seconds()
    return now + timedelta(seconds=max(0.0, elapsed * (1 - progress) / progress))


def job_info_from_fields(job_id: str, queue: str, fields: dict[bytes, bytes]) -> JobInfo:
    """Build a JobInfo from a job hash (or a dead-letter stream entry) as Redis returns it."""
    f = {k.decode(): v for k, v in fields.items()}
    payload = f.get("payload", b"")
    try:
        args, kwargs = _serde.decode_payload(payload)
        raw = None
    except ValueError:
        args, kwargs, raw = [], {}, _text(payload)
    error_type, error_message = _text(f.get("error_type")), _text(f.get("error_message"))
    result: Any = None
    if f.get("result") is not None:
        result = _serde.loads(f["result"])
    max_tries = _int(f.get("max_tries"))
    progress = f.get("progress")
    status = JobStatus(_text(f.get("status")) or "failed")
    started_at = ms_to_datetime(f.get("started_at"))
    fraction = float(progress) if progress not in (None, b"") else None
    return JobInfo(
        id=job_id,
        queue=queue,
        task=_text(f.get("task")) or "",
        args=args,
        kwargs=kwargs,
        status=status,
        attempts=_int(f.get("attempts")),
        max_tries=max_tries or None,
        priority=_int(f.get("priority")),
        enqueued_at=ms_to_datetime(f.get("enqueued_at")),
        scheduled_at=ms_to_datetime(f.get("scheduled_at")),
        started_at=started_at,
        finished_at=ms_to_datetime(f.get("finished_at") or f.get("failed_at")),
        expires_at=ms_to_datetime(f.get("expires_at")),
        result=result,
        error=f"{error_type}: {error_message}" if error_type else None,
        error_type=error_type or None,
        error_message=error_message if error_type else None,
        traceback=_text(f.get("traceback")) or None,
        progress=fraction,
        eta=_eta(status, started_at, fraction),
        stage=_text(f.get("stage")) or None,
        message=_text(f.get("message")) or None,
        worker=_text(f.get("worker")),
        idempotency_key=_text(f.get("idempotency_key")),
        raw_payload=raw,
        trace_id=_trace_id(f.get("trace")),
        checkpoint=_checkpoint(f.get("checkpoint")),
        checkpoint_at=ms_to_datetime(f.get("checkpoint_at")),
        **_workflow_place(job_id, f),
    )


def _checkpoint(stored: bytes | None) -> Any:
    """A stored checkpoint's value (a record written by hand may hold anything: shown as text)."""
    try:
        return _serde.loads(stored)
    except ValueError:
        return _text(stored)


def _workflow_place(job_id: str, f: dict[str, bytes]) -> dict[str, Any]:
    """workflow_id and workflow_node from a member's ``workflow`` (the workflow hash key,
    ``<tag>:wf:<id>``) and ``node`` fields, or the workflow job's ``workflow_root``."""
    if f.get("workflow_root"):
        return {"workflow_id": job_id}
    key = _text(f.get("workflow"))
    if not key or ":wf:" not in key:
        return {}
    node = _text(f.get("node"))
    return {
        "workflow_id": key.rsplit(":wf:", 1)[1],
        "workflow_node": int(node) if node and node.isdigit() else None,
    }


def _trace_id(stored: bytes | None) -> str | None:
    """The trace id in a stored context's W3C traceparent ("00-<trace id>-<span id>-<flags>")."""
    match = re.search(rb'"traceparent": ?"[0-9a-f]{2}-([0-9a-f]{32})-', stored or b"")
    return match.group(1).decode() if match else None


class WorkflowStep(Model):
    """A member of a workflow: its job id and its task."""

    job_id: str
    task: str


class WorkflowFailure(Model):
    """What an ``on_error`` callback receives: which member failed the workflow, and how.

    ``succeeded`` lists the members of the callback's own node (its chain, group or chord) that
    had succeeded, in the order they appear in it: for a chain, the order they ran in. Read
    their results with ``ctx.queue.job(step.job_id).result()``.
    """

    workflow_id: str
    job_id: str
    task: str
    error_type: str
    error_message: str
    succeeded: list[WorkflowStep] = []
