"""A burst of requests for one model starts together, in one prefill group.

Requests that arrive together (a client's parallel calls, an agent's fan-out) reach the engine one
preparation at a time; admitted as they come, each few would join the batch as its own prefill group between
decode steps, and mlx-lm's BatchGenerator pays for every such join (measured in-process on an H100, 16 prompts
of 64 tokens on a 0.5B model: 2,000 tok/s inserted at once, 1,300-1,700 in joins of 1-5, whose steps take
40-110 ms instead of 17-27). So a prepared completion waits while other requests for its model are still
being prepared, up to HOLD_SECONDS and at most a batch (the prefill then takes as many of them side by side as
one slice finishes: prefill.pace). A lone request never waits: nothing else of its model is being prepared.
"""

from __future__ import annotations

import collections
import time

from shim.engine.loaded import model_key
from shim.engine.prep_pool import PrepPool

HOLD_SECONDS = 0.025  # the longest a prepared request waits for the rest of its burst


class BurstHold:
    """Which models' prepared completions wait this engine turn, decided once per turn (so a burst's jobs start
    together and in order), and how long the engine may sleep before one must start."""

    def __init__(self, group: int) -> None:
        self.group = group  # a burst this large starts at once
        self._since: dict[str, float] = {}  # model key -> when its first prepared job was held

    def decide(self, prep: PrepPool) -> set[str]:
        """The model keys whose prepared completions wait this turn."""
        jobs = prep.jobs()
        if not jobs:  # nothing is being prepared (a decode step's usual turn): nothing waits
            self._since.clear()
            return set()
        completions = [job for job in jobs if job.work is None]
        preparing: set[str] = set()
        ready: collections.Counter[str] = collections.Counter()
        for job in completions:
            key = model_key(job.stored)
            if prep.ready(job):
                ready[key] += 1
            else:
                preparing.add(key)
        now, hold = time.monotonic(), set()
        for key in list(self._since):
            if key not in preparing or not ready[key]:
                del self._since[key]
        for key in preparing & set(ready):
            since = self._since.setdefault(key, now)
            if now - since < HOLD_SECONDS and ready[key] < self.group:
                hold.add(key)
            else:
                del self._since[key]  # this group starts; what is still being prepared makes the next one
        return hold

    def seconds_left(self) -> float | None:
        """Seconds until the longest-held burst must start (None: none held)."""
        if not self._since:
            return None
        return max(min(self._since.values()) + HOLD_SECONDS - time.monotonic(), 0.0)
