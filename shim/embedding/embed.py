"""Texts to vectors for any loaded model: the context check or truncation Ollama applies, then batches.

A decoder (any mlx-lm completion model) embeds as Ollama allows: the mean of its final hidden states over
the input's tokens, one input at a time (no padding, so a text's vector never depends on its neighbours).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import mlx.core as mx
import numpy as np

from shim.embedding.load import SentenceEncoder
from shim.errors import Kind, ShimError

# Padded tokens per batch. Batching pays only with a fast BLAS (MiniLM on 2 CPU cores with OpenBLAS: 450 tok/s
# alone, 990 tok/s in batches of 32 short texts; with the reference BLAS that the mlx-cpu wheel bundles it is
# slower than one at a time), and the worker checks for a departed client and lets queued work wait only
# between batches: 512 tokens keeps a batch under a second there and bounded everywhere.
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
    and the number of tokens evaluated. Too long a text is cut to the context, or refused when truncate is off
    (Ollama's texts and 400)."""
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
    vectors: list[np.ndarray | None] = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(tokenized[i]))  # similar lengths pad little
    start = 0
    while start < len(order):
        between_batches()
        end = start + 1
        while end < len(order) and (end - start + 1) * len(tokenized[order[end]]) <= BATCH_TOKENS:
            end += 1
        chunk = order[start:end]
        for i, vector in zip(chunk, embedder.embed([tokenized[i] for i in chunk]), strict=True):
            vectors[i] = vector
        start = end
    return [v for v in vectors if v is not None], sum(len(ids) for ids in tokenized)
