"""Queue: the client. Owns one Redis connection pool; enqueues jobs and reads them back."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, TypeVar, overload

from ._connection import DEFAULT_REDIS_URL, check_reachable, close_client, create_client
from ._errors import SerializationError
from ._job import Job
from ._keys import DEFAULT_PREFIX, DEFAULT_QUEUE, QueueKeys, queues_registry_key
from ._models import JobInfo, job_info_from_fields
from ._scripts import preload_scripts, run_script
from ._serde import encode_payload
from ._task import Task
from ._waiters import Waiters
from ._workflow import Node, compile_workflow, is_workflow, leaf_fields, template

R = TypeVar("R")

#: Keyword arguments of enqueue() that are options, not task arguments (arq's convention).
ENQUEUE_OPTIONS = frozenset(
    {
        "_job_id",
        "_queue_name",
        "_defer_by",
        "_defer_until",
        "_priority",
        "_idempotency_key",
        "_idempotency_ttl",
        "_max_tries",
        "_timeout",
        "_expires",
    }
)
PRIORITY_LIMIT = 1000
DEFAULT_KEEP_RESULT = 86_400.0
DEFAULT_IDEMPOTENCY_TTL = 86_400.0
DEFAULT_DEAD_LETTER_MAXLEN = 10_000
DEFAULT_MAX_PAYLOAD_BYTES = 1_048_576
_FIELDS_PER_JOB = 12


def _seconds(value: float | timedelta | None, name: str) -> float:
    if value is None:
        return 0.0
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, got {seconds}")
    return seconds


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


async def redis_now_ms(client: Any) -> int:
    """Now on Redis's clock (the one every script and heartbeat uses), in ms."""
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def queue_counts(client: Any, keys: QueueKeys) -> dict[str, Any]:
    """One queue as Redis holds it, in one round trip: ready, deferred, in_progress,
    dead_letters, live workers, and the stats hash (str -> int)."""
    now_ms = await redis_now_ms(client)
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.ready)
        pipe.zcard(keys.deferred)
        pipe.zcard(keys.leases)
        pipe.xlen(keys.dead_letters)
        pipe.zcount(keys.workers, now_ms, "+inf")
        pipe.hgetall(keys.stats)
        ready, deferred, leases, dead, workers, stats = await pipe.execute()
    return {
        "ready": ready,
        "deferred": deferred,
        "in_progress": leases,
        "dead_letters": dead,
        "workers": workers,
        "stats": {k.decode(): int(v) for k, v in stats.items()},
    }


class Queue:
    """The producer side: ``async with Queue(url) as queue: await queue.enqueue(task, ...)``.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://`` or ``memory://`` (embedded, in-process).
        name: the queue jobs go to unless the task or ``_queue_name`` says otherwise.
        prefix: first part of every key (change it to run two apps on one Redis database).
        keep_result: seconds a finished job's record (and result) stays readable.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str = DEFAULT_QUEUE,
        prefix: str = DEFAULT_PREFIX,
        keep_result: float = DEFAULT_KEEP_RESULT,
        idempotency_ttl: float = DEFAULT_IDEMPOTENCY_TTL,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        client: Any = None,
    ) -> None:
        self.url = url or os.environ.get("ASYNCJOBS_REDIS_URL") or DEFAULT_REDIS_URL
        self.name = name
        self.prefix = prefix
        self.keep_result_ms = _ms(keep_result)
        self.idempotency_ttl = idempotency_ttl
        self.max_payload_bytes = max_payload_bytes
        self._owns_client = client is None
        self.client: Any = client if client is not None else create_client(self.url)
        self.waiters = Waiters(self.client)
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self.keys_for(name)

    async def __aenter__(self) -> Queue:
        await check_reachable(self.client, self.url)
        await preload_scripts(self.client)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the result subscription and close the pool (when this Queue made it)."""
        await self.waiters.aclose()
        if self._owns_client:
            await close_client(self.client)

    def keys_for(self, queue_name: str) -> QueueKeys:
        keys = self._keys.get(queue_name)
        if keys is None:
            keys = QueueKeys(queue_name, self.prefix)
            if len(self._keys) < 1024:  # names may come from users (?queue=): stay bounded
                self._keys[queue_name] = keys
        return keys

    def job(self, job_id: str, queue_name: str | None = None) -> Job[Any]:
        """A handle on any job by id (in this Queue's default queue unless named)."""
        return Job(self, job_id, queue_name or self.name)

    # -- enqueue ---------------------------------------------------------------------------

    @overload
    async def enqueue(self, task: Task[Any, R], /, *args: Any, **kwargs: Any) -> Job[R]: ...

    @overload
    async def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> Job[Any]: ...

    @overload
    async def enqueue(self, task: Node, /, **options: Any) -> Job[Any]: ...

    async def enqueue(
        self, task: Task[Any, Any] | str | Node, /, *args: Any, **kwargs: Any
    ) -> Job[Any]:
        """Store one job (or a workflow) and return its handle at once (an existing one if
        deduplicated)."""
        if is_workflow(task):
            return await self._enqueue_workflow(task, args, kwargs)  # type: ignore[arg-type]
        # One job: the batch path without its grouping (this is the hot path of most apps).
        queue_name, fields, task_obj = self._job_fields(task, args, kwargs)  # type: ignore[arg-type]
        job_id, duplicate = await self._enqueue_into(queue_name, [fields])
        return Job(self, job_id.decode(), queue_name, duplicate=bool(duplicate), task=task_obj)

    async def _enqueue_into(self, queue_name: str, batch: list[list[Any]]) -> list[Any]:
        """One enqueue script call for jobs of one queue: [id, duplicate] pairs, in order."""
        keys = self.keys_for(queue_name)
        if queue_name not in self._registered:
            await self._register(queue_name)
        argv: list[Any] = [keys.job_prefix, keys.idempotency_prefix, len(batch)]
        for fields in batch:
            argv.extend(fields)
        return await run_script(  # type: ignore[no-any-return]
            self.client,
            "enqueue",
            [keys.ready, keys.deferred, keys.wake, keys.seq, keys.stats],
            argv,
        )

    async def _enqueue_workflow(
        self, node: Node, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Job[Any]:
        """Compile a chain/group/chord and start it: one script call, one queue."""
        if args:
            raise TypeError("a workflow takes no positional arguments: give them to .s()/.si()")
        unknown = set(options) - {"_queue_name"}
        if unknown:
            raise TypeError(f"a workflow takes only _queue_name, not {sorted(unknown)}")
        queue_name = options.get("_queue_name") or self.name
        compiled = compile_workflow(node, queue_name)
        keys = self.keys_for(queue_name)
        await self._register(queue_name)
        argv: list[Any] = [
            keys.job_prefix,
            keys.workflow_prefix + compiled.id,
            compiled.id,
            compiled.kind,
            self.keep_result_ms,
            template(compiled.output),
            len(compiled.leaves),
        ]
        for leaf in compiled.leaves:
            argv.extend(leaf_fields(leaf))
        await run_script(
            self.client, "workflow_start", [keys.ready, keys.wake, keys.seq, keys.stats], argv
        )
        return Job(self, compiled.id, queue_name)

    async def enqueue_job(self, function: str, /, *args: Any, **kwargs: Any) -> Job[Any]:
        """arq's name for :meth:`enqueue` (the same underscore options apply)."""
        return await self.enqueue(function, *args, **kwargs)

    async def enqueue_many(
        self, items: Iterable[tuple[Task[Any, Any] | str, Sequence[Any], dict[str, Any]]]
    ) -> list[Job[Any]]:
        """Enqueue a batch: one script call per queue, jobs returned in the items' order."""
        by_queue: dict[str, list[tuple[int, list[Any], Task[Any, Any] | None]]] = {}
        count = 0
        for index, (task, args, kwargs) in enumerate(items):
            queue_name, fields, task_obj = self._job_fields(task, tuple(args), dict(kwargs))
            by_queue.setdefault(queue_name, []).append((index, fields, task_obj))
            count += 1
        jobs: list[Job[Any] | None] = [None] * count
        for queue_name, entries in by_queue.items():
            reply = await self._enqueue_into(queue_name, [fields for _, fields, _ in entries])
            for n, (index, _, task_obj) in enumerate(entries):
                job_id = reply[2 * n]
                jobs[index] = Job(
                    self,
                    job_id.decode() if isinstance(job_id, bytes) else job_id,
                    queue_name,
                    duplicate=bool(reply[2 * n + 1]),
                    task=task_obj,
                )
        return [job for job in jobs if job is not None]

    def _job_fields(
        self, task: Task[Any, Any] | str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, list[Any], Task[Any, Any] | None]:
        """Split options from arguments, check and encode them: the enqueue script's fields."""
        options = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("_")}
        unknown = set(options) - ENQUEUE_OPTIONS
        if unknown:
            raise TypeError(
                f"unknown enqueue option(s) {sorted(unknown)}; options are "
                f"{sorted(ENQUEUE_OPTIONS)} (task arguments may not start with '_')"
            )
        task_obj: Task[Any, Any] | None = None
        if isinstance(task, Task):
            task_obj = task
            task.check_arguments(args, kwargs)
            name = task.name
        elif isinstance(task, str) and task:
            name = task
        else:
            raise TypeError(f"enqueue takes a Task or a task name, not {task!r}")
        payload = encode_payload(args, kwargs, name)
        if len(payload) > self.max_payload_bytes:
            raise SerializationError(
                f"the arguments of {name!r} take {len(payload)} bytes, over max_payload_bytes "
                f"({self.max_payload_bytes}): store big data elsewhere (S3, a database) and "
                "pass a reference"
            )
        queue_name = options.get("_queue_name") or (task_obj and task_obj.queue) or self.name
        job_id = options.get("_job_id")
        if job_id is None and task_obj is not None and task_obj.unique:
            job_id = task_obj.unique_job_id(payload)
        job_id = str(job_id) if job_id is not None else os.urandom(16).hex()
        priority = int(options.get("_priority", 0))
        if not -PRIORITY_LIMIT <= priority <= PRIORITY_LIMIT:
            raise ValueError(f"_priority must be within ±{PRIORITY_LIMIT}, got {priority}")
        max_tries = options.get("_max_tries") or (task_obj and task_obj.max_tries) or 0
        timeout = options.get("_timeout") or (task_obj and task_obj.timeout) or 0
        delay = _seconds(options.get("_defer_by"), "_defer_by")
        defer_until = 0
        if options.get("_defer_until") is not None:
            when: datetime = options["_defer_until"]
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            defer_until = _ms(when.timestamp())
        expires = _seconds(options.get("_expires"), "_expires")
        idem_key = options.get("_idempotency_key") or ""
        idem_ttl = options.get("_idempotency_ttl") or (
            (task_obj and task_obj.idempotency_ttl) or self.idempotency_ttl
        )
        fields = [
            job_id,
            name,
            payload,
            priority,
            int(max_tries),
            _ms(float(timeout)),
            _ms(delay),
            defer_until,
            _ms(expires),
            str(idem_key),
            max(1, _ms(_seconds(idem_ttl, "_idempotency_ttl"))),
            self._concurrency_key(task_obj, args, kwargs),
        ]
        assert len(fields) == _FIELDS_PER_JOB
        return str(queue_name), fields, task_obj

    @staticmethod
    def _concurrency_key(
        task: Task[Any, Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> str:
        if task is None or task.concurrency_key is None:
            return ""
        key = str(task.concurrency_key(*args, **kwargs))
        if not key:
            raise ValueError(f"concurrency_key of task {task.name!r} returned an empty key")
        return key

    async def _register(self, queue_name: str) -> None:
        """Record the queue name once, so `asyncjobs info` and `asyncjobs job` can find it."""
        if queue_name not in self._registered:
            await self.client.sadd(queues_registry_key(self.prefix), queue_name)
            self._registered.add(queue_name)

    # -- dead letters ----------------------------------------------------------------------

    async def dead_letters(self, limit: int = 100, queue_name: str | None = None) -> list[JobInfo]:
        """The newest ``limit`` dead letters of a queue, newest first, error fields set."""
        name = queue_name or self.name
        entries = await self.client.xrevrange(self.keys_for(name).dead_letters, count=limit)
        return [self._dead_letter_info(name, fields) for _, fields in entries]

    async def replay_dead_letter(self, job_id: str, queue_name: str | None = None) -> Job[Any]:
        """Enqueue a dead-lettered job again, same id, fresh tries; LookupError if not there."""
        name = queue_name or self.name
        keys = self.keys_for(name)
        entry_id = await self._find_dead_letter(keys, job_id)
        if entry_id is None:
            raise LookupError(f"no dead letter for job {job_id} in queue {name!r}")
        replayed = await run_script(
            self.client,
            "replay",
            [keys.dead_letters, keys.ready, keys.wake, keys.seq, keys.stats],
            [keys.job_prefix, entry_id, keys.events],
        )
        if not replayed:
            raise LookupError(f"job {job_id} is live again; its dead letter was not replayed")
        return Job(self, job_id, name)

    async def purge_dead_letters(self, queue_name: str | None = None) -> int:
        """Delete every dead letter of a queue; returns how many there were."""
        key = self.keys_for(queue_name or self.name).dead_letters
        return int(await self.client.xtrim(key, maxlen=0, approximate=False))

    async def _find_dead_letter(self, keys: QueueKeys, job_id: str) -> bytes | None:
        target = job_id.encode()
        last = "+"
        while True:
            entries = await self.client.xrevrange(keys.dead_letters, max=last, count=500)
            for entry_id, fields in entries:
                if fields.get(b"id") == target:
                    return entry_id  # type: ignore[no-any-return]
            if len(entries) < 500:
                return None
            last = "(" + entries[-1][0].decode()

    @staticmethod
    def _dead_letter_info(queue_name: str, fields: dict[bytes, bytes]) -> JobInfo:
        return job_info_from_fields(fields[b"id"].decode(), queue_name, fields)
