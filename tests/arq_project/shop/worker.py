"""The worker of a small arq shop: downloads, a flaky call, a card charge, a nightly report."""

import os
import pickle
from datetime import datetime
from zoneinfo import ZoneInfo

from arq import Retry, cron
from arq.connections import RedisSettings
from arq.worker import func


async def startup(ctx):
    ctx["greeting"] = "hello"
    await ctx["redis"].set("shop:started", "1")


async def shutdown(ctx):
    await ctx["redis"].set("shop:stopped", ctx["greeting"])


async def download(ctx, url):
    await ctx["redis"].lpush("shop:downloads", url)
    follow = await ctx["redis"].enqueue_job(
        "count_words", f"{ctx['greeting']} from {url}", _job_id=f"count:{ctx['job_id']}"
    )
    return {"url": url, "follow_up": follow.job_id, "try": ctx["job_try"]}


async def count_words(ctx, text):
    return len(text.split())


async def flaky(ctx):
    if ctx["job_try"] < 2:
        raise Retry(defer=0.2)
    return ctx["job_try"]


async def charge(ctx, amount):
    await ctx["redis"].incr("shop:charge_attempts")
    raise ValueError(f"card declined for {amount}")


async def nightly_report(ctx):
    now = datetime.now(ZoneInfo("Europe/Paris"))
    await ctx["redis"].set("shop:report", now.isoformat())


async def record_end(ctx):
    await ctx["redis"].rpush("shop:ended", ctx["job_id"])


class WorkerSettings:
    functions = [download, func(count_words, timeout=10), flaky, charge]
    cron_jobs = [cron(nightly_report, hour=2, minute=30, run_at_startup=True)]
    on_startup = startup
    on_shutdown = shutdown
    after_job_end = record_end
    redis_settings = RedisSettings.from_dsn(os.environ["SHOP_REDIS"])
    timezone = ZoneInfo("Europe/Paris")
    burst = True
    max_jobs = 4
    poll_delay = 0.1
    job_serializer = pickle.dumps
    job_deserializer = pickle.loads
    max_retries = 3  # not an arq setting: arq drops it silently

    @classmethod
    def describe(cls):
        return f"{len(cls.functions)} functions"
