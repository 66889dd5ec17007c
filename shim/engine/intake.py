"""The job queue from the event loop to the engine thread, and Ollama's bound on it.

Handlers put jobs from the event loop; only the engine thread takes them. OLLAMA_MAX_QUEUE counts a job from
its submission until it starts (or ends without starting), so the count is kept here, under a lock both sides
take, and the refusals (queue full, engine stopping) happen before a job is queued: the client gets its 503
at once and the engine thread never sees the job.
"""

from __future__ import annotations

import collections
import queue
import threading

from shim.engine.jobs import WAKE, Job, Wake
from shim.errors import Kind, ShimError

SERVER_BUSY = "server busy, please try again.  maximum pending requests exceeded"  # two spaces, as Ollama
SHUTTING_DOWN = "server is shutting down"  # the error each request still running or queued at a stop ends with


class JobIntake:
    """New jobs, wake-ups and the stop, in arrival order; `pending` counts jobs submitted and not yet started."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.queue: queue.Queue[Job | Wake | None] = queue.Queue()  # None: stop
        self.pending = 0
        self._lock = threading.Lock()
        self._stopping = False

    def submit(self, job: Job) -> None:
        """Queue the job; raises ShimError (Kind.BUSY) when the queue is full or the engine is stopping."""
        with self._lock:
            if self._stopping:
                raise ShimError(SHUTTING_DOWN, Kind.BUSY)
            if self.pending >= self.max_queue:
                raise ShimError(SERVER_BUSY, Kind.BUSY)
            self.pending += 1
        self.queue.put(job)

    def started(self) -> None:
        """A submitted job has started or ended: it no longer counts against the queue's bound."""
        with self._lock:
            self.pending -= 1

    def wake(self) -> None:
        """Wake the engine thread without a job (from any thread)."""
        self.queue.put(WAKE)

    def stop(self) -> None:
        """Refuse new jobs from now on, and tell the engine thread to stop once it has taken those before."""
        self._stopping = True
        self.queue.put(None)

    def take(self, into: collections.deque[Job], timeout: float | None, *, block: bool) -> bool:
        """Append every queued job to `into`; with `block`, wait up to `timeout` seconds (None: forever) for
        the first thing to arrive (a job, a wake-up or the stop). False: the stop was taken."""
        while True:
            try:
                if block:
                    job = self.queue.get(timeout=timeout)
                    block = False
                else:
                    job = self.queue.get_nowait()
            except queue.Empty:
                return True
            if job is None:
                return False
            if isinstance(job, Job):  # not WAKE
                into.append(job)
