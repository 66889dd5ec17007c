"""Preparation off the engine thread: rendering a prompt, tokenizing it, fitting it to the context, compiling a
`format`'s grammar, tokenizing embedding inputs, decoding and processing images.

None of that is MLX, and all of it can take seconds (a 1 MB prompt to tokenize, a 10,000-message chat rendered
a dozen times to fit num_ctx, a schema compiled over a 151k vocabulary): done on the engine thread it froze
every stream and kept every new request waiting. It runs here, on a small pool of named threads, while the
engine thread goes on decoding; the engine starts the job when its preparation is done (each completion wakes
it). Pool threads never call MLX: MLX streams are per thread, and only the engine thread owns them.
The Rust tokenizer releases the GIL while it splits text, Python rendering yields it every few ms: the engine
thread keeps running meanwhile (turning a long encoding into Python lists holds the GIL for a fraction of it).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from llguidance import LLMatcher

from shim.engine.grammar import ANY_OBJECT, grammars_for
from shim.engine.jobs import Job
from shim.engine.loaded import LoadedModel, model_key
from shim.engine.prompt import build_prompt, stop_token_ids
from shim.engine.types import CompletionRequest
from shim.engine.vision import NO_VISION, ImageInputs, Vision
from shim.engine.vision_lane import has_images
from shim.errors import Kind, ShimError

THREADS = 2  # preparations at once: a long one never holds up a short one behind it


class PrepPool:
    """Each waiting job's preparation, on named worker threads (`mlx-shim-prep-N`). `wake` is called after each
    one ends, from the thread that did it. Used by the engine thread only, but for `start_early`."""

    def __init__(self, wake: Callable[[], None], threads: int = THREADS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlx-shim-prep")
        self._wake = wake
        self._futures: dict[Job, Future[Any]] = {}
        self._adopted: set[Job] = set()  # adopted this turn: `result` answers None once, as for any new job

    def start_early(self, job: Job, loaded: LoadedModel | None) -> None:
        """From the event loop, before the job is queued for a model already loaded (`loaded`; None: not
        loaded, nothing to do): its preparation starts now rather than at the engine thread's next turn, which
        under load comes after the decode step under way (on an idle engine the two were measured the same on
        the CPU, 2.2 ms from route to admission). Kept (`adopt`) only if the job then runs on this same loaded
        model. The engine asks only while fewer jobs wait than a batch holds: those further back wait anyway,
        and a waiting job's prepared images would be held all that time."""
        if loaded is None:
            return
        try:
            future = self._executor.submit(preparation(job, loaded))
        except RuntimeError:  # shut down: the engine is stopping, and answers the job so
            return
        future.add_done_callback(lambda _: self._wake())
        job.early = (weakref.ref(loaded), future)  # a job left waiting must not keep an unloaded model's weights

    def adopt(self, waiting: Iterable[Job], loaded: Mapping[str, LoadedModel]) -> None:
        """On the engine thread, each turn before bursts are decided: every waiting job whose preparation
        `start_early` began is registered with it, so the burst it came in is known whole (bursts.py) even
        where that preparation has already ended; one begun for a model no longer loaded (`loaded`: the models
        loaded now, by key) is dropped, and `result` prepares the job again."""
        for job in waiting:
            early, job.early = job.early, None
            if early is None:
                continue
            model = early[0]()
            if model is not None and model is loaded.get(model_key(job.stored)):
                self._futures[job] = early[1]
                self._adopted.add(job)
            else:
                early[1].cancel()

    def result(self, job: Job, loaded: LoadedModel) -> Any | None:
        """What the job's preparation made (raising its error), or None while it runs. The first call for a
        job answers None, even for one adopted whose preparation has ended: the turn that first sees a job
        only registers it, so requests of a burst that reach the engine a few microseconds apart are all known
        before any of them starts; for a job not adopted it hands the preparation to a pool thread."""
        future = self._futures.get(job)
        if future is None:
            self._futures[job] = future = self._executor.submit(preparation(job, loaded))
            future.add_done_callback(lambda _: self._wake())
            return None
        if job in self._adopted:
            self._adopted.discard(job)
            return None
        return future.result() if future.done() else None

    def forget(self, job: Job) -> None:
        """The job started or ended: its preparation (if any) is no longer wanted."""
        future = self._futures.pop(job, None)
        if future is not None:
            future.cancel()  # one not yet running never runs
        self._adopted.discard(job)
        drop_early(job)

    def jobs(self) -> list[Job]:
        return list(self._futures)

    def ready(self, job: Job) -> bool:
        """Whether the job's preparation has ended."""
        future = self._futures.get(job)
        return future is not None and future.done()

    def under_way(self) -> bool:
        """Whether a preparation has yet to end (its end will call `wake`)."""
        return any(not future.done() for future in self._futures.values())

    def shutdown(self) -> None:
        """Drop work not yet started; work under way finishes on its own (nothing waits for it)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def drop_early(job: Job) -> None:
    """The preparation `start_early` began for the job is not wanted (the job ended, or was refused)."""
    early, job.early = job.early, None
    if early is not None:
        early[1].cancel()


@dataclass
class Prepared:
    """A completion ready to start: its prompt tokens, the extra tokens that end it, its format's grammar, its
    images made ready for the tower (their tokens are the prompt)."""

    prompt: list[int]
    stop_ids: frozenset[int]
    matcher: LLMatcher | None
    images: ImageInputs | None = None


def preparation(job: Job, loaded: LoadedModel) -> Callable[[], Any]:
    """What a pool thread runs for the job: its side work's preparation, or its completion's."""
    work, req, tokenizer = job.work, job.request, loaded.tokenizer
    if work is not None:
        return lambda: work.prepare(loaded)
    assert req is not None
    return lambda: prepare_completion(req, tokenizer, loaded.vision)


def prepare_completion(req: CompletionRequest, tokenizer: Any, vision: Vision | None = None) -> Prepared:
    """On a pool thread: the prompt built and fitted to num_ctx, and the format's grammar compiled (the engine
    thread then only copies the compiled matcher). A request with images is rendered with its images' markers
    and its images decoded and processed (vision.py): only the tower is left for the engine thread."""
    images = None
    if not has_images(req):
        prompt = build_prompt(req, tokenizer, req.options.num_ctx)  # num_ctx: already capped
    elif vision is None:  # its tower failed to load (logged then): text only
        raise ShimError(NO_VISION, Kind.BAD_INPUT)
    else:
        images = vision.preprocess(req, tokenizer, req.options.num_ctx)
        prompt = images.tokens
    matcher = None
    if req.format is not None:  # a string format is "json" (the adapters refuse any other): any JSON object
        matcher = grammars_for(tokenizer).matcher(ANY_OBJECT if isinstance(req.format, str) else req.format)
    return Prepared(prompt, stop_token_ids(req, tokenizer), matcher, images)
