"""create_dashboard(): the dashboard as one Starlette app, to mount into the user's app.

It needs no lifespan (a mounted app's lifespan never runs): given a URL, it opens its Queue on
the first request of each event loop; given a Queue, it uses that one and never closes it.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import _defaults
from .._queue import Queue
from . import _actions, _pages
from ._dashboard import HERE, Dashboard, QueueSource
from ._security import SecurityHeaders


def create_dashboard(
    url_or_queue: str | Queue | None = None,
    read_only: bool = False,
    *,
    prefix: str = _defaults.PREFIX,
    title: str = "asyncjobs",
    show_arguments: bool = True,
    trusted_origins: Collection[str] = (),
    refresh_seconds: float = 2.0,
) -> Starlette:
    """The dashboard as an ASGI app: ``app.mount("/admin/jobs", create_dashboard(url))``.

    Args:
        url_or_queue: a Redis URL (default ``$ASYNCJOBS_REDIS_URL``, then
            ``redis://localhost:6379/0``), or a Queue to read through (yours stays yours: the
            dashboard never closes it; pass one for ``memory://``).
        read_only: show no buttons and refuse every write (403).
        prefix: the key prefix of the queues to show (a given Queue's own is used instead).
        title: the name in the page header and the browser tab.
        show_arguments: show jobs' arguments and results (off: they may hold personal data).
        trusted_origins: other origins (``https://admin.example.com``) whose pages may post
            to the dashboard, for a proxy that serves it under another name.
        refresh_seconds: how often the live parts of a page (counts, charts) refresh.

    Authentication is the host app's: mount it behind your own middleware (docs/dashboard.md).
    """
    if refresh_seconds <= 0:
        raise ValueError("refresh_seconds must be > 0")
    source = QueueSource(url_or_queue, prefix)
    dashboard = Dashboard(
        source,
        read_only=read_only,
        title=title,
        show_arguments=show_arguments,
        trusted_origins=trusted_origins,
        refresh_seconds=refresh_seconds,
    )
    routes: list[Route | Mount] = [
        *_actions.routes(dashboard),
        *_pages.routes(dashboard),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers=_pages.exception_handlers(dashboard),
    )
    app.state.asyncjobs_dashboard = dashboard
    return app
