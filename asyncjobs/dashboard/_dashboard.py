"""The dashboard's shared state: where its Queue comes from, its settings, its templates."""

from __future__ import annotations

import weakref
from asyncio import AbstractEventLoop, get_running_loop
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .._presence import package_version
from .._queue import Queue
from . import _format

HERE = Path(__file__).parent


class QueueSource:
    """The Queue every page reads: the one given, or one per event loop opened from a URL
    (a redis-py connection belongs to the loop that made it)."""

    def __init__(self, url_or_queue: str | Queue | None, prefix: str) -> None:
        self._given = url_or_queue if isinstance(url_or_queue, Queue) else None
        self._url = None if isinstance(url_or_queue, Queue) else url_or_queue
        self._prefix = prefix
        self._opened: weakref.WeakKeyDictionary[AbstractEventLoop, Queue] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> Queue:
        if self._given is not None:
            return self._given
        loop = get_running_loop()
        queue = self._opened.get(loop)
        if queue is None:
            queue = self._opened[loop] = Queue(self._url, prefix=self._prefix)
        return queue

    async def aclose(self) -> None:
        """Close the Queues this source opened (``asyncjobs dashboard`` does, at shutdown)."""
        opened, self._opened = list(self._opened.values()), weakref.WeakKeyDictionary()
        for queue in opened:
            await queue.aclose()


class Dashboard:
    """What every page and action shares: the data source, the settings, the templates."""

    def __init__(
        self,
        source: QueueSource,
        *,
        read_only: bool,
        title: str,
        show_arguments: bool,
        trusted_origins: Collection[str],
        refresh_seconds: float,
    ) -> None:
        self.source = source
        self.read_only = read_only
        self.title = title
        self.show_arguments = show_arguments
        self.trusted_origins = frozenset(o.rstrip("/") for o in trusted_origins)
        self.refresh_seconds = refresh_seconds
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(_format.FILTERS)
        self.version = package_version()

    @property
    def queue(self) -> Queue:
        return self.source.get()

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        notice = request.cookies.get(NOTICE_COOKIE)
        page = self.templates.get_template(template).render(
            root=root,
            notice=unquote(notice) if notice else None,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            title=self.title,
            writable=not self.read_only,
            version=self.version,
            refresh_ms=int(self.refresh_seconds * 1000),
            **context,
        )
        response = HTMLResponse(page, status_code, headers={"Cache-Control": "no-store"})
        if notice is not None:
            response.delete_cookie(NOTICE_COOKIE, path=root or "/")
        return response


#: The cookie that carries an action's outcome to the page it redirects to, shown once. (Not
#: a URL parameter: a link from elsewhere could then put any words on the dashboard.)
NOTICE_COOKIE = "asyncjobs_notice"


def set_notice(request: Request, response: Response, notice: str) -> None:
    response.set_cookie(
        NOTICE_COOKIE,
        quote(notice),
        max_age=60,
        path=request.scope.get("root_path", "") or "/",
        httponly=True,
        samesite="strict",
    )
