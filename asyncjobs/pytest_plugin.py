"""pytest fixtures for testing code that uses asyncjobs (or asyncjobs.arq).

Not loaded on its own: add ``pytest_plugins = ["asyncjobs.pytest_plugin"]`` to your top-level
conftest.py. The async fixtures run under pytest-asyncio (or anyio).

- ``asyncjobs_url``: a fresh ``memory://`` URL (an in-process Redis of the test's own).
- ``asyncjobs_queue``: an open Queue on it.
- ``asyncjobs_harness``: a factory, ``await asyncjobs_harness(functions=[...])`` or
  ``await asyncjobs_harness(MyWorkerSettings)``, giving an open ``Harness`` on its own
  in-process backend, closed after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ._queue import Queue
from .testing import Harness, memory_url

try:  # pytest-asyncio's own decorator works in its strict mode as in auto mode
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - anyio users
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = ["asyncjobs_harness", "asyncjobs_queue", "asyncjobs_url"]


@pytest.fixture
def asyncjobs_url() -> str:
    """A fresh memory:// URL, its own in-process Redis."""
    return memory_url()


@_async_fixture
async def asyncjobs_queue(asyncjobs_url: str) -> AsyncIterator[Queue]:
    """An open Queue on the test's own in-process backend."""
    async with Queue(asyncjobs_url) as queue:
        yield queue


@_async_fixture
async def asyncjobs_harness() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """``await asyncjobs_harness(settings=None, functions=[...], **worker_options)``."""
    made: list[Harness] = []

    async def make(settings: Any = None, **options: Any) -> Harness:
        harness = await Harness(settings, **options).__aenter__()
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.aclose()
