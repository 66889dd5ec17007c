"""The work a job does besides completing: an embedding, a render. Each runs once the job's model is loaded, in
two parts: `prepare` on the prep pool (tokenizing, rendering: no MLX, off the engine thread), then `start` on
the engine thread, which returns the Slices to run there, one per engine loop turn, the last putting the result
(between them the engine decodes every running stream and starts new requests)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shim.engine.loaded import LoadedModel
from shim.engine.prompt import render_prompt
from shim.engine.types import CompletionRequest, EmbedRequest, EmbedResult
from shim.errors import ShimError

if TYPE_CHECKING:  # jobs.py names SideWork in its annotations only; shim.embedding loads on the first embed
    from shim.embedding import EmbedSlices
    from shim.engine.jobs import Job

log = logging.getLogger("mlx_shim")
DEFER_TURNS = 4  # a new request needs two or three turns to its first token (admission, prefill, decode)


class Slices(Protocol):
    """Work still to do on the engine thread, a slice (bounded in time) at a time."""

    def advance(self) -> bool:
        """Run one slice; True when the work is over, its result put on the job."""
        ...


class SideWork(Protocol):
    def prepare(self, loaded: LoadedModel) -> Any:
        """On a prep pool thread: everything that needs no MLX. Raises ShimError for bad input."""
        ...

    def start(self, job: Job, loaded: LoadedModel, prepared: Any) -> Slices:
        """On the engine thread: the slices that will put the result."""
        ...


@dataclass
class Rendered:
    text: str


@dataclass
class RenderWork:
    """The prompt text `req` would run on, rendered with the model loaded (as Ollama renders after
    scheduling the runner): all of it preparation."""

    req: CompletionRequest

    def prepare(self, loaded: LoadedModel) -> Rendered:
        return Rendered(render_prompt(self.req, loaded.tokenizer, self.req.options.num_ctx))

    def start(self, job: Job, loaded: LoadedModel, prepared: Rendered) -> Slices:
        return _Ready(job, prepared)


@dataclass
class _Ready:
    """A result made in full by the preparation: one slice puts it."""

    job: Job
    result: Any

    def advance(self) -> bool:
        self.job.put(self.result)
        return True


@dataclass
class EmbedWork:
    """Vectors for req.inputs: tokenized (and checked against the context, as Ollama: bad input for inputs the
    model cannot take) on the pool, embedded a batch per slice on the engine thread."""

    req: EmbedRequest

    def prepare(self, loaded: LoadedModel) -> EmbedSlices:
        from shim.embedding import EmbedSlices, embedder_for, tokenize_texts

        embedder = embedder_for(loaded.model, loaded.tokenizer)
        context = self.req.options.num_ctx  # already capped at the model's (resolve_options)
        return EmbedSlices(embedder, tokenize_texts(embedder, self.req.inputs, context, self.req.truncate))

    def start(self, job: Job, loaded: LoadedModel, prepared: EmbedSlices) -> Slices:
        return _EmbedJob(job, prepared)


@dataclass
class _EmbedJob:
    job: Job
    slices: EmbedSlices

    def advance(self) -> bool:
        if not self.slices.done:  # no inputs: nothing to embed
            self.slices.advance()
        if not self.slices.done:
            return False
        result = EmbedResult(self.slices.vectors(), self.slices.tokens, self.job.ready_ns - self.job.created_ns)
        self.job.put(result)  # type: ignore[arg-type]
        return True


class SliceRunner:
    """The side work running on the engine thread, a slice of each per loop turn."""

    def __init__(self) -> None:
        self.running: dict[Job, Slices] = {}
        self._deferred = 0

    def advance(self, defer: bool = False) -> list[Job]:
        """One slice of each; the jobs that ended (result put, error put, or client gone). `defer`: a request
        awaits its first token, and goes first, for at most DEFER_TURNS loop turns in a row (side work is
        never starved by a stream of new requests)."""
        if defer and self._deferred < DEFER_TURNS:
            self._deferred += 1
            return []
        self._deferred = 0
        ended = []
        for job, slices in list(self.running.items()):
            try:
                if job.cancelled.is_set():
                    log.info("request cancelled: client disconnected")
                    over, error = True, None
                else:
                    over, error = slices.advance(), None
            except ShimError as e:
                over, error = True, e
            except Exception as e:
                log.exception("engine job failed")
                over, error = True, ShimError(str(e) or type(e).__name__)
            if over:
                del self.running[job]
                job.put(error)
                ended.append(job)
        return ended


def human_bytes(n: int) -> str:
    """Go's format.HumanBytes2, as Ollama's memory errors print sizes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
