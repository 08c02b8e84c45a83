"""Every Redis key name of a queue, built in this one place under one hash tag.

All keys of queue ``q`` start with ``{<prefix>:<q>}`` so that every script touches one Redis
Cluster slot. Scripts get the queue's key block (``block``, named in the Lua prelude) and build
per-job keys from the tag themselves. docs/internals.md documents the layout;
tests/test_keys.py keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import _defaults

#: The most partitions a queue may have (each is a physical queue with its own hash tag).
MAX_PARTITIONS = 256
#: Partition ``i`` (i >= 1) of queue ``q`` is the physical queue ``q~p<i>``; partition 0 is ``q``
#: itself, so a queue that never had partitions, and its jobs, are its partition 0.
PARTITION_MARK = "~p"


def partition_name(queue_name: str, index: int) -> str:
    """The physical queue holding partition ``index`` of ``queue_name``."""
    return queue_name if index == 0 else f"{queue_name}{PARTITION_MARK}{index}"


def logical_name(physical: str) -> str:
    """The queue a partition belongs to (``q~p3`` → ``q``; ``q`` → ``q``)."""
    base, mark, index = physical.rpartition(PARTITION_MARK)
    return base if mark and base and index.isdigit() and index != "0" else physical


def check_partitions(count: object) -> int:
    """Return ``count`` if a queue can have that many partitions; a ValueError saying what
    to pass otherwise."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PARTITIONS:
        raise ValueError(
            f"invalid partition count {count!r}: use a whole number from 1 to {MAX_PARTITIONS} "
            "(1 = not partitioned)"
        )
    return count


def queues_registry_key(prefix: str = _defaults.PREFIX) -> str:
    """The untagged set of known queue names (read by `asyncjobs info`; never used in Lua)."""
    return f"{prefix}:queues"


@dataclass(frozen=True)
class QueueKeys:
    """Key names of one queue; all share the hash tag ``{prefix:name}``."""

    name: str
    prefix: str = _defaults.PREFIX
    tag: str = field(init=False)
    _blocks: dict[tuple[str, ...], tuple[str, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        check_queue_name(self.name)
        object.__setattr__(self, "tag", f"{{{self.prefix}:{self.name}}}")

    def block(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The full names of the key block's keys ``names`` (a script's KEYS), made once."""
        keys = self._blocks.get(names)
        if keys is None:
            keys = self._blocks[names] = tuple(f"{self.tag}:{name}" for name in names)
        return keys

    @property
    def partitions(self) -> str:
        """HASH on partition 0 of a partitioned queue: ``count`` (partitions new jobs go to),
        ``span`` (the most it ever had: workers serve that many). Absent = one partition."""
        return f"{self.tag}:partitions"

    @property
    def partition_changes(self) -> str:
        """Pub/sub channel: the new partition count, when `set_partitions` changes it."""
        return f"{self.tag}:partition-changes"

    @property
    def ready(self) -> str:
        """ZSET of runnable job ids, score = priority band then FIFO sequence."""
        return f"{self.tag}:ready"

    @property
    def deferred(self) -> str:
        """ZSET of job ids waiting for a due time (ms, Redis clock): deferrals and retries."""
        return f"{self.tag}:deferred"

    @property
    def leases(self) -> str:
        """ZSET of in-flight job ids by lease deadline (ms)."""
        return f"{self.tag}:leases"

    @property
    def wake(self) -> str:
        """ZSET with one member that workers block on (BZPOPMIN); enqueue adds it."""
        return f"{self.tag}:wake"

    def own_wake(self, worker: str) -> str:
        """ZSET like ``wake`` that only ``worker`` blocks on: leave.lua writes it at its stop."""
        return f"{self.tag}:wake:{worker}"

    def left(self, worker: str) -> str:
        """Set while ``worker`` stops (leave.lua): its claims hand out nothing."""
        return f"{self.tag}:left:{worker}"

    @property
    def seq(self) -> str:
        """Counter giving FIFO order among ready jobs of equal priority."""
        return f"{self.tag}:seq"

    @property
    def dead_letters(self) -> str:
        """Capped STREAM of jobs that ended FAILED, with payload and error."""
        return f"{self.tag}:dlq"

    @property
    def workers(self) -> str:
        """ZSET of worker ids serving this queue, score = heartbeat deadline (ms)."""
        return f"{self.tag}:workers"

    @property
    def stats(self) -> str:
        """HASH of counters: enqueued, succeeded, failed, retried, recovered, cancelled, expired."""
        return f"{self.tag}:stats"

    @property
    def limits(self) -> str:
        """HASH workers publish: ``<task>:concurrency``, ``<task>:interval_ms``, ``:max_tries``."""
        return f"{self.tag}:limits"

    @property
    def cron(self) -> str:
        """HASH: cron job name → ``<last tick ms> <job id>`` (exactly-once ticks across workers)."""
        return f"{self.tag}:cron"

    @property
    def crontab(self) -> str:
        """HASH: cron name → its definition (JSON): crons added at run time, and the ones live
        workers declare from their settings (``source``, ``until``)."""
        return f"{self.tag}:crontab"

    @property
    def cron_changes(self) -> str:
        """Pub/sub channel: the name of a cron added, replaced or removed at run time."""
        return f"{self.tag}:cron-changes"

    @property
    def paused(self) -> str:
        """STRING, present while the queue is paused: when it was paused (ms, Redis clock)."""
        return f"{self.tag}:paused"

    @property
    def hours(self) -> str:
        """HASH of hourly history: ``<unix hour>:<outcome>`` counts, ``rolled`` = last minute in."""
        return f"{self.tag}:hours"

    @property
    def minute_prefix(self) -> str:
        """``<prefix><unix minute>``: HASH of that minute's outcome counts (expires after 8 h)."""
        return f"{self.tag}:minute:"

    @property
    def recent_prefix(self) -> str:
        """``<prefix><status>``: LIST of the newest succeeded / cancelled / expired job ids."""
        return f"{self.tag}:recent:"

    @property
    def dead_letter_index(self) -> str:
        """HASH: job id → the stream entry of its dead letter."""
        return f"{self.tag}:dlq_index"

    @property
    def groups(self) -> str:
        """SET of concurrency groups that have jobs waiting for a slot."""
        return f"{self.tag}:groups"

    @property
    def worker_info(self) -> str:
        """HASH: worker id → ``<last seen ms> <running> <JSON about the worker>``."""
        return f"{self.tag}:worker_info"

    @property
    def unknown(self) -> str:
        """HASH: task no worker here knew → ``<last ms> <worker>`` of the last give-back."""
        return f"{self.tag}:unknown"

    @property
    def group_prefix(self) -> str:
        """Prefix of concurrency groups: ``<prefix><group>:running`` SET, ``…:blocked`` ZSET."""
        return f"{self.tag}:group:"

    @property
    def rate_prefix(self) -> str:
        """Prefix of rate-limit keys: ``<prefix><task>`` holds the next free start slot (ms)."""
        return f"{self.tag}:rate:"

    @property
    def rate_started_prefix(self) -> str:
        """``<prefix><task>`` holds a rate-limited task's last actual start (ms, Redis clock)."""
        return f"{self.tag}:rate-started:"

    @property
    def events(self) -> str:
        """Pub/sub channel: ``<job id> <status>`` on every visible job change."""
        return f"{self.tag}:events"

    @property
    def cancel(self) -> str:
        """Pub/sub channel: ids of running jobs whose worker must cancel them."""
        return f"{self.tag}:cancel"

    @property
    def job_prefix(self) -> str:
        """Prefix of job hashes; ``job_prefix + id`` is the job's key."""
        return f"{self.tag}:job:"

    @property
    def idempotency_prefix(self) -> str:
        """Prefix of idempotency keys; ``idempotency_prefix + key`` holds the job id."""
        return f"{self.tag}:idem:"

    @property
    def workflow_prefix(self) -> str:
        """Prefix of workflow hashes: ``<prefix><workflow id>`` (members are jobs ``<id>.<i>``)."""
        return f"{self.tag}:wf:"

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id


def check_queue_name(name: str) -> str:
    """Return ``name`` if it can name a queue; a ValueError saying what to change otherwise."""
    if not isinstance(name, str) or not name or any(c in name for c in "{}\t\n\r "):
        raise ValueError(
            f"invalid queue name {name!r}: use a non-empty name without braces or spaces"
        )
    return name
