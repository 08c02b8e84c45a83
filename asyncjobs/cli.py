"""The `asyncjobs` command: run a worker, inspect queues and jobs, manage dead letters."""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import os
import sys
import traceback
import types
from typing import Any

import typer

from . import _cli_cron, _cli_ops, _cli_progress
from ._cli_common import (
    DEFAULT_PREFIX,
    DEFAULT_REDIS_URL,
    PrefixOption,
    RedisUrlOption,
    fail,
    one_line,
    queue_name,
    resolve_prefix,
    resolve_url,
)
from ._cli_common import run as _run
from ._cli_dashboard import dashboard
from ._cli_dlq import dlq_app
from ._errors import AsyncJobsError, ConfigurationError
from ._leftovers import end_leftover_tasks, install_task_origins
from ._presence import app_fingerprint, package_version
from ._queue import Queue
from ._reload import run_reloading
from ._settings import WorkerSettings
from ._stats import sum_counts
from ._store import QueueCounts
from ._worker import Worker
from .log import FORMATS, configure_logging

__all__ = ["DEFAULT_PREFIX", "DEFAULT_REDIS_URL", "app", "main", "resolve_url"]

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
app.add_typer(dlq_app, name="dlq")
cron_app = typer.Typer(
    help="Cron jobs: list those of a settings module or of a queue; add and remove at run time.",
    no_args_is_help=True,
)
app.add_typer(cron_app, name="cron")
_cli_cron.register(cron_app)
_cli_ops.register(app)
app.command()(dashboard)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"asyncjobs {package_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """asyncjobs: run workers and inspect queues, jobs and dead letters."""


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
        raise ConfigurationError(_import_failure(module_name, exc)) from None
    except Exception as exc:  # the module's own code failed: say where, in one line
        raise ConfigurationError(_import_failure(module_name, exc)) from None
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


def _import_failure(module_name: str, exc: BaseException) -> str:
    """One line for a settings module whose own import raised: the error and where."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if "importlib" not in f.filename] or frames
    where = f" ({mine[-1].filename}, line {mine[-1].lineno})" if mine else ""
    return (
        f"importing {module_name!r} failed: {type(exc).__name__}: {exc}{where}; "
        f"run python -c 'import {module_name}' to see the whole traceback"
    )


def _log_level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        fail(f"--log-level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {name!r}", 2)
    return level


def _check_metrics_extra() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        fail("--metrics-port needs prometheus-client: pip install 'asyncjobs-redis[metrics]'", 2)


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
    prefix: str | None = PrefixOption,
) -> None:
    """Run a worker until SIGINT/SIGTERM (graceful), or with --burst until nothing is left.

    Example: asyncjobs worker myapp.tasks:settings --concurrency 50 --queue high --queue default
    """
    if log_format not in FORMATS:
        fail(f"--log-format takes text or json, not {log_format!r}", 2)
    level = _log_level(log_level)
    queues = [queue_name(name) for name in queue or ()]
    if metrics_port is not None:
        _check_metrics_extra()
    configure_logging(logging.getLevelName(level), log_format)
    try:
        settings = WorkerSettings.coerce(import_settings(settings_path))
    except ConfigurationError as exc:
        fail(one_line(exc), 2)
    overrides: dict[str, Any] = {"redis_url": resolve_url(redis_url, settings.redis_url)}
    if concurrency:
        overrides["concurrency"] = concurrency
    if queues:
        overrides["queues"] = queues
    if prefix or os.environ.get("ASYNCJOBS_PREFIX"):
        overrides["prefix"] = resolve_prefix(prefix, settings.prefix)
    if metrics_port is not None:
        overrides.update(metrics_port=metrics_port, metrics_host=metrics_host)
    if not log_successes:
        overrides["log_successes"] = False
    if reload or watch:
        command = [sys.executable, "-m", "asyncjobs", "worker", settings_path, "--loop", loop]
        command += ["--log-level", log_level, "--log-format", log_format]
        command += ["--burst"] if burst else []
        command += ["--prefix", prefix] if prefix else []
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
        fail(one_line(exc), 2)
    # What is loaded by now (asyncjobs, the settings' module and all they import) lives as long
    # as the process: frozen, the cyclic GC's full collections no longer rescan it (they took
    # about a quarter of a no-op job's CPU).
    gc.freeze()
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


async def _queue_rows(q: Queue, per_partition: bool = False) -> list[dict[str, Any]]:
    """One row per queue (a partitioned queue's partitions added up), then, with
    ``per_partition``, one per partition of each partitioned queue."""
    rows = []
    for name in await q.queue_names():
        names = await q.partition_names(name)
        parts = [await q.store.counts(q.keys_for(n)) for n in names]
        rows.append(_queue_row(name, sum_counts(parts)))
        if len(names) > 1:
            rows[-1]["partitions"] = (await q.partitions(name)).count
            if per_partition:
                rows += [_queue_row(n, c) for n, c in zip(names, parts, strict=True)]
    return rows


def _queue_row(name: str, counts: QueueCounts) -> dict[str, Any]:
    return {
        "queue": name,
        "paused": counts.paused,
        "ready": counts.ready,
        "deferred": counts.deferred,
        "in_progress": counts.in_progress,
        "blocked": counts.blocked,
        "dead_letters": counts.dead_letters,
        "workers": counts.workers,
        **counts.stats,
        "unknown_tasks": sorted(counts.unknown_tasks),
    }


INFO_COLUMNS = ["queue", "paused", "ready", "deferred", "in_progress", "dead_letters", "workers"]
INFO_COLUMNS += ["enqueued", "succeeded", "failed", "retried"]


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "paused":
        return "paused" if row["paused"] else "-"
    return str(row.get(column, 0))


def _info_table(rows: list[dict[str, Any]], rates: dict[str, float] | None = None) -> Any:
    from rich.table import Table

    table = Table(title="asyncjobs queues")
    for column in INFO_COLUMNS:
        table.add_column(column.replace("_", " "), justify="left" if column == "queue" else "right")
    if rates is not None:
        table.add_column("done/s", justify="right")
    for row in rows:
        cells = [_cell(row, c) for c in INFO_COLUMNS]
        if rates is not None:
            cells.append(f"{rates.get(row['queue'], 0.0):.1f}")
        table.add_row(*cells)
    return table


def _unknown_task_warnings(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["unknown_tasks"]:
            typer.secho(
                f"warning: queue {row['queue']}: jobs of task(s) {', '.join(row['unknown_tasks'])}"
                " wait for a worker that knows them (see: asyncjobs stats " + row["queue"] + ")",
                fg=typer.colors.YELLOW,
                err=True,
            )


@app.command()
def info(
    redis_url: str | None = RedisUrlOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh every --interval seconds."),
    interval: float = typer.Option(2.0, "--interval", min=0.2),
    prefix: str | None = PrefixOption,
    per_partition: bool = typer.Option(
        False, "--partitions", help="Add a row per partition of each partitioned queue."
    ),
) -> None:
    """Queues: paused, ready, deferred, in progress, dead letters, live workers, counters.
    A partitioned queue is one row (its partitions added up) unless --partitions.

    Example: asyncjobs info --watch   (Ctrl-C to stop)
    """
    from rich.console import Console

    console = Console()
    url, key_prefix = resolve_url(redis_url), resolve_prefix(prefix)

    async def once() -> list[dict[str, Any]]:
        async with Queue(url, prefix=key_prefix) as q:
            return await _queue_rows(q, per_partition)

    async def live() -> None:
        import time

        from rich.live import Live

        async with Queue(url, prefix=key_prefix) as q:
            previous: dict[str, tuple[float, int]] = {}
            with Live(console=console, auto_refresh=False) as screen:
                while True:
                    rows = await _queue_rows(q, per_partition)
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
    unserved = _unserved_crons(url, key_prefix)
    if as_json:
        for row in rows:
            row["crons_not_served"] = [c.name for c in unserved if c.queue == row["queue"]]
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no queues yet (nothing was enqueued and no worker started)")
    elif console.is_terminal:
        console.print(_info_table(rows))
    else:  # pipes and scripts get plain aligned columns, never truncated
        widths = [max(len(c), *(len(_cell(r, c)) for r in rows)) for c in INFO_COLUMNS]
        typer.echo("  ".join(c.ljust(w) for c, w in zip(INFO_COLUMNS, widths, strict=True)))
        for r in rows:
            cells = (_cell(r, c).ljust(w) for c, w in zip(INFO_COLUMNS, widths, strict=True))
            typer.echo("  ".join(cells).rstrip())
    _unknown_task_warnings(rows)
    for c in unserved:  # nothing else would show that their ticks are not enqueued
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


def _settings_or_exit(settings_path: str) -> WorkerSettings:
    try:
        return WorkerSettings.coerce(import_settings(settings_path))
    except ConfigurationError as exc:
        fail(one_line(exc), 2)


@app.command()
def health(
    settings_path: str = typer.Argument(..., metavar="MODULE:SETTINGS"),
    worker_id: str | None = typer.Option(
        None, "--worker-id", envvar="ASYNCJOBS_WORKER_ID", help="That very worker must be alive."
    ),
    any_worker: bool = typer.Option(
        False, "--any", help="Pass if any worker serves each queue (of any app, on any host)."
    ),
    queue: list[str] | None = typer.Option(None, "--queue", "-q", help="As given to the worker."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Exit 0 only if Redis answers and THIS pod's worker is alive on each queue (a k8s probe).

    "This pod's worker": one on this host (its hostname, the pod's name in Kubernetes) running
    these settings' tasks, or the worker named by --worker-id or the settings' `name`. Its
    heartbeat stops when it hangs or dies, so the probe fails then, whatever other apps' and
    pods' workers do. Example: asyncjobs health myapp.tasks:settings
    """
    import socket

    settings = _settings_or_exit(settings_path)
    queues = [queue_name(name) for name in queue or ()] or settings.queues
    wanted_id = worker_id or settings.name
    host = socket.gethostname()
    names = [t.name for t in settings.functions] + [c.task.name for c in settings.cron_jobs]
    app_id = app_fingerprint(names)

    async def go() -> list[str]:
        url = resolve_url(redis_url, settings.redis_url)
        async with Queue(url, prefix=resolve_prefix(prefix, settings.prefix)) as q:
            missing = []
            for name in queues:
                if any_worker:
                    alive = (await q.stats(name, minutes=0, hours=0)).workers > 0
                else:
                    alive = any(
                        w.id == wanted_id if wanted_id else (w.host == host and w.app == app_id)
                        for w in await q.workers(name)
                    )
                if not alive:
                    missing.append(name)
            return missing

    missing = _run(go)
    if missing:
        who = (
            "no live worker"
            if any_worker
            else f"worker {wanted_id!r} is not alive"
            if wanted_id
            else f"no live worker of these settings (app {app_id}) on this host ({host})"
        )
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
    prefix: str | None = PrefixOption,
    wait: float | None = typer.Option(
        None, "--wait", help="Wait up to N s (a live progress bar on a terminal), print the result."
    ),
) -> None:
    """Enqueue a job by task name (for operators and scripts) and print its id.

    Example: asyncjobs enqueue send_email --args '["ada@example.com"]' --wait 30
    """
    try:
        parsed_args, parsed_kwargs = json.loads(args), json.loads(kwargs)
    except json.JSONDecodeError as exc:
        fail(f"--args/--kwargs must be JSON: {exc}", 2)
    if not isinstance(parsed_args, list) or not isinstance(parsed_kwargs, dict):
        fail("--args must be a JSON array and --kwargs a JSON object", 2)
    name = queue_name(queue)
    options: dict[str, Any] = {"_queue_name": name, "_priority": priority}
    if job_id:
        options["_job_id"] = job_id
    if defer:
        options["_defer_by"] = defer
    enqueued: list[str] = []

    async def go() -> Any:
        from ._compat import timeout

        async with Queue(resolve_url(redis_url), name=name, prefix=resolve_prefix(prefix)) as q:
            job = await q.enqueue(task_name, *parsed_args, **parsed_kwargs, **options)
            typer.echo(f"{job.id}{' (duplicate: existing job)' if job.duplicate else ''}")
            enqueued.append(job.id)
            if wait is None:
                return None
            try:
                async with timeout(wait):
                    await _cli_progress.follow(job, lines_in_pipe=False)
            except (TimeoutError, asyncio.TimeoutError):  # two classes on Python 3.10
                status = (await job.status()).value
                fail(
                    f"job {job.id} did not finish within {wait:g}s (it is {status}); "
                    f"follow it with: asyncjobs job {job.id} --watch"
                )
            return await job.result(timeout=5)

    try:
        result = _run(go)
    except typer.Exit as exc:
        if exc.exit_code == 130 and enqueued:
            typer.secho(
                f"interrupted: job {enqueued[0]} goes on in the queue; follow it with: "
                f"asyncjobs job {enqueued[0]} --watch",
                err=True,
            )
        raise
    if wait is not None:
        typer.echo(json.dumps(result))


@app.command()
def job(
    job_id: str,
    redis_url: str | None = RedisUrlOption,
    queue: str | None = typer.Option(None, "--queue", "-q", help="Skip the search."),
    prefix: str | None = PrefixOption,
    watch: bool = typer.Option(
        False, "--watch", "-w", help="Follow it until it ends (a live progress bar on a terminal)."
    ),
) -> None:
    """Show one job: status, tries, timestamps, result or error (any queue)."""

    async def go() -> str | None:
        async with Queue(resolve_url(redis_url), prefix=resolve_prefix(prefix)) as q:
            if queue:
                found = await q.job(job_id, queue_name(queue)).info()
                info = None if found.status.value == "not_found" else found
            else:
                info = await q.find_job(job_id)
            if info is None:
                return None
            if watch and not info.status.is_terminal:
                info = await _cli_progress.follow(q.job(job_id, info.queue))
            return info.model_dump_json(indent=2, exclude={"raw_payload"})

    out = _run(go)
    if out is None:
        fail(f"job {job_id} not found (or its record expired)")
    typer.echo(out)


@cron_app.command("list")
def cron_list(
    settings_path: str | None = typer.Argument(None, metavar="[MODULE:SETTINGS]"),
    count: int = typer.Option(3, "--next", "-n", help="How many fire times to show."),
    queue: str = typer.Option("default", "--queue", "-q", help="Without settings: this queue."),
    all_queues: bool = typer.Option(False, "--all-queues", help="Without settings: every queue."),
    as_json: bool = typer.Option(False, "--json", help="Without settings: JSON."),
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
) -> None:
    """Each cron job of the settings: schedule, time zone, last run (read from Redis) and
    next fire times (in the cron's own time zone). Without settings: the crons Redis holds
    for a queue, added at run time or declared by its live workers.

    Example: asyncjobs cron list myapp.tasks:settings   (or: asyncjobs cron list -q emails)
    """
    from datetime import datetime, timezone

    from ._errors import AsyncJobsError

    if settings_path is None:
        _cli_cron.list_stored(queue, all_queues, as_json, redis_url, prefix)
        return
    settings = _settings_or_exit(settings_path)
    if not settings.cron_jobs:
        typer.echo("no cron jobs in these settings")
        return

    async def last_runs() -> dict[str, datetime | None]:
        url = resolve_url(redis_url, settings.redis_url)
        async with Queue(url, prefix=resolve_prefix(prefix, settings.prefix)) as q:
            found = {}
            for c in settings.cron_jobs:
                keys = q.keys_for(c.queue or c.task.queue or settings.queues[0])
                tick = await q.store.last_cron_tick(keys, c.name)
                found[c.name] = (
                    None if tick is None else datetime.fromtimestamp(tick / 1000, tz=timezone.utc)
                )
            return found

    try:
        last = asyncio.run(last_runs())
    except AsyncJobsError as exc:
        typer.secho(f"note: last runs unknown: {one_line(exc)}", err=True)
        last = {}
    now = datetime.now(timezone.utc)
    for c in settings.cron_jobs:
        zone = getattr(c.timezone, "key", None) or str(c.timezone)
        flags = ", ".join(
            f for f, on in (("unique", c.unique), ("run_at_startup", c.run_at_startup)) if on
        )
        ran = last.get(c.name)
        ran_text = ran.astimezone(c.timezone).isoformat(timespec="seconds") if ran else "never"
        typer.echo(
            f"{c.name}  [{c.expression}]  {c.task.name}  tz={zone}  missed={c.missed}  "
            f"last={ran_text if c.name in last else '?'}  {flags}".rstrip()
        )
        at = now
        for _ in range(count):
            at = c.next_after(at)
            typer.echo(f"    {at.astimezone(c.timezone).isoformat(timespec='seconds')}")


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
    """Run the command line, building only the top-level command named, when one is: typer
    builds every command's options before it parses (~10 ms of each worker's start)."""
    named = sys.argv[1] if len(sys.argv) > 1 else ""
    for info in app.registered_commands:
        assert info.callback is not None
        if (info.name or typer.main.get_command_name(info.callback.__name__)) == named:
            one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
            one.info, one.registered_callback = app.info, app.registered_callback
            one.registered_commands = [info]
            one()
            return
    app()
