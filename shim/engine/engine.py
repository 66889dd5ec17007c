"""The engine: one worker thread owns MLX and schedules every request; HTTP handlers talk to it through jobs.

MLX state (models, batches, caches) lives on the worker thread, so the asyncio loop never runs MLX code and
never blocks. The worker loops: take new jobs, start what can start (loading a cold model once, however many
requests wait for it), then advance every model's batch by one token. A handler that stops listening
(client gone) sets its job's `cancelled` event: a waiting job is dropped without generating, a running one
leaves its batch at the next step.

Lifecycle as Ollama's: a model's keep_alive timer runs from when its last request ends; idle models past
their time, or least recently used when OLLAMA_MAX_LOADED_MODELS or the memory budget needs room, unload;
at most OLLAMA_MAX_QUEUE requests wait, more get Ollama's 503.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

import mlx.core as mx

from registry.store import StoredModel
from shim.engine.batch import ModelBatch, Sequence
from shim.engine.jobs import Job, end_all
from shim.engine.loaded import LoadedModel, load_model, model_key, on_gpu, unload_model, weights_bytes
from shim.engine.prompt import build_prompt, stop_token_ids
from shim.engine.runner import Completion, logits_processors, sampler, vocab_size
from shim.engine.side_work import Cancelled, Rendered, embed_work, human_bytes, render_work
from shim.engine.types import CompletionRequest, Done, EmbedRequest, EmbedResult, Piece
from shim.engine.vision import NO_VISION
from shim.engine.vision_lane import VisionBatch, has_images
from shim.errors import Kind, ShimError
from shim.mlx_threads import release_mlx_streams

log = logging.getLogger("mlx_shim")


R = TypeVar("R")
SERVER_BUSY = "server busy, please try again.  maximum pending requests exceeded"  # two spaces, as Ollama
SHUTTING_DOWN = "server is shutting down"  # the error each request still running or queued at a stop ends with
_LONGEST_WAIT = 3600.0  # seconds the engine loop sleeps at most with no job; it then looks at the timers again


class Engine:
    def __init__(
        self,
        *,
        default_keep_alive: float,
        max_loaded_models: int,
        num_parallel: int = 4,
        max_queue: int = 512,
        memory_budget: int = 1 << 62,
        prompt_cache_bytes: int = 1 << 30,
    ) -> None:
        self.default_keep_alive = default_keep_alive
        self.max_loaded_models = max_loaded_models
        self.num_parallel = num_parallel
        self.max_queue = max_queue
        self.memory_budget = memory_budget
        self.prompt_cache_bytes = prompt_cache_bytes
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._pending = 0  # jobs submitted and not yet started: what OLLAMA_MAX_QUEUE bounds
        self._pending_lock = threading.Lock()
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # guards _loaded for readers on the event loop (/api/ps)
        # Worker thread only:
        self._waiting: collections.deque[Job] = collections.deque()
        self._batches: dict[str, ModelBatch] = {}
        self._thread = threading.Thread(target=self._run, name="mlx-engine", daemon=True)
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End every request with SHUTTING_DOWN (running ones in their stream, queued ones before it) and stop."""
        self._stopping = True
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    @staticmethod
    def on_gpu() -> bool:
        return on_gpu()

    # -- the async API the adapters use ------------------------------------------------------------

    async def complete(self, req: CompletionRequest) -> AsyncGenerator[list[Piece | Done], None]:
        """Stream Pieces then one Done, in batches of whatever is ready (so a busy reader writes several
        tokens at once); raises ShimError. Closing the iterator early cancels the job."""
        async for batch in self._submit(Job("complete", req.model, req)):
            yield batch

    async def load(self, stored: StoredModel, keep_alive: float | None) -> None:
        """Make the model resident (a load-only request)."""
        async for _ in self._submit(Job("load", stored, keep_alive=keep_alive)):
            pass

    async def unload(self, stored: StoredModel) -> None:
        """Unload now, or as soon as the model's running requests end."""
        async for _ in self._submit(Job("unload", stored)):
            pass

    async def embed(self, req: EmbedRequest) -> EmbedResult:
        """Vectors for req.inputs, computed on the worker thread between batch steps (same queue, same
        load/expiry rules); raises ShimError (bad input for inputs the model cannot take, as Ollama)."""
        return await self._work(req.model, req.keep_alive, embed_work(req, self._step_all), EmbedResult, "embedding")

    async def render(self, req: CompletionRequest) -> str:
        """The prompt text `req` would run on, without running it (Ollama's `_debug_render_only`): rendered on
        the worker thread with the model loaded, as Ollama renders after scheduling the runner."""
        return (await self._work(req.model, req.keep_alive, render_work(req), Rendered, "rendering")).text

    async def _work(
        self, stored: StoredModel, keep_alive: float | None, work: Callable[[Job, LoadedModel], None],
        result: type[R], what: str,
    ) -> R:  # fmt: skip
        """Run `work` on the worker thread once the model is loaded, and return the `result` it puts."""
        found = None
        batches = self._submit(Job("work", stored, keep_alive=keep_alive, work=work))
        try:
            async for batch in batches:
                found = next((e for e in batch if isinstance(e, result)), found)
        finally:
            await batches.aclose()  # at once when the handler is cancelled (client gone): the job stops
        if found is None:
            raise ShimError(f"{what} ended without a result")
        return found

    def _submit(self, job: Job) -> AsyncGenerator[list[Piece | Done], None]:
        """Queue the job (refused when the queue is full or the engine is stopping) and return its batches."""
        with self._pending_lock:
            if self._stopping:
                raise ShimError(SHUTTING_DOWN, Kind.BUSY)
            if self._pending >= self.max_queue:
                raise ShimError(SERVER_BUSY, Kind.BUSY)
            self._pending += 1
        self._jobs.put(job)
        return job.batches()

    # -- the worker thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve_jobs()
        finally:
            release_mlx_streams()

    def _serve_jobs(self) -> None:
        mx.random.seed(secrets.randbits(63))  # unseeded sampling differs from one server run to the next
        while True:
            try:
                if not self._take_jobs():
                    break
                self._start_waiting()
                self._step_all()
                self._expire()
            except Exception:
                # Jobs and batch steps answer their own failures; this keeps an unforeseen one (in expiry or
                # unloading) from ending the only thread that runs MLX, which would leave every request hanging.
                log.exception("engine loop error")
                time.sleep(0.01)
        running = [seq.listener for batch in self._batches.values() for seq in batch.sequences.values()]
        end_all(self._jobs, self._waiting, running, ShimError(SHUTTING_DOWN, Kind.BUSY))
        for key in list(self._loaded):
            self._unload(key)

    def _busy(self, key: str) -> bool:
        batch = self._batches.get(key)
        return batch is not None and bool(batch.sequences)

    def _take_jobs(self) -> bool:
        """Move new jobs to the waiting line; block only when no model is decoding. False: stop."""
        block = not self._waiting and not any(batch.sequences for batch in self._batches.values())
        while True:
            try:
                if block:
                    job = self._jobs.get(timeout=self._seconds_to_next_expiry())
                    block = False
                else:
                    job = self._jobs.get_nowait()
            except queue.Empty:
                return True
            if job is None:
                return False
            self._waiting.append(job)

    def _start_waiting(self) -> None:
        """Start every waiting job that can start, oldest first; a job that must wait (its model's batch is
        full, or memory is held by busy models) holds back later jobs of the same model, keeping their order."""
        held: set[str] = set()
        still: collections.deque[Job] = collections.deque()
        while self._waiting:
            job = self._waiting.popleft()
            key = model_key(job.stored)
            if job.cancelled.is_set():  # a client that left while queued costs nothing
                log.info("request dropped: client disconnected while queued")
                started = True
                job.put(None)
            elif key in held:
                started = False
            else:
                try:
                    started = self._start(job, key)
                except Cancelled:
                    log.info("request cancelled: client disconnected")
                    started = True
                    job.put(None)
                except ShimError as e:
                    started = True
                    job.put(e)
                except Exception as e:
                    log.exception("engine job failed")
                    started = True
                    job.put(ShimError(str(e) or type(e).__name__))
            if started:
                with self._pending_lock:
                    self._pending -= 1
            else:
                held.add(key)
                still.append(job)
        self._waiting = still

    def _start(self, job: Job, key: str) -> bool:
        """Start the job if it can start now; False to wait. A job that ends here has had its None sent."""
        if job.kind == "unload":
            loaded = self._loaded.get(key)
            if loaded is not None and self._busy(key):
                loaded.keep_alive = 0.0  # as Ollama: expires the moment its running requests end
            else:
                self._unload(key)
            job.put(None)
            return True
        loaded = self._loaded.get(key)
        if loaded is None:
            if not self._make_room(job.stored):
                return False
            loaded = self._load(job.stored, key)
        loaded.last_used = time.monotonic()
        job.ready_ns = job.ready_ns or time.perf_counter_ns()  # load_duration ends here, not at admission
        if job.kind in ("load", "work"):
            self._touch(loaded, job.keep_alive)
            try:
                if job.work is not None:
                    job.work(job, loaded)
            finally:
                if not self._busy(key):
                    self._restart_timer(loaded)  # its idle time counts from the end of this work
            job.put(None)
            return True
        req = job.request
        assert req is not None
        batch = self._batches.get(key)
        if batch is None:  # made on the first completion: an embedding-only model never needs one
            batch = self._batches[key] = self._new_batch(loaded)
        exclusive = req.options.seed >= 0 and req.options.temperature > 0
        seeing = batch if isinstance(batch, VisionBatch) and has_images(req) else None
        if has_images(req) and seeing is None:  # its tower failed to load (logged then): text only
            raise ShimError(NO_VISION, Kind.BAD_INPUT)
        if not (seeing.has_vision_room() if seeing else batch.has_room(exclusive)):
            return False
        self._touch(loaded, job.keep_alive)
        opts = req.options
        num_ctx = loaded.context_length = opts.num_ctx  # already capped at the model's (resolve_options)
        inputs = seeing.vision.prepare(req, loaded.tokenizer, num_ctx) if seeing else None
        prompt = inputs.tokens if inputs else build_prompt(req, loaded.tokenizer, num_ctx)
        # A grammar's state cannot be replayed over a shifted context: a constrained answer stops at num_ctx;
        # nor can image features (vision_lane).
        shift = req.shift and req.format is None and inputs is None
        completion = Completion(
            loaded.tokenizer,
            prompt,
            opts,
            think=bool(req.think) and req.infill is None,
            shift=shift,
            tools=req.tools,
            stop_ids=stop_token_ids(req, loaded.tokenizer),
            logprobs=req.logprobs,
            emit=job.put,
        )
        sequence = Sequence(
            listener=job,
            completion=completion,
            sampler=sampler(opts, vocab_size(loaded.model)),
            processors=logits_processors(completion, opts, loaded.tokenizer, req.format),
            exclusive=exclusive,
            stateful=req.format is not None,
            shift=shift,
            num_ctx=num_ctx,
            num_keep=len(prompt) if opts.num_keep < 0 else opts.num_keep,  # negative: the whole prompt, as Ollama
            load_ns=job.ready_ns - job.created_ns,
        )
        if seeing and inputs:
            seeing.admit_vision(sequence, inputs)
        else:
            batch.admit(sequence)
        return True

    def _step_all(self) -> None:
        """One token for every running sequence of every model. (A method of its own, so no local variable
        outlives the step: an unloaded model's batch must have no reference left, or its memory stays.)"""
        for key, batch in list(self._batches.items()):
            if batch.sequences:
                self._step(key, batch)

    def _step(self, key: str, batch: ModelBatch) -> None:
        loaded = self._loaded[key]
        try:
            ended = batch.step()
        except Exception as e:
            log.exception("batch step failed")
            # mlx-lm's samplers are compiled over MLX's global random state: one that raised mid-trace leaves
            # a placeholder there, and every later draw of every request fails until it is seeded afresh.
            mx.random.seed(secrets.randbits(63))
            ended = batch.fail(ShimError(str(e) or type(e).__name__))
            batch.close()
            batch = self._batches[key] = self._new_batch(loaded)
        if ended:
            self._restart_timer(loaded)
        loaded.kv_bytes = batch.kv_bytes

    def _make_room(self, stored: StoredModel) -> bool:
        """Unload idle models, least recently used first, until the new one fits the model count and the
        memory budget. False: busy models hold the room, wait for them. Refuses a model that can never fit."""
        need = weights_bytes(stored)
        if need > self.memory_budget:
            budget = human_bytes(self.memory_budget)
            raise ShimError(f"model requires more system memory ({human_bytes(need)}) than is available ({budget})")
        while True:
            used = sum(m.memory_bytes + m.kv_bytes for m in self._loaded.values())
            if len(self._loaded) < self.max_loaded_models and used + need <= self.memory_budget:
                return True
            idle = [m for m in self._loaded.values() if not self._busy(m.key)]
            if not idle:
                return False
            self._unload(min(idle, key=lambda m: m.last_used).key)

    def _load(self, stored: StoredModel, key: str) -> LoadedModel:
        try:
            loaded = load_model(stored)
        except Exception as e:
            log.exception("loading %s failed", stored.name.display)
            raise ShimError(f"unable to load model: {e}") from e
        with self._lock:
            self._loaded[key] = loaded
        return loaded

    def _new_batch(self, loaded: LoadedModel) -> ModelBatch:
        if loaded.vision is not None:
            return VisionBatch(
                loaded.model, loaded.vision, num_parallel=self.num_parallel, cache_bytes=self.prompt_cache_bytes
            )
        return ModelBatch(loaded.model, num_parallel=self.num_parallel, cache_bytes=self.prompt_cache_bytes)

    def _unload(self, key: str) -> None:
        with self._lock:
            loaded = self._loaded.pop(key, None)
        batch = self._batches.pop(key, None)
        if batch is not None:
            batch.close()
            del batch  # the last reference to its generator and caches: gone before unload_model frees memory
        if loaded is not None:
            unload_model(loaded)

    def _touch(self, loaded: LoadedModel, keep_alive: float | None) -> None:
        """A request arrives: as in Ollama, its keep_alive becomes the model's session duration."""
        loaded.keep_alive = self.default_keep_alive if keep_alive is None else keep_alive
        self._restart_timer(loaded)

    def _restart_timer(self, loaded: LoadedModel) -> None:
        """The expiry timer restarts when a request starts and when one ends (an idle model then counts
        down from its last request's end)."""
        loaded.last_used = time.monotonic()
        keep = loaded.keep_alive
        loaded.expires_at = time.time() + keep if math.isfinite(keep) else math.inf

    def _expire(self) -> None:
        """Unload idle models whose time is up (a model still answering waits for its last request)."""
        now = time.time()
        for m in self.loaded():
            if m.expires_at <= now and not self._busy(m.key):
                self._unload(m.key)

    def _seconds_to_next_expiry(self) -> float | None:
        with self._lock:
            soonest = min((m.expires_at for m in self._loaded.values()), default=math.inf)
        # Bounded: Queue.get's timeout overflows the platform's time_t for a wait of centuries.
        return None if math.isinf(soonest) else min(max(soonest - time.time(), 0.0), _LONGEST_WAIT)
