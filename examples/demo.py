"""asyncjobs end to end: enqueue, process, retry, dead-letter, replay — on the embedded backend.

    python examples/demo.py                              # memory://, no server needed
    python examples/demo.py --redis-url redis://localhost:6379/0

Exits 0 only if every job ended the way the comments below say it should.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from asyncjobs import Context, JobFailed, JobStatus, Queue, Worker, WorkerSettings, task

attempts_seen: dict[str, int] = {}


@task
async def resize(ctx: Context, image: str, width: int) -> str:
    """Succeeds at once, reporting progress on the way."""
    for step in range(1, 5):
        await ctx.progress(step / 4, stage="resize", message=f"pass {step} of 4")
        await asyncio.sleep(0.01)
    return f"{image}@{width}px"


@task(max_tries=3, backoff=0.05)
async def send_email(ctx: Context, to: str) -> str:
    """A flaky mail server: the first two tries fail, the third succeeds."""
    attempts_seen[to] = ctx.attempt
    if ctx.attempt < 3:
        raise ConnectionError(f"SMTP timed out (try {ctx.attempt})")
    return f"sent to {to} on try {ctx.attempt}"


@task(max_tries=5, retry_on=(ConnectionError,))
async def charge(ctx: Context, cents: int) -> str:
    """Bad input is a permanent error: not in retry_on, so it is dead-lettered at once."""
    if cents <= 0:
        raise ValueError(f"cannot charge {cents} cents")
    return f"charged {cents}"


async def main(url: str) -> int:
    settings = WorkerSettings(redis_url=url, functions=[resize, send_email, charge])
    async with Queue(url) as queue:
        worker = Worker(settings)
        running = asyncio.create_task(worker.run(handle_signals=False))

        photo = await queue.enqueue(resize, "cat.png", 640)
        email = await queue.enqueue(send_email, "ada@example.com", _idempotency_key="welcome-ada")
        again = await queue.enqueue(send_email, "ada@example.com", _idempotency_key="welcome-ada")
        refund = await queue.enqueue(charge, -5)
        typo = await queue.enqueue("sned_email", "bob@example.com")  # no such task

        print("resize   ->", await photo.result(timeout=10))
        print("email    ->", await email.result(timeout=10))
        print(f"duplicate enqueue returned the same job: {again.id == email.id}")
        failures = 0
        for job in (refund, typo):
            try:
                await job.result(timeout=10)
            except JobFailed as exc:
                print(
                    f"{(await job.info()).task:8} -> FAILED {exc.error_type}: {exc.error_message}"
                )
                failures += 1

        dead = await queue.dead_letters()
        print(f"dead letters: {[d.task for d in dead]}")
        replayed = await queue.replay_dead_letter(refund.id)
        print(f"replayed {replayed.id}: status {(await replayed.status()).value}, fresh tries")
        try:
            await replayed.result(timeout=10)
        except JobFailed:
            print("  its input is still bad, so it is dead-lettered again (fix the data first)")
        print(f"purged {await queue.purge_dead_letters()} dead letter(s)")

        worker.stop()
        await running

        ok = (
            await photo.status() is JobStatus.SUCCEEDED
            and (await email.info()).attempts == 3
            and again.duplicate
            and failures == 2
            and len(dead) == 2
        )
        print("demo OK" if ok else "demo FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="memory://demo")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise SystemExit(asyncio.run(main(parser.parse_args().redis_url)))
