"""arq's public API on asyncjobs: change ``arq`` to ``asyncjobs.arq`` in the import lines.

    from arq import create_pool, cron, Retry, Worker   ->  from asyncjobs.arq import ...
    from arq.connections import RedisSettings          ->  from asyncjobs.arq.connections import ...
    from arq.jobs import Job, JobStatus                 ->  from asyncjobs.arq.jobs import ...

Jobs are asyncjobs jobs underneath (short leases, fenced outcomes, dead letters); what arq code
can still observe of the difference is listed in docs/migrating-from-arq.md.
"""

from .connections import ArqRedis, RedisSettings, create_pool
from .cron import cron
from .jobs import Job, JobStatus
from .version import VERSION
from .worker import Retry, Worker, check_health, func, run_worker

__version__ = VERSION

__all__ = (
    "VERSION",
    "ArqRedis",
    "Job",
    "JobStatus",
    "RedisSettings",
    "Retry",
    "Worker",
    "check_health",
    "create_pool",
    "cron",
    "func",
    "run_worker",
)
