"""One completion's per-token pipeline: incremental detokenizing, then stop strings, thinking split and tool
calls (shim/engine/output.py), honest counts. The scheduler (shim/engine/batch.py) feeds it the tokens its
sequence gets.

Runs on the engine's worker thread only. `emit` hands each Piece to the waiting HTTP handler.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import mlx.core as mx
from llguidance import LLMatcher

from shim.engine.detokenizer import IncrementalDetokenizer
from shim.engine.fast_decode import text_decoder
from shim.engine.grammar import format_processors
from shim.engine.logprobs import LogprobRecorder
from shim.engine.mlx_lm_api import (
    generate_step,
    hf_tokenizer,
    make_logits_processors,
    make_sampler,
)
from shim.engine.output import OutputRouter
from shim.engine.parsers import end_token_ids
from shim.engine.sampling import Chain
from shim.engine.types import Done, Piece, TokenLogprob
from shim.options import GenerationOptions


class Completion:
    """The state of one request's answer; `feed` takes each generated token and says when the answer ends."""

    def __init__(
        self,
        tokenizer: Any,
        prompt: list[int],
        opts: GenerationOptions,
        *,
        think: bool,
        shift: bool,
        tools: list[dict[str, Any]] | None,
        template: str = "",
        stop_ids: frozenset[int] = frozenset(),
        logprobs: int | None = None,
        emit: Callable[[Piece], None],
    ) -> None:
        self.prompt = prompt
        num_ctx = opts.num_ctx
        limit = opts.num_predict if opts.num_predict > 0 else -1
        if not shift:
            room = max(num_ctx - len(prompt), 1)
            limit = room if limit < 0 else min(limit, room)
        self.limit = limit

        # Each token's log-probability waits here until a piece carries the text it released (Ollama sends
        # them with the runner's pending text), with the length of that text, to trim at a stop string.
        self.logprobs = LogprobRecorder(tokenizer, logprobs) if logprobs is not None else None
        self.pending: list[tuple[TokenLogprob, int]] = []
        self.emit = emit
        self.output = OutputRouter(
            tokenizer,
            prompt,
            think=think,
            tools=tools,
            template=template,
            stops=opts.stop,
            emit=self._emit,
            on_stop=self._cut,
        )
        self.detok = IncrementalDetokenizer(text_decoder(hf_tokenizer(tokenizer)), prompt)
        self.eos = set(tokenizer.eos_token_ids) | set(stop_ids) | end_token_ids(tokenizer)
        # The grammar follows think markers of one special token each (the families it was built for).
        self.think_start = _single(getattr(tokenizer, "think_start_tokens", None)) if think else None
        self.think_end = _single(getattr(tokenizer, "think_end_tokens", None)) if think else None
        self.generated: list[int] = []
        self.reason: Literal["stop", "length"] = "length"
        self.stop_hit = False
        self.started = time.perf_counter_ns()
        self.first = 0

    def feed(self, token: int, logprobs: mx.array | None = None) -> bool:
        """One generated token (and the vector it was sampled from); True when the answer is over (end of
        turn, stop string or token limit)."""
        if not self.first:
            self.first = time.perf_counter_ns()
        self.generated.append(token)
        if token in self.eos:  # as in Ollama, the end-of-turn token has no log-probability entry
            self.reason = "stop"
            return True
        text = self.detok.add(token)
        if self.logprobs is not None and logprobs is not None:
            self.pending.append((self.logprobs.record(token, logprobs), len(text)))
        if self.output.feed(text):
            self.reason, self.stop_hit = "stop", True
            return True
        return 0 < self.limit <= len(self.generated)

    def restart(self) -> None:
        """The scheduler (re)starts this sequence's decoding: what was computed ahead is void."""
        if self.logprobs is not None:
            self.logprobs.restart()

    def finish(self) -> Done:
        """Flush what is held back and report the answer's true counts and timings."""
        if self.stop_hit:
            self.output.stopped()
        elif self.output.finish(self.detok.flush()):
            self.reason = "stop"
        if self.pending:  # tokens whose text went nowhere visible (markers) still report theirs
            self._emit(Piece())
        finished = time.perf_counter_ns()
        first = self.first or finished
        context = self.prompt + [t for t in self.generated if t not in self.eos]
        return Done(
            done_reason=self.reason,
            prompt_eval_count=len(self.prompt),
            prompt_eval_duration=first - self.started,
            eval_count=len(self.generated),
            eval_duration=finished - first,
            load_duration=0,
            context=context,
        )

    def _emit(self, piece: Piece) -> None:
        if self.pending:
            piece.logprobs = [entry for entry, _ in self.pending]
            self.pending = []
        self.emit(piece)

    def _cut(self, chars: int) -> None:
        """A stop string hit: like Ollama's runner, drop the entries of the tokens whose text lies wholly in
        the stop string or after it (a token that starts before it keeps its entry)."""
        after = 0
        while self.pending:
            after += self.pending[-1][1]
            if after > chars:
                return
            self.pending.pop()


def run_completion(
    model: Any,
    tokenizer: Any,
    prompt: list[int],
    opts: GenerationOptions,
    *,
    think: bool,
    shift: bool,
    tools: list[dict[str, Any]] | None,
    emit: Callable[[Piece], None],
    cancelled: threading.Event,
    format: str | dict[str, Any] | None = None,
    stop_ids: frozenset[int] = frozenset(),
    logprobs: int | None = None,
) -> Done:
    """One completion on mlx-lm's generate_step, outside the scheduler: the same pipeline for tests and
    scripts that drive a model in-process."""
    completion = Completion(
        tokenizer, prompt, opts, think=think, shift=shift, tools=tools, stop_ids=stop_ids, logprobs=logprobs,
        emit=emit,
    )  # fmt: skip
    steps = generate_step(
        mx.array(prompt),
        model,
        max_tokens=-1,
        sampler=sampler(opts, vocab_size(model)),
        logits_processors=logits_processors(completion, opts, tokenizer, format),
        max_kv_size=opts.num_ctx if shift else None,
    )
    for token, vector in steps:
        if cancelled.is_set() or completion.feed(token, vector):
            break
    return completion.finish()


def _single(tokens: tuple[int, ...] | None) -> int | None:
    return tokens[0] if tokens and len(tokens) == 1 else None


def vocab_size(model: Any) -> int:
    """The width of the model's logits, from its config (mlx-lm keeps it as `args`); 0 when unknown."""
    return int(getattr(getattr(model, "args", None), "vocab_size", 0) or 0)


def sampler(opts: GenerationOptions, vocab: int = 0) -> Callable[[mx.array], mx.array]:
    """The request's token sampler: greedy at temperature 0, else Ollama's chain (sampling.Chain; seeded when
    asked). As in Ollama, a top_k of 0 or of the whole vocabulary or more keeps every token, and top_p and
    min_p outside (0, 1) are off."""
    if opts.temperature <= 0:
        return make_sampler(0.0)  # mlx-lm's one greedy sampler object
    top_p = opts.top_p if 0 < opts.top_p < 1 else 0.0
    min_p = opts.min_p if 0 < opts.min_p < 1 else 0.0
    top_k = max(opts.top_k, 0) if not vocab or opts.top_k < vocab else 0
    chain = _shared_chain(opts.temperature, top_p, min_p, top_k)
    return chain if opts.seed < 0 else _seeded(chain, opts.seed)


@functools.lru_cache(maxsize=64)
def _shared_chain(temp: float, top_p: float, min_p: float, top_k: int) -> Chain:
    """One object per setting: BatchGenerator samples the sequences that share a sampler object in one call
    (measured: 8 sequences with the same settings decode up to 2x faster than with 8 equal copies)."""
    return Chain(temp, top_p, min_p, top_k)


def _seeded(chain: Chain, seed: int) -> Callable[[mx.array], mx.array]:
    """The chain on a random stream of its own, so what other sequences draw cannot change this one's tokens.
    Splitting the key as MLX's global generator does gives the draws `mx.random.seed(seed)` would give."""
    key = mx.random.key(seed)

    def sample(logprobs: mx.array) -> mx.array:
        nonlocal key
        key, draw = mx.random.split(key)
        return chain(logprobs, draw)

    return sample


def logits_processors(
    completion: Completion, opts: GenerationOptions, tokenizer: Any, fmt: str | dict[str, Any] | None,
    matcher: LLMatcher | None = None,
) -> list[Callable[[mx.array, mx.array], mx.array]]:  # fmt: skip
    """One request's logits processors: its penalties, then the grammar that enforces its `format` (`matcher`:
    already compiled; behind the log-probability capture when the request asked for them and there is anything
    to capture before)."""
    processors = _processors(opts) + format_processors(
        tokenizer, fmt, completion.prompt, completion.think_start, completion.think_end, matcher
    )
    if processors and completion.logprobs is not None:
        processors.insert(0, completion.logprobs.capture)
    return processors


def _processors(opts: GenerationOptions) -> list[Callable[[mx.array, mx.array], mx.array]]:
    window = opts.num_ctx if opts.repeat_last_n < 0 else opts.repeat_last_n
    if window == 0:
        return []
    processors = make_logits_processors(
        presence_penalty=opts.presence_penalty or None,
        presence_context_size=window,
        frequency_penalty=opts.frequency_penalty or None,
        frequency_context_size=window,
    )
    if opts.repeat_penalty != 1.0:
        processors.insert(0, _repetition_penalty(opts.repeat_penalty, window))
    return processors


def _repetition_penalty(penalty: float, window: int) -> Callable[[mx.array, mx.array], mx.array]:
    """mlx-lm's repetition penalty (llama.cpp's: negative logits times it, others divided by it) without its
    refusal of a negative penalty, which llama.cpp, and so Ollama, applies as given."""

    def apply(tokens: mx.array, logits: mx.array) -> mx.array:
        if len(tokens) > 0:
            recent = tokens[-window:]
            selected = logits[:, recent]
            logits[:, recent] = mx.where(selected < 0, selected * penalty, selected / penalty)
        return logits

    return apply
