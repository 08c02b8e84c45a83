"""Tasks that jobs leave behind: remembered by the job that made them, ended at exit.

A task body may start background tasks of its own (``asyncio.create_task``) and return. If one
of them ignores cancellation, ``asyncio.run`` waits for it for ever at exit and a worker asked
to stop by SIGTERM never exits. The CLI installs a task factory that notes which job created
each task (from ``CURRENT_TRY``, which the runner sets in every try's own task), and after the
worker has stopped it cancels those still running, waits a little, names each task that would
not end (and the job that made it), and exits anyway.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Generator
from typing import Any

from ._running import CURRENT_TRY

_origins: weakref.WeakKeyDictionary[asyncio.Future[Any], str] = weakref.WeakKeyDictionary()


def install_task_origins(loop: asyncio.AbstractEventLoop) -> None:
    """Note, for every task created from now on, the job it was created by (if any)."""
    previous = loop.get_task_factory()

    def factory(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        job = CURRENT_TRY.get()  # the try whose code creates this task, if any
        if job is not None:
            _origins[task] = f"{job.task_name} (job {job.id})"
        return task

    loop.set_task_factory(factory)


def describe(task: asyncio.Future[Any]) -> str:
    coro = task.get_coro() if isinstance(task, asyncio.Task) else None
    name = getattr(coro, "__qualname__", None) or repr(task)
    origin = _origins.get(task)
    return f"{name} (left behind by {origin})" if origin else name


async def end_leftover_tasks(wait: float) -> list[str]:
    """Cancel the tasks jobs created that still run; return those still running ``wait``
    seconds later. (Tasks of the program itself are left to their owners.)"""
    left = [t for t in list(_origins) if not t.done()]
    for task in left:
        task.cancel()
    if not left:
        return []
    _, pending = await asyncio.wait(left, timeout=wait)
    return sorted(describe(task) for task in pending)
