"""Python-version shims."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover - Python 3.10: redis-py depends on async-timeout there
    from async_timeout import timeout

__all__ = ["timeout"]
