"""Prometheus metrics for a worker (optional extra: ``pip install 'asyncjobs-redis[metrics]'``).

Per-worker counters and histograms, labelled by queue and task, are updated as jobs run.
Queue-wide gauges (ready, deferred, in progress, dead letters) and Redis-wide totals come from
Redis, refreshed by the worker's lease loop, so every worker reports the same queue view.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "asyncjobs metrics need prometheus-client: pip install 'asyncjobs-redis[metrics]'"
    ) from exc

from ._store import logical_name

if TYPE_CHECKING:
    from ._running import ClaimedJob
    from ._store import QueueCounts

LABELS = ("queue", "task")
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800)
QUEUE_GAUGES = ("ready", "deferred", "in_progress", "blocked", "dead_letters", "workers")
#: 1 while the queue is paused (see Queue.pause), else 0.
PAUSED = "paused"
QUEUE_TOTALS = ("enqueued", "succeeded", "failed", "retried", "recovered", "cancelled", "expired")


class WorkerMetrics:
    """The metrics of one worker, in their own registry (so tests and workers never clash)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.started = Counter("asyncjobs_jobs_started", "Tries started.", LABELS, registry=r)
        self.succeeded = Counter("asyncjobs_jobs_succeeded", "Jobs succeeded.", LABELS, registry=r)
        self.failed = Counter("asyncjobs_jobs_failed", "Tries that failed.", LABELS, registry=r)
        self.retried = Counter(
            "asyncjobs_jobs_retried", "Failed tries given another try.", LABELS, registry=r
        )
        self.dead_lettered = Counter(
            "asyncjobs_jobs_dead_lettered", "Jobs moved to the dead letters.", LABELS, registry=r
        )
        self.duration = Histogram(
            "asyncjobs_job_duration_seconds",
            "Run time of one try.",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "asyncjobs_job_queue_wait_seconds",
            "Time from enqueue (or due time) to start, by the Redis clock.",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.snapshot: dict[str, dict[str, float]] = {}
        self.enqueued_by_task: dict[str, dict[str, float]] = {}
        r.register(_QueueCollector(self))

    def job_started(self, job: ClaimedJob) -> None:
        self.started.labels(logical_name(job.keys.name), job.task_name).inc()
        if job.claimed_ms and job.enqueued_ms and job.attempt == 1:
            wait = max(0.0, (job.claimed_ms - job.enqueued_ms) / 1000)
            self.queue_wait.labels(logical_name(job.keys.name), job.task_name).observe(wait)

    def job_ended(self, job: ClaimedJob, outcome: str, seconds: float) -> None:
        labels = (logical_name(job.keys.name), job.task_name)  # a partition counts as its queue
        self.duration.labels(*labels).observe(seconds)
        if outcome == "succeeded":
            self.succeeded.labels(*labels).inc()
        elif outcome in ("retry", "failed"):
            self.failed.labels(*labels).inc()
            (self.retried if outcome == "retry" else self.dead_lettered).labels(*labels).inc()

    def refresh(self, queue: str, counts: QueueCounts) -> None:
        """Take one queue's sizes and totals, as the worker just read them from Redis."""
        stats = counts.stats
        values = {name: float(getattr(counts, name)) for name in (*QUEUE_GAUGES, PAUSED)}
        for name in QUEUE_TOTALS:
            values[name] = float(stats.get(name, 0))
        self.snapshot[queue] = values
        self.enqueued_by_task[queue] = {
            field.removeprefix("enqueued:"): float(count)
            for field, count in stats.items()
            if field.startswith("enqueued:")
        }

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve /metrics over HTTP from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)


class _QueueCollector:
    """Exposes the last Redis snapshot as gauges and counters (read at scrape time)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        snapshot = dict(self.metrics.snapshot)
        for name in QUEUE_GAUGES:
            gauge = GaugeMetricFamily(
                f"asyncjobs_queue_{name}",
                f"Jobs {name.replace('_', ' ')} (workers alive).",
                labels=["queue"],
            )
            for queue, values in snapshot.items():
                gauge.add_metric([queue], values[name])
            yield gauge
        paused = GaugeMetricFamily(
            "asyncjobs_queue_paused", "1 while the queue is paused, else 0.", labels=["queue"]
        )
        for queue, values in snapshot.items():
            paused.add_metric([queue], values[PAUSED])
        yield paused
        for name in QUEUE_TOTALS:
            counter = CounterMetricFamily(
                f"asyncjobs_queue_{name}",
                f"Jobs {name} in this queue, all workers.",
                labels=["queue"],
            )
            for queue, values in snapshot.items():
                counter.add_metric([queue], values[name])
            yield counter
        by_task = CounterMetricFamily(
            "asyncjobs_queue_enqueued_by_task",
            "Jobs enqueued per task in this queue, by every client.",
            labels=["queue", "task"],
        )
        for queue, tasks in dict(self.metrics.enqueued_by_task).items():
            for task_name, count in tasks.items():
                by_task.add_metric([queue, task_name], count)
        yield by_task
        gauge = GaugeMetricFamily("asyncjobs_metrics_refreshed", "Unix time of the last refresh.")
        gauge.add_metric([], time.time())
        yield gauge
