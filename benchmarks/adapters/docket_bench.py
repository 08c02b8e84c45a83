"""docket adapter (PyPI ``pydocket``): a task collection for ``docket worker``, and the client side.

Worker: ``docket worker --tasks docket_bench:tasks --url URL [--concurrency C]`` (default docket
name ``docket``, default concurrency 10, INFO logging).
"""

from __future__ import annotations

import inspect
import time
from datetime import timedelta
from typing import Any

from bench_common import Adapter as BaseAdapter
from bench_common import bin_path, count_job, sleep_job, stamp_job
from docket import Docket
from docket.cli import worker as _worker_cli


async def noop() -> None:
    await count_job(time.time())


async def sleeper() -> None:
    await sleep_job(time.time())


async def stamp(i: int) -> None:
    await stamp_job(i, time.time())


async def echo(value: Any) -> Any:
    return value


tasks = [noop, sleeper, stamp, echo]
KINDS = {"noop": noop, "sleep": sleeper, "stamp": stamp}


class Adapter(BaseAdapter):
    name = "docket"
    default_concurrency = int(inspect.signature(_worker_cli).parameters["concurrency"].default)
    batch_api = "Docket.add_many(chunk_size=1000) (pipelined)"
    result_api = "await (await docket.add(fn)(...)).get_result() (pub/sub)"
    burst_args = ("--until-finished",)

    async def open(self, url: str) -> None:
        self.docket = Docket(url=url)
        await self.docket.__aenter__()

    async def close(self) -> None:
        await self.docket.__aexit__(None, None, None)

    async def enqueue(self, kind: str, *args: Any) -> None:
        await self.docket.add(KINDS[kind])(*args)

    async def enqueue_batch(self, kind: str, count: int) -> None:
        fn = KINDS[kind]
        await self.docket.add_many([self.docket.call(fn)() for _ in range(count)])

    async def round_trip(self, i: int) -> Any:
        execution = await self.docket.add(echo)(i)
        return await execution.get_result(timeout=timedelta(seconds=30))

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        # At --concurrency 100 the worker needs more than redis-py 8's default pool of 100
        # connections: with the default it fails with MaxConnectionsError("Too many
        # connections"), backs off 5 s and strands claimed jobs until redelivery (5 min).
        # redis-py reads max_connections from the URL, so the worker gets a larger pool.
        url += ("&" if "?" in url else "?") + "max_connections=1000"
        cmd = [bin_path("docket"), "worker", "--tasks", "docket_bench:tasks", "--url", url]
        return cmd + (["--concurrency", str(concurrency)] if concurrency else [])


if __name__ == "__main__":
    from scenarios import main

    main("docket_bench")
