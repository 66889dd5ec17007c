"""A completion job, prepared on the pool, made into the Sequence its model's batch decodes.

The engine thread decides when a job starts (room in the batch, memory, its preparation done); what the job
then runs on is the request's alone: its output pipeline (Completion), its sampler and logits processors, its
context-shift settings. Kept apart from the scheduling so each reads on its own.
"""

from __future__ import annotations

from shim.engine.batch import Sequence
from shim.engine.jobs import Job
from shim.engine.loaded import LoadedModel
from shim.engine.prep_pool import Prepared
from shim.engine.runner import Completion, logits_processors, sampler, vocab_size
from shim.engine.scripted import Scripts, scripted_processors
from shim.engine.types import CompletionRequest


def build_sequence(
    job: Job,
    req: CompletionRequest,
    loaded: LoadedModel,
    prepared: Prepared,
    scripts: Scripts,
    *,
    exclusive: bool,
    images: bool = False,
) -> Sequence:
    """The sequence for `job` (its request `req`) on `loaded`; `exclusive`: it decodes alone (seeded sampling);
    `images`: its prompt carries image features (vision_lane), which a shifted context cannot replay."""
    opts = req.options
    prompt = prepared.prompt
    # A grammar's state cannot be replayed over a shifted context: a constrained answer stops at num_ctx.
    shift = req.shift and req.format is None and not images
    completion = Completion(
        loaded.tokenizer,
        prompt,
        opts,
        think=bool(req.think) and req.infill is None,
        shift=shift,
        tools=req.tools,
        template=req.template,
        stop_ids=prepared.stop_ids,
        logprobs=req.logprobs,
        emit=job.put,
    )
    return Sequence(
        listener=job,
        completion=completion,
        sampler=sampler(opts, vocab_size(loaded.model)),
        processors=logits_processors(completion, opts, loaded.tokenizer, req.format, prepared.matcher)
        + scripted_processors(scripts, req, prompt, loaded.tokenizer),
        exclusive=exclusive,
        stateful=req.format is not None,
        shift=shift,
        num_ctx=opts.num_ctx,  # already capped at the model's (resolve_options)
        num_keep=len(prompt) if opts.num_keep < 0 else opts.num_keep,  # negative: the whole prompt, as Ollama
        load_ns=job.ready_ns - job.created_ns,
    )
