"""Logging helpers: job and trace fields on every record of a try, JSON lines, uvicorn.

- ``JobContextFilter``: a handler filter that gives each record emitted while a try runs
  (the task's own records included) ``job_id``, ``task``, ``queue``, ``attempt``, and, when
  OpenTelemetry has a span current, ``trace_id`` and ``span_id`` (W3C hex).
- ``JsonFormatter``: one JSON object per line with those fields (and any other ``extra``), so a
  log shipper needs no parser. ``asyncjobs worker --log-format json`` uses both.
- ``show_under_uvicorn()``: uvicorn configures its own loggers but not the root logger, so
  asyncjobs' INFO records had no handler there; this gives them one like uvicorn's.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timezone
from typing import IO, Any

import orjson

from ._running import CURRENT_TRY
from ._tracing import current_ids

__all__ = [
    "JobContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "show_under_uvicorn",
]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FORMATS = ("text", "json")

#: Attributes every LogRecord has: not "extra" fields.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JobContextFilter(logging.Filter):
    """Adds the running try's fields and the current trace ids to each record (never drops
    one). Fields a record already has (from ``extra``) are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = CURRENT_TRY.get()
        if job is not None and not hasattr(record, "job_id"):
            record.job_id = job.id
            record.task = job.task_name
            record.queue = job.keys.name
            record.attempt = job.attempt
        if not hasattr(record, "trace_id"):
            ids = current_ids()
            if ids is not None:
                record.trace_id, record.span_id = ids
        return True


class TextFormatter(logging.Formatter):
    """``logging.Formatter`` whose default time stamp is rendered once per second, not once per
    record (the worker writes a line per job: strftime was a tenth of its logging cost)."""

    _stamp: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached_second, stamp = self._stamp
        if cached_second != second:
            stamp = time.strftime(self.default_time_format, self.converter(second))
            self._stamp = (second, stamp)  # one assignment: threads never see a torn pair
        msec_format = self.default_msec_format
        return msec_format % (stamp, record.msecs) if msec_format else stamp


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, every extra
    field (job_id, task, queue, attempt, outcome, duration, trace_id, span_id, ...), and the
    exception's traceback as ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(
    level: str | int = "INFO", fmt: str = "text", stream: IO[str] | None = None
) -> None:
    """What ``asyncjobs worker`` does: a handler on the root logger (unless it has one), in
    ``text`` or ``json`` lines, with the job and trace fields of ``JobContextFilter``."""
    if fmt not in FORMATS:
        raise ValueError(f"the log format must be text or json, not {fmt!r}")
    handler = logging.StreamHandler(stream)
    handler.addFilter(JobContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    if isinstance(level, str):
        level = level.upper()
    logging.basicConfig(level=level, handlers=[handler])


def show_under_uvicorn() -> bool:
    """Under uvicorn, give the ``asyncjobs`` loggers a handler like uvicorn's own, unless the
    app configured logging itself (a root handler, or one on ``asyncjobs``). Returns whether
    it added one. ``asyncjobs_lifespan`` calls it."""
    uvicorn = logging.getLogger("uvicorn")
    ours = logging.getLogger("asyncjobs")
    if not uvicorn.handlers or logging.getLogger().handlers or ours.handlers:
        return False
    stream = getattr(uvicorn.handlers[0], "stream", None) or sys.stderr
    handler = logging.StreamHandler(stream)
    formatter: logging.Formatter
    try:
        from uvicorn.logging import DefaultFormatter

        formatter = DefaultFormatter("%(levelprefix)s %(name)s: %(message)s")
    except ImportError:  # pragma: no cover - a logger named uvicorn without uvicorn
        formatter = logging.Formatter("%(levelname)-9s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(JobContextFilter())
    ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
    return True
