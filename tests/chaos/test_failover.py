"""A real Sentinel failover: master + replica + three sentinels on loopback, the master killed
mid-drain. The worker and a producer follow the promoted replica; nothing completes twice
beyond what was in flight; the only loss is what the old master acknowledged and never sent to
its replica (asynchronous replication), and the test counts it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from asyncjobs import JobStatus, Queue, RedisUnavailable

from ..redis_server import RedisServer, find_server, free_port
from .helpers import ROOT, unique, wait_until

JOBS_BEFORE = 2000
TASKS = """
import asyncio, os
from asyncjobs import WorkerSettings, task

@task(max_tries=20)
async def logged(ctx, n):
    await asyncio.sleep(0.02)
    with open(os.environ["FAILOVER_RUNS"], "a") as runs:  # outside Redis: it survives failover
        runs.write(ctx.job_id + "\\n")
    return n

settings = WorkerSettings(functions=[logged], lease_seconds=2.0, max_stalls=20)
"""


@dataclass
class SentinelSet:
    """A master, its replica and three sentinels, each stopped by its own PID."""

    workdir: Path
    master: RedisServer = field(init=False)
    replica: RedisServer = field(init=False)
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)

    def start(self) -> SentinelSet:
        self.master = RedisServer().start()
        self.replica = RedisServer(
            extra_args=("--replicaof", "127.0.0.1", str(self.master.port))
        ).start()
        binary = find_server().path  # the tests' server (Valkey has sentinel mode too)
        for i in range(3):
            port = free_port()
            config = self.workdir / f"sentinel-{i}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor jobs 127.0.0.1 {self.master.port} 2\n"
                "sentinel down-after-milliseconds jobs 1000\n"
                "sentinel failover-timeout jobs 10000\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [binary, str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.sentinel_ports.append(port)
        return self

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/jobs/0"

    def stop(self) -> None:
        """Stop whatever started, also after a start that failed half way."""
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        for name in ("replica", "master"):
            server: RedisServer | None = getattr(self, name, None)
            if server is not None:
                server.cleanup()


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    group = SentinelSet(tmp_path)
    try:
        yield group.start()
    finally:
        group.stop()


async def _master_port(ports: list[int]) -> int:
    """Where the sentinels say the master is now (asked directly, as an operator would)."""
    for port in ports:
        async with aioredis.Redis(port=port) as sentinel:
            try:
                address = await sentinel.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "jobs"
                )
            except Exception:
                continue
            if address:
                return int(address[1])
    return -1


@pytest.mark.chaos
@pytest.mark.timeout(180)
async def test_a_failover_mid_drain_is_followed_by_worker_and_producer(
    sentinel_set: SentinelSet, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    name = unique("failover")
    (tmp_path / "failover_tasks.py").write_text(TASKS)
    runs_file = tmp_path / "runs.txt"
    url = sentinel_set.url

    async def reachable() -> bool:
        try:
            return await _master_port(sentinel_set.sentinel_ports) == sentinel_set.master.port
        except Exception:
            return False

    await wait_until(reachable, 30, "the sentinels to know the master")
    replica = aioredis.Redis(port=sentinel_set.replica.port)
    async with Queue(url, name=name) as queue:
        produced = [
            j.id
            for j in await queue.enqueue_many([("logged", (i,), {}) for i in range(JOBS_BEFORE)])
        ]

        async def replicated() -> bool:
            return int(await replica.dbsize()) >= JOBS_BEFORE

        await wait_until(replicated, 30, "the replica to hold the jobs")
        env = {
            **os.environ,
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
            "FAILOVER_RUNS": str(runs_file),
        }
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "asyncjobs", "worker", "failover_tasks:settings"]
                + ["--redis-url", url, "--queue", name, "--concurrency", "50"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        try:

            async def draining() -> bool:
                return runs_file.exists() and len(runs_file.read_text().split()) > 300

            await wait_until(draining, 30, "the drain to be under way")
            failed_enqueues = 0
            stop_producing = asyncio.Event()

            async def produce() -> None:  # a producer that keeps going through the failover
                nonlocal failed_enqueues
                i = JOBS_BEFORE
                while not stop_producing.is_set():
                    try:
                        produced.append((await queue.enqueue("logged", i)).id)
                    except RedisUnavailable:
                        failed_enqueues += 1
                        await asyncio.sleep(0.1)
                    i += 1
                    await asyncio.sleep(0.005)

            producer = asyncio.create_task(produce())
            os.kill(sentinel_set.master.pid(), signal.SIGKILL)  # the master dies
            killed_at = time.monotonic()

            async def promoted() -> bool:
                try:
                    return (
                        await _master_port(sentinel_set.sentinel_ports) == sentinel_set.replica.port
                    )
                except Exception:
                    return False

            await wait_until(promoted, 60, "a sentinel to promote the replica")
            failover_s = time.monotonic() - killed_at
            await asyncio.sleep(1.0)  # the producer goes on against the new master a while
            stop_producing.set()
            await producer

            async def settled() -> bool:
                states = [await queue.job(j).status() for j in produced]
                return all(s in (JobStatus.SUCCEEDED, JobStatus.NOT_FOUND) for s in states)

            await wait_until(settled, 90, "every job to succeed on the new master or be gone")
            states = [await queue.job(j).status() for j in produced]
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                code = worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                code = worker.wait()
        await replica.aclose()
    runs = runs_file.read_text().split()
    counts: dict[str, int] = {}
    for job_id in runs:
        counts[job_id] = counts.get(job_id, 0) + 1
    lost = states.count(JobStatus.NOT_FOUND)
    twice = sum(1 for c in counts.values() if c > 1)
    text = log.read_text()
    figures(
        f"jobs={len(produced)} failover_s={failover_s:.1f} lost_in_failover={lost} "
        f"ran_twice={twice} failed_enqueues={failed_enqueues} exit={code}"
    )
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert states.count(JobStatus.SUCCEEDED) + lost == len(produced), "no job is stuck"
    succeeded = [j for j, s in zip(produced, states, strict=True) if s is JobStatus.SUCCEEDED]
    assert all(counts.get(j, 0) >= 1 for j in succeeded), "a succeeded job ran"
    # What ran twice was in flight or just acknowledged when the master died: its ack, or its
    # claim, did not reach the replica. That is at most a few hundred jobs, never the backlog.
    assert twice <= 500, twice
    assert max(counts.values()) <= 2
