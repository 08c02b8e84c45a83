"""How the pages write times, durations, values and URLs (Jinja filters)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote


def when(moment: datetime | None) -> str:
    """``2026-12-01 23:08:15 UTC``, or ``-``."""
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime | None) -> str:
    """``5s ago`` / ``in 3m``: how far from now, in the largest unit that fits."""
    if moment is None:
        return "-"
    seconds = (moment - datetime.now(timezone.utc)).total_seconds()
    n = abs(seconds)
    text = f"{n:.0f}s" if n < 120 else f"{n / 60:.0f}m" if n < 7200 else f"{n / 3600:.0f}h"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def pretty(value: Any) -> str:
    """A job's arguments or result as indented JSON (what cannot be JSON, as its repr)."""
    return json.dumps(value, indent=2, sort_keys=True, default=repr, ensure_ascii=False)


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


def number(n: int) -> str:
    return f"{n:,}"


def segment(text: str) -> str:
    """A queue name or job id as one URL path segment."""
    return quote(text, safe="")


FILTERS = {
    "when": when,
    "ago": ago,
    "pretty": pretty,
    "percent": percent,
    "number": number,
    "segment": segment,
}
