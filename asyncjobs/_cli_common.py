"""What every `asyncjobs` command shares: the Redis URL and prefix options, running a
coroutine with every failure turned into one `error: ...` line, tables for terminals and pipes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar

import typer

from . import _defaults
from ._compat import cancel_and_wait
from ._errors import AsyncJobsError, ConfigurationError
from ._store import check_queue_name

DEFAULT_REDIS_URL = _defaults.REDIS_URL
DEFAULT_PREFIX = _defaults.PREFIX

T = TypeVar("T")

RedisUrlOption = typer.Option(
    None,
    "--redis-url",
    help="Redis URL; defaults to $ASYNCJOBS_REDIS_URL, then the settings', then "
    f"{DEFAULT_REDIS_URL}.",
)
PrefixOption = typer.Option(
    None,
    "--prefix",
    help=f"Key prefix; defaults to $ASYNCJOBS_PREFIX, then the settings', then {DEFAULT_PREFIX}.",
)


def resolve_url(flag: str | None, settings_url: str | None = None) -> str:
    return flag or os.environ.get("ASYNCJOBS_REDIS_URL") or settings_url or DEFAULT_REDIS_URL


def resolve_prefix(flag: str | None, settings_prefix: str | None = None) -> str:
    return flag or os.environ.get("ASYNCJOBS_PREFIX") or settings_prefix or DEFAULT_PREFIX


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` (one line, on stderr) and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def one_line(error: BaseException | str) -> str:
    """An error's text on one line (pydantic's validation errors take several, with links)."""
    lines = [line.strip() for line in str(error).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("For further info"))


def queue_name(name: str) -> str:
    """``name`` if it can name a queue; otherwise exit 2 with a one-line error."""
    try:
        return check_queue_name(name)
    except ValueError as exc:
        fail(str(exc), 2)


def _event_loop_runner(loop: str) -> Callable[[Any], Any]:
    """asyncio.run, or uvloop's when asked for, or (auto) when uvloop is installed."""
    if loop in ("uvloop", "auto"):
        try:
            import uvloop

            return uvloop.run
        except ImportError:
            if loop == "uvloop":
                raise ConfigurationError(
                    "--loop uvloop needs uvloop: pip install 'asyncjobs-redis[fast]'"
                ) from None
    elif loop != "asyncio":
        raise ConfigurationError(f"--loop must be auto, asyncio or uvloop, not {loop!r}")
    return asyncio.run


async def _until_interrupted(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``coro_fn()``; Ctrl-C cancels it and raises KeyboardInterrupt once it has ended.

    The cancellation is repeated until it takes (cancel_and_wait): on Python < 3.12 one that
    lands as a reply arrives can be swallowed, and a single Ctrl-C would then be lost.
    """

    async def main() -> T:
        return await coro_fn()

    task = asyncio.create_task(main())
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        return await task
    stop = asyncio.create_task(interrupted.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            with contextlib.suppress(Exception):
                await cancel_and_wait(task)
            raise KeyboardInterrupt
        return task.result()
    finally:
        stop.cancel()
        loop.remove_signal_handler(signal.SIGINT)


def run(coro_fn: Callable[[], Awaitable[T]], loop: str = "asyncio") -> T:
    """Run a coroutine; turn our errors into one readable line and exit code 1."""
    try:
        return _event_loop_runner(loop)(_until_interrupted(coro_fn))  # type: ignore[no-any-return]
    except AsyncJobsError as exc:
        fail(one_line(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Rich table on a terminal; plain aligned columns (never cut) in a pipe."""
    from rich.console import Console

    console = Console()
    cells = [[str(c) for c in row] for row in rows]
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=title)
        for i, column in enumerate(columns):
            table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
        for row in cells:
            table.add_row(*row)
        console.print(table)
        return
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
