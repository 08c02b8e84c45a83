"""Operating queues from Python: pause, stats, browsing, dead-letter search, bulk replay,
purge, forget, workers. Mixed into Queue; a dashboard renders its pages from these alone.

Every read is bounded by what it returns: a page of `jobs()` reads one range and one record
per job; a dead-letter search reads the stream in bounded steps; the bulk operations are one
script call per batch, each batch read once (so a bulk replay is linear in the dead letters).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ._errors import QueueInUse
from ._models import JobInfo, JobStatus, job_info_from_fields
from ._presence import WorkerInfo, worker_info
from ._stats import MAX_HOURS, MAX_MINUTES, QueueStats, queue_stats, sum_stats
from ._store import ForgetOutcome, QueueKeys, Store

#: One call of a bulk script handles this many jobs or dead letters (a few ms of Redis time).
BATCH = 500
#: A dead-letter search reads at most this many entries per script call.
SEARCH_STEP = 2000
#: The largest page `jobs()` returns.
MAX_PAGE = 1000

Progress = Callable[[int, int], None]  # (done, total), for progress bars

_SETS = {
    JobStatus.QUEUED: "ready",
    JobStatus.DEFERRED: "deferred",
    JobStatus.IN_PROGRESS: "leases",
}
_RECENT = (JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.EXPIRED)


def _dead_letter_info(queue: str, entry: str, fields: dict[bytes, bytes]) -> JobInfo:
    info = job_info_from_fields(fields.get(b"id", b"").decode(), queue, fields)
    info.dead_letter_id = entry
    return info


class QueueOperations:
    """The operator's side of a Queue (see docs/operations.md)."""

    store: Store
    name: str
    prefix: str

    def keys_for(self, queue_name: str) -> QueueKeys:
        raise NotImplementedError  # Queue's

    async def partition_names(self, queue_name: str | None = None) -> list[str]:
        raise NotImplementedError  # Queue's

    def _queue_keys(self, queue_name: str | None) -> QueueKeys:
        return self.keys_for(queue_name or self.name)

    async def _each_partition(self, queue_name: str | None) -> list[QueueKeys]:
        """The queue's partitions (just the queue, when it is not partitioned)."""
        return [self.keys_for(n) for n in await self.partition_names(queue_name)]

    # -- pause -----------------------------------------------------------------------------

    async def pause(self, queue_name: str | None = None) -> bool:
        """Stop every worker claiming from the queue (running jobs finish; enqueue goes on).
        False if it was paused already. (Every partition of a partitioned queue.)"""
        changed = [
            await self.store.set_paused(k, True) for k in await self._each_partition(queue_name)
        ]
        return any(changed)

    async def resume(self, queue_name: str | None = None) -> bool:
        """Let workers claim again, at once. False if it was not paused."""
        changed = [
            await self.store.set_paused(k, False) for k in await self._each_partition(queue_name)
        ]
        return any(changed)

    async def is_paused(self, queue_name: str | None = None) -> bool:
        return (await self.store.counts(self._queue_keys(queue_name), groups=0)).paused

    # -- stats and browsing ----------------------------------------------------------------

    async def stats(
        self, queue_name: str | None = None, *, minutes: int = 60, hours: int = 72
    ) -> QueueStats:
        """Counts, pause state, counters, and what ended per minute (the last ``minutes``, up to
        480) and per hour (the last ``hours``, up to 168): one snapshot, one round trip (one
        per partition of a partitioned queue, added up)."""
        parts = await self.partition_stats(queue_name, minutes=minutes, hours=hours)
        if len(parts) == 1:
            return parts[0]
        return sum_stats(queue_name or self.name, parts)

    async def partition_stats(
        self, queue_name: str | None = None, *, minutes: int = 60, hours: int = 72
    ) -> list[QueueStats]:
        """stats() of each partition of a partitioned queue (named ``<queue>~p<i>``, the
        queue itself first); of the queue alone when it has one."""
        if not 0 <= minutes <= MAX_MINUTES or not 0 <= hours <= MAX_HOURS:
            raise ValueError(
                f"stats() keeps 0..{MAX_MINUTES} minutes and 0..{MAX_HOURS} hours of history"
            )
        out = []
        for keys in await self._each_partition(queue_name):
            counts = await self.store.counts(keys, minutes=minutes, hours=hours > 0)
            out.append(queue_stats(keys.name, counts, minutes, hours))
        return out

    async def jobs(
        self,
        status: JobStatus | str = JobStatus.QUEUED,
        queue_name: str | None = None,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> list[JobInfo]:
        """A page of the queue's jobs in ``status``: QUEUED in claim order, DEFERRED by due
        time, IN_PROGRESS by lease deadline, FAILED (the dead letters) newest first, and
        SUCCEEDED, CANCELLED, EXPIRED newest first (the last 1000 of each). Reads the page and
        one record per job, never more; a job that moved on meanwhile shows its new status,
        and one whose record expired is left out."""
        status = _status(status)
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"jobs() takes offset >= 0 and 1 <= limit <= {MAX_PAGE}")
        partitions = await self._each_partition(queue_name)
        if len(partitions) > 1:
            return await self._partitions_page(status, partitions, offset, limit)
        keys = partitions[0]
        if status is JobStatus.FAILED:
            entries = await self.store.dead_letter_page(keys, offset, limit)
            return [_dead_letter_info(keys.name, entry, fields) for entry, fields in entries]
        if status in _SETS:
            ids = await self.store.waiting_ids(keys, _SETS[status], offset, limit)
        elif status in _RECENT:
            ids = await self.store.recent_ids(keys, status.value, offset, limit)
        else:
            raise ValueError(f"jobs() cannot list {status.value} jobs")
        records = await self.store.jobs_fields([keys] * len(ids), ids)
        return [
            job_info_from_fields(job_id, keys.name, fields)
            for job_id, fields in zip(ids, records, strict=True)
            if fields
        ]

    async def _partitions_page(
        self, status: JobStatus, partitions: list[QueueKeys], offset: int, limit: int
    ) -> list[JobInfo]:
        """jobs() of a partitioned queue: the first ``offset + limit`` of each partition,
        merged (waiting sets by score, dead letters newest first, recent ones in turn)."""
        end = offset + limit
        if status is JobStatus.FAILED:
            letters = [
                (entry, keys, fields)
                for keys in partitions
                for entry, fields in await self.store.dead_letter_page(keys, 0, end)
            ]
            letters.sort(key=lambda e: tuple(int(p) for p in e[0].split("-")), reverse=True)
            return [_dead_letter_info(k.name, e, f) for e, k, f in letters[offset:end]]
        if status in _SETS:
            scored = [
                (score, keys, job_id)
                for keys in partitions
                for job_id, score in await self.store.waiting_scored(keys, _SETS[status], end)
            ]
            scored.sort(key=lambda e: e[0])
            page = [(keys, job_id) for _, keys, job_id in scored[offset:end]]
        elif status in _RECENT:
            lists = [await self.store.recent_ids(k, status.value, 0, end) for k in partitions]
            turns = itertools.zip_longest(
                *([(k, i) for i in ids] for k, ids in zip(partitions, lists, strict=True))
            )
            page = [e for turn in turns for e in turn if e is not None][offset:end]
        else:
            raise ValueError(f"jobs() cannot list {status.value} jobs")
        records = await self.store.jobs_fields([k for k, _ in page], [i for _, i in page])
        return [
            job_info_from_fields(job_id, keys.name, fields)
            for (keys, job_id), fields in zip(page, records, strict=True)
            if fields
        ]

    async def queue_names(self) -> list[str]:
        """Every queue known here: enqueued to, or served by a worker."""
        return await self.store.queue_names(self.prefix)

    async def find_job(self, job_id: str) -> JobInfo | None:
        """The job with this id in any known queue or partition (one round trip), or None."""
        names = await self.queue_names()
        if self.name not in names:
            names.insert(0, self.name)
        keys = [k for name in names for k in await self._each_partition(name)]
        records = await self.store.jobs_fields(keys, [job_id] * len(keys))
        for queue, fields in zip(keys, records, strict=True):
            if fields:
                return job_info_from_fields(job_id, queue.name, fields)
        return None

    # -- dead letters ----------------------------------------------------------------------

    async def dead_letter(self, job_id: str, queue_name: str | None = None) -> JobInfo | None:
        """The dead letter of ``job_id`` (from the index, without reading the stream), or None."""
        for keys in await self._each_partition(queue_name):
            found = await self.store.dead_letter_of(keys, job_id)
            if found is not None:
                return _dead_letter_info(keys.name, *found)
        return None

    async def _find_dead_letters(
        self,
        keys: QueueKeys,
        limit: int,
        task: str | None,
        search: str | None,
        before: str | None,
    ) -> list[JobInfo]:
        """Dead letters newest first (older than entry ``before``), of ``task``, whose
        "<error type>: <message>" contains ``search`` (case-insensitive)."""
        if not task and not search:
            entries = await self.store.dead_letters(keys, limit, "(" + before if before else "+")
            return [_dead_letter_info(keys.name, entry, fields) for entry, fields in entries]
        found: list[JobInfo] = []
        cursor: str | None = before or "+"
        while cursor is not None and len(found) < limit:
            cursor, entries = await self.store.search_dead_letters(
                keys,
                before=cursor,
                task=task or "",
                text=search or "",
                limit=limit - len(found),
                scan=SEARCH_STEP,
            )
            found += [_dead_letter_info(keys.name, entry, fields) for entry, fields in entries]
        return found

    async def replay_dead_letters(
        self,
        queue_name: str | None = None,
        task: str | None = None,
        *,
        on_progress: Progress | None = None,
    ) -> int:
        """Replay every dead letter of the queue (or of one task), oldest first, as
        `replay_dead_letter` does; returns how many. Reads each dead letter once, in batches,
        and leaves alone those that fail again meanwhile. ``on_progress(read, total)`` is
        called after each batch."""
        partitions = await self._each_partition(queue_name)
        sizes = [(await self.store.counts(keys, groups=0)).dead_letters for keys in partitions]
        total = sum(sizes)
        replayed = read = 0
        for keys, size in zip(partitions, sizes, strict=True):
            until = await self.store.newest_dead_letter(keys)
            after: str | None = "-"
            start = read
            while until is not None and after is not None:
                batch = await self.store.replay_many(
                    keys, after=after, until=until, task=task or "", limit=BATCH
                )
                replayed += batch.replayed
                after = batch.next
                read = start + size if after is None else min(start + size, read + BATCH)
                if on_progress is not None:
                    on_progress(read, total)
        return replayed

    # -- purge and forget ------------------------------------------------------------------

    async def purge(
        self, queue_name: str | None = None, *, on_progress: Progress | None = None
    ) -> int:
        """End every queued (ready or waiting for a concurrency slot) and deferred job of the
        queue as CANCELLED; running jobs go on. Returns how many were dropped.
        ``on_progress(dropped, total)`` is called after each batch."""
        partitions = await self._each_partition(queue_name)
        total = 0
        for keys in partitions:
            counts = await self.store.counts(keys)
            total += counts.ready + counts.deferred + counts.blocked
        purged = 0
        for keys in partitions:
            more = True
            while more:
                n, more = await self.store.purge_waiting(keys, BATCH)
                purged += n
                if on_progress is not None:
                    on_progress(purged, max(total, purged))
        return purged

    async def forget_queue(self, queue_name: str) -> None:
        """Remove a queue that has no jobs, no dead letters and no live workers from the
        queue list (`asyncjobs info`), with its counters, history and settings. Raises
        QueueInUse, saying what is left, otherwise."""
        partitions = await self._each_partition(queue_name)
        if len(partitions) > 1:  # refuse before any partition is forgotten
            for keys in partitions:
                c = await self.store.counts(keys, groups=0)
                if c.ready or c.deferred or c.in_progress or c.blocked or c.dead_letters:
                    await self._forget_one(queue_name, keys)  # raises, saying what is left
        for keys in reversed(partitions):  # the queue itself last
            await self._forget_one(queue_name, keys)

    async def _forget_one(self, queue_name: str, keys: QueueKeys) -> None:
        outcome, n = await self.store.forget(keys)
        if outcome is ForgetOutcome.HAS_JOBS:
            raise QueueInUse(
                f"queue {queue_name!r} has {n} job(s) waiting or running: purge it "
                "(asyncjobs purge) or let them finish first"
            )
        if outcome is ForgetOutcome.HAS_DEAD_LETTERS:
            raise QueueInUse(
                f"queue {queue_name!r} keeps {n} dead letter(s): replay or purge them first "
                "(asyncjobs dlq purge)"
            )
        if outcome is ForgetOutcome.HAS_WORKERS:
            raise QueueInUse(f"queue {queue_name!r} has {n} live worker(s): stop them first")
        if outcome is ForgetOutcome.HAS_CRONS:
            raise QueueInUse(
                f"queue {queue_name!r} has {n} cron(s) added at run time: remove them first "
                "(queue.remove_cron)"
            )

    # -- workers ---------------------------------------------------------------------------

    async def workers(self, queue_name: str | None = None) -> list[WorkerInfo]:
        """The live workers serving the queue, by id (workers of an older release, which
        describe nothing, are counted in stats() but not listed)."""
        records = await self.store.worker_records(self._queue_keys(queue_name))
        return sorted((worker_info(r) for r in records), key=lambda w: w.id)

    async def all_workers(self) -> list[WorkerInfo]:
        """The live workers of every known queue, each once."""
        seen: dict[str, WorkerInfo] = {}
        for name in await self.queue_names():
            for info in await self.workers(name):
                seen.setdefault(info.id, info)
        return sorted(seen.values(), key=lambda w: w.id)


def _status(status: Any) -> JobStatus:
    try:
        return JobStatus(status)
    except ValueError:
        names = ", ".join(s.value for s in JobStatus if s is not JobStatus.NOT_FOUND)
        raise ValueError(f"unknown job status {status!r}: use one of {names}") from None
