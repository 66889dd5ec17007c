"""The engine: one worker thread owns MLX; HTTP handlers talk to it through queues.

MLX state (models, caches, the random generator) lives on the worker thread, so the asyncio loop never
runs MLX code and never blocks. Each job carries an asyncio.Queue that the worker fills with
`call_soon_threadsafe`; a handler that stops listening (client gone) sets the job's `cancelled` event,
which the worker checks before starting the job and after every generated token.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from registry.store import StoredModel
from shim.engine.loaded import LoadedModel, load_model, model_key, on_gpu, unload_model
from shim.engine.prompt import build_prompt, stop_token_ids
from shim.engine.runner import Cancelled, run_completion
from shim.engine.types import CompletionRequest, Done, EmbedRequest, EmbedResult, EngineError, Piece
from shim.options import capped_num_ctx

log = logging.getLogger("mlx_shim")

Event = Piece | Done | EngineError
BATCH_INTERVAL = 0.004  # seconds: at most 250 loop wake-ups a second per stream


class _Job:
    """A unit of work for the worker thread and the channel its events come back through.

    Events go into a deque and the event loop is woken at most once per BATCH_INTERVAL for pieces: a model
    decoding faster than that (the tiny model makes a token every ~0.8 ms on two CPU cores) has its tokens
    written a few at a time, a piece that arrives sooner rides along with the next event (the next piece, a
    tool call, or the final event, which always wakes the loop at once). A model slower than that, which is
    any model of useful size, gets every token written immediately."""

    def __init__(self, work: Callable[[_Job], None]) -> None:
        self.work = work
        self.loop = asyncio.get_running_loop()
        self.events: collections.deque[Event | None] = collections.deque()
        self.ready = asyncio.Event()
        self.wake_pending = False
        self.last_wake = 0.0
        self.cancelled = threading.Event()
        self.created_ns = time.perf_counter_ns()

    def put(self, event: Event | None) -> None:
        """Worker thread side: append first, then wake the loop unless a wake-up is queued or recent."""
        self.events.append(event)
        if self.wake_pending:
            return
        now = time.monotonic()
        if isinstance(event, Piece) and now - self.last_wake < BATCH_INTERVAL:
            return
        self.wake_pending, self.last_wake = True, now
        self.loop.call_soon_threadsafe(self._wake)

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


class Engine:
    def __init__(self, *, default_keep_alive: float, max_loaded_models: int) -> None:
        self.default_keep_alive = default_keep_alive
        self.max_loaded_models = max_loaded_models
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # guards _loaded for readers on the event loop (/api/ps)
        self._thread = threading.Thread(target=self._run, name="mlx-engine", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    @staticmethod
    def on_gpu() -> bool:
        return on_gpu()

    # -- the async API the adapters use ------------------------------------------------------------

    async def complete(self, req: CompletionRequest) -> AsyncIterator[list[Piece | Done]]:
        """Stream Pieces then one Done, in batches of whatever is ready (so a busy reader writes several
        tokens at once); raises EngineError. Closing the iterator early cancels the job."""

        def work(job: _Job) -> None:
            loaded = self._ensure_loaded(req.model)
            load_ns = time.perf_counter_ns() - job.created_ns
            try:
                num_ctx = capped_num_ctx(req.options.num_ctx, loaded.info.context_length)
                loaded.context_length = num_ctx
                opts = replace(req.options, num_ctx=num_ctx)
                prompt = build_prompt(replace(req, options=opts), loaded.tokenizer, num_ctx)
                done = run_completion(
                    loaded.model,
                    loaded.tokenizer,
                    prompt,
                    opts,
                    think=bool(req.think) and req.infill is None,
                    shift=req.shift,
                    tools=req.tools,
                    stop_ids=stop_token_ids(req, loaded.tokenizer),
                    format=req.format,
                    emit=job.put,
                    cancelled=job.cancelled,
                )
                job.put(replace(done, load_duration=load_ns))
            finally:
                self._touch(loaded, req.keep_alive)

        async for batch in self._submit(work):
            yield batch

    async def load(self, stored: StoredModel, keep_alive: float | None) -> None:
        """Make the model resident (a load-only request)."""

        def work(job: _Job) -> None:
            self._touch(self._ensure_loaded(stored), keep_alive)

        async for _ in self._submit(work):
            pass

    async def unload(self, stored: StoredModel) -> None:
        def work(job: _Job) -> None:
            with self._lock:
                loaded = self._loaded.pop(model_key(stored), None)
            if loaded is not None:
                unload_model(loaded)

        async for _ in self._submit(work):
            pass

    async def embed(self, req: EmbedRequest) -> EmbedResult:
        """Vectors for req.inputs, computed on the worker thread like a completion (same queue, same
        load/expiry rules); raises EngineError (400 for inputs the model cannot take, as Ollama)."""
        from shim.embedding import InputError, embed_texts, embedder_for

        def work(job: _Job) -> None:
            loaded = self._ensure_loaded(req.model)
            load_ns = time.perf_counter_ns() - job.created_ns
            try:
                context = capped_num_ctx(req.options.num_ctx, loaded.info.context_length)

                def between_batches() -> None:
                    if job.cancelled.is_set():
                        raise Cancelled

                try:
                    embedder = embedder_for(loaded.model, loaded.tokenizer)
                    vectors, count = embed_texts(embedder, req.inputs, context, req.truncate, between_batches)
                except InputError as e:
                    raise EngineError(e.message, 400) from None
                job.put(EmbedResult(vectors, count, load_ns))  # type: ignore[arg-type]
            finally:
                self._touch(loaded, req.keep_alive)

        result = None
        batches = self._submit(work)
        try:
            async for batch in batches:
                result = next((e for e in batch if isinstance(e, EmbedResult)), result)
        finally:
            await batches.aclose()  # at once when the handler is cancelled (client gone): the job stops
        if result is None:
            raise EngineError("embedding ended without a result")
        return result

    async def _submit(self, work: Callable[[_Job], None]) -> AsyncIterator[list[Piece | Done]]:
        """Yield the job's events in batches (what arrived since the last look); raise its EngineError."""
        job = _Job(work)
        self._jobs.put(job)
        finished = False
        try:
            while True:
                batch = []
                for event in await job.take():
                    if event is None or isinstance(event, EngineError):
                        finished = True
                        if batch:
                            yield batch
                        if event is None:
                            return
                        raise event
                    batch.append(event)
                yield batch
        finally:
            if not finished:
                job.cancelled.set()

    # -- the worker thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._seconds_to_next_expiry())
            except queue.Empty:
                self._expire()
                continue
            if job is None:
                break
            if not job.cancelled.is_set():  # a client that left while queued costs nothing
                try:
                    job.work(job)
                except Cancelled:
                    log.info("generation cancelled: client disconnected")
                except EngineError as e:
                    job.put(e)
                except Exception as e:
                    log.exception("engine job failed")
                    job.put(EngineError(str(e) or type(e).__name__))
            job.put(None)
            self._expire()
        for loaded in self.loaded():
            unload_model(loaded)

    def _ensure_loaded(self, stored: StoredModel) -> LoadedModel:
        key = model_key(stored)
        with self._lock:
            loaded = self._loaded.get(key)
        if loaded is not None:
            loaded.last_used = time.monotonic()
            return loaded
        self._evict_for_new_model()
        try:
            loaded = load_model(stored)
        except Exception as e:
            log.exception("loading %s failed", stored.name.display)
            raise EngineError(f"unable to load model: {e}") from e
        with self._lock:
            self._loaded[key] = loaded
        return loaded

    def _evict_for_new_model(self) -> None:
        while len(self._loaded) >= self.max_loaded_models:
            with self._lock:
                oldest = min(self._loaded.values(), key=lambda m: m.last_used)
                del self._loaded[oldest.key]
            unload_model(oldest)

    def _touch(self, loaded: LoadedModel, keep_alive: float | None) -> None:
        """Ollama restarts the expiry timer when a request finishes, with that request's keep_alive."""
        keep = self.default_keep_alive if keep_alive is None else keep_alive
        loaded.last_used = time.monotonic()
        loaded.expires_at = time.time() + keep if math.isfinite(keep) else math.inf

    def _expire(self) -> None:
        now = time.time()
        with self._lock:
            expired = [m for m in self._loaded.values() if m.expires_at <= now]
            for m in expired:
                del self._loaded[m.key]
        for m in expired:
            unload_model(m)

    def _seconds_to_next_expiry(self) -> float | None:
        with self._lock:
            soonest = min((m.expires_at for m in self._loaded.values()), default=math.inf)
        return None if math.isinf(soonest) else max(soonest - time.time(), 0.0)


async def collect(batches: AsyncIterator[list[Piece | Done]]) -> tuple[Piece, Done]:
    """A whole answer for a non-streaming response: the pieces joined, and the final Done."""
    content: list[str] = []
    thinking: list[str] = []
    tool_calls: list[dict] = []
    async for batch in batches:
        for event in batch:
            if isinstance(event, Done):
                return Piece("".join(content), "".join(thinking), tool_calls), event
            content.append(event.content)
            thinking.append(event.thinking)
            tool_calls += event.tool_calls
    raise EngineError("generation ended without a result")
