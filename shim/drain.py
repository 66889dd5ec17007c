"""A graceful stop: on SIGTERM/SIGINT the server stops accepting connections (hypercorn's shutdown trigger), the
requests already running get a grace period to finish, and then the engine ends each one that is left with
"server is shutting down": as an error line or event in a stream already under way (the adapters' path for an
engine error after the first chunk), as a 503 error body for one not yet answered or still queued."""

from __future__ import annotations

import asyncio
import logging
import time

from shim.access_log import RequestCounters
from shim.service import ModelBackend

log = logging.getLogger("mlx_shim")


class Drain:
    def __init__(self, engine: ModelBackend, counters: RequestCounters, grace_seconds: float) -> None:
        self.engine = engine
        self.counters = counters
        self.grace_seconds = grace_seconds
        self.stop = asyncio.Event()  # hypercorn's shutdown trigger
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        """The signal handler: the first signal starts the drain; a second one changes nothing."""
        if self._task is None:
            self.stop.set()
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        running = self.counters.in_flight
        log.info("stopping: no new connections; %d requests running get %g s to finish", running, self.grace_seconds)
        deadline = time.monotonic() + self.grace_seconds
        while self.counters.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.counters.in_flight:
            log.info("stopping: ending %d requests still running", self.counters.in_flight)
        await asyncio.to_thread(self.engine.stop)
