"""Token sampling at a temperature, in Ollama's order: top_k, then the temperature, then top_p and min_p.

Ollama's sampler (its `sample` package) keeps the top_k highest logits first, divides them by the
temperature, takes their softmax, keeps the shortest run of the most likely whose probabilities pass top_p
(the token that passes it included), drops those below min_p times the most likely one's probability, and
draws from what is left. mlx-lm's `make_sampler` chains the same filters the other way round: top_p first,
on the untempered distribution, by sorting the whole vocabulary for every row at every step. On a 262k-entry
vocabulary that sort took 31 ms per row on this CPU (a decode step of the tiny Gemma 3 model at Ollama's
defaults, top_k 40 and top_p 0.9: 102 ms for two rows, 29 ms greedy). Here the top_k survivors are found by a
partition, and only they are sorted, tempered and filtered: Ollama's semantics at a fraction of the cost. The
whole vocabulary is sorted only where top_k is off (as Ollama's does).

Input rows are the log-probabilities mlx-lm's generators hand a sampler; a row's constant shift from raw
logits changes nothing here (top_k and the softmax ignore it).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx


@dataclass(frozen=True)
class Chain:
    """One request's sampling settings; called on (rows, vocabulary) log-probabilities, returns a token per
    row. `key`: a random key of the caller's own (a seeded request), else MLX's global generator."""

    temperature: float  # > 0 (temperature 0 is greedy: mlx-lm's argmax sampler)
    top_p: float = 0.0  # 0: off
    min_p: float = 0.0  # 0: off
    top_k: int = 0  # 0, or the vocabulary or more: every token

    def __call__(self, logprobs: mx.array, key: mx.array | None = None) -> mx.array:
        ids = None  # the candidates' token ids, per row, most likely first when filtered; None: all, unsorted
        if 0 < self.top_k < logprobs.shape[-1]:
            ids = mx.argpartition(-logprobs, kth=self.top_k - 1, axis=-1)[..., : self.top_k]
        values = logprobs if ids is None else mx.take_along_axis(logprobs, ids, axis=-1)
        if self.top_p or self.min_p:
            order = mx.argsort(-values, axis=-1)
            values = mx.take_along_axis(values, order, axis=-1)
            ids = order if ids is None else mx.take_along_axis(ids, order, axis=-1)
        values = values * (1.0 / self.temperature)
        if self.top_p or self.min_p:
            values = mx.where(self._kept(mx.softmax(values, axis=-1)), values, -mx.inf)
        drawn = mx.random.categorical(values, key=key)
        return drawn if ids is None else mx.take_along_axis(ids, drawn[:, None], axis=-1)[:, 0]

    def _kept(self, probs: mx.array) -> mx.array:
        """Which of the candidates (most likely first) top_p and min_p keep."""
        kept = mx.ones(probs.shape, dtype=mx.bool_)
        if self.top_p:  # every token whose predecessors sum to at most top_p: up to the one that passes it
            kept = kept & (mx.cumsum(probs, axis=-1) - probs <= self.top_p)
        if self.min_p:
            kept = kept & (probs >= probs[..., :1] * self.min_p)
        return kept
