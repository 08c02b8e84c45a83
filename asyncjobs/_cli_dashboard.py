"""`asyncjobs dashboard`: serve the web dashboard on its own, with uvicorn (docs/dashboard.md)."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import typer

from ._cli_common import PrefixOption, RedisUrlOption, fail, resolve_prefix, resolve_url


def dashboard(
    redis_url: str | None = RedisUrlOption,
    prefix: str | None = PrefixOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on (0: any free port)."),
    read_only: bool = typer.Option(
        False, "--read-only", help="Show no buttons and refuse every write."
    ),
) -> None:
    """Serve the web dashboard (every queue, jobs, dead letters, workers, cron) on its own.

    It has no login of its own: keep it on 127.0.0.1 (the default) and reach it through an SSH
    tunnel, or mount create_dashboard() into your app behind its authentication.

    Example: asyncjobs dashboard --port 8080 --read-only
    """
    try:
        import uvicorn

        from .dashboard import create_dashboard
    except ImportError as exc:
        fail(
            f"asyncjobs dashboard needs {exc.name or exc}: "
            "pip install 'asyncjobs-redis[dashboard]'",
            2,
        )
    app = create_dashboard(resolve_url(redis_url), read_only, prefix=resolve_prefix(prefix))

    listening = _bind(host, port)
    address: Any = listening.getsockname()
    where = f"[{address[0]}]" if listening.family == socket.AF_INET6 else address[0]
    url = f"http://{where}:{address[1]}/"

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                mode = " (read-only)" if read_only else ""
                typer.echo(f"asyncjobs dashboard{mode}: {url}")
                sys.stdout.flush()  # a pipe (a supervisor, a test) sees it at once

    server = Server(uvicorn.Config(app, log_level="warning", lifespan="off"))

    async def serve() -> None:
        try:
            await server.serve(sockets=[listening])
        finally:
            await app.state.asyncjobs_dashboard.source.aclose()

    asyncio.run(serve())


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is one clear line (and --port 0
    tells its port before the server starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        fail(f"could not listen on {host}:{port}: {exc.strerror or exc}; pick another --port")
    return listening
