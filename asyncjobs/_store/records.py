"""What goes into the scripts and what comes back, as types: new jobs, claims, reply codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple


class NewJob(NamedTuple):
    """One job to create, as enqueue, enqueue_many, cron and replays hand it to the store.

    The field order is the scripts' (``JOB_FIELDS`` in the Lua prelude; a test holds them equal).
    """

    id: str
    task: str
    payload: bytes
    priority: int = 0
    max_tries: int = 0  # 0 = the worker's (or the task's) default
    timeout_ms: int = 0  # 0 = the worker's (or the task's) default
    delay_ms: int = 0
    defer_until_ms: int = 0  # absolute, Unix ms; 0 = none
    expires_ms: int = 0  # relative to the enqueue; 0 = never
    idempotency_key: str = ""
    idempotency_ttl_ms: int = 1
    concurrency_key: str = ""
    trace: str = ""  # the producer's trace context (JSON of its propagation headers); '' = none
    fresh: int = 0  # 1 = the id was drawn at random here: no job can have it, none is looked up


class WorkflowMember(NamedTuple):
    """One member job of a workflow, as workflow_start stores it (see workflow_start.lua)."""

    task: str
    head: bytes
    tail: bytes
    template: bytes
    awaited: int
    dependents: str
    priority: int
    max_tries: int
    timeout_ms: int
    tolerated: int


@dataclass(frozen=True)
class Partitions:
    """How a queue is partitioned, as its partition 0 records it (see partitions.lua)."""

    count: int = 1  # partitions new jobs are routed to
    span: int = 1  # partitions workers serve: the most the queue ever had
    #: Tasks whose workers declared a concurrency or rate limit on the queue (their jobs all
    #: go to one home partition, so the limit stays exact); read only when span > 1.
    limited: frozenset[str] = frozenset()


class Enqueued(NamedTuple):
    id: str
    duplicate: bool  # an existing job (same id or idempotency key) was returned


@dataclass(slots=True)
class ClaimedRecord:
    """One job a claim handed out (its lease token is ``<worker>:<attempt>``)."""

    id: str
    task: str
    payload: bytes
    attempt: int
    max_tries: int
    timeout_ms: int
    enqueued_ms: int
    trace: bytes = b""  # the trace context stored at enqueue (b"" = none)
    checkpoint: bytes = b""  # the last checkpoint a try saved (JSON; b"" = none)


@dataclass(slots=True)
class Claim:
    """A claim's reply: the jobs, when the next deferred job is due, and the suspects' state."""

    next_due_ms: int  # -1 = nothing deferred
    now_ms: int  # Redis's clock at the claim
    suspects_waiting: bool
    suspect: str | None  # the suspect handed out in this claim, if any
    jobs: list[ClaimedRecord] = field(default_factory=list)


class FailOutcome(IntEnum):
    RETRY = 1
    DEAD_LETTERED = 2
    REFUSED = -1  # the lease token no longer matches


class CancelOutcome(IntEnum):
    CANCELLED_WAITING = 1
    CANCELLED_RUNNING = 2
    ALREADY_CANCELLED = 3
    ALREADY_ENDED = 0
    NOT_FOUND = -1


class CronTickOutcome(IntEnum):
    ENQUEUED = 0
    ALREADY_HANDLED = 1
    SKIPPED_STILL_RUNNING = 2
    REMOVED = 3  # the run-time cron was removed or replaced since the worker loaded it


class CronChange(IntEnum):
    ADDED = 1
    REPLACED = 2
    REMOVED = 3
    NOT_FOUND = 0
    REFUSED = -1  # a live worker declares a cron of that name from its settings


class DeadLettered(NamedTuple):
    """A job recovery dead-lettered (its tries were used up, or it is a poison pill)."""

    id: str
    task: str
    error_type: str
    error_message: str


@dataclass(slots=True)
class Recovery:
    recovered: int
    dead_lettered: list[DeadLettered]
    next_deadline_ms: int  # -1 = no leases left


@dataclass(slots=True)
class QueueCounts:
    """One queue as Redis holds it now (one snapshot: see stats.lua)."""

    ready: int
    deferred: int
    in_progress: int
    dead_letters: int
    workers: int
    stats: dict[str, int]
    now_ms: int = 0
    paused_ms: int = 0  # when it was paused (Redis clock); 0 = not paused
    blocked: int = 0  # jobs waiting for a concurrency slot (in at most `groups` counted groups)
    groups: int = 0  # concurrency groups with jobs waiting
    minutes: dict[int, dict[str, int]] = field(default_factory=dict)  # unix minute → counts
    hours: dict[int, dict[str, int]] = field(default_factory=dict)  # unix hour → counts
    rolled_minute: int = 0  # the last minute the hourly history holds
    unknown_tasks: dict[str, tuple[int, str]] = field(default_factory=dict)  # → (ms, worker)

    @property
    def paused(self) -> bool:
        return self.paused_ms > 0


class ForgetOutcome(IntEnum):
    FORGOTTEN = 1
    HAS_JOBS = -1
    HAS_DEAD_LETTERS = -2
    HAS_WORKERS = -3
    HAS_CRONS = -4  # crons added at run time are scheduled on it


class UnknownTaskOutcome(IntEnum):
    GIVEN_BACK = 1
    DEAD_LETTERED = 2
    REFUSED = -1


class ReplayBatch(NamedTuple):
    next: str | None  # the entry to continue after; None = done
    replayed: int
    live: int  # dead letters left in place: a live job has their id again


class WorkerRecord(NamedTuple):
    """A live worker of a queue, as its last heartbeat described it."""

    id: str
    last_seen_ms: int
    running: int
    about: str  # JSON the worker wrote (host, pid, queues, ...)
