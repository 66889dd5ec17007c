"""The work a job does on the worker thread besides completing: an embedding, a render. Each is a function
the engine runs once the job's model is loaded; it puts its one result on the job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shim.engine.jobs import Job
from shim.engine.loaded import LoadedModel
from shim.engine.prompt import render_prompt
from shim.engine.types import CompletionRequest, EmbedRequest, EmbedResult

Work = Callable[[Job, LoadedModel], None]


class Cancelled(Exception):
    """Raised inside a job's own work (an embedding) when its client has gone."""


@dataclass
class Rendered:
    text: str


def embed_work(req: EmbedRequest, step_all: Callable[[], None]) -> Work:
    """Vectors for req.inputs; between its batches the running answers each go on a token (`step_all`),
    instead of freezing for the job. Inputs the model cannot take are bad input, as in Ollama."""
    from shim.embedding import embed_texts, embedder_for

    def work(job: Job, loaded: LoadedModel) -> None:
        context = req.options.num_ctx  # already capped at the model's (resolve_options)

        def between_batches() -> None:
            if job.cancelled.is_set():
                raise Cancelled
            step_all()

        embedder = embedder_for(loaded.model, loaded.tokenizer)
        vectors, count = embed_texts(embedder, req.inputs, context, req.truncate, between_batches)
        job.put(EmbedResult(vectors, count, job.ready_ns - job.created_ns))  # type: ignore[arg-type]

    return work


def render_work(req: CompletionRequest) -> Work:
    """The prompt text `req` would run on, rendered with the model loaded (as Ollama renders after
    scheduling the runner)."""

    def work(job: Job, loaded: LoadedModel) -> None:
        job.put(Rendered(render_prompt(req, loaded.tokenizer, req.options.num_ctx)))  # type: ignore[arg-type]

    return work


def human_bytes(n: int) -> str:
    """Go's format.HumanBytes2, as Ollama's memory errors print sizes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
