"""The work a job does besides completing: an embedding, a render. Each runs once the job's model is loaded, in
two parts: `prepare` on the prep pool (tokenizing, rendering: no MLX, off the engine thread), then `start` on
the engine thread, which puts the result or returns the Slices still to run there, one per engine loop turn
(between them the engine decodes every running stream and starts new requests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shim.engine.loaded import LoadedModel
from shim.engine.prompt import render_prompt
from shim.engine.types import CompletionRequest, EmbedRequest, EmbedResult

if TYPE_CHECKING:  # jobs.py names SideWork in its annotations only
    from shim.engine.jobs import Job


class Slices(Protocol):
    """Work still to do on the engine thread, a slice (bounded in time) at a time."""

    def advance(self) -> bool:
        """Run one slice; True when the work is over, its result put on the job."""
        ...


class SideWork(Protocol):
    def prepare(self, loaded: LoadedModel) -> Any:
        """On a prep pool thread: everything that needs no MLX. Raises ShimError for bad input."""
        ...

    def start(self, job: Job, loaded: LoadedModel, prepared: Any) -> Slices | None:
        """On the engine thread: put the result, or return the slices that will."""
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

    def start(self, job: Job, loaded: LoadedModel, prepared: Rendered) -> None:
        job.put(prepared)  # type: ignore[arg-type]


@dataclass
class EmbedWork:
    """Vectors for req.inputs: tokenized (and checked against the context, as Ollama: bad input for inputs the
    model cannot take) on the pool, embedded a batch per slice on the engine thread."""

    req: EmbedRequest

    def prepare(self, loaded: LoadedModel) -> Any:
        from shim.embedding import EmbedSlices, embedder_for, tokenize_texts

        embedder = embedder_for(loaded.model, loaded.tokenizer)
        context = self.req.options.num_ctx  # already capped at the model's (resolve_options)
        return EmbedSlices(embedder, tokenize_texts(embedder, self.req.inputs, context, self.req.truncate))

    def start(self, job: Job, loaded: LoadedModel, prepared: Any) -> Slices:
        return _EmbedJob(job, prepared)


@dataclass
class _EmbedJob:
    job: Job
    slices: Any  # shim.embedding.EmbedSlices (imported lazily: an engine without embeddings never loads it)

    def advance(self) -> bool:
        if not self.slices.done:  # no inputs: nothing to embed
            self.slices.advance()
        if not self.slices.done:
            return False
        result = EmbedResult(self.slices.vectors(), self.slices.tokens, self.job.ready_ns - self.job.created_ns)
        self.job.put(result)  # type: ignore[arg-type]
        return True


def human_bytes(n: int) -> str:
    """Go's format.HumanBytes2, as Ollama's memory errors print sizes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
