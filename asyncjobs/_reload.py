"""Development reload: run the worker in a child process and restart it when code changes
(``.py`` files; the folders .git, .venv, __pycache__... are skipped).

watchfiles (a maintained, Rust-backed watcher) does the watching and the restarting; we pick
the command and say what changed. The child gets SIGINT, so running jobs are cancelled and
requeued after ``grace`` seconds at most, then it is killed (its jobs then come back through
their leases, as after any crash).
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Sequence
from typing import Any

from ._errors import ConfigurationError

log = logging.getLogger("asyncjobs.reload")


def run_reloading(paths: Sequence[str], command: Sequence[str], *, grace: int = 5) -> int:
    """Run ``command`` until interrupted, restarting it on each change under ``paths``."""
    try:
        from watchfiles import PythonFilter, run_process
    except ImportError:
        raise ConfigurationError(
            "--reload and --watch need watchfiles: pip install 'asyncjobs-redis[reload]'"
        ) from None
    missing = [p for p in paths if not os.path.isdir(p)]
    if missing:
        raise ConfigurationError(f"--watch takes folders; not a folder: {', '.join(missing)}")

    def announce(changes: set[tuple[Any, str]]) -> None:
        names = sorted({os.path.relpath(path) for _, path in changes})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        log.warning("%s changed: restarting the worker", shown)

    log.warning("watching %s for changes (development reload)", ", ".join(paths))
    reloads: int = run_process(
        *paths,
        target=shlex.join(command),
        target_type="command",
        callback=announce,
        watch_filter=PythonFilter(),  # code only: a log file written there must not loop
        sigint_timeout=grace,
    )
    return reloads
