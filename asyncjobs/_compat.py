"""Python-version shims."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover - Python 3.10: redis-py depends on async-timeout there
    from async_timeout import timeout

__all__ = ["cancel_and_wait", "timeout"]

#: How long a cancelled task gets to end before it is cancelled again.
RECANCEL_AFTER = 0.1


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a background task and wait until it has ended, whatever it raised.

    Cancels again if the task is still running a moment later: on Python < 3.12 a cancellation
    that lands just as an awaited reply arrives can be swallowed (asyncio.wait_for,
    async-timeout), and a loop that then awaits its next event would keep a shutdown waiting.
    Raises what the task raised, if it ended with an error rather than the cancellation.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_AFTER)
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
