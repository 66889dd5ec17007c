"""One completion on a loaded model: sampling, stop strings, thinking split, tool calls, honest timings.

Runs on the engine's worker thread only. `emit` hands each Piece to the waiting HTTP handler;
`cancelled` is checked after every token so a client that leaves stops generation within one token.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx
from mlx_lm.generate import generate_step
from mlx_lm.sample_utils import make_logits_processors, make_sampler

from shim.engine.detokenizer import IncrementalDetokenizer
from shim.engine.grammar import format_processors
from shim.engine.output import OutputRouter
from shim.engine.types import Done, Piece
from shim.options import GenerationOptions


class Cancelled(Exception):
    pass


def run_completion(
    model: Any,
    tokenizer: Any,
    prompt: list[int],
    opts: GenerationOptions,
    *,
    think: bool,
    shift: bool,
    tools: list[dict[str, Any]] | None,
    format: str | dict[str, Any] | None = None,
    stop_ids: frozenset[int] = frozenset(),
    emit: Callable[[Piece], None],
    cancelled: threading.Event,
) -> Done:
    mx.random.seed(opts.seed if opts.seed >= 0 else secrets.randbits(63))
    num_ctx = opts.num_ctx
    limit = opts.num_predict if opts.num_predict > 0 else -1
    if not shift:
        room = max(num_ctx - len(prompt), 1)
        limit = room if limit < 0 else min(limit, room)

    output = OutputRouter(tokenizer, prompt, think=think, tools=tools, stops=opts.stop, emit=emit)
    detok = IncrementalDetokenizer(tokenizer._tokenizer.decode, prompt)
    eos = set(tokenizer.eos_token_ids) | set(stop_ids)
    # The grammar follows think markers of one special token each (the families it was built for).
    think_start = _single(getattr(tokenizer, "think_start_tokens", None)) if think else None
    think_end = _single(getattr(tokenizer, "think_end_tokens", None)) if think else None
    processors = _processors(opts) + format_processors(tokenizer, format, prompt, think_start, think_end)

    generated: list[int] = []
    reason = "length"
    stop_hit = False
    started = time.perf_counter_ns()
    first = 0
    steps = generate_step(
        mx.array(prompt),
        model,
        max_tokens=limit,
        sampler=_sampler(opts),
        logits_processors=processors,
        max_kv_size=num_ctx if shift else None,
    )
    for token, _ in steps:
        if not first:
            first = time.perf_counter_ns()
        if cancelled.is_set():
            raise Cancelled
        generated.append(token)
        if token in eos:
            reason = "stop"
            break
        if output.feed(detok.add(token)):
            reason, stop_hit = "stop", True
            break
    if stop_hit:
        output.stopped()
    elif output.finish(detok.flush()):
        reason = "stop"
    finished = time.perf_counter_ns()
    first = first or finished
    context = prompt + [t for t in generated if t not in eos]
    return Done(
        done_reason=reason,  # type: ignore[arg-type]
        prompt_eval_count=len(prompt),
        prompt_eval_duration=first - started,
        eval_count=len(generated),
        eval_duration=finished - first,
        load_duration=0,
        context=context,
    )


def _single(tokens: tuple[int, ...] | None) -> int | None:
    return tokens[0] if tokens and len(tokens) == 1 else None


def _sampler(opts: GenerationOptions) -> Callable[[mx.array], mx.array]:
    if opts.temperature <= 0:
        return make_sampler(0.0)
    top_p = opts.top_p if 0 < opts.top_p < 1 else 0.0
    min_p = min(max(opts.min_p, 0.0), 1.0)  # Ollama's sampler skips min_p <= 0; mlx-lm rejects it
    return make_sampler(opts.temperature, top_p=top_p, min_p=min_p, top_k=max(opts.top_k, 0))


def _processors(opts: GenerationOptions) -> list[Callable[[mx.array, mx.array], mx.array]]:
    window = opts.num_ctx if opts.repeat_last_n < 0 else opts.repeat_last_n
    if window == 0:
        return []
    return make_logits_processors(
        repetition_penalty=opts.repeat_penalty if opts.repeat_penalty != 1.0 else None,
        repetition_context_size=window,
        presence_penalty=opts.presence_penalty or None,
        presence_context_size=window,
        frequency_penalty=opts.frequency_penalty or None,
        frequency_context_size=window,
    )
