"""Every default value, defined once: the Queue, WorkerSettings and the CLI all read them here."""

from __future__ import annotations

REDIS_URL = "redis://localhost:6379/0"
PREFIX = "asyncjobs"
QUEUE = "default"

#: Seconds a finished job's record (and its result) stays readable.
KEEP_RESULT = 86_400.0
#: Seconds an idempotency key keeps pointing at its job.
IDEMPOTENCY_TTL = 86_400.0
#: Dead letters a queue keeps (approximately: the stream is trimmed in blocks).
DEAD_LETTER_MAXLEN = 10_000
#: Bytes of encoded arguments a job may carry.
MAX_PAYLOAD_BYTES = 1_048_576
#: Bytes of encoded result a job may store (a bigger one fails the job: store it elsewhere).
MAX_RESULT_BYTES = 1_048_576

CONCURRENCY = 100
LEASE_SECONDS = 10.0
MAX_TRIES = 3
JOB_TIMEOUT = 300.0
SHUTDOWN_GRACE = 20.0
MAX_STALLS = 3
#: Seconds a job whose task a worker does not know waits for a worker that does (see
#: docs/operations.md); a burst worker dead-letters it at once unless told otherwise.
UNKNOWN_TASK_GRACE = 300.0
