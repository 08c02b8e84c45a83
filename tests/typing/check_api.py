"""Type-checked (mypy --strict), never run: pins what the typed API accepts and rejects."""

from __future__ import annotations

from asyncjobs import Context, Job, Queue, Signature, chain, task


@task
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


async def uses(queue: Queue) -> None:
    job: Job[int] = await queue.enqueue(add, 1, 2)
    total: int = await job.result()
    sig: Signature[int] = add.si(1, 2)
    add.si("one", 2)  # type: ignore[arg-type]
    add.si(1)  # type: ignore[call-arg]
    await queue.enqueue(chain(sig, add.s(3)))
    direct: int = await add(None, 1, 2)
    del total, direct
