"""`asyncjobs dlq list|show|replay|purge`: the dead letters of a queue (docs/dead-letters.md)."""

from __future__ import annotations

from typing import Any

import typer

from . import _cli_progress
from ._cli_common import (
    PrefixOption,
    RedisUrlOption,
    fail,
    queue_name,
    resolve_prefix,
    resolve_url,
    run,
)
from ._errors import DeadLetterNotFound
from ._models import JobInfo
from ._queue import Queue

dlq_app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)

QueueOption = typer.Option("default", "--queue", "-q")


def _queue(redis_url: str | None, prefix: str | None, name: str) -> Queue:
    return Queue(resolve_url(redis_url), prefix=resolve_prefix(prefix), name=queue_name(name))


@dlq_app.command("list")
def dlq_list(
    queue: str = QueueOption,
    limit: int = typer.Option(20, "--limit", "-n", min=1),
    task: str | None = typer.Option(None, "--task", "-t", help="Only this task's."),
    search: str | None = typer.Option(
        None, "--search", "-s", help="Only those whose 'ErrorType: message' contains this."
    ),
    before: str | None = typer.Option(
        None, "--before", help="Only those older than this entry (the next page)."
    ),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Newest dead letters first: id, task, tries, failed at, error (and the entry id).

    Example: asyncjobs dlq list --task send_email --search timeout
    """

    async def go() -> list[JobInfo]:
        async with _queue(redis_url, prefix, queue) as q:
            return await q.dead_letters(limit=limit, task=task, search=search, before=before)

    entries = run(go)
    if not entries:
        typer.echo(f"no dead letters in queue {queue!r}" + (" match" if task or search else ""))
    for e in entries:
        when = e.finished_at.isoformat(timespec="seconds") if e.finished_at else "?"
        typer.echo(f"{e.id}  {e.task}  tries={e.attempts}  {when}  {e.error}  [{e.dead_letter_id}]")
    if len(entries) == limit:
        typer.echo(f"(more: --before {entries[-1].dead_letter_id})", err=True)


@dlq_app.command("show")
def dlq_show(
    job_id: str,
    queue: str = QueueOption,
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """One dead letter in full, traceback included."""

    async def go() -> JobInfo | None:
        async with _queue(redis_url, prefix, queue) as q:
            return await q.dead_letter(job_id)

    entry = run(go)
    if entry is None:
        fail(f"no dead letter for job {job_id} in queue {queue!r}")
    typer.echo(entry.model_dump_json(indent=2, exclude={"traceback"}))
    if entry.traceback:
        typer.echo(entry.traceback)


@dlq_app.command("replay")
def dlq_replay(
    job_id: str | None = typer.Argument(None),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter."),
    task: str | None = typer.Option(None, "--task", "-t", help="With --all: only this task's."),
    queue: str = QueueOption,
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Enqueue a dead-lettered job again (same id, fresh tries), or all with --all."""
    if not job_id and not replay_all:
        fail("give a JOB_ID, or --all (with --task TASK for one task's)", 2)

    async def go() -> int:
        async with _queue(redis_url, prefix, queue) as q:
            if job_id:
                try:
                    await q.replay_dead_letter(job_id)
                except DeadLetterNotFound as exc:
                    fail(str(exc))
                return 1
            with _cli_progress.bulk(f"replaying {queue}") as on_progress:
                return await q.replay_dead_letters(task=task, on_progress=on_progress)

    typer.echo(f"replayed {run(go)} job(s)")


@dlq_app.command("purge")
def dlq_purge(
    queue: str = QueueOption,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Delete every dead letter of a queue (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"Delete all dead letters of queue {queue!r}?", abort=True)

    async def go() -> Any:
        async with _queue(redis_url, prefix, queue) as q:
            return await q.purge_dead_letters()

    typer.echo(f"purged {run(go)} dead letter(s)")
