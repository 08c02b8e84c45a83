"""`asyncjobs pause/resume/stats/jobs/cancel/purge/workers/forget`: operating queues from a
shell. Each is a thin layer over the Queue methods of the same names (docs/operations.md)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import typer

from . import _cli_progress
from ._cli_common import (
    PrefixOption,
    RedisUrlOption,
    fail,
    print_table,
    queue_name,
    resolve_prefix,
    resolve_url,
    run,
)
from ._models import JobInfo, JobStatus
from ._queue import Queue
from ._stats import OUTCOMES

LISTABLE = ", ".join(s.value for s in JobStatus if s is not JobStatus.NOT_FOUND)


def _queue(redis_url: str | None, prefix: str | None, name: str | None = None) -> Queue:
    if name is None:
        return Queue(resolve_url(redis_url), prefix=resolve_prefix(prefix))
    return Queue(resolve_url(redis_url), prefix=resolve_prefix(prefix), name=name)


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = max(0, round((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def pause(
    queue: str = typer.Argument(..., metavar="QUEUE"),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Stop workers claiming from QUEUE (running jobs finish; enqueue still works).

    Example: asyncjobs pause emails
    """
    name = queue_name(queue)

    async def go() -> bool:
        async with _queue(redis_url, prefix, name) as q:
            return await q.pause()

    if run(go):
        typer.echo(f"paused queue {name!r}: workers stop claiming from it (resume: "
                   f"asyncjobs resume {name})")  # fmt: skip
    else:
        typer.echo(f"queue {name!r} was paused already")


def resume(
    queue: str = typer.Argument(..., metavar="QUEUE"),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Let workers claim from QUEUE again, at once."""
    name = queue_name(queue)

    async def go() -> bool:
        async with _queue(redis_url, prefix, name) as q:
            return await q.resume()

    typer.echo(f"resumed queue {name!r}" if run(go) else f"queue {name!r} was not paused")


def stats(
    queue: str = typer.Argument(..., metavar="QUEUE"),
    minutes: int = typer.Option(60, "--minutes", "-m", min=1, max=480, help="History to show."),
    as_json: bool = typer.Option(False, "--json", help="The whole QueueStats as JSON."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """QUEUE's counts, pause state, totals, and what ended in each recent minute.

    Example: asyncjobs stats emails --minutes 15
    """
    name = queue_name(queue)

    async def go() -> Any:
        async with _queue(redis_url, prefix, name) as q:
            return await q.stats(minutes=minutes, hours=72 if as_json else 0)

    s = run(go)
    if as_json:
        typer.echo(s.model_dump_json(indent=2))
        return
    paused = f"  (paused since {_when(s.paused_at)})" if s.paused else ""
    typer.echo(f"queue {s.name}{paused}")
    typer.echo(
        f"queued {s.queued}  deferred {s.deferred}  in progress {s.in_progress}  "
        f"blocked {s.blocked}  dead letters {s.dead_letters}  workers {s.workers}"
    )
    totals = ("enqueued", *OUTCOMES, "replayed")
    typer.echo("totals: " + "  ".join(f"{k} {getattr(s, k)}" for k in totals))
    for unknown in s.unknown_tasks:
        typer.echo(
            f"warning: jobs of task {unknown.task!r} wait for a worker that knows it "
            f"(last given back by {unknown.worker}, {_ago(unknown.last_seen, s.as_of)})"
        )
    busy = [b for b in s.history if any(getattr(b, k) for k in OUTCOMES)]
    sums = {k: sum(getattr(b, k) for b in s.history) for k in OUTCOMES}
    typer.echo(
        f"last {minutes} minute(s): " + "  ".join(f"{k} {v}" for k, v in sums.items() if v)
        if busy
        else f"last {minutes} minute(s): nothing ended"
    )
    if busy:
        rows = [[b.minute.strftime("%Y-%m-%d %H:%M"), *(getattr(b, k) for k in OUTCOMES)]
                for b in busy]  # fmt: skip
        print_table(f"{s.name}: per minute (UTC)", ["minute", *OUTCOMES], rows)


def jobs(
    queue: str = typer.Argument(..., metavar="QUEUE"),
    status: str = typer.Option("queued", "--status", "-s", help=f"One of: {LISTABLE}."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many (paging)."),
    as_json: bool = typer.Option(False, "--json", help="A JSON list of JobInfo."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """List QUEUE's jobs in one status: queued in claim order, deferred by due time, in
    progress by lease deadline, failed (dead letters) and finished ones newest first.

    Example: asyncjobs jobs emails --status deferred --limit 50
    """
    name = queue_name(queue)
    try:
        wanted = JobStatus(status.lower())
    except ValueError:
        fail(f"unknown status {status!r}: use one of {LISTABLE}", 2)
    if wanted is JobStatus.NOT_FOUND:
        fail(f"unknown status {status!r}: use one of {LISTABLE}", 2)

    async def go() -> list[JobInfo]:
        async with _queue(redis_url, prefix, name) as q:
            return await q.jobs(wanted, offset=offset, limit=limit)

    found = run(go)
    if as_json:
        typer.echo(json.dumps([j.model_dump(mode="json", exclude={"raw_payload"}) for j in found]))
        return
    if not found:
        typer.echo(f"no {wanted.value} jobs in queue {name!r}" + (" here" if offset else ""))
        return
    when = {
        JobStatus.QUEUED: ("enqueued", "enqueued_at"),
        JobStatus.DEFERRED: ("due", "scheduled_at"),
        JobStatus.IN_PROGRESS: ("started", "started_at"),
    }.get(wanted, ("finished", "finished_at"))
    rows = []
    for j in found:
        detail = j.error or (f"{j.progress:.0%} {j.message or ''}".strip() if j.progress else "")
        rows.append([j.id, j.task, j.status.value, j.attempts, _when(getattr(j, when[1])),
                     j.worker or "" if wanted is JobStatus.IN_PROGRESS else detail])  # fmt: skip
    last = "worker" if wanted is JobStatus.IN_PROGRESS else "detail"
    print_table(
        f"{name}: {wanted.value} jobs {offset + 1}-{offset + len(found)}",
        ["id", "task", "status", "tries", when[0], last],
        rows,
    )


def cancel(
    job_id: str = typer.Argument(..., metavar="JOB_ID"),
    queue: str | None = typer.Option(None, "--queue", "-q", help="Skip the search."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Cancel a job in any queue: a waiting job never runs, a running one is stopped."""

    async def go() -> tuple[str, JobInfo | None, bool]:
        async with _queue(redis_url, prefix) as q:
            found = (
                await q.job(job_id, queue_name(queue)).info() if queue else await q.find_job(job_id)
            )
            if found is None or found.status is JobStatus.NOT_FOUND:
                return "", None, False
            if found.status.is_terminal:
                return found.queue, found, False
            return found.queue, found, await q.job(job_id, found.queue).cancel()

    name, found, cancelled = run(go)
    if found is None:
        fail(f"job {job_id} not found (or its record expired)")
    if not cancelled:
        fail(f"job {job_id} already ended {found.status.value}; nothing to cancel")
    was = "it was running: its worker stops it" if found.status is JobStatus.IN_PROGRESS else (
        f"it was {found.status.value}")  # fmt: skip
    typer.echo(f"cancelled job {job_id} in queue {name!r} ({was})")


def purge(
    queue: str = typer.Argument(..., metavar="QUEUE"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Drop every queued and deferred job of QUEUE (they end cancelled; running jobs go on).
    Asks first unless --yes."""
    name = queue_name(queue)

    async def count() -> int:
        async with _queue(redis_url, prefix, name) as q:
            s = await q.stats(minutes=0, hours=0)
            return s.queued + s.deferred + s.blocked

    if not yes:
        waiting = run(count)
        if not waiting:
            typer.echo(f"queue {name!r} has no queued or deferred jobs")
            return
        typer.confirm(
            f"Drop the {waiting} queued and deferred job(s) of queue {name!r}? They end cancelled.",
            abort=True,
        )

    async def go() -> int:
        async with _queue(redis_url, prefix, name) as q:
            with _cli_progress.bulk(f"purging {name}") as on_progress:
                return await q.purge(on_progress=on_progress)

    typer.echo(f"purged {run(go)} job(s) from queue {name!r} (they ended cancelled)")


def workers(
    queue: str | None = typer.Option(None, "--queue", "-q", help="Only this queue's workers."),
    as_json: bool = typer.Option(False, "--json", help="A JSON list of WorkerInfo."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Live workers: id, host and pid, queues, concurrency, running jobs, started, last seen."""

    async def go() -> list[Any]:
        async with _queue(redis_url, prefix) as q:
            return await (q.workers(queue_name(queue)) if queue else q.all_workers())

    found = run(go)
    if as_json:
        typer.echo(json.dumps([w.model_dump(mode="json") for w in found]))
        return
    if not found:
        typer.echo("no live workers" + (f" on queue {queue!r}" if queue else ""))
        return
    now = datetime.now(timezone.utc)
    rows = [
        [w.id, f"{w.host}:{w.pid}", ",".join(w.queues), w.concurrency, w.running,
         _when(w.started_at), _ago(w.last_seen, now), w.version]
        for w in found
    ]  # fmt: skip
    columns = ["id", "host:pid", "queues", "concurrency", "running", "started", "last seen"]
    print_table("asyncjobs workers", [*columns, "version"], rows)


def forget(
    queue: str = typer.Argument(..., metavar="QUEUE"),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Remove QUEUE from `asyncjobs info` with its counters and history; refused while it has
    jobs, dead letters or live workers."""
    name = queue_name(queue)

    async def go() -> None:
        async with _queue(redis_url, prefix, name) as q:
            await q.forget_queue(name)

    run(go)
    typer.echo(f"forgot queue {name!r}")


def partitions(
    queue: str = typer.Argument(..., metavar="QUEUE"),
    count: int | None = typer.Argument(
        None, metavar="[COUNT]", help="Spread QUEUE over this many partitions (1 to 256)."
    ),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Show QUEUE's partitions (jobs waiting and running in each), or set their number.

    Each partition is a queue with its own hash tag, so on a Redis Cluster one queue uses
    several nodes. Workers follow at once, producers within seconds; a smaller COUNT loses nothing
    (workers drain the partitions it drops).

    Example: asyncjobs partitions emails 6
    """
    name = queue_name(queue)

    async def go() -> tuple[Any, list[Any], list[str | None]]:
        async with _queue(redis_url, prefix, name) as q:
            if count is not None:
                try:
                    await q.set_partitions(count)
                except ValueError as exc:
                    fail(str(exc))
            parts = await q.partition_stats(minutes=0, hours=0)
            nodes = [await q.store.node_of(q.keys_for(p.name)) for p in parts]
            return await q.partitions(), parts, nodes

    layout, parts, nodes = run(go)
    drained = f" (workers still drain {layout.span})" if layout.span > layout.count else ""
    typer.echo(f"queue {name!r}: {layout.count} partition(s){drained}")
    columns = ["partition", "queued", "deferred", "in progress", "dead letters"]
    rows = [[s.name, s.queued, s.deferred, s.in_progress, s.dead_letters] for s in parts]
    if any(nodes):  # a cluster: which master holds each
        columns.append("node")
        rows = [[*row, node] for row, node in zip(rows, nodes, strict=True)]
    print_table(f"partitions of {name}", columns, rows)


def register(app: typer.Typer) -> None:
    """Add these commands to the `asyncjobs` app."""
    for command in (pause, resume, stats, jobs, cancel, purge, workers, forget, partitions):
        app.command()(command)
