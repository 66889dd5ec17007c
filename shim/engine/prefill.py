"""Prompt prefill in slices bounded in time, so a long prompt never holds the engine thread for long.

The engine thread alternates: every running sequence decodes one token, then one slice of a prompt is
prefilled. mlx-lm's generate_step prefills a whole prompt in its first step (10k tokens: every other stream
frozen meanwhile), and BatchGenerator prefills `prefill_step_size` tokens (default 2048) per row between its
decode steps: bounded in tokens, not in time (a 7B model on a laptop GPU takes seconds for 2048).

So a slice is as many tokens as the model was measured to prefill in SLICE_SECONDS, rounded down to a power of
two within [MIN_TOKENS, MAX_TOKENS]: few distinct shapes, so a backend that prepares kernels per shape (MLX
CUDA's cuDNN attention, 43-75 ms for each new one on an H100, which the server turns off unless asked for:
shim/accelerator.py; MLX's own kernels, up to 24 ms for a new one against 7-10) does so once for the full
slices; never more than mlx-lm's own chunk, so peak activation memory stays what mlx-lm's is; and long
enough that each call's fixed cost stays small (chunked keeps >= 0.9 of unchunked prefill throughput:
scripts/bench_fairness.py measures it).
"""

from __future__ import annotations

import time
from typing import Any

import mlx.core as mx

from shim.engine.mlx_lm_api import generation_stream, prefill_queue

SLICE_SECONDS = 0.1  # the engine thread's longest prefill slice: the bound on other streams' inter-token gaps
MIN_TOKENS = 32
MAX_TOKENS = 2048  # mlx-lm's prefill_step_size default
FIRST_TOKENS = 256  # before any measurement; the rate then adapts within a few slices
_DECAY = 0.8  # how far one slice's measurement may lower the rate


class Pacer:
    """One model's measured prefill rate (token rows per second) and the slice length it allows."""

    def __init__(self) -> None:
        self.rate = 0.0
        self._shapes: set[tuple[int, int]] = set()  # the (rows, tokens per row) slices already timed once

    def tokens(self, rows: int = 1) -> int:
        """Tokens per row for the next slice of `rows` prompts prefilled side by side."""
        if self.rate <= 0:
            return FIRST_TOKENS
        want = int(self.rate * SLICE_SECONDS / max(rows, 1))
        return min(max(1 << max(want.bit_length() - 1, 0), MIN_TOKENS), MAX_TOKENS)

    def record(self, tokens: int, seconds: float, shape: tuple[int, int], full: bool = True) -> None:
        """A slice of `tokens` (summed over its rows) took `seconds`; `shape` is what the model ran on, (rows,
        tokens per row), and `full`: a row was cut (else every prompt in it ended within the slice).

        The first slice of each shape is not counted: on MLX CUDA it may pay for kernels prepared for that shape
        (cuDNN's attention, when a user turns it on: 43-75 ms; mlx-notes.md: a 402-token prompt took 918 ms the
        first time, 73 ms after), and taken for the model's speed that would cut the next slices shorter, into new
        shapes that compile again (seen on an H100: 64-token prompts cut in two slices of 32 after a few such). Full
        slices are powers of two long, so the rate is learnt from shapes that recur; a prompt's last slice is as
        long as what was left of it. Of the rest, the rate is the best recently seen, each full slice letting it
        fall by at most a fifth: it follows a machine that gets busier or a context that grows, but one slow slice
        does not shrink the next ones. A slice that is not full may raise the rate but never lowers it: a short
        prompt's fixed cost per call is most of its time, and chat turns of a few dozen tokens would otherwise wear
        the rate down until a long prompt, alone, was cut into many small slices of shapes never compiled before."""
        if tokens <= 0 or seconds <= 0:
            return
        if shape not in self._shapes:
            self._shapes.add(shape)
            return
        self.rate = max(tokens / seconds, self.rate * _DECAY if full else self.rate)


class PromptFill:
    """A prompt going into a KV cache one slice at a time, as generate_step would in one go: every token but
    the last (generate_step computes that one's logits in its first step). `embeddings`, one row per token:
    the decoder reads them instead of the tokens' own (a prompt with image features, vision_lane)."""

    def __init__(
        self, model: Any, cache: list[Any], tokens: list[int], pacer: Pacer, embeddings: mx.array | None = None
    ) -> None:
        self.model = model
        self.cache = cache
        self.pending = tokens
        self.pacer = pacer
        self.embeddings = embeddings

    @property
    def done(self) -> bool:
        return not self.pending

    def advance(self) -> None:
        """Prefill one slice (at most about SLICE_SECONDS)."""
        n = self.pacer.tokens()
        chunk, self.pending = self.pending[:n], self.pending[n:]
        extra = {}
        if self.embeddings is not None:
            extra["input_embeddings"], self.embeddings = self.embeddings[None, :n], self.embeddings[n:]
        started = time.perf_counter()
        with mx.stream(generation_stream):
            self.model(mx.array(chunk)[None], cache=self.cache, **extra)
            mx.eval([c.state for c in self.cache])
        self.pacer.record(len(chunk), time.perf_counter() - started, (1, len(chunk)), full=len(chunk) == n)
        mx.clear_cache()  # as generate_step does between its chunks: the activations' buffers go back


def pace(generator: Any, pacer: Pacer, least: int) -> tuple[tuple[int, int], bool]:
    """Set a BatchGenerator's prefill group and chunk for its next step from the measured rate, and return the
    shape its prefill runs on, (rows, tokens per row: the rows are padded to the longest), and whether it is
    full, for `Pacer.record`.

    The group is at least `least` prompts (mlx-lm's prefill batch) and grows to as many of those waiting as
    one slice finishes side by side, up to what the batch holds. A burst of short prompts then prefills at once
    (on an H100, 0.5B shapes, 16 prompts of 64 tokens: 1,969 tok/s in one group of 16 against 1,591-1,738 in
    groups of 8), the running streams waiting one slice either way; long prompts still go `least` at a time,
    so 16 of them never all prefill before any decodes."""
    waiting = prefill_queue(generator)
    generator.prefill_batch_size = max(_fitting(pacer, waiting, generator.completion_batch_size), least)
    rows = max(min(len(waiting), generator.prefill_batch_size), 1)
    step = generator.prefill_step_size = pacer.tokens(rows)
    longest = max(waiting[:rows], default=0)
    return (rows, min(longest, step)), longest >= step


def _fitting(pacer: Pacer, waiting: list[int], most: int) -> int:
    """How many of the first `waiting` prompts (tokens left to prefill each) one slice prefills to the end
    side by side: rows are padded to the longest, so the slice costs rows x longest tokens (none before the
    rate is measured)."""
    budget = pacer.rate * SLICE_SECONDS
    longest = 0
    for rows, tokens in enumerate(waiting[:most]):
        longest = max(longest, tokens)
        if (rows + 1) * longest > budget or longest > pacer.tokens(rows + 1):
            return rows
    return min(len(waiting), most)
