"""The `asyncjobs` command: run a worker, inspect queues and jobs, manage dead letters."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from . import _defaults
from ._errors import AsyncJobsError, ConfigurationError
from ._leftovers import end_leftover_tasks, install_task_origins
from ._queue import Queue
from ._reload import run_reloading
from ._settings import WorkerSettings
from ._worker import Worker
from .log import FORMATS, configure_logging

DEFAULT_REDIS_URL = _defaults.REDIS_URL
DEFAULT_PREFIX = _defaults.PREFIX

T = TypeVar("T")

app = typer.Typer(
    help="asyncjobs: run workers and inspect queues, jobs and dead letters.\n\n"
    "Examples:\n\n"
    "  asyncjobs worker myapp.tasks:settings --concurrency 50\n\n"
    "  asyncjobs info --watch\n\n"
    "  asyncjobs enqueue send_email --args '[\"ada@example.com\"]'\n\n"
    "  asyncjobs dlq list --queue default",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
cron_app = typer.Typer(help="Cron jobs of a settings module.", no_args_is_help=True)
app.add_typer(cron_app, name="cron")

RedisUrlOption = typer.Option(
    None,
    "--redis-url",
    help="Redis URL; defaults to $ASYNCJOBS_REDIS_URL, then the settings', then "
    f"{DEFAULT_REDIS_URL}.",
)


def import_settings(path: str) -> Any:
    """Import ``module:attribute`` (or arq's ``module.Attribute``); say exactly which part is
    missing if it fails."""
    module_name, sep, attr = path.partition(":")
    if not sep:  # arq's dotted form
        module_name, sep, attr = path.rpartition(".")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"{path!r} is not of the form module:settings (e.g. myapp.worker:settings) or "
            "module.Settings (e.g. myapp.worker.WorkerSettings)"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"cannot import module {module_name!r}: no module named {exc.name!r} "
                f"(run from the project folder or put it on PYTHONPATH)"
            ) from None
        raise
    try:
        found = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(
            f"module {module_name!r} has no attribute {attr!r}; "
            "it should be a WorkerSettings instance or an arq-style settings class"
        ) from None
    if isinstance(found, types.ModuleType):
        raise ConfigurationError(
            f"{path!r} is a module: name its settings, as module:settings (e.g. "
            f"{path}:settings) or module.Settings (e.g. {path}.WorkerSettings)"
        )
    return found


def resolve_url(flag: str | None, settings_url: str | None = None) -> str:
    return flag or os.environ.get("ASYNCJOBS_REDIS_URL") or settings_url or DEFAULT_REDIS_URL


def _event_loop_runner(loop: str) -> Callable[[Any], Any]:
    """asyncio.run, or uvloop's when asked for, or (auto) when uvloop is installed."""
    if loop in ("uvloop", "auto"):
        try:
            import uvloop

            return uvloop.run
        except ImportError:
            if loop == "uvloop":
                raise ConfigurationError(
                    "--loop uvloop needs uvloop: pip install 'asyncjobs[fast]'"
                ) from None
    elif loop != "asyncio":
        raise ConfigurationError(f"--loop must be auto, asyncio or uvloop, not {loop!r}")
    return asyncio.run


def _run(coro_fn: Callable[[], Awaitable[T]], loop: str = "asyncio") -> T:
    """Run a coroutine; turn our errors into one readable line and exit code 1."""
    try:
        return _event_loop_runner(loop)(coro_fn())  # type: ignore[no-any-return]
    except AsyncJobsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def worker(
    settings_path: str = typer.Argument(..., metavar="MODULE:SETTINGS"),  # or arq's module.Settings
    burst: bool = typer.Option(False, "--burst", help="Stop once no job is ready or running."),
    concurrency: int | None = typer.Option(None, "--concurrency", "-c", min=1),
    queue: list[str] | None = typer.Option(None, "--queue", "-q", help="Repeat for several."),
    redis_url: str | None = RedisUrlOption,
    log_level: str = typer.Option("INFO", "--log-level"),
    log_format: str = typer.Option(
        "text", "--log-format", help="text, or json: one JSON object per line (job and trace ids)."
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve Prometheus metrics on this port (needs the extra)."
    ),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="0.0.0.0 in containers."),
    log_successes: bool = typer.Option(
        True, "--log-successes/--no-log-successes", help="One INFO line per succeeded job."
    ),
    loop: str = typer.Option(
        "auto", "--loop", help="Event loop: auto (uvloop when installed), asyncio or uvloop."
    ),
    reload: bool = typer.Option(
        False, "--reload", help="Development: restart when code in this folder changes."
    ),
    watch: list[str] | None = typer.Option(
        None, "--watch", metavar="DIR", help="Development: restart when code in DIR changes."
    ),
) -> None:
    """Run a worker until SIGINT/SIGTERM (graceful), or with --burst until nothing is left.

    Example: asyncjobs worker myapp.tasks:settings --concurrency 50 --queue high --queue default
    """
    if log_format not in FORMATS:
        typer.secho(
            f"error: --log-format takes text or json, not {log_format!r}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    configure_logging(log_level, log_format)
    try:
        settings = WorkerSettings.coerce(import_settings(settings_path))
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    overrides: dict[str, Any] = {"redis_url": resolve_url(redis_url, settings.redis_url)}
    if concurrency:
        overrides["concurrency"] = concurrency
    if queue:
        overrides["queues"] = queue
    if metrics_port is not None:
        overrides.update(metrics_port=metrics_port, metrics_host=metrics_host)
    if not log_successes:
        overrides["log_successes"] = False
    if reload or watch:
        command = [sys.executable, "-m", "asyncjobs", "worker", settings_path, "--loop", loop]
        command += ["--log-level", log_level] + (["--burst"] if burst else [])
        command += ["--concurrency", str(concurrency)] if concurrency else []
        command += [arg for name in queue or () for arg in ("--queue", name)]
        command += ["--redis-url", redis_url] if redis_url else []
        command += ["--metrics-port", str(metrics_port), "--metrics-host", metrics_host] * (
            metrics_port is not None
        )
        command += [] if log_successes else ["--no-log-successes"]
        try:
            run_reloading(watch or [os.getcwd()], command)
        except ConfigurationError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        return
    try:
        w = Worker(settings, **overrides)
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    _run(lambda: _serve(w, burst), loop)


#: After the worker stopped: how long tasks that jobs left behind get to end once cancelled.
LEFTOVER_WAIT = 2.0


async def _serve(w: Worker, burst: bool) -> None:
    """Run the worker; then end what its jobs left behind, so that the process always exits."""
    install_task_origins(asyncio.get_running_loop())
    error: BaseException | None = None
    try:
        await w.run(burst=burst)
    except BaseException as exc:
        error = exc
        raise
    finally:
        stuck = await end_leftover_tasks(LEFTOVER_WAIT)
        if stuck:  # asyncio.run would wait for them for ever: report them and leave now
            logging.getLogger("asyncjobs.worker").error(
                "%d task(s) left behind by jobs ignore cancellation: %s. Exiting anyway; "
                "a task should let CancelledError end it (or be awaited by its job)",
                len(stuck),
                "; ".join(stuck),
            )
            if isinstance(error, AsyncJobsError):
                typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            logging.shutdown()
            os._exit(0 if error is None else 1)


async def _queue_names(q: Queue) -> list[str]:
    return await q.store.queue_names(q.prefix)


async def _queue_rows(q: Queue, prefix: str) -> list[dict[str, Any]]:
    rows = []
    for name in await _queue_names(q):
        counts = await q.store.counts(q.keys_for(name))
        rows.append(
            {
                "queue": name,
                "ready": counts.ready,
                "deferred": counts.deferred,
                "in_progress": counts.in_progress,
                "dead_letters": counts.dead_letters,
                "workers": counts.workers,
                **counts.stats,
            }
        )
    return rows


INFO_COLUMNS = ["queue", "ready", "deferred", "in_progress", "dead_letters", "workers"]
INFO_COLUMNS += ["enqueued", "succeeded", "failed", "retried"]


def _info_table(rows: list[dict[str, Any]], rates: dict[str, float] | None = None) -> Any:
    from rich.table import Table

    table = Table(title="asyncjobs queues")
    for column in INFO_COLUMNS:
        table.add_column(column.replace("_", " "), justify="left" if column == "queue" else "right")
    if rates is not None:
        table.add_column("done/s", justify="right")
    for row in rows:
        cells = [str(row.get(c, 0)) for c in INFO_COLUMNS]
        if rates is not None:
            cells.append(f"{rates.get(row['queue'], 0.0):.1f}")
        table.add_row(*cells)
    return table


@app.command()
def info(
    redis_url: str | None = RedisUrlOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh every --interval seconds."),
    interval: float = typer.Option(2.0, "--interval", min=0.2),
    prefix: str = typer.Option(DEFAULT_PREFIX, "--prefix"),
) -> None:
    """Queues: ready, deferred, in progress, dead letters, live workers, counters.

    Example: asyncjobs info --watch   (Ctrl-C to stop)
    """
    from rich.console import Console

    console = Console()

    async def once() -> list[dict[str, Any]]:
        async with Queue(resolve_url(redis_url), prefix=prefix) as q:
            return await _queue_rows(q, prefix)

    async def live() -> None:
        import time

        from rich.live import Live

        async with Queue(resolve_url(redis_url), prefix=prefix) as q:
            previous: dict[str, tuple[float, int]] = {}
            with Live(console=console, auto_refresh=False) as screen:
                while True:
                    rows = await _queue_rows(q, prefix)
                    now = time.monotonic()
                    rates = {}
                    for row in rows:
                        done = row.get("succeeded", 0) + row.get("failed", 0)
                        then, before = previous.get(row["queue"], (now, done))
                        rates[row["queue"]] = (done - before) / (now - then) if now > then else 0.0
                        previous[row["queue"]] = (now, done)
                    screen.update(_info_table(rows, rates), refresh=True)
                    await asyncio.sleep(interval)

    if watch:
        _run(live)
        return
    rows = _run(once)
    unserved = _unserved_crons(resolve_url(redis_url), prefix)
    if as_json:
        for row in rows:
            row["crons_not_served"] = [c.name for c in unserved if c.queue == row["queue"]]
        typer.echo(json.dumps(rows))
    elif not rows:
        typer.echo("no queues yet (nothing was enqueued and no worker started)")
    elif console.is_terminal:
        console.print(_info_table(rows))
    else:  # pipes and scripts get plain aligned columns, never truncated
        widths = [max(len(c), *(len(str(r.get(c, 0))) for r in rows)) for c in INFO_COLUMNS]
        typer.echo("  ".join(c.ljust(w) for c, w in zip(INFO_COLUMNS, widths, strict=True)))
        for r in rows:
            cells = (str(r.get(c, 0)).ljust(w) for c, w in zip(INFO_COLUMNS, widths, strict=True))
            typer.echo("  ".join(cells))
    for c in [] if as_json else unserved:  # nothing else would show their ticks are not made
        typer.echo(
            f"warning: cron {c.name!r} of queue {c.queue!r} runs task {c.task!r}, which no live "
            "worker of that queue knows: none of its ticks is enqueued until one does",
            err=True,
        )


def _unserved_crons(url: str, prefix: str) -> list[Any]:
    """The crons (of every queue) whose task no live worker of their queue knows."""

    async def read() -> list[Any]:
        async with Queue(url, prefix=prefix) as q:
            return [c for c in await q.crons(all_queues=True) if not c.served]

    return _run(read)


@app.command()
def health(
    settings_path: str = typer.Argument(..., metavar="MODULE:SETTINGS"),
    redis_url: str | None = RedisUrlOption,
) -> None:
    """Exit 0 only if Redis answers and a worker for these settings is alive (a k8s probe).

    With `name` set in the settings, that very worker must be alive; otherwise any worker
    serving each of the settings' queues counts. Example:
    asyncjobs health myapp.tasks:settings
    """
    try:
        settings = WorkerSettings.coerce(import_settings(settings_path))
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None

    async def go() -> list[str]:
        url = resolve_url(redis_url, settings.redis_url)
        async with Queue(url, prefix=settings.prefix) as q:
            return [
                name
                for name in settings.queues
                if not await q.store.worker_alive(q.keys_for(name), settings.name)
            ]

    missing = _run(go)
    if missing:
        who = f"worker {settings.name!r}" if settings.name else "no live worker"
        typer.secho(f"unhealthy: {who} on queue(s) {', '.join(missing)}", err=True)
        raise typer.Exit(1)
    typer.echo("healthy")


@app.command()
def enqueue(
    task_name: str = typer.Argument(..., metavar="TASK"),
    args: str = typer.Option("[]", "--args", help="JSON array of positional arguments."),
    kwargs: str = typer.Option("{}", "--kwargs", help="JSON object of keyword arguments."),
    queue: str = typer.Option("default", "--queue", "-q"),
    job_id: str | None = typer.Option(None, "--job-id"),
    defer: float = typer.Option(0.0, "--defer", help="Seconds to wait before it may run."),
    priority: int = typer.Option(0, "--priority"),
    redis_url: str | None = RedisUrlOption,
    wait: float | None = typer.Option(None, "--wait", help="Wait up to N s and print the result."),
) -> None:
    """Enqueue a job by task name (for operators and scripts).

    Example: asyncjobs enqueue send_email --args '["ada@example.com"]' --wait 30
    """
    try:
        parsed_args, parsed_kwargs = json.loads(args), json.loads(kwargs)
    except json.JSONDecodeError as exc:
        typer.secho(f"error: --args/--kwargs must be JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(parsed_args, list) or not isinstance(parsed_kwargs, dict):
        typer.secho("error: --args must be a JSON array and --kwargs a JSON object", err=True)
        raise typer.Exit(2)
    options: dict[str, Any] = {"_queue_name": queue, "_priority": priority}
    if job_id:
        options["_job_id"] = job_id
    if defer:
        options["_defer_by"] = defer

    async def go() -> tuple[str, bool, Any]:
        async with Queue(resolve_url(redis_url), name=queue) as q:
            job = await q.enqueue(task_name, *parsed_args, **parsed_kwargs, **options)
            result = await job.result(timeout=wait) if wait is not None else None
            return job.id, job.duplicate, result

    job_id_out, duplicate, result = _run(go)
    typer.echo(f"{job_id_out}{' (duplicate: existing job)' if duplicate else ''}")
    if wait is not None:
        typer.echo(json.dumps(result))


@app.command()
def job(
    job_id: str,
    redis_url: str | None = RedisUrlOption,
    queue: str | None = typer.Option(None, "--queue", "-q", help="Skip the search."),
    prefix: str = typer.Option(DEFAULT_PREFIX, "--prefix"),
) -> None:
    """Show one job: status, tries, timestamps, result or error."""

    async def go() -> str | None:
        async with Queue(resolve_url(redis_url), prefix=prefix) as q:
            names = [queue] if queue else await _queue_names(q)
            for name in names:
                found = await q.job(job_id, name).info()
                if found.status.value != "not_found":
                    return found.model_dump_json(indent=2, exclude={"raw_payload"})
            return None

    out = _run(go)
    if out is None:
        typer.secho(f"job {job_id} not found (or its record expired)", err=True)
        raise typer.Exit(1)
    typer.echo(out)


@dlq_app.command("list")
def dlq_list(
    queue: str = typer.Option("default", "--queue", "-q"),
    limit: int = typer.Option(20, "--limit", "-n"),
    redis_url: str | None = RedisUrlOption,
) -> None:
    """Newest dead letters first: id, task, tries, error."""

    async def go() -> list[Any]:
        async with Queue(resolve_url(redis_url), name=queue) as q:
            return await q.dead_letters(limit=limit)

    entries = _run(go)
    if not entries:
        typer.echo(f"no dead letters in queue {queue!r}")
    for e in entries:
        when = e.finished_at.isoformat(timespec="seconds") if e.finished_at else "?"
        typer.echo(f"{e.id}  {e.task}  tries={e.attempts}  {when}  {e.error}")


@dlq_app.command("show")
def dlq_show(
    job_id: str,
    queue: str = typer.Option("default", "--queue", "-q"),
    redis_url: str | None = RedisUrlOption,
) -> None:
    """One dead letter in full, traceback included."""

    async def go() -> Any:
        async with Queue(resolve_url(redis_url), name=queue) as q:
            for e in await q.dead_letters(limit=100_000):
                if e.id == job_id:
                    return e
            return None

    entry = _run(go)
    if entry is None:
        typer.secho(f"no dead letter for job {job_id} in queue {queue!r}", err=True)
        raise typer.Exit(1)
    typer.echo(entry.model_dump_json(indent=2, exclude={"traceback"}))
    if entry.traceback:
        typer.echo(entry.traceback)


@dlq_app.command("replay")
def dlq_replay(
    job_id: str | None = typer.Argument(None),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter."),
    queue: str = typer.Option("default", "--queue", "-q"),
    redis_url: str | None = RedisUrlOption,
) -> None:
    """Enqueue a dead-lettered job again (same id, fresh tries), or all with --all."""
    if not job_id and not replay_all:
        typer.secho("give a JOB_ID or --all", err=True)
        raise typer.Exit(2)

    async def go() -> list[str]:
        async with Queue(resolve_url(redis_url), name=queue) as q:
            ids = [job_id] if job_id else [e.id for e in await q.dead_letters(limit=1_000_000)]
            done = []
            for i in ids:
                try:
                    done.append((await q.replay_dead_letter(i)).id)
                except LookupError as exc:
                    typer.secho(str(exc), err=True)
            return done

    done = _run(go)
    typer.echo(f"replayed {len(done)} job(s)")
    if job_id and not done:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    queue: str = typer.Option("default", "--queue", "-q"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    redis_url: str | None = RedisUrlOption,
) -> None:
    """Delete every dead letter of a queue (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"Delete all dead letters of queue {queue!r}?", abort=True)

    async def go() -> int:
        async with Queue(resolve_url(redis_url), name=queue) as q:
            return await q.purge_dead_letters()

    typer.echo(f"purged {_run(go)} dead letter(s)")


@cron_app.command("list")
def cron_list(
    settings_path: str = typer.Argument(..., metavar="MODULE:SETTINGS"),
    count: int = typer.Option(3, "--next", "-n", help="How many fire times to show."),
) -> None:
    """Each cron job of the settings with its schedule and next fire times (UTC).

    Example: asyncjobs cron list myapp.tasks:settings
    """
    from datetime import datetime, timezone

    try:
        settings = WorkerSettings.coerce(import_settings(settings_path))
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if not settings.cron_jobs:
        typer.echo("no cron jobs in these settings")
        return
    now = datetime.now(timezone.utc)
    for job in settings.cron_jobs:
        times, at = [], now
        for _ in range(count):
            at = job.next_after(at)
            times.append(at.astimezone(timezone.utc).isoformat(timespec="seconds"))
        flags = ", ".join(
            f for f, on in (("unique", job.unique), ("run_at_startup", job.run_at_startup)) if on
        )
        typer.echo(f"{job.name}  [{job.expression}]  {job.task.name}  missed={job.missed}  {flags}")
        for t in times:
            typer.echo(f"    {t}")


@app.command()
def acl(
    role: str = typer.Option("worker", "--role", help="worker or producer."),
    user: str | None = typer.Option(None, "--user", help="The ACL user's name."),
    prefix: str = typer.Option(DEFAULT_PREFIX, "--prefix"),
) -> None:
    """Print the least Redis ACL a worker or a producer needs, as an ACL SETUSER line.

    Example: asyncjobs acl --role producer --user web-app   (run its output in redis-cli)
    """
    from ._store.acl import acl_rules

    if role not in ("worker", "producer"):
        typer.secho(f"error: --role must be worker or producer, not {role!r}", err=True)
        raise typer.Exit(2)
    rules = acl_rules(role, prefix)  # type: ignore[arg-type]
    name = user or f"asyncjobs-{role}"
    typer.echo(f"ACL SETUSER {name} on >CHANGE-ME " + " ".join(rules))


def main() -> None:
    app()
