"""Queue: the client. Owns one Redis connection; enqueues jobs and reads them back."""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Awaitable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload

from . import _cron, _defaults, _tracing
from ._errors import DeadLetterNotFound
from ._job import Job
from ._models import JobInfo
from ._operations import QueueOperations
from ._options import JobDefaults, new_job, split_options
from ._partitions import Router
from ._store import (
    Connection,
    Enqueued,
    NewJob,
    Partitions,
    QueueKeys,
    Store,
    check_partitions,
    logical_name,
)
from ._task import Task
from ._waiters import Waiters
from ._workflow import Node, compile_workflow, is_workflow, template

R = TypeVar("R")

#: Jobs per enqueue script call: a batch up to this size is stored all or nothing; a bigger one
#: is stored chunk by chunk, so no single call holds Redis for long (~15 ms per chunk here).
ENQUEUE_CHUNK = 1000
#: Seconds a Queue trusts what it read of a queue's partition count before reading it again
#: (so producers follow `set_partitions` within this long, without a redeploy).
PARTITIONS_REFRESH = 5.0


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _entry_order(entry: str | None) -> tuple[int, ...]:
    """A stream entry id (``<ms>-<seq>``) as something that sorts by time."""
    return tuple(int(part) for part in (entry or "0-0").split("-"))


class Queue(QueueOperations):
    """The producer side: ``async with Queue(url) as queue: await queue.enqueue(task, ...)``.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``,
            ``redis+sentinel://`` or ``memory://`` (embedded, in-process); default
            ``$ASYNCJOBS_REDIS_URL``, then ``redis://localhost:6379/0``.
        name: the queue jobs go to unless the task or ``_queue_name`` says otherwise.
        prefix: first part of every key (change it to run two apps on one Redis database).
        keep_result: seconds a finished job's record (and result) stays readable.
        idempotency_ttl: seconds an ``_idempotency_key`` keeps pointing at its job.
        max_payload_bytes: the largest encoded arguments a job may carry.
        dead_letter_maxlen: dead letters kept per queue (for jobs this client ends).
        store: share another Queue's or a Worker's connection instead of opening one.
        tracing: emit OpenTelemetry ``send`` spans and store their context with each job (when
            opentelemetry-api is installed; spans go to ``tracer_provider``, default the global
            one, a no-op until the app installs an SDK).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str = _defaults.QUEUE,
        prefix: str = _defaults.PREFIX,
        keep_result: float = _defaults.KEEP_RESULT,
        idempotency_ttl: float = _defaults.IDEMPOTENCY_TTL,
        max_payload_bytes: int = _defaults.MAX_PAYLOAD_BYTES,
        dead_letter_maxlen: int = _defaults.DEAD_LETTER_MAXLEN,
        store: Store | None = None,
        tracing: bool = True,
        tracer_provider: Any = None,
    ) -> None:
        self._owns_store = store is None
        if store is None:
            url = url or os.environ.get("ASYNCJOBS_REDIS_URL") or _defaults.REDIS_URL
            store = Store(
                Connection(url),
                keep_result_ms=_ms(keep_result),
                dead_letter_cap=dead_letter_maxlen,
            )
        self.store = store
        self.url = store.connection.url
        self.name = name
        self.prefix = prefix
        self.idempotency_ttl_ms = max(1, _ms(idempotency_ttl))
        self.max_payload_bytes = max_payload_bytes
        self.waiters = Waiters(store.connection)
        self._defaults = JobDefaults(name, self.idempotency_ttl_ms, max_payload_bytes)
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self._layouts: dict[str, tuple[float, Router]] = {}
        self._turns = itertools.count()  # workflows go round the partitions
        self._tracing = _tracing.for_queue(tracing, tracer_provider)
        self.keys_for(name)

    @property
    def client(self) -> Any:
        """The redis-py client under this Queue (one pool), for commands of your own."""
        return self.store.connection.client

    @property
    def keep_result_ms(self) -> int:
        return self.store.keep_result_ms

    async def __aenter__(self) -> Queue:
        try:
            await self.store.connection.check()
            await self.store.preload()
        except BaseException:  # e.g. an ACL that lets the user in but refuses PING: no socket left
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the result subscription and close the connection (when this Queue made it)."""
        await self.waiters.aclose()
        if self._owns_store:
            await self.store.close()
            await self.store.connection.close()

    def keys_for(self, queue_name: str) -> QueueKeys:
        keys = self._keys.get(queue_name)
        if keys is None:
            keys = QueueKeys(queue_name, self.prefix)
            if len(self._keys) < 1024:  # names may come from users (?queue=): stay bounded
                self._keys[queue_name] = keys
        return keys

    def job(self, job_id: str, queue_name: str | None = None) -> Job[Any]:
        """A handle on any job by id (in this Queue's default queue unless named; in
        whichever partition of a partitioned queue holds it)."""
        return Job(self, job_id, queue_name or self.name)

    # -- partitions ------------------------------------------------------------------------

    async def set_partitions(self, count: int, queue_name: str | None = None) -> Partitions:
        """Spread a queue over ``count`` partitions (1 to 256), each a queue with its own hash
        tag, so that on a Redis Cluster it uses several nodes. Workers are told at once,
        producers follow within PARTITIONS_REFRESH seconds; a smaller count strands nothing:
        workers keep serving the partitions it dropped (see docs/cluster.md)."""
        check_partitions(count)
        name = queue_name or self.name
        if logical_name(name) != name:
            raise ValueError(f"{name!r} is a partition: set those of {logical_name(name)!r}")
        await self._register(name)
        layout = await self.store.set_partitions(self.keys_for(name), count)
        self._layouts.pop(name, None)
        return layout

    async def partitions(self, queue_name: str | None = None) -> Partitions:
        """How a queue is partitioned now (count 1, span 1: it is not), read from Redis."""
        return (await self._router(queue_name or self.name, fresh=True)).layout

    async def partition_names(self, queue_name: str | None = None) -> list[str]:
        """The physical queues that may hold a queue's jobs: itself, then ``<name>~p1``..."""
        name = queue_name or self.name
        return (await self._router(name)).names(name)

    def _cached_router(self, queue_name: str) -> Router | None:
        """The queue's layout as last read, if that was under PARTITIONS_REFRESH seconds ago
        (no await: this is on every enqueue's path)."""
        cached = self._layouts.get(queue_name)
        if cached is not None and time.monotonic() - cached[0] < PARTITIONS_REFRESH:
            return cached[1]
        return None

    async def _router(self, queue_name: str, *, fresh: bool = False) -> Router:
        """The queue's partition layout, read at most every PARTITIONS_REFRESH seconds."""
        if logical_name(queue_name) != queue_name:
            return Router(Partitions())  # a partition named directly is one queue
        cached = None if fresh else self._cached_router(queue_name)
        if cached is not None:
            return cached
        now = time.monotonic()
        router = Router(await self.store.partitions(self.keys_for(queue_name)))
        if len(self._layouts) < 1024 or queue_name in self._layouts:
            self._layouts[queue_name] = (now, router)
        return router

    async def locate(self, job_id: str, queue_name: str) -> str:
        """The physical queue holding ``job_id`` among ``queue_name``'s partitions (the one
        its id routes to when none does, or when the queue is not partitioned)."""
        router = await self._router(queue_name)
        if router.layout.span <= 1:
            return queue_name
        home = router.by_key(queue_name, job_id)
        names = [home] + [n for n in router.names(queue_name) if n != home]
        keys = [self.keys_for(n) for n in names]
        records = await self.store.jobs_fields(keys, [job_id] * len(names))
        return next((n for n, fields in zip(names, records, strict=True) if fields), home)

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
        options = split_options(kwargs)
        queue_name, job, task_obj = new_job(task, args, kwargs, options, self._defaults)  # type: ignore[arg-type]
        [(where, (job_id, duplicate))] = await self._enqueue_into(queue_name, [job], [task_obj])
        return Job(self, job_id, where, duplicate=duplicate, task=task_obj, located=True)

    async def _enqueue_into(
        self, queue_name: str, jobs: list[NewJob], tasks: Sequence[Task[Any, Any] | None]
    ) -> list[tuple[str, Enqueued]]:
        """Jobs of one queue, one script call per partition and ENQUEUE_CHUNK: (the partition
        that holds it, (id, duplicate)), in order."""
        if queue_name not in self._registered:
            await self._register(queue_name)
        router = self._cached_router(queue_name) or await self._router(queue_name)
        if router.layout.count <= 1:
            stored = await self._enqueue_partition(queue_name, queue_name, jobs)
            return [(queue_name, entry) for entry in stored]
        by_partition: dict[str, list[int]] = {}
        for index, (job, task_obj) in enumerate(zip(jobs, tasks, strict=True)):
            by_partition.setdefault(router.route(queue_name, job, task_obj), []).append(index)
        out: list[tuple[str, Enqueued] | None] = [None] * len(jobs)
        for where, indexes in by_partition.items():
            stored = await self._enqueue_partition(queue_name, where, [jobs[i] for i in indexes])
            for i, entry in zip(indexes, stored, strict=True):
                out[i] = (where, entry)
        return [entry for entry in out if entry is not None]

    def _enqueue_partition(
        self, queue_name: str, where: str, jobs: list[NewJob]
    ) -> Awaitable[list[Enqueued]]:
        """The call that stores ``jobs`` in partition ``where`` (a plain function returning
        the store's coroutine: one frame less on the path of every enqueue)."""
        keys = self.keys_for(where)
        tracing = self._tracing
        if tracing is not None and tracing.active():
            return tracing.send(
                queue_name, jobs, lambda traced: self._store_in_chunks(keys, traced)
            )
        if len(jobs) <= ENQUEUE_CHUNK:
            return self.store.enqueue(keys, jobs)
        return self._store_in_chunks(keys, jobs)

    async def _store_in_chunks(self, keys: QueueKeys, jobs: Sequence[NewJob]) -> list[Enqueued]:
        if len(jobs) <= ENQUEUE_CHUNK:
            return await self.store.enqueue(keys, jobs)
        stored: list[Enqueued] = []
        for start in range(0, len(jobs), ENQUEUE_CHUNK):
            stored += await self.store.enqueue(keys, jobs[start : start + ENQUEUE_CHUNK])
        return stored

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
        await self._register(queue_name)
        # A workflow lives in one partition: its members wait on each other in one script.
        where = (await self._router(queue_name)).spread(queue_name, next(self._turns))
        compiled = compile_workflow(node, where)
        start = functools.partial(
            self.store.start_workflow,
            self.keys_for(where),
            compiled.id,
            compiled.kind,
            template(compiled.output),
            compiled.members(),
            on_error=compiled.on_error(),
        )
        tracing = self._tracing
        if tracing is not None and tracing.active():
            with tracing.sending(queue_name, f"workflow:{compiled.kind}") as (span, stored):
                span.set_attribute("messaging.message.id", compiled.id)
                await start(trace=stored)
        else:
            await start()
        return Job(self, compiled.id, where, located=True)

    async def enqueue_job(self, function: str, /, *args: Any, **kwargs: Any) -> Job[Any]:
        """arq's name for :meth:`enqueue` (the same underscore options apply)."""
        return await self.enqueue(function, *args, **kwargs)

    async def enqueue_many(
        self, items: Iterable[tuple[Task[Any, Any] | str, Sequence[Any], dict[str, Any]]]
    ) -> list[Job[Any]]:
        """Enqueue a batch: one script call per queue (per 1,000 jobs), jobs returned in the
        items' order.

        Every item is checked before anything is sent. Up to 1,000 jobs of a queue are stored
        all or nothing; a bigger batch is stored 1,000 at a time, so if Redis fails part-way
        the earlier chunks stay: give such jobs an ``_job_id`` (or ``_idempotency_key``) and
        calling again stores the rest without duplicates.
        """
        by_queue: dict[str, list[tuple[int, NewJob, Task[Any, Any] | None]]] = {}
        count = 0
        for index, (task, args, kwargs) in enumerate(items):
            call_kwargs = dict(kwargs)
            options = split_options(call_kwargs)
            queue_name, job, task_obj = new_job(
                task, tuple(args), call_kwargs, options, self._defaults
            )
            by_queue.setdefault(queue_name, []).append((index, job, task_obj))
            count += 1
        jobs: list[Job[Any] | None] = [None] * count
        for queue_name, entries in by_queue.items():
            replies = await self._enqueue_into(
                queue_name, [job for _, job, _ in entries], [task for _, _, task in entries]
            )
            for (index, _, task_obj), (where, (job_id, duplicate)) in zip(
                entries, replies, strict=True
            ):
                jobs[index] = Job(
                    self, job_id, where, duplicate=duplicate, task=task_obj, located=True
                )
        return [job for job in jobs if job is not None]

    async def _register(self, queue_name: str) -> None:
        """Record the queue name once, so `asyncjobs info` and `asyncjobs job` can find it."""
        if queue_name not in self._registered:
            await self.store.register_queues(self.prefix, [queue_name])
            self._registered.add(queue_name)

    # -- dead letters ----------------------------------------------------------------------

    async def dead_letters(
        self,
        limit: int = 100,
        queue_name: str | None = None,
        *,
        task: str | None = None,
        search: str | None = None,
        before: str | None = None,
    ) -> list[JobInfo]:
        """The newest ``limit`` dead letters of a queue, newest first, error fields set; only
        ``task``'s, only those whose error contains ``search`` (case-insensitive), only those
        older than the dead letter ``before`` (a ``dead_letter_id``: the next page)."""
        found: list[JobInfo] = []
        partitions = await self._each_partition(queue_name)
        for keys in partitions:
            found += await self._find_dead_letters(keys, limit, task, search, before)
        if len(partitions) > 1:  # the newest over all of them
            found.sort(key=lambda info: _entry_order(info.dead_letter_id), reverse=True)
        return found[:limit]

    async def replay_dead_letter(self, job_id: str, queue_name: str | None = None) -> Job[Any]:
        """Enqueue a dead-lettered job again, same id, fresh tries (in the partition that
        holds its dead letter).

        Raises DeadLetterNotFound (a LookupError) if no dead letter holds that job.
        """
        name = queue_name or self.name
        for keys in await self._each_partition(name):
            entry = await self.store.find_dead_letter(keys, job_id)
            if entry is None:
                continue
            if await self.store.replay(keys, entry, job_id) is None:
                raise DeadLetterNotFound(
                    f"job {job_id} is live again; its dead letter was not replayed"
                )
            return Job(self, job_id, keys.name, located=True)
        raise DeadLetterNotFound(f"no dead letter for job {job_id} in queue {name!r}")

    async def purge_dead_letters(self, queue_name: str | None = None) -> int:
        """Delete every dead letter of a queue (of all its partitions); how many there were."""
        purged = 0
        for keys in await self._each_partition(queue_name):
            purged += await self.store.purge_dead_letters(keys)
        return purged

    # -- cron at run time ------------------------------------------------------------------

    async def add_cron(self, job: _cron.CronJob) -> _cron.CronInfo:
        """Store a cron in Redis (or replace the one of that name): every worker of its queue
        (``cron(queue=...)``, else the task's, else this Queue's) that knows its task fires it
        from its next tick, woken within a second, with no restart."""
        queue_name = _cron.queue_of(job, self.name)
        await self._register(queue_name)
        return await _cron.add_cron(self.store, self.keys_for(queue_name), job, self._defaults)

    async def remove_cron(self, name: str, queue_name: str | None = None) -> bool:
        """Delete a cron added at run time to a queue (default: this Queue's); once this
        returned, none of its ticks is enqueued. False if there was none."""
        keys = self.keys_for(queue_name or self.name)
        return await _cron.remove_cron(self.store, keys, name)

    async def crons(
        self, queue_name: str | None = None, *, all_queues: bool = False
    ) -> list[_cron.CronInfo]:
        """The crons of a queue (default: this Queue's; ``all_queues``: every known queue):
        added at run time or declared by live workers' settings, with their next and last runs
        and whether a live worker knows their task (``served``)."""
        if all_queues:
            names = await self.store.queue_names(self.prefix)
        else:
            names = [queue_name or self.name]
        return await _cron.list_crons(self.store, [self.keys_for(n) for n in names])
