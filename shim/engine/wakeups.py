"""How the engine thread wakes the event loop for streamed pieces: paced per stream, and sent once per step.

Every wake-up costs the event loop a pass through the whole stream (the job's channel, the adapters, the
writer, the ASGI middlewares, h11, a socket write), and that Python holds the GIL the engine thread needs to
build the next step. So a stream is woken at most once per `interval`: 16 ms (BATCH_INTERVAL, a 60 Hz
display's frame: text that often reads as a smooth stream) while up to 16 streams run, longer as more do, so
the loop's wake-ups stay near a thousand a second in all (each stream gets a few tokens at a time; the first
piece and the end always go at once). A GPU decoding a small model alone makes a token every 4 ms or so
(Qwen2.5-0.5B on an H100), and the Python building its steps is the limit there: each of the loop's passes
takes that thread's GIL for a fraction of a ms. On two CPU cores (tiny model, 512-token prompt, 256 tokens)
a single stream decoded at 0.98x of in-process mlx-lm woken every 8 ms, at 1.04x every 16 ms (2.81 and 2.50
CPU ms per token).
And the wake-ups one engine step makes (one per stream that got a token) go to the loop in one
`call_soon_threadsafe`, one write to its self-pipe instead of one per stream.

A lone stream's first piece is handed over: the engine thread waits, the GIL released, until the loop has
written it (HANDOVER at most). Otherwise the loop, woken while the engine thread builds the next step's graph in
Python (a few ms on a 24-layer model), waits for the GIL until that build ends, and again at each of its
passes on the way to the socket: the first token reaches the client that much later than it was made. The
wait costs the GPU nothing, it runs the step already queued meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

BATCH_INTERVAL = 0.016  # seconds between a stream's wake-ups, at least
PER_STREAM = 0.001  # seconds of every stream's interval per running stream, past sixteen
HANDOVER = 0.003  # seconds the engine thread waits, at most, for the loop to write a first piece

Call = tuple[Callable[[], None], float]  # a callback and the delay after which the loop runs it


class Wakeups:
    """One per engine: the pace its jobs wake the loop at, and the wake-ups held during a step."""

    def __init__(self) -> None:
        self.interval = BATCH_INTERVAL
        self._held: dict[asyncio.AbstractEventLoop, list[Call]] | None = None
        self._holder = 0  # the thread whose calls are held (the engine thread, inside `step`)
        self._handovers: list[threading.Event] = []  # set once the held first pieces are written
        self._handing = False  # this step hands its first pieces over

    def pace(self, streams: int) -> None:
        """`streams` sequences are running: set each one's interval between wake-ups."""
        self.interval = max(BATCH_INTERVAL, streams * PER_STREAM)

    def call(
        self,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[[], None],
        delay: float,
        handover: threading.Event | None = None,
    ) -> None:
        """Have `loop` run `callback` after `delay` seconds (0: at once): sent now, or with the rest of the
        step when made inside `step` on the thread running it; then, with a `handover` (set once the loop
        has written what the call wakes it for), the step's send waits for it."""
        if self._held is not None and threading.get_ident() == self._holder:
            self._held.setdefault(loop, []).append((callback, delay))
            if handover is not None and self._handing:
                self._handovers.append(handover)
        else:
            loop.call_soon_threadsafe(_run, loop, [(callback, delay)])

    def flush(self) -> None:
        """Send the wake-ups held so far in this step now, and go on holding the rest (from the thread running
        the step; elsewhere nothing is held)."""
        if self._held and threading.get_ident() == self._holder:
            held, self._held = self._held, {}
            self._send(held)

    @contextlib.contextmanager
    def step(self, handover: bool = False) -> Iterator[None]:
        """Hold the wake-ups made inside (on this thread) and send them together at the end; `handover`: the
        step's first pieces are handed over (only while the loop has nothing else to do: a loop busy with
        other streams or arrivals takes longer to come to it, and the engine thread, waiting, loses steps;
        measured on an H100 at 8 streams, median TTFT 52 ms without it, 139 ms with it always on)."""
        if self._held is not None:  # already inside a step (a batch step run between slices of other work)
            yield
            return
        self._held, self._holder, self._handing = {}, threading.get_ident(), handover
        try:
            yield
        finally:
            held, self._held = self._held, None
            self._send(held)

    def _send(self, held: dict[asyncio.AbstractEventLoop, list[Call]]) -> None:
        """One `call_soon_threadsafe` per loop, then the hand-over of the first pieces among them."""
        for loop, calls in held.items():
            loop.call_soon_threadsafe(_run, loop, calls)
        handovers, self._handovers = self._handovers, []
        deadline = time.monotonic() + HANDOVER
        for event in handovers:
            event.wait(max(deadline - time.monotonic(), 0.0))


def _run(loop: asyncio.AbstractEventLoop, calls: list[Call]) -> None:
    for callback, delay in calls:
        if delay > 0:
            loop.call_later(delay, callback)
        else:
            callback()


IMMEDIATE = Wakeups()  # for a job no engine paces: nothing is ever held
