"""Shared pieces of the chaos suite: worker subprocesses, bounded waits, run counts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..waiting import wait_until

__all__ = ["wait_until"]  # the chaos tests take it from here

ROOT = Path(__file__).parent.parent.parent
SETTINGS = "tests.chaos.chaos_tasks:settings"

#: Multiplies every scenario's size (jobs, kills); see conftest.py.
SCALE = float(os.environ.get("ASYNCJOBS_CHAOS_SCALE", "1.0"))


def scaled(n: int, minimum: int = 1) -> int:
    return max(minimum, round(n * SCALE))


def unique(prefix: str) -> str:
    return f"chaos-{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerProcess:
    """One `asyncjobs worker` subprocess; every signal goes to its own PID only."""

    url: str
    queue: str
    log: Path
    settings: str = SETTINGS
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> WorkerProcess:
        args = [sys.executable, "-m", "asyncjobs", "worker", self.settings]
        args += ["--redis-url", self.url, "--queue", self.queue, "--log-level", "WARNING"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args + list(self.extra), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=out
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful), wait; SIGKILL if it does not stop in time. Its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a paused worker cannot handle SIGTERM
            os.kill(self.pid, signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    async def astop(self, timeout: float = 20.0) -> int | None:
        """``stop`` without blocking the event loop (an in-process proxy must keep serving)."""
        return await asyncio.to_thread(self.stop, timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def run_counts(client: Any, runs_key: str) -> dict[str, int]:
    """The tasks' own record: job id → how many times its body started."""
    return {k.decode(): int(v) for k, v in (await client.hgetall(runs_key)).items()}


async def statuses(client: Any, job_prefix: str, job_ids: list[str]) -> list[str]:
    """Each job's stored status ('' when the record is gone), in one pipeline per 5,000."""
    out: list[str] = []
    for start in range(0, len(job_ids), 5000):
        async with client.pipeline(transaction=False) as pipe:
            for job_id in job_ids[start : start + 5000]:
                pipe.hget(job_prefix + job_id, "status")
            out += [(v or b"").decode() for v in await pipe.execute()]
    return out


async def stat(client: Any, stats_key: str, name: str) -> int:
    return int(await client.hget(stats_key, name) or 0)
