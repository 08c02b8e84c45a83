"""Listens for cancel requests of running jobs (the cancel script publishes their ids) and for
changes to the queues' crontabs and partition counts, on one subscription."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ._running import RunningJobs
from ._store import MESSAGE_TYPES, SUBSCRIBED_TYPES, Connection, QueueKeys, translate

log = logging.getLogger("asyncjobs.worker")


class CancelListener:
    """Cancels a running try as soon as its job's id arrives on a queue's cancel channel.

    A request missed while the subscription is down is not lost: the cancel script also
    revoked the lease, so the next lease tick stops the job anyway. A crontab change is passed
    to ``on_cron_change`` (the queue's name), a partition count change to
    ``on_partition_change``; each is also called for its queue when Redis confirms that
    queue's subscription, since a change may have been announced before (the server takes a
    SUBSCRIBE after redis-py sent it, and the connection may have been down).
    """

    PART = "cancel requests"

    def __init__(
        self,
        connection: Connection,
        queues: Sequence[QueueKeys],
        running: RunningJobs,
        on_cron_change: Callable[[str | None], None] | None = None,
        on_partition_change: Callable[[str | None], None] | None = None,
    ) -> None:
        self.connection = connection
        self.channels = [keys.cancel for keys in queues]
        self.running = running
        self.on_cron_change = on_cron_change
        self._cron_channels = {keys.cron_changes: keys.name for keys in queues}
        self.on_partition_change = on_partition_change
        self._partition_channels = {keys.partition_changes: keys.name for keys in queues}
        self._pubsub: Any = None

    async def add_queues(self, queues: Sequence[QueueKeys]) -> None:
        """Listen on more queues' cancel channels too (a request missed meanwhile still
        stops its job at the next lease tick: the cancel revoked the lease)."""
        channels = [keys.cancel for keys in queues]
        self.channels += channels
        if self._pubsub is not None:  # only sends: the reading step goes on
            with contextlib.suppress(Exception):  # a lost subscription resubscribes to all
                await self._pubsub.subscribe(*channels)

    async def step(self) -> None:
        """Read one message (subscribing first if need be)."""
        try:
            if self._pubsub is None:
                self._pubsub = self.connection.pubsub()
                cron_channels = list(self._cron_channels) if self.on_cron_change else []
                if self.on_partition_change is not None:
                    cron_channels += list(self._partition_channels)
                await self._pubsub.subscribe(*self.channels, *cron_channels)
            message = await self._pubsub.get_message(timeout=None)
        except Exception as exc:
            await self.close()
            mapped = translate(exc, self.connection.where)
            if mapped is exc:
                raise
            raise mapped from exc
        if not message:
            return
        kind = message.get("type")
        if kind not in MESSAGE_TYPES and kind not in SUBSCRIBED_TYPES:
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        queue_name = self._cron_channels.get(channel)
        if queue_name is not None and self.on_cron_change is not None:
            self.on_cron_change(queue_name)
            return
        queue_name = self._partition_channels.get(channel)
        if queue_name is not None and self.on_partition_change is not None:
            self.on_partition_change(queue_name)
            return
        if kind in MESSAGE_TYPES:  # not a cancel channel's confirmation
            job_id = message["data"].decode()
            if self.running.cancel("cancelled", job_id):
                log.info("job %s: cancel requested", job_id)

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
