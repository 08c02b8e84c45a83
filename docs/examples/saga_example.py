"""A saga: book a trip in three steps; when one fails, undo the ones that succeeded, newest
first. Runs as it is on the embedded backend (no Redis server needed).

python docs/examples/saga_example.py
"""

from __future__ import annotations

import asyncio

from asyncjobs import (
    Context,
    JobFailed,
    Queue,
    Worker,
    WorkerSettings,
    WorkflowFailure,
    chain,
    group,
    task,
)

log: list[str] = []  # what happened, in order (stands for the outside world)


# The steps: each returns what its compensation needs to undo it.
@task
async def book_flight(ctx: Context, trip: str) -> str:
    log.append(f"flight booked for {trip}")
    return f"FL-{trip}"


@task
async def book_hotel(ctx: Context, trip: str) -> str:
    log.append(f"hotel booked for {trip}")
    return f"HT-{trip}"


@task(max_tries=1)
async def charge_card(ctx: Context, trip: str) -> str:
    raise ValueError("card declined")


# The compensations: idempotent, since a retry of the undo may call one again.
@task
async def cancel_flight(ctx: Context, booking: str) -> None:
    log.append(f"flight {booking} cancelled")


@task
async def cancel_hotel(ctx: Context, booking: str) -> None:
    log.append(f"hotel {booking} cancelled")


@task
async def refund_card(ctx: Context, charge: str) -> None:
    log.append(f"charge {charge} refunded")


UNDO = {"book_flight": cancel_flight, "book_hotel": cancel_hotel, "charge_card": refund_card}


@task(max_tries=5)
async def undo_trip(ctx: Context, failure: WorkflowFailure, trip: str) -> list[str]:
    """The error callback: undo every step that succeeded, newest first. A checkpoint after
    each one, so a retry of this job does not undo a step twice."""
    log.append(f"{failure.task} failed ({failure.error_message}): undoing {trip}")
    steps = list(reversed(failure.succeeded))
    done = ctx.last_checkpoint or 0
    for i, step in enumerate(steps[done:], start=done):
        result = await ctx.queue.job(step.job_id).result(timeout=10)
        await UNDO[step.task](ctx, result)
        await ctx.checkpoint(i + 1)
    return [step.task for step in steps]


# Nesting: each node's callback hears of a failure inside it, innermost first.
@task
async def alert(ctx: Context, failure: WorkflowFailure, team: str) -> None:
    log.append(f"{team} alerted: {failure.task} failed")


TASKS = [book_flight, book_hotel, charge_card, cancel_flight, cancel_hotel, refund_card]
TASKS += [undo_trip, alert]


async def main() -> None:
    url = "memory://saga"
    async with Queue(url) as queue:
        worker = Worker(WorkerSettings(redis_url=url, functions=TASKS))
        running = asyncio.create_task(worker.run(handle_signals=False))

        trip = chain(book_flight.si("t1"), book_hotel.si("t1"), charge_card.si("t1"))
        job = await queue.enqueue(trip.on_error(undo_trip.s("t1")))
        try:
            await job.result(timeout=10)
        except JobFailed as exc:
            print("trip failed:", exc.error_message)
        undone = await queue.job(f"{job.id}.on_error.0").result(timeout=10)
        print("undone, newest first:", undone)

        payment = chain(charge_card.si("t2")).on_error(alert.s("payments"))
        nested = group(book_hotel.si("t2"), payment).on_error(alert.s("travel"))
        job = await queue.enqueue(nested)
        try:
            await job.result(timeout=10)
        except JobFailed:
            for k in (0, 1):  # payments (the inner node) first, then travel
                await queue.job(f"{job.id}.on_error.{k}").result(timeout=10)

        worker.stop()
        await running
    print(*log, sep="\n")


if __name__ == "__main__":
    asyncio.run(main())
