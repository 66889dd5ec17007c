"""A lone sequence's decode: mlx-lm's generate_step, except that the first token is handed out as soon as it is
computed.

generate_step keeps the accelerator a step ahead: before it hands out token n it builds, in Python, the graph of
the step that feeds n back, and queues it. From the second token on that hides the graph building behind the
accelerator's work. For the first token it only delays it: the client waits for a whole step's graph to be
built before seeing its first token (in-process mlx-lm's `stream_generate` does the same). Here the first token
goes out at once; its successor's step is built when the next one is asked for, and from then on the steps run
a step ahead as in generate_step. The cost, once per answer, is that the accelerator idles while the second
step is built and the first token is written.

`fed` says whether the KV cache already holds the last token handed out (from the second token on it does: the
step queued behind it fed it in), which the batch needs to know when the sequence moves into a BatchGenerator
or its cache is kept for later prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import mlx.core as mx

from shim.engine.mlx_lm_api import generation_stream

Step = tuple[mx.array, mx.array]  # a sampled token (shape (1,)) and the log-probabilities it was drawn from


class SoloDecode:
    """Decodes one sequence from a KV cache holding every token of its context but the last (`token`), whose
    logits the first step computes (from `embedding`, its row of the decoder's input, where the prompt carries
    image features). Processors see only the tokens fed here (as generate_step's do)."""

    def __init__(
        self,
        token: int,
        model: Any,
        sampler: Callable[[mx.array], mx.array],
        processors: list[Callable[[mx.array, mx.array], mx.array]],
        cache: list[Any],
        embedding: mx.array | None = None,
    ) -> None:
        self._model = model
        self._sampler = sampler
        self._processors = processors
        self._cache = cache
        self._seen: mx.array | None = None  # the tokens fed so far, for the processors
        self._last = mx.array([token])  # the latest token: the next step's input
        self._ahead: Step | None = None  # the step queued behind the last token handed out
        self._embedding = embedding
        self._count = 0  # tokens handed out

    @property
    def fed(self) -> bool:
        """Whether the KV cache holds the last token handed out (a step queued behind it fed it in)."""
        return self._ahead is not None

    def next(self) -> tuple[int, mx.array]:
        """The next token and its log-probabilities."""
        if self._count == 0:  # nothing is queued behind the first token: it goes out as soon as it is made
            token, logprobs = self._step(self._last, self._embedding)
            mx.eval(token, logprobs)
        else:
            if self._count % 256 == 1:
                mx.clear_cache()  # as generate_step does every 256 tokens
            if self._ahead is None:  # the second token: its step starts as soon as it is built
                self._ahead = self._step(self._last)
                mx.async_eval(*self._ahead)
            token, logprobs = self._ahead
            self._ahead = self._step(token)  # queued before waiting for `token`, which it feeds in
            mx.async_eval(*self._ahead)
        self._last = token
        self._count += 1
        return cast(int, token.item()), logprobs

    def _step(self, inputs: mx.array, embedding: mx.array | None = None) -> Step:
        extra = {} if embedding is None else {"input_embeddings": embedding[None]}
        with mx.stream(generation_stream):
            logits = self._model(inputs[None], cache=self._cache, **extra)[:, -1, :]
            if self._processors:
                self._seen = inputs if self._seen is None else mx.concat([self._seen, inputs])
                for processor in self._processors:
                    logits = processor(self._seen, logits)
            logprobs = logits - mx.logsumexp(logits, keepdims=True)
            return self._sampler(logprobs), logprobs.squeeze(0)
