"""Settings of the tracing tests' worker subprocess: `asyncjobs worker tests.otel_worker:settings`.

At import it installs an OpenTelemetry SDK whose spans are written, one JSON object per line,
to the file ``$ASYNCJOBS_TEST_SPANS`` as each ends; ``$ASYNCJOBS_TEST_INSTRUMENT_REDIS=1``
also instruments redis-py; ``$ASYNCJOBS_TEST_TRACE_PARENT`` picks link or child.
"""

from __future__ import annotations

import os
from typing import Literal, cast

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from asyncjobs import WorkerSettings

from .otel_tasks import add, broken, flaky, follow_up, own_redis_call, retry_once

_spans = open(os.environ["ASYNCJOBS_TEST_SPANS"], "a", buffering=1)  # noqa: SIM115 - lives as long as the process


def _line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


provider = TracerProvider(resource=Resource({"service.name": "test-worker"}))
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=_spans, formatter=_line)))
trace.set_tracer_provider(provider)

if os.environ.get("ASYNCJOBS_TEST_INSTRUMENT_REDIS") == "1":
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument()

_parent = cast(Literal["link", "child"], os.environ.get("ASYNCJOBS_TEST_TRACE_PARENT", "link"))
settings = WorkerSettings(
    functions=[flaky, retry_once, broken, add, follow_up, own_redis_call],
    trace_parent=_parent,
    lease_seconds=1.0,
)
