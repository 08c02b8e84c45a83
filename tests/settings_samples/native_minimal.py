"""A settings class written for asyncjobs with only names arq shares: read as WorkerSettings."""

from asyncjobs import Context, task


@task
async def hello(ctx: Context) -> str:
    return "hello"


class Settings:
    functions = [hello]
    max_tries = 2


class WithTypo(Settings):
    max_retries = 3  # not a setting: refused for a class written for asyncjobs
