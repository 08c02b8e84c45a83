"""The cron page's rows: every cron job of every known queue, with its schedule and its ticks.

A Queue that lists its crons (``Queue.crons(all_queues=True)``: the schedules workers declare
and the ones added at run time) gives the whole row. Otherwise the rows come from what Redis
records of each cron job, its last tick (the tick's job id is ``cron:<name>:<tick ms>``); the
schedule is then only in the workers' settings (``asyncjobs cron list MODULE:SETTINGS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._queue import Queue


@dataclass(frozen=True)
class CronRow:
    """One cron job as the page shows it (the field names of ``CronInfo``)."""

    name: str
    queue: str
    task: str = ""
    expression: str = ""
    timezone: str = ""
    next_run: datetime | None = None
    last_run: datetime | None = None
    served: bool | None = None  # whether a live worker of its queue knows its task

    @property
    def last_job_id(self) -> str | None:
        """The id of the job of the last tick (cron_tick's deterministic id)."""
        if self.last_run is None:
            return None
        return f"cron:{self.name}:{int(self.last_run.timestamp() * 1000)}"


async def cron_rows(queue: Queue) -> list[CronRow]:
    """Every cron job of every known queue, by queue then name."""
    crons: Any = getattr(queue, "crons", None)
    if crons is not None:
        return [
            CronRow(
                name=c.name,
                queue=c.queue,
                task=c.task,
                expression=c.expression,
                timezone=c.timezone,
                next_run=c.next_run,
                last_run=c.last_run,
                served=c.served,
            )
            for c in await crons(all_queues=True)
        ]
    rows = []
    for name in sorted(await queue.queue_names()):
        ticks = await queue.store.cron_ticks(queue.keys_for(name))
        for cron_name, tick_ms in sorted(ticks.items()):
            last = datetime.fromtimestamp(tick_ms / 1000, tz=timezone.utc)
            rows.append(CronRow(name=cron_name, queue=name, last_run=last))
    return rows
