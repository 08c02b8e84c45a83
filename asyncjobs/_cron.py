"""cron(): periodic jobs. Not built yet — see issue 4; the name is reserved by the API."""

from __future__ import annotations

from typing import Any


def cron(task: Any, **schedule: Any) -> Any:
    """Not implemented yet (issue 4: cron with cross-worker dedupe)."""
    raise NotImplementedError(
        "cron jobs are not built yet in this version of asyncjobs (tracked in issue 4)"
    )
