"""Result waiters: one pub/sub subscription per Queue, fanned out to waiters by job id.

A waiter registers and subscribes *before* it reads the job's stored state, and every waiter
is woken again when Redis confirms a subscription: redis-py sends SUBSCRIBE without waiting
for it, so a job that finished before the server took it (a busy server, or on a cluster
another node) was announced to nobody, and is read again then. The same holds after the
subscription connection drops: no notification lost during an outage leaves a waiter hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ._compat import cancel_and_wait
from ._store import MESSAGE_TYPES, SUBSCRIBED_TYPES, Connection, is_outage, translate
from ._supervise import Backoff, OutageLog

log = logging.getLogger("asyncjobs.client")


class Waiters:
    """Dispatches ``<job id> <status>`` events from the queues' channels to local waiters."""

    PART = "result notifications"

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._pubsub: Any = None
        self.outages = OutageLog(log)
        self._channels: set[str] = set()
        self._events: dict[str, set[asyncio.Event]] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def listen(self, channel: str, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever job ``job_id`` changes (or the subscription was re-made)."""
        event = asyncio.Event()
        self._events.setdefault(job_id, set()).add(event)
        try:
            await self._subscribe(channel)
            yield event
        finally:
            waiting = self._events.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[job_id]

    async def _subscribe(self, channel: str) -> None:
        if channel in self._channels:
            return
        async with self._lock:
            if channel in self._channels:
                return
            if self._pubsub is None:
                self._pubsub = self._connection.pubsub()
            try:
                await self._pubsub.subscribe(channel)
            except Exception as exc:
                mapped = translate(exc, self._connection.where)
                if mapped is exc:
                    raise
                raise mapped from exc
            self._channels.add(channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="asyncjobs-waiters")

    async def _read(self) -> None:
        backoff = Backoff(cap=2.0)
        in_outage = False
        while True:
            try:
                if in_outage:  # subscribed again: its confirmations wake every waiter
                    await self._pubsub.subscribe(*self._channels)
                    in_outage = False
                    backoff.reset()
                    self.outages.end(self.PART)
                message = await self._pubsub.get_message(timeout=None)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if in_outage:
                    self.outages.still(self.PART, exc)
                else:
                    self.outages.begin(self.PART, translate(exc, self._connection.where))
                    in_outage = True
                await backoff.sleep()
                continue
            kind = None if message is None else message.get("type")
            if kind in SUBSCRIBED_TYPES:
                self._wake_all()  # a notification sent before this may have reached nobody
                continue
            if kind not in MESSAGE_TYPES:
                continue
            data = message["data"]
            # "<job id> <status>": the status has no space, the id may have some
            job_id = (data.decode() if isinstance(data, bytes) else data).rpartition(" ")[0]
            for event in self._events.get(job_id, ()):
                event.set()

    def _wake_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()

    async def aclose(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await cancel_and_wait(self._reader)
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        self._channels.clear()
