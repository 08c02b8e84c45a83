"""`asyncjobs cron add|remove`, and `cron list` without a settings module: the crons kept in
Redis, added at run time (docs/runtime-cron.md), from a shell."""

from __future__ import annotations

import json
from typing import Any

import typer

from ._cli_common import (
    PrefixOption,
    RedisUrlOption,
    fail,
    one_line,
    queue_name,
    resolve_prefix,
    resolve_url,
    run,
)
from ._cron import CronInfo, cron
from ._queue import Queue

QueueOption = typer.Option("default", "--queue", "-q", help="The queue the cron enqueues into.")


def _json(text: str | None, kind: type, option: str) -> Any:
    """``text`` parsed as a JSON ``kind`` (list or object), or exit 2 saying what to pass."""
    if text is None:
        return kind()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{option} is not JSON ({exc.msg}): pass e.g. {option} '{_example(kind)}'", 2)
    if not isinstance(value, kind):
        fail(f"{option} must be a JSON {_name(kind)}, e.g. {option} '{_example(kind)}'", 2)
    return value


def _name(kind: type) -> str:
    return "list" if kind is list else "object"


def _example(kind: type) -> str:
    return '["a@b.c", 3]' if kind is list else '{"to": "a@b.c"}'


def describe(c: CronInfo) -> str:
    """One line of a cron: name, expression, task, queue, where it comes from, next and last."""
    when = c.next_run.isoformat(timespec="seconds") if c.next_run else "?"
    last = c.last_run.isoformat(timespec="seconds") if c.last_run else "never"
    served = "" if c.served else "  (no live worker knows this task)"
    return (
        f"{c.name}  [{c.expression}]  {c.task}  queue={c.queue}  tz={c.timezone}  "
        f"source={c.source}  next={when}  last={last}{served}"
    )


def cron_add(
    name: str = typer.Argument(..., help="The cron's name (adding it again replaces it)."),
    task: str = typer.Argument(..., help="The registered task name, as workers know it."),
    expression: str = typer.Argument(..., help="A cron expression, e.g. '0 6 * * mon-fri'."),
    queue: str = QueueOption,
    args: str | None = typer.Option(None, "--args", help="The task's arguments, a JSON list."),
    kwargs: str | None = typer.Option(None, "--kwargs", help="Keyword arguments, a JSON object."),
    zone: str = typer.Option("UTC", "--timezone", "--tz", help="An IANA zone, e.g. Europe/Paris."),
    missed: str = typer.Option("skip", "--missed", help="skip, or run_once after a gap."),
    overlap: bool = typer.Option(
        False, "--allow-overlap", help="Enqueue a tick even while the last run is live."
    ),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Add a cron to a queue, stored in Redis: its workers fire it from their next tick, no
    restart (a worker must know the task).

    Example: asyncjobs cron add daily-report reports.daily '0 6 * * *' --tz Europe/Paris
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"unknown time zone {zone!r}: use an IANA name such as UTC or Europe/Paris", 2)
    if missed not in ("skip", "run_once"):
        fail(f"--missed must be skip or run_once, not {missed!r}", 2)
    try:
        job = cron(
            task,
            expression,
            name=name,
            timezone=tz,
            unique=not overlap,
            missed=missed,  # type: ignore[arg-type]
            queue=queue_name(queue),
            args=tuple(_json(args, list, "--args")),
            kwargs=_json(kwargs, dict, "--kwargs"),
        )
    except (TypeError, ValueError) as exc:
        fail(one_line(exc), 2)

    async def go() -> CronInfo:
        async with Queue(resolve_url(redis_url), prefix=resolve_prefix(prefix)) as q:
            return await q.add_cron(job)

    try:
        info = run(go)
    except (TypeError, ValueError) as exc:  # the arguments do not fit a payload
        fail(one_line(exc), 2)
    typer.echo(f"added: {describe(info)}")
    if not info.served:
        typer.secho(
            f"warning: no live worker of queue {info.queue!r} knows task {task!r}: no tick is "
            "enqueued until one does (check the name, or deploy a worker with that task)",
            err=True,
        )


def cron_remove(
    name: str = typer.Argument(..., help="The name the cron was added with."),
    queue: str = QueueOption,
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Remove a cron added at run time; once this returned, none of its ticks is enqueued.

    Example: asyncjobs cron remove daily-report
    """

    async def go() -> bool:
        async with Queue(resolve_url(redis_url), prefix=resolve_prefix(prefix)) as q:
            return await q.remove_cron(name, queue_name(queue))

    if not run(go):
        fail(
            f"no cron {name!r} was added to queue {queue!r}: `asyncjobs cron list --queue "
            f"{queue}` shows its crons"
        )
    typer.echo(f"removed cron {name!r} of queue {queue!r}")


def list_stored(
    queue: str, all_queues: bool, as_json: bool, redis_url: str | None, prefix: str | None
) -> None:
    """`asyncjobs cron list` without a settings module: the crons Redis holds for a queue."""

    async def go() -> list[CronInfo]:
        async with Queue(resolve_url(redis_url), prefix=resolve_prefix(prefix)) as q:
            return await q.crons(queue_name(queue), all_queues=all_queues)

    crons = run(go)
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in crons], indent=2))
        return
    if not crons:
        where = "any queue" if all_queues else f"queue {queue!r}"
        typer.echo(f"no crons on {where} (none added, and no live worker declares one)")
    for c in crons:
        typer.echo(describe(c))


def register(cron_app: typer.Typer) -> None:
    """Add these commands to `asyncjobs cron`."""
    cron_app.command("add")(cron_add)
    cron_app.command("remove")(cron_remove)
