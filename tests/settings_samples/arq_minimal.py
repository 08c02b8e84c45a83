"""arq's own first example after its import lines were changed: read arq-style."""

from asyncjobs.arq import create_pool  # noqa: F401 - an arq project uses the arq layer
from asyncjobs.arq.connections import RedisSettings  # noqa: F401


async def download_content(ctx: dict[str, object], url: str) -> int:
    return len(url)


class WorkerSettings:
    functions = [download_content]
