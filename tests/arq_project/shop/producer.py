"""The web side of the shop: enqueue jobs, then read their outcomes."""

import os

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job, JobStatus


async def connect():
    return await create_pool(RedisSettings.from_dsn(os.environ["SHOP_REDIS"]))


async def place_orders():
    redis = await connect()
    download = await redis.enqueue_job("download", "https://example.com/a")
    flaky = await redis.enqueue_job("flaky")
    charge = await redis.enqueue_job("charge", 42)
    again = await redis.enqueue_job("flaky", _job_id=flaky.job_id)
    statuses = [await job.status() for job in (download, flaky, charge)]
    await redis.close()
    return {"download": download.job_id, "flaky": flaky.job_id, "charge": charge.job_id}, {
        "duplicate": again,
        "queued": all(s == JobStatus.queued for s in statuses),
    }


async def outcomes(ids):
    redis = await connect()
    try:
        download = await Job(ids["download"], redis).result(timeout=10)
        words = await Job(download["follow_up"], redis).result(timeout=10)
        flaky = await Job(ids["flaky"], redis).result(timeout=10)
        try:
            await Job(ids["charge"], redis).result(timeout=10)
            declined = None
        except ValueError as exc:
            declined = str(exc)
        return {
            "download": download,
            "words": words,
            "flaky": flaky,
            "declined": declined,
            "charge_status": await Job(ids["charge"], redis).status(),
            "charge_attempts": await redis.get("shop:charge_attempts"),
            "downloads": await redis.lrange("shop:downloads", 0, -1),
            "ended": set(await redis.lrange("shop:ended", 0, -1)),
            "report": await redis.get("shop:report"),
            "started": await redis.get("shop:started"),
            "stopped": await redis.get("shop:stopped"),
        }
    finally:
        await redis.close()
