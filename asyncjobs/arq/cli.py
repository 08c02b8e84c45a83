"""arq's command line: ``python -m asyncjobs.arq module.WorkerSettings [--burst] [--check]
[--watch DIR] [-v]``, as ``arq`` ran it (``asyncjobs worker`` reads the same settings too)."""

from __future__ import annotations

import logging.config
import os
import sys

import typer

from .._errors import ConfigurationError
from .._reload import run_reloading
from .logs import default_log_config
from .utils import import_string
from .version import VERSION
from .worker import check_health, run_worker

__all__ = ["app", "cli"]

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _version(show: bool) -> None:
    if show:
        typer.echo(f"arq (asyncjobs), version {VERSION}")
        raise typer.Exit()


@app.command("arq")
def arq(
    worker_settings: str = typer.Argument(..., metavar="WORKER_SETTINGS"),
    burst: bool | None = typer.Option(
        None, "--burst/--no-burst", help="Exit once no job is queued, deferred or running."
    ),
    check: bool = typer.Option(False, "--check", help="Exit 0 if a worker is alive, else 1."),
    watch: str | None = typer.Option(
        None, "--watch", metavar="DIR", help="Restart the worker when code in DIR changes."
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Log at DEBUG level."),
    custom_log_dict: str | None = typer.Option(
        None, "--custom-log-dict", help="Dotted path of a logging dictConfig dict."
    ),
    version: bool = typer.Option(
        False, "-V", "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Run an arq worker (its settings class) on asyncjobs."""
    sys.path.append(os.getcwd())
    settings = import_string(worker_settings)
    config = import_string(custom_log_dict) if custom_log_dict else default_log_config(verbose)
    logging.config.dictConfig(config)
    if check:
        raise typer.Exit(check_health(settings))
    if watch:
        command = [sys.executable, "-m", "asyncjobs.arq", worker_settings]
        command += [] if burst is None else ["--burst" if burst else "--no-burst"]
        command += ["--verbose"] * verbose
        command += ["--custom-log-dict", custom_log_dict] if custom_log_dict else []
        try:
            run_reloading([watch], command)
        except ConfigurationError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        return
    run_worker(settings, **({} if burst is None else {"burst": burst}))


def cli() -> None:
    """Entry point (``python -m asyncjobs.arq``)."""
    app()
