"""Throughput charts as server-rendered SVG: bars from a queue's per-minute or hourly history.

No chart library and no script: the markup carries only attributes and classes (the stylesheet
colours them), so the strict Content-Security-Policy needs no exception for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

from .._stats import HistoryBucket, HourlyBucket

Bucket = HistoryBucket | HourlyBucket


def _start(bucket: Bucket) -> datetime:
    return bucket.minute if isinstance(bucket, HistoryBucket) else bucket.hour


def _label(bucket: Bucket) -> str:
    fmt = "%H:%M" if isinstance(bucket, HistoryBucket) else "%a %H:00"
    return _start(bucket).strftime(fmt)


def _rect(cls: str, x: float, y: float, width: float, height: float) -> str:
    return (
        f'<rect class="{cls}" x="{round(x, 2)}" y="{round(y, 2)}" '
        f'width="{round(width, 2)}" height="{round(height, 2)}"/>'
    )


def throughput_chart(
    buckets: Sequence[Bucket], *, width: int = 600, height: int = 120, label: str = ""
) -> Markup:
    """Stacked bars per bucket (succeeded, then failed), oldest left, the newest right; each bar
    has a tooltip with its time and counts."""
    top = max((b.succeeded + b.failed for b in buckets), default=0)
    scale = max(top, 1)
    plot = height - 16  # room for the axis labels under the bars
    step = width / max(len(buckets), 1)
    bar = max(step - 1, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(label)}">',
        f'<line class="axis" x1="0" y1="{plot}" x2="{width}" y2="{plot}"/>',
    ]
    for i, b in enumerate(buckets):
        x = round(i * step, 2)
        ok = plot * b.succeeded / scale
        bad = plot * b.failed / scale
        tip = f"{_label(b)} UTC: {b.succeeded} succeeded, {b.failed} failed"
        if b.retried:
            tip += f", {b.retried} retried"
        parts.append(f"<g><title>{escape(tip)}</title>")
        parts.append(_rect("hit", x, 0, bar, plot))
        if ok:
            parts.append(_rect("ok", x, plot - ok, bar, ok))
        if bad:
            parts.append(_rect("bad", x, plot - ok - bad, bar, bad))
        parts.append("</g>")
    if buckets:
        parts.append(f'<text class="tick" x="0" y="{height - 2}">{_label(buckets[0])}</text>')
        parts.append(
            f'<text class="tick" x="{width}" y="{height - 2}" text-anchor="end">'
            f"{_label(buckets[-1])}</text>"
        )
    parts.append(f'<text class="tick" x="2" y="10">{top}</text></svg>')
    return Markup("".join(parts))


def sparkline(buckets: Sequence[Bucket], *, width: int = 120, height: int = 24) -> Markup:
    """A line of what ended per bucket (succeeded + failed), for a row of the overview."""
    values = [b.succeeded + b.failed for b in buckets]
    scale = max(max(values, default=0), 1)
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{round(i * step, 1)},{round(height - 1 - (height - 2) * v / scale, 1)}"
        for i, v in enumerate(values)
    )
    total = sum(values)
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="{total} ended in the last {len(values)} minutes">'
        f'<polyline points="{points}"/></svg>'
    )
