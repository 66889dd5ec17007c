"""Go's time.Time JSON form: RFC 3339 with nanoseconds, trailing zeros trimmed.

Python's isoformat stops at microseconds and never trims, and clients such as ollama-python parse these
strings, so we format them ourselves from integer nanoseconds.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta, timezone


def _format(seconds: int, nanos: int, tz: timezone) -> str:
    dt = datetime.fromtimestamp(seconds, tz)
    frac = f"{nanos:09d}".rstrip("0")
    offset = dt.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        suffix = "Z"
    else:
        total = int(offset.total_seconds())
        sign = "+" if total >= 0 else "-"
        hours, minutes = divmod(abs(total) // 60, 60)
        suffix = f"{sign}{hours:02d}:{minutes:02d}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + suffix


def utc_from_ns(ns: int) -> str:
    """`created_at`: UTC with a `Z`, as Go's time.Now().UTC() marshals. Every streamed chunk carries one, so the
    date and time of day are formatted once per second (what `_format` would write for UTC, byte for byte)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    frac = f"{nanos:09d}".rstrip("0")
    return _utc_seconds(seconds) + (f".{frac}" if frac else "") + "Z"


@functools.lru_cache(maxsize=4)
def _utc_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def local_from_ns(ns: int) -> str:
    """`modified_at`/`expires_at`: local time with its offset, as Go marshals a local time.Time."""
    seconds = ns // 1_000_000_000
    local_tz = datetime.fromtimestamp(seconds).astimezone().tzinfo
    assert isinstance(local_tz, timezone)
    return _format(seconds, ns % 1_000_000_000, local_tz)


def now_utc() -> str:
    return utc_from_ns(time.time_ns())
