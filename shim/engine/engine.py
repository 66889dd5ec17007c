"""The engine: one worker thread owns MLX and schedules every request; HTTP handlers talk to it through jobs.

MLX state (models, batches, caches) lives on the worker thread, so the asyncio loop never runs MLX code and
never blocks. The worker loops: take new jobs, start what can start (loading a cold model once, however many
requests wait for it), advance every model's batch by a token or a prefill slice, then each embedding by a
slice (each slice bounded in time: prefill.py). Rendering, tokenizing, grammar compiling and image decoding
run meanwhile on the prep pool (prep_pool.py): a job starts once its preparation is done. A handler that stops listening
(client gone) sets its job's `cancelled` event: a waiting job is dropped without generating, a running one
leaves its batch at the next step.

Lifecycle as Ollama's: a model's keep_alive timer runs from when its last request ends (keep_alive.py); idle
models past their time, or least recently used when OLLAMA_MAX_LOADED_MODELS or the memory budget needs room,
unload (residency.py); at most OLLAMA_MAX_QUEUE requests wait, more get Ollama's 503 (intake.py). A
completion that starts becomes a Sequence of its model's batch (sequence_setup.py).
"""

from __future__ import annotations

import collections
import functools
import logging
import secrets
import threading
import time
from collections.abc import AsyncGenerator
from typing import TypeVar

import mlx.core as mx

from registry.store import StoredModel
from shim.accelerator import prepare_backend
from shim.distributed.lockstep import Lockstep
from shim.engine.batch import ModelBatch
from shim.engine.bursts import BurstHold
from shim.engine.intake import SHUTTING_DOWN, JobIntake
from shim.engine.jobs import Job, end_all
from shim.engine.keep_alive import restart_timer, seconds_to_next_expiry, touch
from shim.engine.loaded import LoadedModel, model_key, on_gpu
from shim.engine.prep_pool import PrepPool, drop_early
from shim.engine.residency import Residency
from shim.engine.scripted import Scripts
from shim.engine.sequence_setup import build_sequence
from shim.engine.side_work import EmbedWork, Rendered, RenderWork, SideWork, SliceRunner
from shim.engine.stats import EngineStats, PromptCacheCounters
from shim.engine.types import CompletionRequest, Done, EmbedRequest, EmbedResult, Piece
from shim.engine.vision_lane import VisionBatch
from shim.engine.wakeups import Wakeups
from shim.errors import Kind, ShimError
from shim.mlx_threads import release_mlx_streams

log = logging.getLogger("mlx_shim")


R = TypeVar("R")


class Engine:
    def __init__(
        self,
        *,
        default_keep_alive: float,
        max_loaded_models: int,
        num_parallel: int = 4,
        prefill_group: int = 8,
        max_queue: int = 512,
        memory_budget: int = 1 << 62,
        prompt_cache_bytes: int = 1 << 30,
        scripts: Scripts | None = None,
        lockstep: Lockstep | None = None,
    ) -> None:
        self.default_keep_alive = default_keep_alive
        self.num_parallel = num_parallel
        self.prefill_group = prefill_group
        self.prompt_cache_bytes = prompt_cache_bytes
        self.scripts = scripts or {}  # tests only (shim/engine/scripted.py)
        self._intake = JobIntake(max_queue)
        self._wakeups = Wakeups()
        # Worker thread only:
        self._waiting: collections.deque[Job] = collections.deque()
        self._batches: dict[str, ModelBatch] = {}
        self._prep = PrepPool(self._intake.wake)  # waiting jobs' preparations
        self._bursts = BurstHold(max(num_parallel, prefill_group))  # a burst starts together, up to a batch
        self._side = SliceRunner()  # side work (embeddings) running a slice per loop turn
        self._thread = threading.Thread(target=self._run, name="mlx-engine", daemon=True)
        self._cache_counters = PromptCacheCounters()
        self._lockstep = lockstep or Lockstep()  # the other ranks' hooks when serving across processes
        self._models = Residency(
            max_loaded_models=max_loaded_models, memory_budget=memory_budget, lockstep=self._lockstep,
            busy=self._busy, release=self._drop_batch,
        )  # fmt: skip

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End every request with SHUTTING_DOWN (running ones in their stream, queued ones before it) and stop."""
        self._intake.stop()
        self._thread.join(timeout=30)

    def loaded(self) -> list[LoadedModel]:
        return self._models.snapshot()

    @staticmethod
    def on_gpu() -> bool:
        return on_gpu()

    def stats(self) -> EngineStats:
        """Queue depth, running sequences and prompt-cache totals, read without locking the worker thread
        (see shim/engine/stats.py): a scrape never slows a token."""
        running = sum(len(batch.sequences) for batch in list(self._batches.values()))
        cache = self._cache_counters
        return EngineStats(self._intake.pending, running, cache.hits, cache.tokens)

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
        """Vectors for req.inputs, tokenized on the prep pool, embedded a batch per worker loop turn (same queue,
        same load/expiry rules); raises ShimError (bad input for inputs the model cannot take, as Ollama)."""
        self._lockstep.check_embed()
        return await self._work(req.model, req.keep_alive, EmbedWork(req), EmbedResult, "embedding")

    async def render(self, req: CompletionRequest) -> str:
        """The prompt text `req` would run on, without running it (Ollama's `_debug_render_only`): rendered on
        the prep pool with the model loaded, as Ollama renders after scheduling the runner."""
        return (await self._work(req.model, req.keep_alive, RenderWork(req), Rendered, "rendering")).text

    async def _work(
        self, stored: StoredModel, keep_alive: float | None, work: SideWork, result: type[R], what: str
    ) -> R:
        """Run `work` once the model is loaded, and return the `result` it puts."""
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
        job.wakeups = self._wakeups
        if job.kind in ("complete", "work") and self._intake.pending < self.num_parallel:  # not behind a batch
            with self._models.lock:
                loaded = self._models.get(model_key(job.stored))
            self._prep.start_early(job, loaded)  # one since unloaded is dropped at adoption (a weak reference)
        try:
            self._intake.submit(job)
        except ShimError:
            drop_early(job)
            raise
        return job.batches()

    # -- the worker thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            prepare_backend()
            self._serve_jobs()
        finally:
            self._prep.shutdown()
            release_mlx_streams()

    def _serve_jobs(self) -> None:
        mx.random.seed(self._lockstep.seed(secrets.randbits(63)))  # unseeded sampling differs between runs
        while True:
            try:
                if not self._take_jobs():
                    break
                self._start_waiting()
                self._step_all()
                self._advance_side_work()
                self._models.expire()
            except Exception:
                # Jobs and batch steps answer their own failures; this keeps an unforeseen one (in expiry or
                # unloading) from ending the only thread that runs MLX, which would leave every request hanging.
                log.exception("engine loop error")
                time.sleep(0.01)
        running = [seq.listener for batch in self._batches.values() for seq in batch.sequences.values()]
        running += self._side.running
        end_all(self._intake.queue, self._waiting, running, ShimError(SHUTTING_DOWN, Kind.BUSY))
        self._models.unload_all()

    def _busy(self, key: str) -> bool:
        batch, jobs = self._batches.get(key), (*self._prep.jobs(), *self._side.running)
        return (batch is not None and bool(batch.sequences)) or any(model_key(j.stored) == key for j in jobs)

    def _take_jobs(self) -> bool:
        """Move new jobs to the waiting line; block only when nothing runs here and no waiting job could start
        now (until a job, WAKE or a timer). False: stop.

        With nothing running, only a preparation under way can hold a waiting job back (a batch with no
        sequences has room; a model with no sequences, side work or preparation is idle and can be unloaded
        for room), and each one sends WAKE when it ends. With none under way, waiting jobs are looked at
        again now: they were held back by sequences or side work that have just ended. Only idle models' timers
        bound the wait: a model loaded for a request being prepared has none yet (it starts when the request
        does), and waking for it would spin this thread, a core and the GIL taken from the preparation."""
        running = self._side.running or any(batch.sequences for batch in self._batches.values())
        block = not running and (not self._waiting or self._prep.under_way())
        timeout = None
        if block:
            idle = [m for m in self.loaded() if not self._busy(m.key)]
            timeout = _earliest(seconds_to_next_expiry(idle), self._bursts.seconds_left())
        return self._intake.take(self._waiting, timeout, block=block)

    def _start_waiting(self) -> None:
        """Start every waiting job that can start, oldest first; a job that must wait (its model's batch is
        full, or memory is held by busy models) holds back later jobs of the same model, keeping their order."""
        held: set[str] = set()
        still: collections.deque[Job] = collections.deque()
        self._prep.adopt(self._waiting, self._models.models)
        holding = self._bursts.decide(self._prep)  # the models whose bursts wait this turn
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
                    started = self._start(job, key, holding)
                except ShimError as e:
                    started = True
                    job.put(e)
                except Exception as e:
                    log.exception("engine job failed")
                    started = True
                    job.put(ShimError(str(e) or type(e).__name__))
            if started:
                self._prep.forget(job)
                self._intake.started()
            else:
                if started is False:  # None: it is being prepared, and holds back no other job
                    held.add(key)
                still.append(job)
        self._waiting = still

    def _start(self, job: Job, key: str, holding: set[str]) -> bool | None:
        """Start the job if it can; False: wait, None: its preparation runs on the pool. Ends have sent None."""
        if job.kind == "unload":
            loaded = self._models.get(key)
            if loaded is not None and self._busy(key):
                loaded.keep_alive = 0.0  # as Ollama: expires the moment its running requests end
            else:
                self._models.unload(key)
            job.put(None)
            return True
        loaded = self._models.get(key)
        if loaded is None:
            if not self._models.make_room(job.stored):
                return False
            loaded = self._models.load(job.stored, key)
        loaded.last_used = time.monotonic()
        job.ready_ns = job.ready_ns or time.perf_counter_ns()  # load_duration ends here, not at admission
        if job.kind == "load":
            touch(loaded, job.keep_alive, self.default_keep_alive)
            job.put(None)
            return True
        prepared = self._prep.result(job, loaded)
        if prepared is None:
            return None
        if job.work is not None:
            touch(loaded, job.keep_alive, self.default_keep_alive)
            self._side.running[job] = job.work.start(job, loaded, prepared)
            return True
        req = job.request
        assert req is not None
        batch = self._batches.get(key)
        if batch is None:  # made on the first completion: an embedding-only model never needs one
            batch = self._batches[key] = self._new_batch(loaded)
        exclusive = req.options.seed >= 0 and req.options.temperature > 0
        images = prepared.images  # made only for a model with a tower (prep_pool), whose batch is a VisionBatch
        seeing = batch if isinstance(batch, VisionBatch) and images is not None else None
        if not (seeing.has_vision_room() if seeing else batch.has_room(exclusive)):
            return False
        if not seeing and key in holding:
            return None
        touch(loaded, job.keep_alive, self.default_keep_alive)
        loaded.context_length = req.options.num_ctx  # already capped at the model's (resolve_options)
        sequence = build_sequence(job, req, loaded, prepared, self.scripts, exclusive=exclusive, images=bool(seeing))
        self._lockstep.admit(key, req, sequence)
        if seeing and images:
            seeing.admit_vision(sequence, images)
        else:
            batch.admit(sequence)
        return True

    def _advance_side_work(self) -> None:
        """A slice of each embedding; a request awaiting its first token goes first (SliceRunner.advance)."""
        defer = bool(self._side.running) and any(batch.prefilling() for batch in self._batches.values())
        for loaded in [self._models.get(model_key(job.stored)) for job in self._side.advance(defer)]:
            if loaded is not None and not self._busy(loaded.key):
                restart_timer(loaded)  # its idle time counts from the end of this work

    def _step_all(self) -> None:
        """One token for every running sequence of every model. (A method of its own, so no local variable
        outlives the step: an unloaded model's batch must have no reference left, or its memory stays.)
        The step's wake-ups of the event loop go together at its end, a lone stream's first one handed over."""
        alone = sum(len(batch.sequences) for batch in self._batches.values()) == 1 and not self._intake.pending
        with self._wakeups.step(handover=alone):
            for key, batch in list(self._batches.items()):
                if batch.sequences:
                    self._step(key, batch)
        self._wakeups.pace(sum(len(batch.sequences) for batch in self._batches.values()))

    def _step(self, key: str, batch: ModelBatch) -> None:
        loaded = self._models.models[key]
        try:
            self._lockstep.step(key, batch)
            ended = batch.step()
        except Exception as e:
            log.exception("batch step failed")
            # mlx-lm's samplers are compiled over MLX's global random state: one that raised mid-trace leaves
            # a placeholder there, and every later draw of every request fails until it is seeded afresh.
            mx.random.seed(secrets.randbits(63))
            ended = batch.fail(self._lockstep.failed(e))
            batch.close()
            batch = self._batches[key] = self._new_batch(loaded)
        if ended:
            restart_timer(loaded)
        loaded.kv_bytes = batch.kv_bytes

    def _new_batch(self, loaded: LoadedModel) -> ModelBatch:
        vision = loaded.vision
        make = functools.partial(VisionBatch, vision=vision) if vision is not None else ModelBatch
        batch = make(
            loaded.model, num_parallel=self.num_parallel, prefill_group=self.prefill_group,
            cache_bytes=self.prompt_cache_bytes, counters=self._cache_counters,
        )  # fmt: skip
        batch.flush = self._wakeups.flush
        return batch

    def _drop_batch(self, key: str) -> None:
        """Close an unloading model's batch (a method of its own: no local reference to it outlives the call,
        or its generator and caches would keep memory the unload frees)."""
        batch = self._batches.pop(key, None)
        if batch is not None:
            batch.close()


def _earliest(a: float | None, b: float | None) -> float | None:
    """The sooner of two optional timeouts."""
    return b if a is None else a if b is None else min(a, b)
