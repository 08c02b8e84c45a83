"""Soft timeouts: ``SoftTimeout`` raised inside a task where it awaits, some time before the hard
timeout cancels it, so that it can save a checkpoint and stop cleanly (Celery's soft_time_limit).

asyncio can only cancel a task, not raise an error of our choosing in it. So the task's coroutine
is driven through ``_SoftDeadline``, which relays every step; when the soft deadline passes it
cancels the task and, when that cancellation reaches it, throws ``SoftTimeout`` into the task's
coroutine instead (taking the cancellation back, so the hard timeout's bookkeeping stays right).
A real cancellation (shutdown, a cancel request, the hard timeout) arriving at the same moment
wins: it is passed on as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

from ._errors import SoftTimeout

T = TypeVar("T")


class _SoftDeadline:
    def __init__(self, coro: Coroutine[Any, Any, T], seconds: float, message: str) -> None:
        self._coro = coro
        self._seconds = seconds
        self._message = message

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        task = asyncio.current_task()
        assert task is not None, "a soft timeout needs a running task"
        cancelling = getattr(task, "cancelling", None)  # Python 3.11+, as uncancel
        uncancel = getattr(task, "uncancel", None)
        baseline = cancelling() if cancelling is not None else 0
        fired = False  # the deadline passed: the next CancelledError is our own

        def fire() -> None:
            nonlocal fired
            if cancelling is not None and cancelling() > baseline:
                return  # the try is being cancelled already: that cancellation goes on as is
            fired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self._seconds, fire)
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                try:
                    step = coro.send(sent) if thrown is None else coro.throw(thrown)
                except StopIteration as stop:
                    return stop.value
                sent = thrown = None
                try:
                    sent = yield step
                except GeneratorExit:
                    coro.close()
                    raise
                except asyncio.CancelledError as exc:
                    thrown = exc
                    if fired:
                        fired = False
                        if uncancel is not None:
                            uncancel()
                        if cancelling is None or cancelling() <= baseline:
                            thrown = SoftTimeout(self._message)
                except BaseException as exc:
                    thrown = exc
        finally:
            timer.cancel()


async def call_with_soft_timeout(coro: Coroutine[Any, Any, T], seconds: float, message: str) -> T:
    """Await ``coro``; once ``seconds`` pass, raise SoftTimeout(``message``) inside it."""
    result: T = await _SoftDeadline(coro, seconds, message)
    return result
