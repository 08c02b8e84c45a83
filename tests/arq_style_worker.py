"""An arq worker module, ported to asyncjobs by changing its imports and nothing else.

Was:
    from arq import cron
    from arq.connections import RedisSettings
    from arq.worker import func
"""

import os

from asyncjobs.arq import RedisSettings, cron, func


async def download_content(ctx, url):
    session = ctx["session"]
    text = f"{session['agent']} fetched {url} on try {ctx['job_try']}"
    await ctx["redis"].enqueue_job("count_words", text, _job_id=f"count:{ctx['job_id']}")
    return len(text)


async def count_words(ctx, text):
    return len(text.split())


async def cleanup(ctx):
    return "cleaned"


async def startup(ctx):
    ctx["session"] = {"agent": "arq-port"}


async def shutdown(ctx):
    ctx["session"] = None


async def job_started(ctx):
    ctx["seen"] = ctx.get("seen", 0) + 1


class WorkerSettings:
    functions = [download_content, func(count_words, timeout=10, max_tries=2)]
    cron_jobs = [cron(cleanup, hour=3, minute=12, weekday="mon")]
    on_startup = startup
    on_shutdown = shutdown
    on_job_start = job_started
    redis_settings = RedisSettings.from_dsn(os.environ.get("ARQ_PORT_REDIS", "redis://localhost"))
    max_jobs = 5
    job_timeout = 60
    keep_result = 3600
    max_tries = 3
    queue_name = "arq:queue"
    poll_delay = 0.5
