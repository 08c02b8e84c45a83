"""Which partition of a partitioned queue a new job goes to (see docs/cluster.md).

A job whose meaning depends on meeting other jobs goes where a stable hash of that key sends
it, so the jobs that must meet always meet in one partition: a task with a concurrency or rate
limit goes to its task's home partition (the limit stays exact), a job with an idempotency key
to its key's, any other job to its id's (an explicit ``_job_id`` or a ``unique`` task's id is
stable; a random id spreads jobs evenly). A workflow goes to the next partition in turn.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any

from ._store import NewJob, Partitions, QueueKeys, Store, logical_name, partition_name
from ._task import Task


def home(key: str, count: int) -> int:
    """The partition ``key`` hashes to among ``count`` (CRC-32: the same in every process)."""
    return zlib.crc32(key.encode()) % count


def has_limit(task: Task[Any, Any]) -> bool:
    """Whether the task limits its jobs across workers (concurrency or rate)."""
    return task.max_concurrency is not None or task.rate_interval_ms > 0


class Router:
    """Routes new jobs of one queue over its partitions, as ``layout`` (read from Redis) says."""

    def __init__(self, layout: Partitions) -> None:
        self.layout = layout

    def names(self, queue_name: str) -> list[str]:
        """Every partition workers serve (the partitions a smaller count dropped included)."""
        return [partition_name(queue_name, i) for i in range(self.layout.span)]

    def by_key(self, queue_name: str, key: str) -> str:
        return partition_name(queue_name, home(key, self.layout.count))

    def route(self, queue_name: str, job: NewJob, task: Task[Any, Any] | None) -> str:
        """The partition ``job`` goes to."""
        limited = has_limit(task) if task is not None else job.task in self.layout.limited
        if limited:
            return self.by_key(queue_name, "task:" + job.task)
        return self.by_key(queue_name, job.idempotency_key or job.id)

    def spread(self, queue_name: str, turn: int) -> str:
        """Partition ``turn`` (modulo the count), for what has no key of its own (a workflow:
        the caller counts turns, so they go round the partitions)."""
        return partition_name(queue_name, turn % self.layout.count)


class PartitionWatch:
    """A worker's view of its queues' partitions: which physical queues to serve, read again
    whenever a queue's count changes (``changed``, called from the worker's subscription)."""

    PART = "partitions"

    def __init__(self, store: Store, queues: Sequence[str], prefix: str) -> None:
        self.store = store
        self.queues = list(queues)
        self.prefix = prefix
        self._served: set[str] = set(queues)
        self._changed = asyncio.Event()

    def changed(self, queue_name: str | None) -> None:
        """A queue's partition count changed (None: any may have)."""
        self._changed.set()

    async def wait(self) -> None:
        """Until a change was announced since the last wait."""
        await self._changed.wait()
        self._changed.clear()

    async def added(self) -> list[QueueKeys]:
        """The partitions that are not served yet (every one the queues ever had)."""
        fresh: list[QueueKeys] = []
        for name in self.queues:
            if logical_name(name) != name:
                continue  # a partition named directly: served as one queue
            layout = await self.store.partitions(QueueKeys(name, self.prefix))
            for index in range(1, layout.span):
                physical = partition_name(name, index)
                if physical not in self._served:
                    self._served.add(physical)
                    fresh.append(QueueKeys(physical, self.prefix))
        return fresh
