"""Context: what a running task knows about its job, plus the worker's shared state."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import _serde

if TYPE_CHECKING:
    from ._queue import Queue


_ARQ_KEYS = {
    "job_id": "job_id",
    "job_try": "attempt",
    "enqueue_time": "enqueued_at",
    "score": "_enqueued_ms",
    "redis": "_arq_redis",
}


class WorkerState(dict[str, Any]):
    """The worker-wide state (``on_startup``'s ctx), where ``"redis"``, arq's client, is made at
    its first read: a worker that never reads it does not import arq's side (~7 ms of start-up).

    ``state["redis"]`` and ``state.get("redis")`` read it; it is listed among the keys once read
    (from the start where ``asyncjobs.arq`` is imported: arq code may list them).
    ``copy()`` (each job's own state) shares the one client.
    """

    __slots__ = ("_redis",)
    _redis: Callable[[], Any]

    @classmethod
    def of(cls, initial: Mapping[str, Any], redis: Callable[[], Any]) -> WorkerState:
        """``initial``'s items, with ``redis()`` called at the first read of ``"redis"``."""
        state = cls(initial)
        state._redis = redis
        return state

    def __missing__(self, key: str) -> Any:
        if key != "redis":
            raise KeyError(key)
        self[key] = client = self._redis()
        return client

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key == "redis" else super().get(key, default)

    def copy(self) -> WorkerState:
        state = WorkerState(self)  # (no __init__ of its own: a copy per job stays cheap)
        state._redis = self._redis
        return state


class Context(MutableMapping[str, Any]):
    """Passed as the first argument of every task.

    ``ctx["db"]`` reads the worker-wide state that ``on_startup`` filled (arq-style). Each job
    gets its own copy of it: a write made while the job runs (in the task, or in
    ``on_job_start``/``on_job_end``) stays with that job. It is a mapping, as arq's ctx dict is
    (``dict(ctx)``, ``ctx.items()``), with arq's per-job keys (``job_id``, ``job_try``,
    ``enqueue_time``, ``score``, ``redis``) beside the state.
    """

    __slots__ = (
        "_checkpoint",
        "_enqueued_ms",
        "_report_progress",
        "_save_checkpoint",
        "_state",
        "attempt",
        "deadline",
        "error",
        "job_id",
        "max_tries",
        "outcome",
        "queue",
        "result",
        "task_name",
    )

    def __init__(
        self,
        *,
        job_id: str,
        task_name: str,
        attempt: int,
        max_tries: int,
        enqueued_ms: int,
        queue: Queue,
        state: dict[str, Any],
        deadline: float | None = None,
        report_progress: Callable[[float, str | None, str | None], Awaitable[None]] | None = None,
        checkpoint: bytes = b"",
        save_checkpoint: Callable[[Any], Awaitable[bytes]] | None = None,
    ) -> None:
        self.job_id = job_id
        self.task_name = task_name
        self.attempt = attempt
        self.max_tries = max_tries
        self.queue = queue
        self.deadline = deadline
        self._enqueued_ms = enqueued_ms
        self._state = state
        self._report_progress = report_progress
        self._checkpoint: Any = checkpoint  # JSON text until first read, then the value
        self._save_checkpoint = save_checkpoint
        #: Set before ``on_job_end``: succeeded, retry, failed, cancelled, lease_lost, requeued
        #: or refused (the lease token no longer matched); ``result``/``error`` go with it.
        self.outcome: str | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    @property
    def enqueued_at(self) -> datetime:
        return datetime.fromtimestamp(self._enqueued_ms / 1000, tz=timezone.utc)

    def time_left(self) -> float | None:
        """Seconds until this try's timeout cancels it (None when it has no timeout)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    async def progress(
        self, value: float, *, stage: str | None = None, message: str | None = None
    ) -> None:
        """Record progress in [0, 1]; visible at once through ``Job.info()``."""
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"progress must be within [0, 1], got {value}")
        if self._report_progress is not None:
            await self._report_progress(value, stage, message)

    @property
    def last_checkpoint(self) -> Any:
        """The last value ``checkpoint()`` saved for this job, by this try or an earlier one
        (None if none was): where a retry resumes."""
        if isinstance(self._checkpoint, bytes):
            self._checkpoint = _serde.loads(self._checkpoint)
        return self._checkpoint

    async def checkpoint(self, value: Any) -> None:
        """Save ``value`` (any JSON value) with the job: every later try of it, after a failure,
        a timeout, a shutdown or a crashed worker, starts with ``last_checkpoint`` set to it.

        Raises LeaseLost if this try no longer holds the job (the value is not stored), and
        SerializationError if the value is not JSON or is over the worker's max_payload_bytes.
        """
        if self._save_checkpoint is None:  # a task called directly, outside a worker
            self._checkpoint = _serde.dumps(value, f"checkpoint of {self.task_name!r}")
            return
        self._checkpoint = await self._save_checkpoint(value)  # as stored: as a retry reads it

    def __getitem__(self, key: str) -> Any:
        try:
            return self._state[key]
        except KeyError:
            if key in _ARQ_KEYS:  # arq tasks read these from their ctx dict
                return getattr(self, _ARQ_KEYS[key])
            raise KeyError(
                f"{key!r} is not in the worker state; set ctx[{key!r}] in on_startup"
            ) from None

    @property
    def _arq_redis(self) -> Any:
        return self.queue

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __delitem__(self, key: str) -> None:
        del self._state[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._state
        yield from (key for key in _ARQ_KEYS if key not in self._state)

    def __len__(self) -> int:
        return len(self._state) + sum(1 for key in _ARQ_KEYS if key not in self._state)

    def __contains__(self, key: object) -> bool:
        return key in self._state or key in _ARQ_KEYS

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __repr__(self) -> str:
        return f"<Context job={self.job_id} task={self.task_name} attempt={self.attempt}>"
