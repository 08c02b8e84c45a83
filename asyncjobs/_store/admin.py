"""The store's reads and writes for operating queues: pause, snapshots, browsing, dead-letter
search, bulk replay, purge, forget, and the workers' own descriptions.

Every read here is bounded by what it returns (a page, a batch), never by the size of a queue;
the bulk operations are scripts called once per batch, each batch read once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

from .connection import Connection
from .keys import QueueKeys, queues_registry_key
from .records import (
    ForgetOutcome,
    QueueCounts,
    ReplayBatch,
    UnknownTaskOutcome,
    WorkerRecord,
)

T = TypeVar("T")

#: What ``waiting_ids`` can page through: the three sorted sets of live jobs.
WAITING_SETS = ("ready", "deferred", "leases")
#: The statuses whose newest jobs are kept in a capped list (see remember_finished in Lua).
RECENT_STATUSES = ("succeeded", "cancelled", "expired")


def _text(value: bytes | str) -> str:
    """A reply value as str: bytes are decoded as UTF-8, a str is returned as it is."""
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: Sequence[Any]) -> Iterable[tuple[str, Any]]:
    return ((_text(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2))


def counts_from_reply(reply: Sequence[Any]) -> QueueCounts:
    """A QueueCounts from the stats script's reply (see stats.lua)."""
    now, ready, deferred, leases, dead, workers, paused, blocked, groups = reply[:9]
    stats_flat, buckets, hours_flat, unknown_flat = reply[9:13]
    minutes = {
        int(minute): {field: int(value) for field, value in _pairs(fields)}
        for minute, fields in buckets
    }
    hours: dict[int, dict[str, int]] = {}
    rolled = 0
    for field, value in _pairs(hours_flat):
        if field == "rolled":
            rolled = int(value)
            continue
        hour, _, outcome = field.partition(":")
        hours.setdefault(int(hour), {})[outcome] = int(value)
    unknown = {}
    for task, value in _pairs(unknown_flat):
        ms, _, worker = _text(value).partition(" ")
        unknown[task] = (int(ms), worker)
    return QueueCounts(
        ready=int(ready),
        deferred=int(deferred),
        in_progress=int(leases),
        dead_letters=int(dead),
        workers=int(workers),
        stats={field: int(value) for field, value in _pairs(stats_flat)},
        now_ms=int(now),
        paused_ms=int(paused),
        blocked=int(blocked),
        groups=int(groups),
        minutes=minutes,
        hours=hours,
        rolled_minute=rolled,
        unknown_tasks=unknown,
    )


class Admin:
    """Mixed into Store, which gives it the connection and the calling machinery."""

    connection: Connection

    async def _script(self, script_name: str, keys: QueueKeys, /, **args: Any) -> Any:
        raise NotImplementedError  # Store's

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        raise NotImplementedError  # Store's

    # -- pause, purge, forget ------------------------------------------------------------------

    async def set_paused(self, keys: QueueKeys, paused: bool) -> bool:
        """Pause (or resume) the queue; False if it was so already."""
        return bool(await self._script("pause", keys, paused=int(paused)))

    async def purge_waiting(self, keys: QueueKeys, limit: int) -> tuple[int, bool]:
        """End up to ``limit`` waiting jobs as cancelled: (how many, whether more are left)."""
        purged, more = await self._script("purge", keys, limit=limit)
        return int(purged), bool(more)

    async def forget(self, keys: QueueKeys) -> tuple[ForgetOutcome, int]:
        """Delete an empty queue's leftovers (see forget.lua), then its registry entry."""
        code, n = await self._script("forget", keys)
        outcome = ForgetOutcome(int(code))
        if outcome is ForgetOutcome.FORGOTTEN:
            registry = queues_registry_key(keys.prefix)
            await self._guard(self.connection.client.srem(registry, keys.name))
        return outcome, int(n)

    # -- browsing -------------------------------------------------------------------------------

    async def waiting_ids(self, keys: QueueKeys, where: str, offset: int, limit: int) -> list[str]:
        """A page of ``ready`` (claim order), ``deferred`` (due time) or ``leases`` (deadline)."""
        if where not in WAITING_SETS:
            raise ValueError(f"where must be one of {WAITING_SETS}, not {where!r}")
        key = getattr(keys, where)
        ids = await self._guard(self.connection.client.zrange(key, offset, offset + limit - 1))
        return [_text(i) for i in ids]

    async def waiting_scored(
        self, keys: QueueKeys, where: str, limit: int
    ) -> list[tuple[str, float]]:
        """The first ``limit`` ids of a waiting set with their scores (to merge partitions)."""
        if where not in WAITING_SETS:
            raise ValueError(f"where must be one of {WAITING_SETS}, not {where!r}")
        key = getattr(keys, where)
        found = await self._guard(self.connection.client.zrange(key, 0, limit - 1, withscores=True))
        return [(_text(i), float(score)) for i, score in found]

    async def recent_ids(self, keys: QueueKeys, status: str, offset: int, limit: int) -> list[str]:
        """A page of the newest jobs that ended ``status`` (succeeded, cancelled, expired)."""
        if status not in RECENT_STATUSES:
            raise ValueError(f"status must be one of {RECENT_STATUSES}, not {status!r}")
        key = keys.recent_prefix + status
        ids = await self._guard(self.connection.client.lrange(key, offset, offset + limit - 1))
        return [_text(i) for i in ids]

    async def jobs_fields(
        self, keys: Sequence[QueueKeys], job_ids: Sequence[str]
    ) -> list[dict[bytes, bytes]]:
        """The records of ``job_ids[i]`` in queue ``keys[i]``, in one round trip ({} = gone)."""
        if not job_ids:
            return []

        async def read() -> list[dict[bytes, bytes]]:
            async with self.connection.client.pipeline(transaction=False) as pipe:
                for queue, job_id in zip(keys, job_ids, strict=True):
                    pipe.hgetall(queue.job(job_id))
                return await pipe.execute()  # type: ignore[no-any-return]

        return await self._guard(read())

    # -- dead letters -----------------------------------------------------------------------------

    async def dead_letter_page(
        self, keys: QueueKeys, offset: int, limit: int
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Dead letters ``offset`` to ``offset + limit``, newest first: Redis reads
        offset + limit entries and sends only the page."""
        _, page = await self.search_dead_letters(
            keys, before="+", task="", text="", limit=limit, scan=offset + limit, skip=offset
        )
        return page

    async def search_dead_letters(
        self,
        keys: QueueKeys,
        *,
        before: str,
        task: str,
        text: str,
        limit: int,
        scan: int,
        skip: int = 0,
    ) -> tuple[str | None, list[tuple[str, dict[bytes, bytes]]]]:
        """Up to ``limit`` dead letters older than entry ``before`` ('+' = from the newest) of
        ``task`` whose error contains ``text`` (either '' = any), after the first ``skip`` such,
        reading at most ``scan`` entries; returns where to go on from (None = the whole stream
        was read) and them."""
        reply = await self._script(
            "dlq_search",
            keys,
            before=before,
            task=task,
            text=text.lower(),
            limit=limit,
            scan=scan,
            skip=skip,
        )
        found = []
        for i in range(1, len(reply), 2):
            fields = {reply[i + 1][j]: reply[i + 1][j + 1] for j in range(0, len(reply[i + 1]), 2)}
            found.append((_text(reply[i]), fields))
        return (_text(reply[0]) or None), found

    async def newest_dead_letter(self, keys: QueueKeys) -> str | None:
        newest = await self._guard(
            self.connection.client.xrevrange(keys.dead_letters, max="+", min="-", count=1)
        )
        return _text(newest[0][0]) if newest else None

    async def replay_many(
        self, keys: QueueKeys, *, after: str, until: str, task: str, limit: int
    ) -> ReplayBatch:
        """Replay the dead letters after entry ``after`` (up to ``until``), ``limit`` read."""
        nxt, replayed, live = await self._script(
            "replay_many", keys, after=after, until=until, task=task, limit=limit
        )
        return ReplayBatch(_text(nxt) or None, int(replayed), int(live))

    # -- workers ---------------------------------------------------------------------------------

    async def worker_records(self, keys: QueueKeys) -> list[WorkerRecord]:
        """The workers whose heartbeat on this queue is current, as they described themselves."""
        client = self.connection.client

        async def read() -> list[Any]:
            seconds, micros = await client.time()  # keyless: not in a cluster's pipeline
            async with client.pipeline(transaction=False) as pipe:
                pipe.zrange(keys.workers, 0, -1, withscores=True)
                pipe.hgetall(keys.worker_info)
                return [int(seconds) * 1000 + int(micros) // 1000, *await pipe.execute()]

        now_ms, deadlines, infos = await self._guard(read())
        records = []
        for worker, deadline in deadlines:
            raw = infos.get(worker)
            if deadline <= now_ms or raw is None:
                continue  # gone, or an older release's worker that describes nothing
            seen, running, about = _text(raw).split(" ", 2)
            records.append(WorkerRecord(_text(worker), int(seen), int(running), about))
        return records

    async def give_back_unknown(
        self,
        keys: QueueKeys,
        job_id: str,
        token: str,
        *,
        grace_ms: int,
        worker: str,
        error_message: str,
        waiting_message: str,
    ) -> tuple[UnknownTaskOutcome, int]:
        """Give a job whose task this worker does not know back for one that does (or, its
        grace passed, dead-letter it): the outcome and the ms until it may run again."""
        code, delay = await self._script(
            "unknown_task",
            keys,
            id=job_id,
            token=token,
            grace_ms=grace_ms,
            worker=worker,
            error_message=error_message,
            waiting_message=waiting_message,
        )
        return UnknownTaskOutcome(int(code)), int(delay)
