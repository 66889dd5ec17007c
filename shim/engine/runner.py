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
from shim.engine.markers import MarkerScanner, Segment
from shim.engine.stops import StopMatcher
from shim.engine.thinking import ThinkingSplitter
from shim.engine.toolcalls import ToolCallCollector
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

    # Think and tool-call markers are found in the decoded text, so they may span several tokens.
    think_start = (getattr(tokenizer, "think_start", None) or "") if think else ""
    think_end = (getattr(tokenizer, "think_end", None) or "") if think else ""
    thinking = bool(think_start and think_end)
    splitter = ThinkingSplitter(
        enabled=thinking,
        open_tag=think_start or "<think>",
        close_tag=think_end or "</think>",
        starts_open=thinking and _ends_with(tokenizer, prompt, think_start),
    )
    calls = ToolCallCollector(tokenizer, tools)
    scanner = MarkerScanner(((think_start, think_end) if thinking else ()) + calls.markers)
    stops = StopMatcher(opts.stop)
    detok = IncrementalDetokenizer(tokenizer._tokenizer.decode, prompt)
    eos = set(tokenizer.eos_token_ids) | set(stop_ids)

    def out(piece: Piece | None) -> None:
        if piece is not None:
            emit(piece)

    def route(segments: list[Segment]) -> bool:
        """Send text to the stop matcher and splitter, markers to the splitter or tool-call collector;
        True when a stop string hit (the rest is dropped)."""
        for seg in segments:
            if calls.collecting:
                out(calls.feed(seg.text, seg.marker))
            elif seg.marker:
                # A marker ends whatever text was pending: it cannot be part of a stop string.
                out(splitter.text(stops.flush()))
                if not calls.begins(seg.text):
                    out(splitter.open() if seg.text == think_start else splitter.close())
            else:
                safe, hit = stops.feed(seg.text)
                out(splitter.text(safe))
                if hit:
                    return True
        return False

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
        logits_processors=_processors(opts),
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
        if route(scanner.feed(detok.add(token))):
            reason, stop_hit = "stop", True
            break
    if not stop_hit:
        if route([*scanner.feed(detok.flush()), Segment(scanner.flush())]):
            reason = "stop"
        else:
            out(splitter.text(stops.flush()))
    out(calls.flush())
    out(splitter.flush())
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


def _ends_with(tokenizer: Any, prompt: list[int], marker: str) -> bool:
    """Whether the prompt ends in `marker` (and whitespace): the template opened the think block itself."""
    return bool(prompt) and str(tokenizer.decode(prompt[-16:])).rstrip().endswith(marker)


def _sampler(opts: GenerationOptions) -> Callable[[mx.array], mx.array]:
    if opts.temperature <= 0:
        return make_sampler(0.0)
    top_p = opts.top_p if 0 < opts.top_p < 1 else 0.0
    return make_sampler(opts.temperature, top_p=top_p, min_p=opts.min_p, top_k=max(opts.top_k, 0))


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
