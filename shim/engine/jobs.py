"""A unit of work for the engine's worker thread, and the channel its events come back to the event loop by."""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Literal

from registry.store import StoredModel
from shim.engine.batch import Listener
from shim.engine.types import CompletionRequest, Done, Piece, TokenLogprob, ToolCall
from shim.engine.wakeups import IMMEDIATE, Wakeups
from shim.errors import ShimError

if TYPE_CHECKING:
    from shim.engine.loaded import LoadedModel
    from shim.engine.side_work import SideWork

Event = Piece | Done | ShimError


class Job:
    """A unit of work for the worker thread and the channel its events come back through.

    Events go into a deque and the event loop is woken at most once per interval for pieces (16 ms, longer
    while many streams run: `shim/engine/wakeups.py`): a model decoding faster than that (the tiny model
    makes a token every ~0.8 ms on two CPU cores) has its tokens written a few at a time: a piece that arrives
    sooner waits for the interval's end (or rides along with the final event, which always wakes the loop at
    once). A model slower than that gets every token written immediately."""

    def __init__(
        self,
        kind: Literal["complete", "load", "unload", "work"],
        stored: StoredModel,
        request: CompletionRequest | None = None,
        keep_alive: float | None = None,
        work: SideWork | None = None,
    ) -> None:
        self.kind = kind
        self.stored = stored
        self.request = request
        self.work = work  # kind "work": runs once the model is loaded (embeddings, renders)
        self.keep_alive = request.keep_alive if request is not None else keep_alive
        self.loop = asyncio.get_running_loop()
        self.wakeups: Wakeups = IMMEDIATE  # the engine's, once submitted: paces wake-ups, sends a step's together
        self.events: collections.deque[Event | None] = collections.deque()
        self.ready = asyncio.Event()
        self.wake_pending = False
        self.wake_delayed = False
        self.last_wake = 0.0
        self.cancelled = threading.Event()
        self.written = threading.Event()  # the first batch has been taken and written (Wakeups' hand-over)
        self.created_ns = time.perf_counter_ns()
        self.ready_ns = 0  # when its model was first found loaded (Ollama's load_duration ends there)
        self.early: tuple[weakref.ref[LoadedModel], Future[Any]] | None = None  # its preparation, begun at submission

    def put(self, event: Event | None) -> None:
        """Worker thread side: append first, then wake the loop unless a wake-up is queued. A piece soon after
        the last wake-up gets one timed for the end of the interval (the next event may be long in coming:
        a tool call being written, a neighbour's prefill); any other event wakes the loop at once."""
        self.events.append(event)
        piece = isinstance(event, Piece)
        if self.wake_pending and (piece or not self.wake_delayed):
            return
        now = time.monotonic()
        delay = self.last_wake + self.wakeups.interval - now if piece else 0.0
        first = piece and not self.last_wake
        self.wake_pending, self.wake_delayed = True, delay > 0
        self.last_wake = now + max(delay, 0.0)
        self.wakeups.call(self.loop, self._wake, delay, self.written if first else None)

    def _wake(self) -> None:
        self.wake_pending = False
        self.ready.set()

    async def take(self) -> list[Event | None]:
        """Everything that has arrived (at least one event), oldest first."""
        while not self.events:
            self.ready.clear()
            if self.events:
                break
            await self.ready.wait()
        return [self.events.popleft() for _ in range(len(self.events))]

    async def batches(self) -> AsyncGenerator[list[Piece | Done], None]:
        """The events in batches (what arrived since the last look) until the end; raises the job's ShimError.
        Closed before the end (the client left), the job is cancelled."""
        finished = False
        try:
            while True:
                batch: list[Piece | Done] = []
                for event in await self.take():
                    if event is None or isinstance(event, ShimError):
                        finished = True
                        if batch:
                            yield batch
                        if event is None:
                            return
                        raise event
                    batch.append(event)
                yield batch
                if not self.written.is_set():  # asked for more: the first batch is written (or collected)
                    self.written.set()
        finally:
            self.written.set()
            if not finished:
                self.cancelled.set()


class Wake:
    """Put on the engine's job queue to wake its thread without a job: a preparation has finished."""


WAKE = Wake()


async def collect(batches: AsyncIterator[list[Piece | Done]]) -> tuple[Piece, Done]:
    """A whole answer for a non-streaming response: the pieces joined, and the final Done."""
    content: list[str] = []
    thinking: list[str] = []
    tool_calls: list[ToolCall] = []
    logprobs: list[TokenLogprob] = []
    async for batch in batches:
        for event in batch:
            if isinstance(event, Done):
                return Piece("".join(content), "".join(thinking), tool_calls, logprobs), event
            content.append(event.content)
            thinking.append(event.thinking)
            tool_calls += event.tool_calls
            logprobs += event.logprobs
    raise ShimError("generation ended without a result")


def end_all(
    jobs: queue.Queue[Job | Wake | None], waiting: Iterable[Job], running: Iterable[Listener], error: ShimError
) -> None:
    """At a stop: every job queued or waiting (those that arrived behind the stop too) ends with `error` before
    its answer starts; every running sequence's stream ends with it after what it has already written."""
    late = []
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if isinstance(job, Job):  # not None (the stop) nor a wake-up
            late.append(job)
    for job in [*waiting, *late]:
        job.put(error)
    for channel in running:
        channel.put(error)
        channel.put(None)
