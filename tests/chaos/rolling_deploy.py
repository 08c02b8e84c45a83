"""Run by hand: old and new workers side by side on one queue, as in a rolling deploy.

    python -m tests.chaos.rolling_deploy [OLD_REV] [--jobs N]

Takes ``git archive OLD_REV asyncjobs`` (default: the commit before the store layer) into a
temporary folder, starts a redis-server, one worker of each version on the same queue, and
producers of both versions that enqueue plain jobs, retried jobs and chains first; half a
second into the drain it kills the old worker with SIGKILL (the new one recovers its jobs).
Every job must end SUCCEEDED, and each task body's runs are counted in Redis: a job may run
twice only if its worker was killed while it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from asyncjobs import Queue

from ..redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent.parent
QUEUE = "rolling"

TASKS = """
import asyncio
from asyncjobs import WorkerSettings, task

@task
async def record(ctx, n):
    await ctx.queue.client.hincrby("rolling:runs", ctx.job_id, 1)
    await asyncio.sleep(0.01)
    return n

@task(max_tries=3, backoff=0)
async def flaky(ctx, n):
    await ctx.queue.client.hincrby("rolling:runs", ctx.job_id, 1)
    if ctx.attempt == 1:
        raise ConnectionError("first try fails")
    return n

@task
async def step(ctx, previous, n):
    await ctx.queue.client.hincrby("rolling:runs", ctx.job_id, 1)
    return previous + n

settings = WorkerSettings(functions=[record, flaky, step], queues=["rolling"],
                          concurrency=20, lease_seconds=1.0)
"""

PRODUCER = """
import asyncio, json, sys
from asyncjobs import Queue, chain
from rolling_tasks import record, flaky, step

async def main(url, tag, count):
    ids = []
    async with Queue(url, name="rolling") as queue:
        for i in range(count):
            kind = i % 3
            if kind == 0:
                job = await queue.enqueue(record, i, _job_id=f"{tag}-r{i}")
            elif kind == 1:
                job = await queue.enqueue(flaky, i, _job_id=f"{tag}-f{i}")
            else:
                job = await queue.enqueue(chain(record.s(i), step.s(1), step.s(2)))
            ids.append(job.id)
    print(json.dumps(ids))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def extract(rev: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", rev, "asyncjobs"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def env_for(code: Path, tasks: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{tasks}"}


async def run(old_rev: str, jobs: int) -> int:
    with tempfile.TemporaryDirectory(prefix="asyncjobs-rolling-") as tmp:
        base = Path(tmp)
        old = base / "old"
        extract(old_rev, old)
        tasks = base / "tasks"
        tasks.mkdir()
        (tasks / "rolling_tasks.py").write_text(TASKS)
        (tasks / "produce.py").write_text(PRODUCER)
        server = RedisServer().start()
        workers: list[subprocess.Popen[bytes]] = []
        try:
            produced: list[str] = []
            for tag, code in (("old", old), ("new", ROOT)):
                out = subprocess.run(
                    [sys.executable, str(tasks / "produce.py"), server.url, tag, str(jobs // 2)],
                    env=env_for(code, tasks),
                    cwd=base,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                produced += json.loads(out.stdout)
            for code in (old, ROOT):
                log = (base / f"{code.name}.log").open("wb")
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "asyncjobs", "worker", "rolling_tasks:settings"]
                        + ["--redis-url", server.url, "--log-level", "WARNING"],
                        env=env_for(code, tasks),
                        cwd=base,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                    )
                )
            await asyncio.sleep(0.5)
            os.kill(workers[0].pid, signal.SIGKILL)  # the old worker dies mid-drain
            workers[0].wait()
            async with Queue(server.url, name=QUEUE) as queue:
                deadline = time.monotonic() + 120
                pending = list(produced)
                while pending and time.monotonic() < deadline:
                    statuses = [await queue.job(j).status() for j in pending]
                    pending = [
                        j for j, s in zip(pending, statuses, strict=True) if s.value != "succeeded"
                    ]
                    await asyncio.sleep(0.5)
                runs = {
                    k.decode(): int(v)
                    for k, v in (await queue.client.hgetall("rolling:runs")).items()
                }
            doubled = sum(1 for v in runs.values() if v > 2)
            print(
                f"old={old_rev} jobs={len(produced)} not_succeeded={len(pending)} "
                f"bodies_run={sum(runs.values())} ran_more_than_twice={doubled}"
            )
            return 1 if pending else 0
        finally:
            for proc in workers:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old_rev", nargs="?", default="39e2c91")
    parser.add_argument("--jobs", type=int, default=3000)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.old_rev, args.jobs)))


if __name__ == "__main__":
    main()
