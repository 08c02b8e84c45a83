"""Progress for the CLI: a live bar (Rich) on a terminal, plain lines in a pipe. One job's
progress (value, stage, message, ETA) as it runs; a bulk command's batches as they land."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import typer

from ._job import Job
from ._models import JobInfo


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)  # stdout stays for what scripts read (ids, results)


def _eta(info: JobInfo) -> str:
    if info.eta is None:
        return ""
    left = (info.eta - datetime.now(timezone.utc)).total_seconds()
    return f"ETA {max(0, round(left))}s"


def _describe(info: JobInfo) -> str:
    what = info.status.value
    if info.attempts > 1:
        what += f" (try {info.attempts})"
    return what + (f" · {info.stage}" if info.stage else "")


def _line(info: JobInfo) -> str:
    parts = [info.id, _describe(info)]
    if info.progress is not None:
        parts.append(f"{info.progress:.0%}")
    parts += [p for p in (info.message, _eta(info)) if p]
    return "  ".join(parts)


async def follow(job: Job[Any], *, lines_in_pipe: bool = True) -> JobInfo:
    """Show the job's progress until it ends; returns its last info. On a terminal, a live bar
    on stderr; otherwise one line per change on stdout (none if not ``lines_in_pipe``, so a
    script reading stdout gets only what it asked for)."""
    console = _console()
    last: JobInfo | None = None
    if not console.is_terminal:
        async for info in job.watch():
            if lines_in_pipe:
                typer.echo(_line(info))
            last = info
        assert last is not None
        return last
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[message]}"),
        TextColumn("{task.fields[eta]}"),
    )
    with Progress(*columns, console=console, auto_refresh=False) as bar:
        row = bar.add_task(job.id, total=1.0, message="", eta="")
        async for info in job.watch():
            bar.update(
                row,
                completed=info.progress or (1.0 if info.status.value == "succeeded" else 0.0),
                description=f"{job.id} {_describe(info)}",
                message=info.message or "",
                eta=_eta(info),
                refresh=True,
            )
            last = info
    assert last is not None
    return last


@contextlib.contextmanager
def bulk(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback ``(done, total)`` drawing a bar on a terminal; None in a pipe."""
    console = _console()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        row = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(row, completed=done, total=total)

        yield update
