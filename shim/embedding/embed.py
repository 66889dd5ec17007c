"""Texts to vectors for any loaded model: the context check or truncation Ollama applies, then batches.

A decoder (any mlx-lm completion model) embeds as Ollama allows: the mean of its final hidden states over
the input's tokens, one input at a time (no padding, so a text's vector never depends on its neighbours).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import mlx.core as mx
import numpy as np

from shim.embedding.load import SentenceEncoder
from shim.engine.prefill import SLICE_SECONDS  # a batch's target time on the engine thread, as a prefill slice's
from shim.errors import Kind, ShimError

# Padded tokens per batch at most. Batching pays only with a fast BLAS (MiniLM on 2 CPU cores with OpenBLAS: 450 tok/s
# alone, 990 tok/s in batches of 32 short texts; with the reference BLAS that the mlx-cpu wheel bundles it is
# slower than one at a time); between batches the engine thread decodes other streams and starts new requests,
# so a batch is also bounded in time (SLICE_SECONDS, from the measured speed).
BATCH_TOKENS = 512


class InputError(ShimError):
    """An input the model cannot embed; the message is Ollama's text for it (a 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Kind.BAD_INPUT)


class Embedder(Protocol):
    def tokenize(self, text: str) -> list[int]: ...
    def truncate(self, ids: list[int], length: int) -> list[int]: ...
    def embed(self, batch: list[list[int]]) -> np.ndarray: ...


class DecoderEmbedder:
    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    @staticmethod
    def truncate(ids: list[int], length: int) -> list[int]:
        return ids[:length]

    def embed(self, batch: list[list[int]]) -> np.ndarray:
        rows = []
        for ids in batch:
            hidden = self.model.model(mx.array([ids]))  # mlx-lm: the final (normed) hidden states
            rows.append(hidden[0].astype(mx.float32).mean(axis=0))
        return np.array(mx.stack(rows))


def embedder_for(model: Any, tokenizer: Any) -> Embedder:
    return model if isinstance(model, SentenceEncoder) else DecoderEmbedder(model, tokenizer)


def embed_texts(
    embedder: Embedder, texts: list[str], context_length: int, truncate: bool, between_batches: Callable[[], None]
) -> tuple[list[np.ndarray], int]:
    """One vector per text in input order (as the model outputs it: normalised only if the model says so),
    and the number of tokens evaluated; `between_batches` runs before each batch. Too long a text is cut to the
    context, or refused when truncate is off (Ollama's texts and 400)."""
    slices = EmbedSlices(embedder, tokenize_texts(embedder, texts, context_length, truncate))
    while not slices.done:
        between_batches()
        slices.advance()
    return slices.vectors(), slices.tokens


def tokenize_texts(embedder: Embedder, texts: list[str], context_length: int, truncate: bool) -> list[list[int]]:
    """Each text's token ids, cut to the context (or refused: truncate off) as Ollama does. No MLX: the engine
    runs this off its thread."""
    tokenized = []
    for text in texts:
        ids = embedder.tokenize(text)
        if len(ids) > context_length:
            if not truncate:
                raise InputError("the input length exceeds the context length")
            if context_length <= 1:
                raise InputError("input after truncation exceeds maximum context length")
            ids = embedder.truncate(ids, context_length)
        if not ids:
            raise InputError("embedding contains NaN or Inf values")  # a mean over no tokens
        tokenized.append(ids)
    return tokenized


class EmbedSlices:
    """Tokenized inputs embedded one batch per `advance`, shortest first (similar lengths pad little), so the
    engine thread can decode other streams and start new requests between batches. A batch holds at most
    BATCH_TOKENS padded tokens and about SLICE_SECONDS of work at the model's measured speed (the first batch,
    unmeasured, and the least: one input, one forward pass)."""

    def __init__(self, embedder: Embedder, tokenized: list[list[int]]) -> None:
        self.embedder = embedder
        self.tokenized = tokenized
        self.tokens = sum(len(ids) for ids in tokenized)
        self._order = sorted(range(len(tokenized)), key=lambda i: len(tokenized[i]))
        self._next = 0
        self._vectors: list[np.ndarray | None] = [None] * len(tokenized)
        self._rate = 0.0  # padded tokens per second, measured

    @property
    def done(self) -> bool:
        return self._next >= len(self._order)

    def advance(self) -> None:
        """Embed the next batch."""
        order, start = self._order, self._next
        budget = min(BATCH_TOKENS, int(self._rate * SLICE_SECONDS))  # unmeasured: one input
        end = start + 1
        while end < len(order) and (end - start + 1) * len(self.tokenized[order[end]]) <= budget:
            end += 1
        chunk = order[start:end]
        began = time.perf_counter()
        for i, vector in zip(chunk, self.embedder.embed([self.tokenized[i] for i in chunk]), strict=True):
            self._vectors[i] = vector
        padded = (end - start) * len(self.tokenized[order[end - 1]])
        rate = padded / max(time.perf_counter() - began, 1e-6)
        self._rate = rate if self._rate <= 0 else (self._rate + rate) / 2
        self._next = end

    def vectors(self) -> list[np.ndarray]:
        return [v for v in self._vectors if v is not None]
