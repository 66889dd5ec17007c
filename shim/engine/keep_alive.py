"""Ollama's keep_alive: how long a loaded model stays once idle, and when the engine thread must look again.

A request's keep_alive becomes its model's session duration when it starts; the timer restarts then and again
when a request ends, so an idle model counts down from its last request's end (as Ollama's scheduler does).
The engine thread, with nothing to run, sleeps until the soonest expiry: the one bound computed here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from shim.engine.loaded import LoadedModel

LONGEST_WAIT = 3600.0  # seconds the engine loop sleeps at most with no job; it then looks at the timers again


def touch(loaded: LoadedModel, keep_alive: float | None, default: float) -> None:
    """A request arrives: as in Ollama, its keep_alive (None: the server's `default`) becomes the model's
    session duration."""
    loaded.keep_alive = default if keep_alive is None else keep_alive
    restart_timer(loaded)


def restart_timer(loaded: LoadedModel) -> None:
    """The expiry timer restarts when a request starts and when one ends (an idle model then counts
    down from its last request's end)."""
    loaded.last_used = time.monotonic()
    keep = loaded.keep_alive
    loaded.expires_at = time.time() + keep if math.isfinite(keep) else math.inf


def seconds_to_next_expiry(models: Iterable[LoadedModel]) -> float | None:
    """How long the engine thread may sleep before a model's time is up; None: no model ever expires."""
    soonest = min((m.expires_at for m in models), default=math.inf)
    # Bounded: Queue.get's timeout overflows the platform's time_t for a wait of centuries.
    return None if math.isinf(soonest) else min(max(soonest - time.time(), 0.0), LONGEST_WAIT)
