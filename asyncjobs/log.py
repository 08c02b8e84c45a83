"""Logging helpers: job and trace fields on every record of a try, JSON lines, uvicorn.

- ``JobContextFilter``: a handler filter that gives each record emitted while a try runs
  (the task's own records included) ``job_id``, ``task``, ``queue``, ``attempt``, and, when
  OpenTelemetry has a span current, ``trace_id`` and ``span_id`` (W3C hex).
- ``JsonFormatter``: one JSON object per line with those fields (and any other ``extra``), so a
  log shipper needs no parser. ``asyncjobs worker --log-format json`` uses both.
- ``LineBatchingHandler``: the worker's handler; its per-job success lines are written once per
  pass of the event loop, not once each (every other line at once).
- ``show_under_uvicorn()``: uvicorn configures its own loggers but not the root logger, so
  asyncjobs' INFO records had no handler there; this gives them one like uvicorn's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from datetime import datetime, timezone
from typing import IO, Any

import orjson

from ._running import CURRENT_TRY
from ._tracing import current_ids

__all__ = [
    "JobContextFilter",
    "JsonFormatter",
    "LineBatchingHandler",
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


if sys.version_info >= (3, 13):  # pragma: no cover - exercised on 3.13+

    def _record_time() -> tuple[float, float]:
        """``created`` and ``msecs`` as LogRecord sets them (from time_ns since 3.13)."""
        ns = time.time_ns()
        created = ns / 1e9
        msecs = (ns % 1_000_000_000) // 1_000_000 + 0.0
        if msecs == 999.0 and int(created) != ns // 1_000_000_000:
            msecs = 0.0
        return created, msecs

else:

    def _record_time() -> tuple[float, float]:
        """``created`` and ``msecs`` as LogRecord sets them."""
        created = time.time()
        return created, int((created - int(created)) * 1000) + 0.0


class CallSite:
    """The records of one fixed logging call, as ``Logger.makeRecord`` makes them (the same
    attributes and values), from a template made once per thread: LogRecord's constructor
    looks up the file, module, thread and process names for every record, which was two
    thirds of what the worker's per-job line cost to make. A custom record factory
    (``logging.setLogRecordFactory``) is always used as it is."""

    def __init__(
        self, logger: logging.Logger, level: int, msg: str, func: Any, *, batched: bool = False
    ) -> None:
        self.logger, self.level, self.msg = logger, level, msg
        if batched:  # a LineBatchingHandler may write its lines at the end of the loop's pass
            _BATCHED.add(msg)
        code = func.__code__
        self._where = (code.co_filename, code.co_firstlineno, code.co_name)
        self._templates: dict[int, dict[str, Any]] = {}
        os.register_at_fork(after_in_child=self._templates.clear)  # a new process id

    def _made(self, args: tuple[Any, ...], extra: dict[str, Any] | None) -> logging.LogRecord:
        path, line, name = self._where
        return self.logger.makeRecord(
            self.logger.name, self.level, path, line, self.msg, args, None, name, extra
        )

    def record(self, args: tuple[Any, ...], extra: dict[str, Any]) -> logging.LogRecord:
        if logging.getLogRecordFactory() is not logging.LogRecord:
            return self._made(args, extra)
        template = self._templates.get(threading.get_ident())
        if template is None:
            template = vars(self._made((), None)).copy()
            self._templates[threading.get_ident()] = template
        record = _new_record(logging.LogRecord)
        fields = record.__dict__
        fields.update(template)
        created, fields["msecs"] = _record_time()
        fields["created"] = created
        fields["relativeCreated"] = (
            template["relativeCreated"] + (created - template["created"]) * 1000
        )
        fields["args"] = args
        if "taskName" in template:  # 3.12+: the asyncio task's name, as LogRecord finds it
            fields["taskName"] = _task_name()
        fields.update(extra)
        return record

    def log(self, args: tuple[Any, ...], extra: dict[str, Any]) -> None:
        """Emit one record, as ``logger.log(level, msg, *args, extra=extra)`` would."""
        if self.logger.isEnabledFor(self.level):
            self.logger.handle(self.record(args, extra))


_new_record = object.__new__

#: The messages of the CallSites made with ``batched=True``.
_BATCHED: set[str] = set()


class LineBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes the worker's per-job success lines of one pass of the event
    loop in one write (a write per line was a system call per job) and every other line at
    once, behind those, in order. A task's own lines never wait: the last line before a loop
    that hangs is still the last line written. ``asyncjobs worker`` logs through it."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self._held: list[str] = []
        self._last: logging.LogRecord | None = None  # of the held lines, for handleError
        self._write_on: asyncio.AbstractEventLoop | None = None  # the loop a write is due on

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._held.append(self.format(record) + self.terminator)
            if record.msg in _BATCHED and self._write_soon():
                self._last = record
                return
            self._write()
        except RecursionError:  # as StreamHandler.emit
            raise
        except Exception:
            self.handleError(record)

    def _write_soon(self) -> bool:
        """Whether the held lines will be written at the end of this thread's loop pass."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._write_on is None:
            loop.call_soon(self._write_held)
            self._write_on = loop
        return self._write_on is loop

    def _write_held(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_on = None
            try:
                self._write()
            except Exception:
                if self._last is not None:
                    self.handleError(self._last)

    def _write(self) -> None:
        if self._held:
            text = "".join(self._held)
            self._held.clear()
            self.stream.write(text)
        if hasattr(self.stream, "flush"):
            self.stream.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()


def _task_name() -> str | None:
    if not logging.logAsyncioTasks:  # type: ignore[attr-defined,unused-ignore]
        return None
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        return None
    return None if task is None else task.get_name()


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
    handler = LineBatchingHandler(stream)
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
