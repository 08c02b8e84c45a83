"""What a worker tells about itself on every heartbeat, and how `workers()` and the health
probe read it back: WorkerInfo, and the app fingerprint that tells one app's workers from
another's on a shared queue."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ._models import Model, ms_to_datetime
from ._store import WorkerRecord
from ._version import VERSION


class WorkerInfo(Model):
    """One live worker, as its last heartbeat described it."""

    id: str
    queues: list[str]
    concurrency: int
    running: int  # jobs it was running at its last heartbeat
    started_at: datetime | None = None
    last_seen: datetime
    host: str = ""
    pid: int = 0
    app: str = ""  # fingerprint of its task names: the workers of one app share it
    version: str = ""
    tasks: list[str] = []


def package_version() -> str:
    """The asyncjobs version (what a worker reports and `--version` prints)."""
    return VERSION


def app_fingerprint(task_names: Iterable[str]) -> str:
    """A short name for an app's set of tasks: what `asyncjobs health` matches its own pod's
    worker by (another app sharing the queue registers other tasks)."""
    digest = hashlib.sha1("\n".join(sorted(set(task_names))).encode())
    return digest.hexdigest()[:12]


def describe(
    *,
    queues: list[str],
    concurrency: int,
    started_ms: int,
    task_names: Iterable[str],
    version: str,
) -> str:
    """The JSON a worker writes with each heartbeat."""
    names = sorted(set(task_names))
    about: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queues,
        "concurrency": concurrency,
        "started_at": started_ms,
        "app": app_fingerprint(names),
        "version": version,
        "tasks": names,
    }
    return json.dumps(about, separators=(",", ":"))


def worker_info(record: WorkerRecord) -> WorkerInfo:
    """A WorkerInfo from a heartbeat record (tolerant of a description it cannot read)."""
    try:
        about = json.loads(record.about)
    except ValueError:
        about = {}
    if not isinstance(about, dict):
        about = {}
    last_seen = ms_to_datetime(record.last_seen_ms)
    assert last_seen is not None
    return WorkerInfo(
        id=record.id,
        queues=[str(q) for q in about.get("queues", [])],
        concurrency=int(about.get("concurrency", 0)),
        running=record.running,
        started_at=ms_to_datetime(about.get("started_at")),
        last_seen=last_seen,
        host=str(about.get("host", "")),
        pid=int(about.get("pid", 0)),
        app=str(about.get("app", "")),
        version=str(about.get("version", "")),
        tasks=[str(t) for t in about.get("tasks", [])],
    )
