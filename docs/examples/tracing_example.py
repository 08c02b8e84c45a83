"""Tracing with OpenTelemetry: the send span of an enqueue, the process span of each try.

pip install 'asyncjobs-redis[otel]' opentelemetry-sdk, then: python docs/examples/tracing_example.py
(runs on the embedded memory:// backend; in production export to your collector instead).
"""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asyncjobs import Context, Queue, Worker, WorkerSettings, task

# The app's SDK, set up once at start-up; asyncjobs uses the global tracer provider.
exporter = InMemorySpanExporter()  # e.g. OTLPSpanExporter() in production
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


@task(max_tries=3, backoff=0)
async def charge(ctx: Context, order: str) -> str:
    if ctx.attempt == 1:
        raise ConnectionError("payment service timed out")  # retried: a second try
    return f"charged {order}"


async def main() -> None:
    url = "memory://tracing-example"
    async with Queue(url) as queue:
        with trace.get_tracer("shop").start_as_current_span("POST /orders"):
            job = await queue.enqueue(charge, "order-42")  # span "send default"
        await Worker(WorkerSettings(redis_url=url, functions=[charge])).run(burst=True)
        print(await job.result(timeout=5))

    spans = {span.context.span_id: span for span in exporter.get_finished_spans()}
    for span in sorted(spans.values(), key=lambda s: s.start_time or 0):
        attributes = span.attributes or {}
        line = f"{span.name:14} {span.kind.name:9} status={span.status.status_code.name}"
        if "asyncjobs.attempt" in attributes:
            line += f" attempt={attributes['asyncjobs.attempt']}"
        for link in span.links:
            line += f" linked to {spans[link.context.span_id].name!r}"
        if span.parent is not None and span.parent.span_id in spans:
            line += f" child of {spans[span.parent.span_id].name!r}"
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
