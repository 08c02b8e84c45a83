"""The store: the one layer between asyncjobs and Redis (connection, keys, scripts, replies)."""

from __future__ import annotations

from .connection import Connection, redact
from .errors import is_outage, translate
from .keys import (
    MAX_PARTITIONS,
    QueueKeys,
    check_partitions,
    check_queue_name,
    logical_name,
    partition_name,
    queues_registry_key,
)
from .records import (
    CancelOutcome,
    Claim,
    ClaimedRecord,
    CronChange,
    CronTickOutcome,
    DeadLettered,
    Enqueued,
    FailOutcome,
    ForgetOutcome,
    NewJob,
    Partitions,
    QueueCounts,
    Recovery,
    ReplayBatch,
    UnknownTaskOutcome,
    WorkerRecord,
    WorkflowMember,
)
from .scripts import PRIORITY_LIMIT
from .sharded import MESSAGE_TYPES, SUBSCRIBED_TYPES
from .store import Store

__all__ = [
    "MAX_PARTITIONS",
    "MESSAGE_TYPES",
    "PRIORITY_LIMIT",
    "SUBSCRIBED_TYPES",
    "CancelOutcome",
    "Claim",
    "ClaimedRecord",
    "Connection",
    "CronChange",
    "CronTickOutcome",
    "DeadLettered",
    "Enqueued",
    "FailOutcome",
    "ForgetOutcome",
    "NewJob",
    "Partitions",
    "QueueCounts",
    "QueueKeys",
    "Recovery",
    "ReplayBatch",
    "Store",
    "UnknownTaskOutcome",
    "WorkerRecord",
    "WorkflowMember",
    "check_partitions",
    "check_queue_name",
    "is_outage",
    "logical_name",
    "partition_name",
    "queues_registry_key",
    "redact",
    "translate",
]
